#include "linux/packet_socket.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>

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
  if (options.receive_buffer > 0) {
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
    // A flow hash would send all non-IP frames to one socket. By CPU, a
    // frame goes to the socket of the CPU that received it, so a worker
    // pinned there wakes without a cross-CPU IPI; round-robin spreads frames
    // from one receive queue but wakes a different thread per frame.
    int mode = options.fanout_by_cpu ? PACKET_FANOUT_CPU : PACKET_FANOUT_LB;
    int arg = (options.fanout_group & 0xffff) | (mode << 16);
    if (setsockopt(fd_.get(), SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
      Fail("PACKET_FANOUT on " + iface.name);
    }
  }
}

PacketSocket::~PacketSocket() = default;

size_t PacketSocket::Receive(std::span<const std::span<uint8_t>> bufs, std::span<size_t> lens,
                             int timeout_ms) {
  size_t n = std::min({bufs.size(), lens.size(), batch_});
  if (n == 0) return 0;
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
