#pragma once
// Rate limit for announcements sent to one initiator on request of another
// part of the daemon (DHCP saw it boot): DHCP packets are easy to spoof, so
// each one must not become an AoE frame. At most one announcement per MAC
// per `per_mac_interval`, and at most `burst` at once and `per_second` on
// average over all MACs (a token bucket). Memory is bounded: the per-MAC
// times live in an LruMap, so a flood of invented MACs only makes the
// overall limit the one that bites. Pure: time comes in as an argument.
//
// Not thread-safe: guard it like a std::map.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "aoe/codec.h"
#include "base/lru_map.h"

namespace isoboot::aoe {

struct AnnounceLimits {
  std::chrono::milliseconds per_mac_interval{1000};
  double per_second = 100;  // overall average
  double burst = 200;       // overall, at once (a fleet booting together)
  size_t macs = 4096;       // per-MAC times remembered
};

class AnnounceLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AnnounceLimiter(AnnounceLimits limits = {})
      : limits_(limits), last_(limits.macs), tokens_(limits.burst) {}

  // True if an announcement to `mac` may go out at `now` (and counts it).
  bool Allow(const Mac& mac, Clock::time_point now) {
    if (started_) {
      double elapsed = std::chrono::duration<double>(now - refilled_).count();
      if (elapsed > 0) tokens_ = std::min(limits_.burst, tokens_ + elapsed * limits_.per_second);
    }
    started_ = true;
    refilled_ = now;
    if (const Clock::time_point* last = last_.Find(mac)) {
      if (now - *last < limits_.per_mac_interval) {
        ++suppressed_;
        return false;
      }
    }
    if (tokens_ < 1) {
      ++suppressed_;
      return false;
    }
    tokens_ -= 1;
    last_.Put(mac, now);
    return true;
  }

  uint64_t suppressed() const { return suppressed_; }
  size_t macs_remembered() const { return last_.size(); }

 private:
  AnnounceLimits limits_;
  LruMap<Mac, Clock::time_point> last_;
  double tokens_;
  bool started_ = false;
  Clock::time_point refilled_{};
  uint64_t suppressed_ = 0;
};

}  // namespace isoboot::aoe
