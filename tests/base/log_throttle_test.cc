#include "base/log_throttle.h"

#include <gtest/gtest.h>

namespace isoboot {
namespace {

TEST(LogThrottleTest, OneLinePerPeriodCountingTheEventsBetween) {
  using namespace std::chrono_literals;
  LogThrottle t(10s);
  const auto t0 = LogThrottle::Clock::time_point{} + 100s;
  uint64_t n = 0;
  ASSERT_TRUE(t.Allow(n, t0));
  EXPECT_EQ(n, 1u);
  for (int i = 1; i <= 500; ++i)
    EXPECT_FALSE(t.Allow(n, t0 + std::chrono::milliseconds(i)));
  ASSERT_TRUE(t.Allow(n, t0 + 10s));
  EXPECT_EQ(n, 501u) << "the suppressed events and this one";
  EXPECT_FALSE(t.Allow(n, t0 + 19s));
  ASSERT_TRUE(t.Allow(n, t0 + 20s));
  EXPECT_EQ(n, 2u);
}

}  // namespace
}  // namespace isoboot
