#pragma once
// Ends iPXE's IPv6 wait on an isolated boot network. iPXE configures IPv4
// (DHCP) and IPv6 (router solicitations) side by side and only goes on when
// both are done; with no IPv6 router on the network it waits for its router
// solicitations to time out, ~16 s idle after the DHCPACK on every boot
// (measured with tcpdump under QEMU's iPXE ROM). isoboot answers each router
// solicitation with a router advertisement that offers nothing: router
// lifetime 0 (not a default router), no prefix, no DHCPv6 (M=O=0), so IPv6
// configuration ends at once with no address or route given. Only used where
// isoboot owns the network (`--dhcp full`); a site network has its own routers.
//
// Threading: Run() blocks until Stop(), which may be called from any thread.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "base/logging.h"
#include "base/unique_fd.h"

namespace isoboot::serve {

// The ICMPv6 router advertisement body (RFC 4861 4.2) that offers nothing.
std::vector<uint8_t> EmptyRouterAdvertisement();

class RouterAdvertiser {
 public:
  // Opens a raw ICMPv6 socket on `interface` receiving router solicitations;
  // throws std::system_error naming what failed (needs CAP_NET_RAW).
  RouterAdvertiser(const std::string& interface, Logger logger);
  void Run();
  void Stop();
  uint64_t answered() const { return answered_; }

 private:
  std::string interface_;
  unsigned index_ = 0;
  Logger log_;
  UniqueFd fd_;
  UniqueFd wake_fd_;  // written by Stop()
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> answered_{0};
};

}  // namespace isoboot::serve
