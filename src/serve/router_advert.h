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
// Answers are rate limited as RFC 4861 6.2.6 asks of a router: each is
// delayed by a random 0..MAX_RA_DELAY_TIME (0.5 s), sent to all-nodes no more
// often than every MIN_DELAY_BETWEEN_RAS (3 s), and solicitations that arrive
// while one is scheduled are answered by that one (RaSchedule).
//
// Threading: Run() blocks until Stop(), which may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/logging.h"
#include "base/unique_fd.h"

namespace isoboot::serve {

// The ICMPv6 router advertisement body (RFC 4861 4.2) that offers nothing.
std::vector<uint8_t> EmptyRouterAdvertisement();

// When to send the next advertisement (RFC 4861 6.2.6). Pure: the time and
// the random delay come in as arguments.
class RaSchedule {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kMaxDelay{500};             // MAX_RA_DELAY_TIME
  static constexpr std::chrono::milliseconds kMinDelayBetweenRas{3000};  // MIN_DELAY_BETWEEN_RAS

  // A solicitation arrived at `now`; `random_delay` is in [0, kMaxDelay].
  // Schedules an advertisement at now + random_delay, or, within
  // kMinDelayBetweenRas of the last one sent, at that one + kMinDelayBetweenRas
  // + random_delay; an advertisement already scheduled earlier answers this
  // solicitation too. Returns the time the next advertisement is due.
  Clock::time_point Solicited(Clock::time_point now, Clock::duration random_delay);
  // The scheduled advertisement, if any.
  std::optional<Clock::time_point> due() const {
    return scheduled_ ? std::optional<Clock::time_point>(due_) : std::nullopt;
  }
  // Milliseconds from `now` until it is due (0 when overdue), or -1 when
  // none is scheduled: poll(2)'s timeout.
  int PollTimeoutMs(Clock::time_point now) const;
  // True when an advertisement is due at `now`: the caller sends it and calls
  // Sent(now).
  bool Due(Clock::time_point now) const { return scheduled_ && due_ <= now; }
  void Sent(Clock::time_point now);

 private:
  // Values with flags, not std::optional: GCC 12 at -O3 takes a disengaged
  // optional's payload in Run's loop for "maybe uninitialized" (a false
  // positive that fails the -Werror Release build).
  Clock::time_point due_{};
  bool scheduled_ = false;
  Clock::time_point last_sent_{};
  bool sent_ = false;
};

class RouterAdvertiser {
 public:
  // Opens a raw ICMPv6 socket on `interface` receiving router solicitations;
  // throws std::system_error naming what failed (needs CAP_NET_RAW).
  RouterAdvertiser(const std::string& interface, Logger logger);
  void Run();
  void Stop();
  // Advertisements sent, and solicitations received.
  uint64_t answered() const { return answered_; }
  uint64_t solicited() const { return solicited_; }

 private:
  std::string interface_;
  unsigned index_ = 0;
  Logger log_;
  UniqueFd fd_;
  UniqueFd wake_fd_;  // written by Stop()
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> answered_{0};
  std::atomic<uint64_t> solicited_{0};
};

}  // namespace isoboot::serve
