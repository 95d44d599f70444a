#include "aoe/codec.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::aoe {
namespace {

const Mac kA = {0x02, 0, 0, 0, 0, 0x0a};
const Mac kB = {0x02, 0, 0, 0, 0, 0x0b};

std::vector<uint8_t> Bytes(std::initializer_list<int> v) {
  std::vector<uint8_t> out;
  for (int b : v)
    out.push_back(static_cast<uint8_t>(b));
  return out;
}

// Ethernet + AoE header for command `cmd`, shelf 0x1234, slot 5, tag 0xdeadbeef.
std::vector<uint8_t> HeaderBytes(int cmd, int ver_flags = 0x10) {
  auto v = Bytes({0x02, 0,    0,         0, 0,    0x0b, 0x02, 0,   0,    0,    0,    0x0a,
                  0x88, 0xa2, ver_flags, 0, 0x12, 0x34, 5,    cmd, 0xde, 0xad, 0xbe, 0xef});
  return v;
}

TEST(AoeCodec, ParsesAtaReadFromBytes) {
  auto b = HeaderBytes(0);
  auto ata = Bytes({0x40, 0, 2, 0x24, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0, 0});
  b.insert(b.end(), ata.begin(), ata.end());
  auto f = Parse(b);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->header.src, kA);
  EXPECT_EQ(f->header.dst, kB);
  EXPECT_EQ(f->header.version, 1);
  EXPECT_EQ(f->header.flags, 0);
  EXPECT_EQ(f->header.shelf, 0x1234);
  EXPECT_EQ(f->header.slot, 5);
  EXPECT_EQ(f->header.tag, 0xdeadbeefu);
  EXPECT_EQ(f->ata.aflags, kAtaFlagExtended);
  EXPECT_EQ(f->ata.sector_count, 2);
  EXPECT_EQ(f->ata.cmd_status, 0x24);
  EXPECT_EQ(f->ata.lba, 0x060504030201u);  // little-endian on the wire
  EXPECT_TRUE(f->ata.data.empty());
}

TEST(AoeCodec, AtaRoundTripWithData) {
  std::vector<uint8_t> data(1024);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i * 7);
  Frame f;
  f.header = {kB, kA, 1, kFlagResponse, 0, 7, 9, 0, 42};
  f.ata = {kAtaFlagExtended | kAtaFlagWrite, 0, 2, 0x34, 0x0000fedcba987654, data};
  std::vector<uint8_t> out;
  Append(f, out);
  ASSERT_EQ(out.size(), kEthernetHeaderSize + kAoeHeaderSize + kAtaHeaderSize + 1024);
  auto g = Parse(out);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->header.flags, kFlagResponse);
  EXPECT_EQ(g->header.shelf, 7);
  EXPECT_EQ(g->header.slot, 9);
  EXPECT_EQ(g->header.tag, 42u);
  EXPECT_EQ(g->ata.lba, 0x0000fedcba987654u);
  EXPECT_EQ(std::vector<uint8_t>(g->ata.data.begin(), g->ata.data.end()), data);
  std::vector<uint8_t> again;
  Append(*g, again);
  EXPECT_EQ(again, out);
}

TEST(AoeCodec, QueryConfigRoundTrip) {
  std::string cs = "isoboot live";
  Frame f;
  f.header.command = static_cast<uint8_t>(Command::kQueryConfig);
  f.header.src = kA;
  f.header.dst = kBroadcastMac;
  f.config.buffer_count = 64;
  f.config.firmware_version = 0x0102;
  f.config.sector_count = 17;
  f.config.ccmd = static_cast<uint8_t>(ConfigCommand::kTestPrefix);
  f.config.config = std::span(reinterpret_cast<const uint8_t*>(cs.data()), cs.size());
  std::vector<uint8_t> out;
  Append(f, out);
  // Bytes after the AoE header: bufcnt, fwver, scnt, ver|ccmd, cslen.
  auto body = Bytes({0, 64, 1, 2, 17, 0x12, 0, 12});
  EXPECT_TRUE(std::equal(body.begin(), body.end(), out.begin() + 24));
  auto g = Parse(out);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->config.buffer_count, 64);
  EXPECT_EQ(g->config.firmware_version, 0x0102);
  EXPECT_EQ(g->config.sector_count, 17);
  EXPECT_EQ(g->config.aoe_version, 1);
  EXPECT_EQ(g->config.ccmd, 2);
  EXPECT_EQ(std::string(g->config.config.begin(), g->config.config.end()), cs);
}

