// Fuzzes the TFTP codec and, through it, the transfer state machine: any
// packet that parses must re-encode to bytes that parse to the same packet,
// and a request must drive a Transfer without crashing whatever follows.

#include <cstdint>
#include <cstdlib>
#include <span>

#include "tftp/codec.h"
#include "tftp/protocol.h"
#include "vfs/vfs.h"

using namespace isoboot::tftp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  auto packet = Parse(in);
  if (!packet) return 0;
  std::vector<uint8_t> wire;
  Append(*packet, wire);
  auto again = Parse(wire);
  if (!again || Describe(*again) != Describe(*packet)) std::abort();
  std::vector<uint8_t> wire2;
  Append(*again, wire2);
  if (wire2 != wire) std::abort();

  const auto* req = std::get_if<Request>(&*packet);
  if (!req) return 0;
  TransferConfig config;
  config.limits.max_blksize = 64;  // many blocks from a small source
  TimePoint now{};
  Transfer t(*req, isoboot::vfs::TextSource(std::string(size * 3 % 4096, 'x')), config, now);
  // Use the input's bytes again as a stream of client ACKs and timer ticks.
  for (size_t i = 0; i + 1 < size && !t.finished(); i += 2) {
    if (data[i] == 0xff) {
      now += std::chrono::seconds(10);
      t.OnTimer(now);
    } else {
      t.OnPacket(Ack{static_cast<uint16_t>(data[i] << 8 | data[i + 1])}, now);
    }
    for (const auto& p : t.output())
      if (!Parse(p)) std::abort();
  }
  return 0;
}
