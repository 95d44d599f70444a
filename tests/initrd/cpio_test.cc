#include "initrd/cpio.h"

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::initrd {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

struct Parsed {
  std::vector<std::string> names;
  std::map<std::string, std::string> contents;
};

// Feeds `data` `piece` bytes at a time.
Result<Parsed> Parse(std::span<const uint8_t> data, size_t piece = 1 << 20,
                     CpioLimits limits = {}) {
  Parsed out;
  CpioStream s(
      limits, [](const CpioEntry& e) { return e.name.ends_with(".sh"); },
      [&](const CpioEntry& e, const std::vector<uint8_t>* content) {
        out.names.push_back(e.name);
        if (content) out.contents[e.name] = std::string(content->begin(), content->end());
      });
  for (size_t i = 0; i < data.size(); i += piece) {
    auto r = s.Feed(data.subspan(i, std::min(piece, data.size() - i)));
    if (!r) return r.error();
    if (s.stopped()) return MakeError("stopped");
  }
  if (!s.at_boundary()) return MakeError("ends " + s.Where());
  return out;
}

std::vector<uint8_t> Archive(bool crc = false) {
  std::vector<uint8_t> a;
  AppendCpioEntry("usr", 040755, {}, a, crc);
  AppendCpioEntry("./usr/lib/kiwi-live-lib.sh", 0100755, Bytes("#!/bin/bash\nAOEINTERFACE\n"), a,
                  crc);
  AppendCpioEntry("usr/bin/curl", 0100755,
                  Bytes("\x7f"
                        "ELF..."),
                  a, crc);
  AppendCpioTrailer(a);
  return a;
}

TEST(CpioTest, HeaderRoundTripAndFieldErrors) {
  CpioHeader h;
  h.mode = 0100644;
  h.filesize = 0xdeadbeef;
  h.namesize = 9;
  std::vector<uint8_t> b;
  AppendCpioHeader(h, b);
  ASSERT_EQ(b.size(), kCpioHeaderSize);
  auto p = ParseCpioHeader(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->filesize, 0xdeadbeefu);
  EXPECT_EQ(p->namesize, 9u);
  EXPECT_FALSE(p->crc);

  auto bad = b;
  std::memcpy(bad.data() + 6 + 6 * 8, "0000zz00", 8);  // filesize
  auto e = ParseCpioHeader(bad);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("filesize"), std::string::npos) << e.error().message;
  bad = b;
  std::memcpy(bad.data(), "070707", 6);  // odc, not newc
  e = ParseCpioHeader(bad);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("magic"), std::string::npos);
  EXPECT_FALSE(ParseCpioHeader(std::span<const uint8_t>(b).first(109)));
}

TEST(CpioTest, EntriesNamesAndWantedContentsInAnyPieces) {
  auto a = Archive();
  for (size_t piece : {1, 3, 7, 110, 4096}) {
    auto p = Parse(a, piece);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->names,
              (std::vector<std::string>{"usr", "usr/lib/kiwi-live-lib.sh", "usr/bin/curl"}));
    ASSERT_EQ(p->contents.size(), 1u);
    EXPECT_EQ(p->contents["usr/lib/kiwi-live-lib.sh"], "#!/bin/bash\nAOEINTERFACE\n");
  }
}

TEST(CpioTest, CrcFormatAndConcatenationWithZeroPadding) {
  auto a = Archive(/*crc=*/true);
  EXPECT_TRUE(ParseCpioHeader(std::span<const uint8_t>(a).first(kCpioHeaderSize))->crc);
  auto b = Archive();
  a.insert(a.end(), 512, 0);  // like the kernel's and dracut's padding between archives
  a.insert(a.end(), b.begin(), b.end());
  a.insert(a.end(), 4, 0);
  auto p = Parse(a, 5);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->names.size(), 6u);
}

TEST(CpioTest, A070702FileWhoseBytesDoNotSumToItsCheckIsAnError) {
  std::vector<uint8_t> a;
  const std::string body = "#!/bin/sh\n";
  AppendCpioEntry("init", 0100755,
                  std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size()), a,
                  /*crc=*/true);
  AppendCpioTrailer(a);
  ASSERT_TRUE(Parse(a, 3)) << "the archive as written is valid";
  auto h = ParseCpioHeader(std::span<const uint8_t>(a).first(kCpioHeaderSize));
  ASSERT_TRUE(h);
  uint32_t sum = 0;
  for (char c : body)
    sum += static_cast<uint8_t>(c);
  EXPECT_EQ(h->check, sum);
  // One data byte changed (the header is 110 bytes, the name "init\0" pads to 116).
  a[116 + 2] ^= 0x01;
  for (size_t piece : {size_t{1}, size_t{7}, a.size()}) {
    auto p = Parse(a, piece);
    ASSERT_FALSE(p) << "piece " << piece;
    EXPECT_NE(p.error().message.find("\"init\": its data bytes sum to"), std::string::npos)
        << p.error().message;
  }
  // In a 070701 archive the check field means nothing: the same change passes.
  std::vector<uint8_t> b;
  std::string changed = body;
  changed[2] ^= 0x01;
  AppendCpioEntry("init", 0100755,
                  std::span(reinterpret_cast<const uint8_t*>(changed.data()), changed.size()), b);
  AppendCpioTrailer(b);
  EXPECT_TRUE(Parse(b, 3));
}