TEST(AoeCodec, AppendQueryConfigRoundTrip) {
  std::string cs = "e1.2 isoboot";
  Header h;
  h.dst = kB;
  h.src = kA;
  h.flags = kFlagResponse;
  h.shelf = 1;
  h.slot = 2;
  h.command = static_cast<uint8_t>(Command::kQueryConfig);
  h.tag = 0x01020304;
  QueryConfig q;
  q.buffer_count = 0x0203;
  q.firmware_version = 0x0001;
  q.sector_count = 2;
  q.ccmd = static_cast<uint8_t>(ConfigCommand::kForceSet);
  q.config = std::span(reinterpret_cast<const uint8_t*>(cs.data()), cs.size());
  std::vector<uint8_t> out;
  AppendHeader(h, out);
  AppendQueryConfig(q, out);
  ASSERT_EQ(out.size(), kEthernetHeaderSize + kAoeHeaderSize + 8 + cs.size());
  auto body = Bytes({2, 3, 0, 1, 2, 0x14, 0, 12});
  EXPECT_TRUE(std::equal(body.begin(), body.end(), out.begin() + 24));
  Frame whole;
  whole.header = h;
  whole.config = q;
  std::vector<uint8_t> via_frame;
  Append(whole, via_frame);
  EXPECT_EQ(via_frame, out);
  auto g = Parse(out);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->header.tag, h.tag);
  EXPECT_EQ(g->config.buffer_count, q.buffer_count);
  EXPECT_EQ(g->config.firmware_version, q.firmware_version);
  EXPECT_EQ(g->config.sector_count, q.sector_count);
  EXPECT_EQ(g->config.aoe_version, kVersion);
  EXPECT_EQ(g->config.ccmd, q.ccmd);
  EXPECT_EQ(std::string(g->config.config.begin(), g->config.config.end()), cs);
  std::vector<uint8_t> again;
  Append(*g, again);
  EXPECT_EQ(again, out);
}

TEST(AoeCodec, AppendQueryConfigCutsLongConfigStrings) {
  std::string cs(kMaxConfigStringLength + 5, 'x');
  QueryConfig q;
  q.config = std::span(reinterpret_cast<const uint8_t*>(cs.data()), cs.size());
  std::vector<uint8_t> out;
  AppendQueryConfig(q, out);
  ASSERT_EQ(out.size(), 8 + kMaxConfigStringLength);
  EXPECT_EQ(out[6] << 8 | out[7], static_cast<int>(kMaxConfigStringLength));
}

TEST(AoeCodec, MacMaskRoundTrip) {
  std::vector<MacDirective> dirs = {{1, kA}, {2, kB}};
  Frame f;
  f.header.command = static_cast<uint8_t>(Command::kMacMask);
  f.mask.mcmd = 1;
  f.mask.to_write = dirs;
  std::vector<uint8_t> out;
  Append(f, out);
  EXPECT_EQ(out.size(), 24u + 4 + 16);
  auto g = Parse(out);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->mask.mcmd, 1);
  ASSERT_EQ(g->mask.count, 2);
  EXPECT_EQ(g->mask.Directive(0).dcmd, 1);
  EXPECT_EQ(g->mask.Directive(0).mac, kA);
  EXPECT_EQ(g->mask.Directive(1).dcmd, 2);
  EXPECT_EQ(g->mask.Directive(1).mac, kB);
}

TEST(AoeCodec, ReserveRoundTrip) {
  std::vector<Mac> macs = {kA, kB};
  Frame f;
  f.header.command = static_cast<uint8_t>(Command::kReserve);
  f.reserve.rcmd = 1;
  f.reserve.to_write = macs;
  std::vector<uint8_t> out;
  Append(f, out);
  EXPECT_EQ(out.size(), 24u + 2 + 12);
  auto g = Parse(out);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(g->reserve.rcmd, 1);
  ASSERT_EQ(g->reserve.count, 2);
  EXPECT_EQ(g->reserve.At(0), kA);
  EXPECT_EQ(g->reserve.At(1), kB);
}

TEST(AoeCodec, PadsShortFramesTo60Bytes) {
  Frame f;
  f.header.command = static_cast<uint8_t>(Command::kReserve);
  std::vector<uint8_t> out;
  Append(f, out);
  PadFrame(out);
  EXPECT_EQ(out.size(), 60u);
  EXPECT_TRUE(Parse(out));  // padding is accepted as trailing bytes
}

TEST(AoeCodec, UnknownCommandParsesHeaderOnly) {
  auto f = Parse(HeaderBytes(0xf0));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->header.command, 0xf0);
}

struct Malformed {
  const char* name;
  std::vector<uint8_t> bytes;
  const char* reason;  // substring of the error
};

