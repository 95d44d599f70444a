#include "http/range.h"

#include <limits>

#include <gtest/gtest.h>

#include "http/date.h"

namespace isoboot::http {
namespace {

std::vector<ByteRange> Ranges(std::string_view header, uint64_t length) {
  RangeDecision d = DecideRanges(header, length);
  EXPECT_EQ(d.outcome, RangeOutcome::kPartial) << header;
  return d.ranges;
}

RangeOutcome Outcome(std::string_view header, uint64_t length) {
  return DecideRanges(header, length).outcome;
}

TEST(RangeTest, ParsesTheThreeForms) {
  auto specs = ParseRange("bytes=0-99,200-,-50");
  ASSERT_TRUE(specs) << specs.error().message;
  ASSERT_EQ(specs->size(), 3u);
  EXPECT_FALSE((*specs)[0].is_suffix);
  EXPECT_EQ((*specs)[0].first, 0u);
  EXPECT_EQ((*specs)[0].last, 99u);
  EXPECT_EQ((*specs)[1].first, 200u);
  EXPECT_FALSE((*specs)[1].last.has_value());
  EXPECT_TRUE((*specs)[2].is_suffix);
  EXPECT_EQ((*specs)[2].suffix, 50u);
}

TEST(RangeTest, ResolvesAgainstLength) {
  EXPECT_EQ(Ranges("bytes=0-99", 1000), (std::vector<ByteRange>{{0, 99}}));
  EXPECT_EQ(Ranges("bytes=900-", 1000), (std::vector<ByteRange>{{900, 999}}));
  EXPECT_EQ(Ranges("bytes=-100", 1000), (std::vector<ByteRange>{{900, 999}}));
  EXPECT_EQ(Ranges("bytes=-5000", 1000), (std::vector<ByteRange>{{0, 999}}));
  EXPECT_EQ(Ranges("bytes=990-5000", 1000), (std::vector<ByteRange>{{990, 999}}));
  EXPECT_EQ(Ranges("bytes=999-999", 1000), (std::vector<ByteRange>{{999, 999}}));
}

TEST(RangeTest, WhitespaceCaseAndEmptyListElements) {
  EXPECT_EQ(Ranges("  BYTES=1-2 ,\t3-4 , ", 10), (std::vector<ByteRange>{{1, 2}, {3, 4}}));
  EXPECT_EQ(Ranges("bytes=,,5-6", 10), (std::vector<ByteRange>{{5, 6}}));
}

TEST(RangeTest, KeepsClientOrderWithoutOverlap) {
  EXPECT_EQ(Ranges("bytes=50-59,0-9,20-29", 100),
            (std::vector<ByteRange>{{50, 59}, {0, 9}, {20, 29}}));
}

TEST(RangeTest, CoalescesOverlappingRanges) {
  EXPECT_EQ(Ranges("bytes=50-59,0-9,5-19,20-29", 100), (std::vector<ByteRange>{{0, 29}, {50, 59}}));
  EXPECT_EQ(Ranges("bytes=0-,0-,0-", 100), (std::vector<ByteRange>{{0, 99}}));
  EXPECT_EQ(Ranges("bytes=-10,95-", 100), (std::vector<ByteRange>{{90, 99}}));
}

TEST(RangeTest, TooManyRangesServeTheWholeThing) {
  std::string many = "bytes=";
  for (size_t i = 0; i <= kMaxRanges; ++i)
    many += std::to_string(i * 10) + "-" + std::to_string(i * 10 + 1) + ",";
  EXPECT_EQ(Outcome(many, 100000), RangeOutcome::kFull);
  // Many ranges that coalesce into few are fine.
  std::string touching = "bytes=";
  for (size_t i = 0; i <= kMaxRanges; ++i)
    touching += std::to_string(i) + "-" + std::to_string(i) + ",";
  EXPECT_EQ(Ranges(touching, 100000), (std::vector<ByteRange>{{0, kMaxRanges}}));
}

TEST(RangeTest, UnsatisfiableSets) {
  EXPECT_EQ(Outcome("bytes=1000-", 1000), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(Outcome("bytes=1000-2000,5000-", 1000), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(Outcome("bytes=-0", 1000), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(Outcome("bytes=0-", 0), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(Outcome("bytes=-1", 0), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(Outcome("bytes=99999999999999999999999-", 1000), RangeOutcome::kUnsatisfiable);
  // One satisfiable spec is enough; the others are dropped.
  EXPECT_EQ(Ranges("bytes=5000-,-0,10-19", 1000), (std::vector<ByteRange>{{10, 19}}));
}

TEST(RangeTest, HugeNumbersSaturate) {
  EXPECT_EQ(Ranges("bytes=0-99999999999999999999999", 10), (std::vector<ByteRange>{{0, 9}}));
  EXPECT_EQ(Ranges("bytes=-99999999999999999999999", 10), (std::vector<ByteRange>{{0, 9}}));
  const uint64_t big = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(Ranges("bytes=18446744073709551613-", big),
            (std::vector<ByteRange>{{big - 2, big - 1}}));
}

TEST(RangeTest, InvalidHeadersAreIgnored) {
  for (std::string_view bad : {"",
                               "bytes",
                               "bytes=",
                               "bytes=,",
                               "bytes= , ",
                               "bytes=5",
                               "bytes=a-b",
                               "bytes=5-2",
                               "bytes=1-2,5-2",
                               "bytes=--5",
                               "bytes=-",
                               "bytes=1--2",
                               "bytes=0x10-20",
                               "bytes=+1-2",
                               "bytes =0-1",
                               "bytes= 0 - 1",
                               "items=0-1",
                               "=0-1",
                               "by tes=0-1",
                               "bytes=0-1;x",
                               "bytes=1-2-3",
                               "bytes=\xff-1"}) {
    EXPECT_FALSE(ParseRange(bad)) << bad;
    EXPECT_EQ(Outcome(bad, 100), RangeOutcome::kFull) << bad;
  }
  EXPECT_EQ(DecideRanges(std::nullopt, 100).outcome, RangeOutcome::kFull);
}

TEST(IfRangeTest, EntityTagsCompareStrongly) {
  Validators v{"\"abc-1\"", 784111777};
  EXPECT_TRUE(IfRangeMatches("\"abc-1\"", v));
  EXPECT_TRUE(IfRangeMatches(" \"abc-1\"\t", v));
  EXPECT_FALSE(IfRangeMatches("\"abc-2\"", v));
  EXPECT_FALSE(IfRangeMatches("W/\"abc-1\"", v));
  EXPECT_FALSE(IfRangeMatches("abc-1", v));
  EXPECT_FALSE(IfRangeMatches("\"abc-1", v));
  EXPECT_FALSE(IfRangeMatches("", v));
  EXPECT_FALSE(IfRangeMatches("\"\"", Validators{"", 0}));
}

TEST(IfRangeTest, DatesMustEqualLastModified) {
  Validators v{"\"x\"", 784111777};  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_TRUE(IfRangeMatches("Sun, 06 Nov 1994 08:49:37 GMT", v));
  EXPECT_TRUE(IfRangeMatches("Sunday, 06-Nov-94 08:49:37 GMT", v));
  EXPECT_TRUE(IfRangeMatches("Sun Nov  6 08:49:37 1994", v));
  EXPECT_FALSE(IfRangeMatches("Sun, 06 Nov 1994 08:49:38 GMT", v));
  EXPECT_FALSE(IfRangeMatches("Sun, 06 Nov 1994 08:49:36 GMT", v));
  EXPECT_FALSE(IfRangeMatches("yesterday", v));
  EXPECT_FALSE(IfRangeMatches("Sun, 06 Nov 1994 08:49:37 GMT", Validators{"\"x\"", 0}));
}

TEST(DateTest, FormatsImfFixdate) {
  EXPECT_EQ(FormatHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatHttpDate(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(4102444799), "Thu, 31 Dec 2099 23:59:59 GMT");
  EXPECT_EQ(FormatHttpDate(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(std::numeric_limits<int64_t>::max()), "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST(DateTest, RoundTripsAndRejectsNonsense) {
  for (int64_t t : {int64_t{0}, int64_t{784111777}, int64_t{951868799}, int64_t{1700000000},
                    int64_t{4102444799}}) {
    EXPECT_EQ(ParseHttpDate(FormatHttpDate(t)), t) << t;
  }
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Thursday, 01-Jan-30 00:00:00 GMT"), 1893456000);
  for (std::string_view bad : {"", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 UTC",
                               "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 29 Feb 1900 00:00:00 GMT",
                               "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                               "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT ",
                               "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994"}) {
    EXPECT_FALSE(ParseHttpDate(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace isoboot::http
