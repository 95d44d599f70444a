#include "linux/packet_socket.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "linux/privilege.h"

namespace isoboot::sys {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

InterfaceInfo LookupInterface(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    throw std::runtime_error("bad interface name '" + name + "'");
  }
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) Fail("socket");
  InterfaceInfo info;
  info.name = name;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(s.get(), SIOCGIFINDEX, &ifr) != 0) Fail("interface " + name);
  info.index = ifr.ifr_ifindex;
  if (ioctl(s.get(), SIOCGIFHWADDR, &ifr) != 0) Fail("interface " + name + ": MAC address");
  std::memcpy(info.mac.data(), ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(s.get(), SIOCGIFMTU, &ifr) != 0) Fail("interface " + name + ": MTU");
  info.mtu = static_cast<unsigned>(ifr.ifr_mtu);
  return info;
}

PacketSocket::PacketSocket(const InterfaceInfo& iface, const PacketSocketOptions& options)
    : batch_(options.batch ? options.batch : 1), msgs_(batch_), iovs_(batch_) {
  uint16_t proto = htons(options.ethertype);
  fd_.Reset(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, proto));
  if (!fd_.valid()) {
    if (errno == EPERM || errno == EACCES) {
      throw std::runtime_error(
          fmt::format("a packet socket on {} {}", iface.name, NeedsCapNetRawMessage()));
    }
    Fail("AF_PACKET socket");
  }
  if (options.receive_ring > 0) SetUpRing(options, iface.name);
  if (options.receive_buffer > 0 && options.receive_ring == 0) {
    // SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN.
    int size = options.receive_buffer;
    if (setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
      setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
  }
  socklen_t len = sizeof receive_buffer_;
  getsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer_, &len);
  // Our own transmissions would otherwise come back to every packet socket.
  int one = 1;
  setsockopt(fd_.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);

  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = proto;
  addr.sll_ifindex = iface.index;
  if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Fail("bind to interface " + iface.name);
  }
  if (options.promiscuous) {
    packet_mreq mreq{};
    mreq.mr_ifindex = iface.index;
    mreq.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd_.get(), SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
      Fail("promiscuous mode on " + iface.name);
    }
  }
  if (options.fanout_group >= 0) {
    // The kernel's flow hash would send all non-IP frames to one socket. By
    // CPU, a frame goes to the socket of the CPU that received it, so a
    // worker pinned there wakes without a cross-CPU IPI. By source MAC, the
    // frames of one receive queue (a NIC's RSS cannot hash non-IP frames,
    // so it puts them all on one) still spread over the sockets, each
    // sender's in order on one. Round-robin spreads them too but wakes a
    // different thread per frame.
    int mode = PACKET_FANOUT_CPU;
    if (options.fanout == Fanout::kSourceMac) mode = PACKET_FANOUT_CBPF;
    if (options.fanout == Fanout::kRoundRobin) mode = PACKET_FANOUT_LB;
    int arg = (options.fanout_group & 0xffff) | (mode << 16);
    if (setsockopt(fd_.get(), SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
      Fail("PACKET_FANOUT on " + iface.name);
    }
    if (options.fanout == Fanout::kSourceMac) {
      // A = the source MAC's last four bytes (Ethernet header bytes 8..11),
      // folded to mix all four; the kernel takes the result modulo the
      // number of sockets in the group.
      sock_filter code[] = {
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_LL_OFF + 8)),
          BPF_STMT(BPF_MISC | BPF_TAX, 0),
          BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
          BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
          BPF_STMT(BPF_MISC | BPF_TAX, 0),
          BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 8),
          BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
          BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff),
          BPF_STMT(BPF_RET | BPF_A, 0),
      };
      sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
      if (setsockopt(fd_.get(), SOL_PACKET, PACKET_FANOUT_DATA, &prog, sizeof prog) != 0) {
        Fail("PACKET_FANOUT_DATA on " + iface.name);
      }
    }
  }
}

PacketSocket::~PacketSocket() {
  if (map_) munmap(map_, map_size_);
}

