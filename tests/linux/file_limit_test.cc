#include "linux/file_limit.h"

#include <sys/resource.h>

#include <gtest/gtest.h>

namespace isoboot::sys {
namespace {

TEST(FileLimit, CoversTheServersWithSlack) {
  FileNeeds needs{.http_connections = 4096, .tftp_sessions = 2048, .slack = 64};
  EXPECT_FALSE(CheckFileLimit({.soft = 524288, .hard = 524288}, needs));
  EXPECT_FALSE(CheckFileLimit({.soft = 4096 + 2048 + 64, .hard = 524288}, needs));
  auto msg = CheckFileLimit({.soft = 1024, .hard = 1024}, needs);
  ASSERT_TRUE(msg);
  EXPECT_EQ(*msg,
            "open files limited to 1024, fewer than the 4096 HTTP connections and 2048 TFTP "
            "sessions configured: raise LimitNOFILE");
  EXPECT_TRUE(CheckFileLimit({.soft = 4096 + 2048 + 63, .hard = 524288}, needs));
}

// Changes this process's own soft limit, and puts it back.
TEST(FileLimit, RaiseSetsTheSoftLimitToTheHardOne) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = saved.rlim_max > 512 ? 512 : saved.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  FileLimit got = RaiseFileLimit();
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(got.hard, static_cast<uint64_t>(saved.rlim_max));
  EXPECT_EQ(got.soft, got.hard);
  EXPECT_EQ(static_cast<uint64_t>(now.rlim_cur), got.soft);
  // Already raised: nothing changes.
  FileLimit again = RaiseFileLimit();
  EXPECT_EQ(again.soft, got.soft);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

}  // namespace
}  // namespace isoboot::sys
