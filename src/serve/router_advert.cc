#include "serve/router_advert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <system_error>

#include "base/byte_io.h"

namespace isoboot::serve {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

std::vector<uint8_t> EmptyRouterAdvertisement() {
  std::vector<uint8_t> out;
  ByteWriter w(out);
  w.U8(ND_ROUTER_ADVERT);
  w.U8(0);   // code
  w.U16(0);  // checksum: the kernel fills it in for raw ICMPv6 sockets
  w.U8(0);   // current hop limit: unspecified
  w.U8(0);   // flags: M=0 (no DHCPv6 addresses), O=0 (no DHCPv6 options)
  w.U16(0);  // router lifetime 0: not a default router
  w.U32(0);  // reachable time: unspecified
  w.U32(0);  // retransmit timer: unspecified
  return out;
}

RaSchedule::Clock::time_point RaSchedule::Solicited(Clock::time_point now,
                                                    Clock::duration random_delay) {
  Clock::time_point at = now + random_delay;
  if (sent_ && now - last_sent_ < kMinDelayBetweenRas) {
    at = last_sent_ + kMinDelayBetweenRas + random_delay;
  }
  if (!scheduled_ || at < due_) due_ = at;
  scheduled_ = true;
  return due_;
}

int RaSchedule::PollTimeoutMs(Clock::time_point now) const {
  if (!scheduled_) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(due_ - now);
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

void RaSchedule::Sent(Clock::time_point now) {
  last_sent_ = now;
  sent_ = true;
  scheduled_ = false;
}

RouterAdvertiser::RouterAdvertiser(const std::string& interface, Logger logger)
    : interface_(interface), log_(std::move(logger)) {
  index_ = if_nametoindex(interface.c_str());
  if (index_ == 0) Fail("interface " + interface);
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (fd < 0) {
    Fail("IPv6 router advertisements need CAP_NET_RAW (raw ICMPv6 socket)");
  }
  fd_.Reset(fd);
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, interface.c_str(),
                 static_cast<socklen_t>(interface.size())) != 0) {
    Fail("SO_BINDTODEVICE " + interface);
  }
  struct icmp6_filter filter;
  ICMP6_FILTER_SETBLOCKALL(&filter);
  ICMP6_FILTER_SETPASS(ND_ROUTER_SOLICIT, &filter);
  if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) != 0) {
    Fail("ICMP6_FILTER");
  }
  // Neighbor discovery messages must carry hop limit 255 (RFC 4861 6.1.2).
  int hops = 255;
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
  setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
  int if_index = static_cast<int>(index_);
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &if_index, sizeof if_index);
  // Router solicitations go to all-routers.
  struct ipv6_mreq group {};
  inet_pton(AF_INET6, "ff02::2", &group.ipv6mr_multiaddr);
  group.ipv6mr_interface = index_;
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
    Fail("joining ff02::2 on " + interface + " (is IPv6 enabled there?)");
  }
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) Fail("eventfd");
}

void RouterAdvertiser::Stop() {
  stop_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(wake_fd_.get(), &one, sizeof one);
}

void RouterAdvertiser::Run() {
  const std::vector<uint8_t> advert = EmptyRouterAdvertisement();
  struct sockaddr_in6 all_nodes {};
  all_nodes.sin6_family = AF_INET6;
  all_nodes.sin6_scope_id = index_;
  inet_pton(AF_INET6, "ff02::1", &all_nodes.sin6_addr);
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int64_t> delay_ms(0, RaSchedule::kMaxDelay.count());
  RaSchedule schedule;
  uint8_t buf[1500];
  while (!stop_) {
    const int timeout_ms = schedule.PollTimeoutMs(RaSchedule::Clock::now());
    struct pollfd p[2] = {{fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (poll(p, 2, timeout_ms) < 0) {
      if (errno == EINTR) continue;
      Fail("poll");
    }
    if (p[1].revents) break;
    if (p[0].revents & (POLLIN | POLLERR)) {  // recv also clears an error
      ssize_t n = recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n >= 1 && buf[0] == ND_ROUTER_SOLICIT) {
        ++solicited_;
        schedule.Solicited(RaSchedule::Clock::now(), std::chrono::milliseconds(delay_ms(random)));
      }
    }
    auto now = RaSchedule::Clock::now();
    if (!schedule.Due(now)) continue;
    schedule.Sent(now);
    if (sendto(fd_.get(), advert.data(), advert.size(), 0,
               reinterpret_cast<const struct sockaddr*>(&all_nodes), sizeof all_nodes) < 0) {
      log_->debug("router advertisement on {}: {}", interface_, std::strerror(errno));
      continue;
    }
    if (answered_++ == 0) {
      log_->info(
          "answering IPv6 router solicitations on {} with an empty advertisement "
          "(no router, no prefix), so iPXE does not wait for IPv6",
          interface_);
    }
  }
}

}  // namespace isoboot::serve
