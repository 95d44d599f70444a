#pragma once
// At most one log line of a kind per period (10 s by default); the events
// in between are counted into the next line, so a flood from the network
// costs a few lines a minute instead of one per packet.
//
// Not thread-safe: one per thread, or guarded by the caller.

#include <chrono>
#include <cstdint>

namespace isoboot {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogThrottle(Clock::duration period = std::chrono::seconds(10)) : period_(period) {}

  // Counts one event. True if a line may be written now; then `events` is
  // how many events (this one included) the line covers.
  bool Allow(uint64_t& events, Clock::time_point now = Clock::now()) {
    ++pending_;
    if (now < next_) return false;
    next_ = now + period_;
    events = pending_;
    pending_ = 0;
    return true;
  }

 private:
  Clock::duration period_;
  Clock::time_point next_{};
  uint64_t pending_ = 0;
};

}  // namespace isoboot
