#include "serve/router_advert.h"

#include <gtest/gtest.h>

namespace isoboot::serve {
namespace {

using std::chrono::milliseconds;
using Time = RaSchedule::Clock::time_point;

// RFC 4861 4.2: type 134, code 0, checksum (kernel), hop limit, M/O flags,
// router lifetime, reachable time, retrans timer; no options.
TEST(RouterAdvertTest, OffersNothing) {
  EXPECT_EQ(EmptyRouterAdvertisement(),
            (std::vector<uint8_t>{134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

// RFC 4861 6.2.6: a random delay up to 0.5 s, then at least 3 s between
// advertisements, and solicitations coalesced into the one scheduled.
TEST(RaScheduleTest, DelaysCoalescesAndRateLimits) {
  RaSchedule s;
  const Time t0{};
  EXPECT_FALSE(s.due());
  EXPECT_EQ(s.Solicited(t0, milliseconds(200)), t0 + milliseconds(200));
  // A later solicitation with a longer delay is answered by the same one; a
  // shorter delay brings it forward (never past now + its own delay).
  EXPECT_EQ(s.Solicited(t0 + milliseconds(100), milliseconds(400)), t0 + milliseconds(200));
  EXPECT_EQ(s.Solicited(t0 + milliseconds(150), milliseconds(10)), t0 + milliseconds(160));
  EXPECT_FALSE(s.Due(t0 + milliseconds(159)));
  EXPECT_TRUE(s.Due(t0 + milliseconds(160)));
  s.Sent(t0 + milliseconds(160));
  EXPECT_FALSE(s.due());
  // Within 3 s of that one: not before it + 3 s + the random delay.
  EXPECT_EQ(s.Solicited(t0 + milliseconds(500), milliseconds(0)), t0 + milliseconds(3160));
  EXPECT_EQ(s.Solicited(t0 + milliseconds(600), milliseconds(300)), t0 + milliseconds(3160));
  EXPECT_FALSE(s.Due(t0 + milliseconds(3159)));
  s.Sent(t0 + milliseconds(3160));
  // Long after: only the random delay.
  EXPECT_EQ(s.Solicited(t0 + milliseconds(10000), milliseconds(50)), t0 + milliseconds(10050));
}

TEST(RaScheduleTest, PollTimeoutIsTheTimeLeft) {
  RaSchedule s;
  const Time t0{};
  EXPECT_EQ(s.PollTimeoutMs(t0), -1) << "nothing scheduled: wait for a solicitation";
  s.Solicited(t0, milliseconds(200));
  EXPECT_EQ(s.PollTimeoutMs(t0), 200);
  EXPECT_EQ(s.PollTimeoutMs(t0 + std::chrono::microseconds(199'001)), 1) << "rounded up";
  EXPECT_EQ(s.PollTimeoutMs(t0 + milliseconds(900)), 0) << "overdue";
  s.Sent(t0 + milliseconds(900));
  EXPECT_EQ(s.PollTimeoutMs(t0 + milliseconds(901)), -1);
}

// A solicitation every millisecond for 60 s, sending whenever due: never two
// advertisements within 3 s, so at most 60 / 3 + 1.
TEST(RaScheduleTest, AFloodGetsOneAdvertisementPerThreeSeconds) {
  RaSchedule s;
  const Time t0{};
  int sent = 0;
  std::optional<Time> last;
  for (int ms = 0; ms < 60000; ++ms) {
    Time now = t0 + milliseconds(ms);
    s.Solicited(now, milliseconds((ms * 7919) % 501));
    if (s.Due(now)) {
      if (last) {
        EXPECT_GE(now - *last, RaSchedule::kMinDelayBetweenRas);
      }
      s.Sent(now);
      last = now;
      ++sent;
    }
  }
  EXPECT_GE(sent, 15);
  EXPECT_LE(sent, 21);
}

}  // namespace
}  // namespace isoboot::serve
