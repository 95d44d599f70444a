#include "base/result.h"

#include <errno.h>

#include <string>

#include <gtest/gtest.h>

namespace isoboot {
namespace {

Result<int> Parse(const std::string& s) {
  if (s.empty()) return MakeError(ErrorKind::kNotFound, "nothing there");
  if (s == "x") return MakeError("not a number");
  return static_cast<int>(s.size());
}

TEST(Result, ErrorCarriesItsKind) {
  EXPECT_TRUE(Parse("").error().Is(ErrorKind::kNotFound));
  EXPECT_TRUE(Parse("x").error().Is(ErrorKind::kInvalidInput));  // MakeError's default
  EXPECT_EQ(*Parse("abc"), 3);
}

TEST(Result, OsErrorMapsErrnoToKind) {
  EXPECT_TRUE(OsError(ENOENT, "a").Is(ErrorKind::kNotFound));
  EXPECT_TRUE(OsError(EACCES, "a").Is(ErrorKind::kPermission));
  EXPECT_TRUE(OsError(ENOSPC, "a").Is(ErrorKind::kExhausted));
  EXPECT_TRUE(OsError(EIO, "a").Is(ErrorKind::kIo));
  Error e = OsError(ENOSPC, "/run/x");
  EXPECT_EQ(e.os_error, ENOSPC);
  EXPECT_EQ(e.message.rfind("/run/x: ", 0), 0u) << e.message;
}

TEST(Result, OrThrowAddsContextAndKeepsTheError) {
  EXPECT_EQ(OrThrow(Parse("ab"), "--n"), 2);
  try {
    OrThrow(Parse(""), "--n");
    FAIL() << "no throw";
  } catch (const ErrorException& e) {
    EXPECT_STREQ(e.what(), "--n: nothing there");
    EXPECT_TRUE(e.error().Is(ErrorKind::kNotFound));
  }
  try {
    OrThrow(Result<void>(MakeError("bad")));
    FAIL() << "no throw";
  } catch (const ErrorException& e) {
    EXPECT_STREQ(e.what(), "bad");
  }
}

}  // namespace
}  // namespace isoboot