void PacketSocket::SetUpRing(const PacketSocketOptions& options, const std::string& iface) {
  int version = TPACKET_V2;
  if (setsockopt(fd_.get(), SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) {
    Fail("TPACKET_V2 on " + iface);
  }
  // A slot holds the frame header, the address, alignment, an Ethernet
  // header with a VLAN tag, and the payload. Slots and blocks are powers of
  // two, so a block holds whole slots and the slots follow one another.
  size_t need = TPACKET_ALIGN(TPACKET2_HDRLEN) + 16 + 18 + options.mtu;
  size_t frame = 2048;
  while (frame < need)
    frame *= 2;
  size_t page = static_cast<size_t>(std::max(sysconf(_SC_PAGESIZE), 4096L));
  size_t block = std::max({frame, page, size_t{1} << 16});
  size_t blocks = std::max<size_t>(1, options.receive_ring / block);
  tpacket_req req{};
  req.tp_block_size = static_cast<unsigned>(block);
  req.tp_block_nr = static_cast<unsigned>(blocks);
  req.tp_frame_size = static_cast<unsigned>(frame);
  req.tp_frame_nr = static_cast<unsigned>(blocks * (block / frame));
  if (setsockopt(fd_.get(), SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0) {
    Fail("receive ring on " + iface);
  }
  map_size_ = block * blocks;
  void* p = mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) Fail("mapping the receive ring of " + iface);
  map_ = p;
  rx_ = {static_cast<uint8_t*>(p), frame, req.tp_frame_nr, 0};
}

size_t PacketSocket::Peek(std::span<std::span<const uint8_t>> out, int timeout_ms) {
  Release();
  auto header = [this](size_t i) {
    return reinterpret_cast<tpacket2_hdr*>(rx_.Frame(rx_.head + i));
  };
  auto ready = [&](size_t i) {
    return (__atomic_load_n(&header(i)->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
  };
  if (!ready(0)) {
    pollfd p{fd_.get(), POLLIN, 0};
    int r = poll(&p, 1, std::max(timeout_ms, 0));
    if (r < 0 && errno != EINTR) Fail("poll");
    if (r > 0 && (p.revents & POLLERR)) {
      // E.g. ENETDOWN, once, when the interface goes down or away.
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        errno = err;
        Fail("packet socket");
      }
    }
    if (!ready(0)) return 0;
  }
  size_t n = 0;
  while (n < out.size() && n < rx_.frames && ready(n)) {
    tpacket2_hdr* h = header(n);
    out[n] = {reinterpret_cast<const uint8_t*>(h) + h->tp_mac, h->tp_snaplen};
    ++n;
  }
  peeked_ = n;
  return n;
}

void PacketSocket::Release() {
  for (size_t i = 0; i < peeked_; ++i) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(rx_.Frame(rx_.head + i));
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  }
  rx_.head = (rx_.head + peeked_) % rx_.frames;
  peeked_ = 0;
}

size_t PacketSocket::Receive(std::span<const std::span<uint8_t>> bufs, std::span<size_t> lens,
                             int timeout_ms) {
  size_t n = std::min({bufs.size(), lens.size(), batch_});
  if (n == 0) return 0;
  // With a ring the frames never reach the socket's queue: Peek reads them.
  if (map_) throw std::logic_error("Receive on a packet socket with a receive ring");
  // One system call per batch: block until the first frame (or the
  // timeout, via SO_RCVTIMEO), then take whatever else is already queued.
  timeout_ms = std::max(timeout_ms, 1);  // 0 would mean "forever" to SO_RCVTIMEO
  if (timeout_ms != timeout_ms_) {
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    timeout_ms_ = timeout_ms;
  }
  for (size_t i = 0; i < n; ++i) {
    iovs_[i] = {bufs[i].data(), bufs[i].size()};
    msgs_[i] = {};
    msgs_[i].msg_hdr.msg_iov = &iovs_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
  }
  int got = recvmmsg(fd_.get(), msgs_.data(), static_cast<unsigned>(n), MSG_WAITFORONE, nullptr);
  if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    // E.g. ENETDOWN, reported once when the interface goes down or away.
    // Returning 0 here would spin: every later call fails at once.
    Fail("recvmmsg");
  }
  if (got <= 0) return 0;
  for (int i = 0; i < got; ++i) {
    lens[static_cast<size_t>(i)] = std::min<size_t>(msgs_[static_cast<size_t>(i)].msg_len,
                                                    bufs[static_cast<size_t>(i)].size());
  }
  return static_cast<size_t>(got);
}

size_t PacketSocket::Send(std::span<const std::span<const uint8_t>> frames) {
  size_t sent = 0;
  int stalls = 0;
  while (sent < frames.size()) {
    size_t n = std::min(frames.size() - sent, batch_);
    for (size_t i = 0; i < n; ++i) {
      const auto& f = frames[sent + i];
      iovs_[i] = {const_cast<uint8_t*>(f.data()), f.size()};
      msgs_[i] = {};
      msgs_[i].msg_hdr.msg_iov = &iovs_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    int got = sendmmsg(fd_.get(), msgs_.data(), static_cast<unsigned>(n), 0);
    if (got > 0) {
      sent += static_cast<size_t>(got);
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == ENOBUFS || errno == EAGAIN) && ++stalls < 100) {
      pollfd p{fd_.get(), POLLOUT, 0};
      poll(&p, 1, 1);
      continue;
    }
    // A frame the device refuses (e.g. larger than its MTU) is dropped
    // rather than blocking the others behind it.
    ++sent;
  }
  return sent;
}

bool PacketSocket::SendOne(std::span<const uint8_t> frame) {
  std::span<const uint8_t> one[1] = {frame};
  return Send(one) == 1;
}

}  // namespace isoboot::sys
