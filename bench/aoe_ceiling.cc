// aoe_ceiling IFACE SECTORS: the least work an AoE target can do, for
// bench/aoe_bench.sh to measure this machine's packet path. Answers Query
// Config and IDENTIFY, and answers reads with zeros from memory (no file, no
// checks beyond the command byte), one worker per CPU with PACKET_FANOUT_CPU,
// adaptively pinned, and batched recvmmsg/sendmmsg, like isoboot's server.
// Runs until killed.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "aoe/codec.h"
#include "aoe/target.h"
#include "linux/cpu_pin.h"
#include "linux/packet_socket.h"

namespace {

using namespace isoboot;

// PACKET_FANOUT_CPU gives CPU c's frames to the c-th socket to join the
// group, so the sockets are opened in CPU order before any worker starts.
std::unique_ptr<sys::PacketSocket> OpenSocket(const sys::InterfaceInfo& iface) {
  sys::PacketSocketOptions o;
  o.ethertype = aoe::kEtherType;
  o.fanout_group = 4242;
  o.fanout = sys::Fanout::kCpu;
  o.receive_buffer = 8 << 20;
  o.batch = 64;
  return std::make_unique<sys::PacketSocket>(iface, o);
}

void Worker(const sys::InterfaceInfo& iface, sys::PacketSocket& sock, int cpu, uint64_t sectors) {
  sys::AdaptivePin pin(cpu, 64);  // as isoboot's workers
  uint8_t scnt = aoe::Target::SectorsForMtu(iface.mtu);
  auto identify = aoe::BuildIdentify(sectors, "CEILING", scnt);
  size_t size = iface.mtu + 64;
  std::vector<std::vector<uint8_t>> rx(64, std::vector<uint8_t>(size)),
      tx(64, std::vector<uint8_t>(size));
  std::vector<std::span<uint8_t>> rxs(rx.begin(), rx.end());
  std::vector<std::span<const uint8_t>> txs;
  txs.reserve(64);
  std::vector<size_t> lens(64);
  for (;;) {
    size_t n = sock.Receive(rxs, lens, 1000);
    pin.Observe(n);
    txs.clear();
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* q = rx[i].data();
      if (lens[i] < 36 || (q[14] & 0x08)) continue;
      uint8_t* r = tx[i].data();
      std::memcpy(r, q + 6, 6);
      std::memcpy(r + 6, iface.mac.data(), 6);
      std::memcpy(r + 12, q + 12, 12);
      r[14] = 0x18;
      r[16] = 0;  // answers as e0.1
      r[17] = 0;
      r[18] = 1;
      size_t len = 24;
      if (q[19] == 1) {  // Query Config
        const uint8_t qc[8] = {0x04, 0x00, 0, 1, scnt, 0x10, 0, 0};
        std::memcpy(r + 24, qc, 8);
        len = 60;
      } else if (q[19] == 0) {
        std::memcpy(r + 24, q + 24, 12);
        r[27] = 0x40;
        len = 36;
        if (q[27] == 0xEC) {
          std::memcpy(r + 36, identify.data(), 512);
          len += 512;
        } else if (q[27] == 0x20 || q[27] == 0x24) {
          size_t bytes = size_t{q[26]} * 512;
          std::memset(r + 36, 0, bytes);  // what a read from memory costs
          len += bytes;
        }
        len = std::max<size_t>(len, 60);
      } else {
        continue;
      }
      txs.emplace_back(r, len);
    }
    if (!txs.empty()) sock.Send(txs);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: aoe_ceiling IFACE SECTORS\n");
    return 2;
  }
  auto iface = isoboot::sys::LookupInterface(argv[1]);
  uint64_t sectors = std::strtoull(argv[2], nullptr, 10);
  int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<isoboot::sys::PacketSocket>> sockets;
  for (int c = 0; c < ncpu; ++c)
    sockets.push_back(OpenSocket(iface));
  std::vector<std::thread> threads;
  for (int c = 0; c < ncpu; ++c)
    threads.emplace_back(Worker, std::cref(iface), std::ref(*sockets[c]), c, sectors);
  for (auto& t : threads)
    t.join();
}
