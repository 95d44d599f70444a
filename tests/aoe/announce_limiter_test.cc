#include "aoe/announce_limiter.h"

#include <gtest/gtest.h>

namespace isoboot::aoe {
namespace {

using Clock = AnnounceLimiter::Clock;
using std::chrono::milliseconds;

Mac MacOf(uint32_t i) {
  return {0x02,
          0,
          static_cast<uint8_t>(i >> 24),
          static_cast<uint8_t>(i >> 16),
          static_cast<uint8_t>(i >> 8),
          static_cast<uint8_t>(i)};
}

TEST(AnnounceLimiterTest, OncePerMacPerInterval) {
  AnnounceLimiter l;
  Clock::time_point t{};
  EXPECT_TRUE(l.Allow(MacOf(1), t));
  EXPECT_FALSE(l.Allow(MacOf(1), t + milliseconds(10)));
  EXPECT_FALSE(l.Allow(MacOf(1), t + milliseconds(999)));
  EXPECT_TRUE(l.Allow(MacOf(2), t + milliseconds(999)));
  EXPECT_TRUE(l.Allow(MacOf(1), t + milliseconds(1000)));
  EXPECT_EQ(l.suppressed(), 2u);
}

TEST(AnnounceLimiterTest, OverallBurstThenAverageRate) {
  AnnounceLimits limits;
  limits.burst = 10;
  limits.per_second = 5;
  AnnounceLimiter l(limits);
  Clock::time_point t{};
  int allowed = 0;
  for (uint32_t i = 0; i < 1000; ++i)
    allowed += l.Allow(MacOf(i), t);
  EXPECT_EQ(allowed, 10);
  // Ten seconds of a flood of new MACs: about 5 a second more.
  allowed = 0;
  for (uint32_t i = 0; i < 10000; ++i)
    allowed += l.Allow(MacOf(100000 + i), t + milliseconds(i));
  EXPECT_GE(allowed, 49);
  EXPECT_LE(allowed, 51);
}

TEST(AnnounceLimiterTest, MemoryIsBounded) {
  AnnounceLimits limits;
  limits.macs = 64;
  limits.per_second = 1e9;
  limits.burst = 1e9;
  AnnounceLimiter l(limits);
  Clock::time_point t{};
  for (uint32_t i = 0; i < 100000; ++i)
    l.Allow(MacOf(i), t);
  EXPECT_EQ(l.macs_remembered(), 64u);
}

}  // namespace
}  // namespace isoboot::aoe