TEST(CpioTest, StopsAtACompressedMember) {
  auto a = Archive();
  size_t end = a.size();
  a.insert(a.end(), {0, 0, 0, 0, 0x28, 0xb5, 0x2f, 0xfd});
  CpioStream s({}, nullptr, nullptr);
  auto r = s.Feed(a);
  ASSERT_TRUE(r);
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(*r, end + 4);
  EXPECT_EQ(DetectCompression(std::span<const uint8_t>(a).subspan(*r)), Compression::kZstd);
  EXPECT_EQ(s.entries(), 3u);
}

TEST(CpioTest, MalformedInputsAreRefusedWithAReason) {
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* expect;
  };
  std::vector<Case> cases;
  auto a = Archive();
  cases.push_back({"truncated in data", {a.begin(), a.begin() + 270}, "inside entry 2"});
  cases.push_back({"truncated in header", {a.begin(), a.begin() + 50}, "inside the header"});
  std::vector<uint8_t> no_trailer;
  AppendCpioEntry("x", 0100644, Bytes("abc"), no_trailer);
  cases.push_back({"no trailer", no_trailer, "ends"});
  CpioHeader h;
  h.namesize = 0xffffffff;
  std::vector<uint8_t> huge_name;
  AppendCpioHeader(h, huge_name);
  cases.push_back({"huge namesize", huge_name, "namesize"});
  h.namesize = 0;
  std::vector<uint8_t> zero_name;
  AppendCpioHeader(h, zero_name);
  cases.push_back({"namesize 0", zero_name, "namesize is 0"});
  h.namesize = 2;
  h.filesize = 0xffffffff;  // far more data than there is
  std::vector<uint8_t> huge_file;
  AppendCpioHeader(h, huge_file);
  huge_file.insert(huge_file.end(), {'a', 0, 0, 0, 'x', 'y'});
  cases.push_back({"huge filesize", huge_file, "inside entry"});
  h.filesize = 0;
  std::vector<uint8_t> no_nul;
  AppendCpioHeader(h, no_nul);
  no_nul.insert(no_nul.end(), {'a', 'b', 0, 0});
  cases.push_back({"name without NUL", no_nul, "NUL"});
  auto hex = a;
  hex[6 + 8] = 'g';  // mode
  cases.push_back({"non-hex field", hex, "mode"});
  std::vector<uint8_t> misaligned = {0, 0};
  auto b = Archive();
  misaligned.insert(misaligned.end(), b.begin(), b.end());
  cases.push_back({"misaligned after padding", misaligned, "4-byte aligned"});
  for (const auto& c : cases) {
    auto p = Parse(c.bytes, 3);
    ASSERT_FALSE(p) << c.what;
    EXPECT_NE(p.error().message.find(c.expect), std::string::npos)
        << c.what << ": " << p.error().message;
  }
}

TEST(CpioTest, LimitsOnEntriesNamesAndContents) {
  auto a = Archive();
  CpioLimits few;
  few.max_entries = 2;
  auto p = Parse(a, 64, few);
  ASSERT_FALSE(p);
  EXPECT_TRUE(p.error().Is(ErrorKind::kExhausted));
  CpioLimits short_names;
  short_names.max_name = 10;
  EXPECT_TRUE(Parse(a, 64, short_names).error().Is(ErrorKind::kExhausted));
  CpioLimits small;
  small.max_content = 4;  // the script is larger: named, but without contents
  auto q = Parse(a, 64, small);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->names.size(), 3u);
  EXPECT_TRUE(q->contents.empty());
}

TEST(CpioTest, Compressions) {
  auto c = [](std::initializer_list<uint8_t> b) {
    std::vector<uint8_t> v(b);
    return DetectCompression(v);
  };
  EXPECT_EQ(c({0x1f, 0x8b, 8}), Compression::kGzip);
  EXPECT_EQ(c({0xfd, '7', 'z', 'X', 'Z', 0}), Compression::kXz);
  EXPECT_EQ(c({0x28, 0xb5, 0x2f, 0xfd}), Compression::kZstd);
  EXPECT_EQ(c({0x02, 0x21, 0x4c, 0x18}), Compression::kLz4);
  EXPECT_EQ(c({'B', 'Z', 'h', '9'}), Compression::kBzip2);
  EXPECT_EQ(c({0x5d, 0, 0, 0x80}), Compression::kLzma);
  EXPECT_EQ(c({'0', '7', '0', '7', '0', '1'}), Compression::kNone);
  EXPECT_EQ(c({'P', 'K'}), Compression::kUnknown);
  EXPECT_EQ(c({}), Compression::kUnknown);
}

}  // namespace
}  // namespace isoboot::initrd