std::vector<uint8_t> Concat(std::vector<uint8_t> a, std::initializer_list<int> b) {
  for (int x : b)
    a.push_back(static_cast<uint8_t>(x));
  return a;
}

TEST(AoeCodec, RejectsMalformedFrames) {
  auto eth_only = HeaderBytes(0);
  eth_only.resize(14);
  auto short_header = HeaderBytes(0);
  short_header.resize(20);
  auto wrong_type = HeaderBytes(0);
  wrong_type[12] = 0x08;
  wrong_type[13] = 0x00;
  std::vector<Malformed> cases = {
      {"empty", {}, "Ethernet header truncated"},
      {"13 bytes", Bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}), "Ethernet header truncated"},
      {"not AoE", Concat(wrong_type, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), "ethertype"},
      {"no AoE header", eth_only, "AoE header truncated"},
      {"short AoE header", short_header, "AoE header truncated"},
      {"version 0", Concat(HeaderBytes(1, 0x00), {0, 0, 0, 0, 0, 0, 0, 0}), "version 0"},
      {"version 2", Concat(HeaderBytes(1, 0x20), {0, 0, 0, 0, 0, 0, 0, 0}), "version 2"},
      {"ATA truncated", Concat(HeaderBytes(0), {0x40, 0, 1, 0x24, 0, 0, 0}),
       "ATA header truncated"},
      {"ATA no reserved", Concat(HeaderBytes(0), {0x40, 0, 1, 0x24, 0, 0, 0, 0, 0, 0}),
       "ATA header truncated"},
      {"QC truncated", Concat(HeaderBytes(1), {0, 16, 0, 1, 2}), "Query Config header truncated"},
      {"QC bad ccmd", Concat(HeaderBytes(1), {0, 16, 0, 1, 2, 0x15, 0, 0}), "sub-command 5"},
      {"QC string too long", Concat(HeaderBytes(1), {0, 0, 0, 0, 0, 0x13, 0x04, 0x01}),
       "exceeds 1024"},
      {"QC string past end", Concat(HeaderBytes(1), {0, 0, 0, 0, 0, 0x13, 0, 5, 'a', 'b'}),
       "runs past the end"},
      {"mask truncated", Concat(HeaderBytes(2), {0, 1, 0}), "MAC Mask List header truncated"},
      {"mask bad mcmd", Concat(HeaderBytes(2), {0, 2, 0, 0}), "unknown command 2"},
      {"mask directives past end", Concat(HeaderBytes(2), {0, 1, 0, 2, 0, 1, 1, 2, 3, 4, 5, 6}),
       "directives run past"},
      {"reserve truncated", Concat(HeaderBytes(3), {1}), "Reserve/Release header truncated"},
      {"reserve bad rcmd", Concat(HeaderBytes(3), {3, 0}), "unknown command 3"},
      {"reserve macs past end", Concat(HeaderBytes(3), {1, 2, 1, 2, 3, 4, 5, 6, 7}),
       "MAC list runs past"},
  };
  for (const auto& c : cases) {
    auto f = Parse(c.bytes);
    ASSERT_FALSE(f) << c.name;
    EXPECT_NE(f.error().message.find(c.reason), std::string::npos)
        << c.name << ": " << f.error().message;
  }
}

TEST(AoeCodec, EveryTruncationOfAValidFrameFailsCleanly) {
  auto b = Concat(HeaderBytes(1), {0, 0, 0, 0, 0, 0x10, 0, 4, 'a', 'b', 'c', 'd'});
  ASSERT_TRUE(Parse(b));
  for (size_t n = 0; n < b.size(); ++n) {
    EXPECT_FALSE(Parse(std::span(b).first(n))) << n;
  }
}

TEST(AoeCodec, MacAndTargetNames) {
  auto m = ParseMac("02:00:00:00:00:0a");
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, kA);
  EXPECT_EQ(FormatMac(kA), "02:00:00:00:00:0a");
  EXPECT_TRUE(ParseMac("02000000000A"));
  EXPECT_FALSE(ParseMac("02:00:00:00:00"));
  EXPECT_FALSE(ParseMac("zz:00:00:00:00:00"));
  auto t = ParseTargetName("e12.3");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->first, 12);
  EXPECT_EQ(t->second, 3);
  EXPECT_TRUE(ParseTargetName("0.1"));
  EXPECT_FALSE(ParseTargetName("e0"));
  EXPECT_FALSE(ParseTargetName("e0.255"));  // 255 is the broadcast slot
  EXPECT_FALSE(ParseTargetName("e65535.1"));
  EXPECT_FALSE(ParseTargetName("ex.1"));
}

}  // namespace
}  // namespace isoboot::aoe
