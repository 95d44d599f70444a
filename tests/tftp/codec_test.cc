#include "tftp/codec.h"

#include <string>

#include <gtest/gtest.h>

namespace isoboot::tftp {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

std::vector<uint8_t> Wire(const Packet& p) {
  std::vector<uint8_t> out;
  Append(p, out);
  return out;
}

TEST(TftpCodec, ParsesIpxeRequest) {
  // As iPXE sends it (captured): blksize 1432, tsize 0.
  auto p =
      Parse(Bytes(std::string("\0\1boot/ipxe.efi\0octet\0blksize\0"
                              "1432\0tsize\0"
                              "0\0",
                              43)));
  ASSERT_TRUE(p) << p.error().message;
  const auto& req = std::get<Request>(*p);
  EXPECT_FALSE(req.write);
  EXPECT_EQ(req.filename, "boot/ipxe.efi");
  EXPECT_EQ(req.mode, "octet");
  ASSERT_EQ(req.options.size(), 2u);
  EXPECT_EQ(req.options[0].name, "blksize");
  EXPECT_EQ(req.options[0].value, "1432");
  EXPECT_EQ(req.options[1].name, "tsize");
}

TEST(TftpCodec, RoundTripsEveryPacket) {
  const uint8_t payload[] = {1, 2, 3, 0, 255};
  std::vector<Packet> packets = {
      Request{false, "pxelinux.cfg/default", "octet", {{"tsize", "0"}, {"blksize", "1408"}}},
      Request{true, "x", "netascii", {}},
      Data{65535, payload},
      Data{0, {}},
      Ack{0},
      Ack{4242},
      ErrorPacket{ErrorCode::kFileNotFound, "file not found"},
      Oack{{{"blksize", "1468"}, {"tsize", "12345678"}, {"windowsize", "16"}}},
  };
  for (const auto& p : packets) {
    auto wire = Wire(p);
    auto back = Parse(wire);
    ASSERT_TRUE(back) << Describe(p) << ": " << back.error().message;
    EXPECT_EQ(Describe(*back), Describe(p));
    EXPECT_EQ(Wire(*back), wire) << Describe(p);
  }
}

TEST(TftpCodec, ModeIsCaseInsensitive) {
  auto p = Parse(Bytes(std::string("\0\1f\0OcTeT\0", 10)));
  ASSERT_TRUE(p);
  EXPECT_EQ(std::get<Request>(*p).mode, "octet");
}

TEST(TftpCodec, ErrorWithoutNulIsAccepted) {
  auto p = Parse(Bytes(std::string("\0\5\0\x08tsize probe", 15)));
  ASSERT_TRUE(p);
  EXPECT_EQ(std::get<ErrorPacket>(*p).code, ErrorCode::kOptionRefused);
  EXPECT_EQ(std::get<ErrorPacket>(*p).message, "tsize probe");
}

TEST(TftpCodec, RejectsMalformed) {
  struct Case {
    std::string bytes;
    std::string error_part;
  };
  const std::string long_name(kMaxFilenameLength + 1, 'a');
  const std::string big_data = std::string("\0\3\0\1", 4) + std::string(kMaxBlksize + 1, 'x');
  std::vector<Case> cases = {
      {"", "too short"},
      {std::string("\0", 1), "too short"},
      {std::string("\0\7", 2), "unknown opcode 7"},
      {std::string("\0\0", 2), "unknown opcode 0"},
      {std::string("\1\1", 2), "unknown opcode 257"},
      {std::string("\0\1", 2), "file name is not NUL"},
      {std::string("\0\1abc", 5), "file name is not NUL"},
      {std::string("\0\1\0octet\0", 9), "empty file name"},
      {std::string("\0\1f\0octet", 9), "mode is not NUL"},
      {std::string("\0\1f\0binary\0", 11), "unknown mode"},
      {std::string("\0\1", 2) + long_name + std::string("\0octet\0", 7), "longer than"},
      {std::string("\0\1f\0octet\0blksize", 17), "option name is not NUL"},
      {std::string("\0\1f\0octet\0blksize\0", 18), "has no NUL-terminated value"},
      {std::string("\0\1f\0octet\0\0"
                   "1\0",
                   13),
       "empty option name"},
      {std::string("\0\1f\0octet\0bl\x01k\0"
                   "1\0",
                   16),
       "control characters"},
      {std::string("\0\3\0", 3), "DATA shorter"},
      {big_data, "exceeds"},
      {std::string("\0\4\0", 3), "ACK shorter"},
      {std::string("\0\5\0", 3), "ERROR shorter"},
      {std::string("\0\6tsize\0", 8), "no NUL-terminated value"},
  };
  for (const auto& c : cases) {
    auto p = Parse(Bytes(c.bytes));
    ASSERT_FALSE(p) << "accepted: " << Describe(*p);
    EXPECT_NE(p.error().message.find(c.error_part), std::string::npos)
        << "got '" << p.error().message << "', wanted '" << c.error_part << "'";
  }
}

std::string OackText(const Negotiated& n) {
  std::string s;
  for (const auto& o : n.oack)
    s += o.name + "=" + o.value + " ";
  return s;
}

TEST(TftpNegotiate, IpxeAndPxelinuxGetBlksizeAndTsize) {
  Limits limits;
  auto ipxe = Negotiate({{"blksize", "1432"}, {"tsize", "0"}}, limits, 12345678);
  EXPECT_EQ(OackText(ipxe), "blksize=1432 tsize=12345678 ");
  EXPECT_EQ(ipxe.blksize, 1432u);
  auto pxelinux = Negotiate({{"tsize", "0"}, {"blksize", "1408"}}, limits, 42);
  EXPECT_EQ(OackText(pxelinux), "tsize=42 blksize=1408 ");
}

TEST(TftpNegotiate, ClampsAndDeclines) {
  Limits limits;  // max_blksize 1468
  auto n = Negotiate({{"BLKSIZE", "65464"},
                      {"timeout", "0"},
                      {"windowsize", "16"},
                      {"multicast", ""},
                      {"blksize", "512"},
                      {"utimeout", "1000"}},
                     limits, 0);
  EXPECT_EQ(OackText(n), "BLKSIZE=1468 windowsize=16 ");
  EXPECT_EQ(n.blksize, 1468u);
  EXPECT_EQ(n.windowsize, 16u);
  EXPECT_FALSE(n.timeout_s);
  EXPECT_EQ(n.ignored.size(), 4u);  // timeout 0, multicast, duplicate blksize, utimeout

  EXPECT_EQ(OackText(Negotiate({{"blksize", "7"}}, limits, 0)), "");
  EXPECT_EQ(OackText(Negotiate({{"blksize", "-1"}}, limits, 0)), "");
  EXPECT_EQ(OackText(Negotiate({{"blksize", "99999999999999999999999"}}, limits, 0)), "");
  EXPECT_EQ(OackText(Negotiate({{"blksize", "8"}}, limits, 0)), "blksize=8 ");
  EXPECT_EQ(OackText(Negotiate({{"timeout", "256"}}, limits, 0)), "");
  EXPECT_EQ(OackText(Negotiate({{"windowsize", "0"}}, limits, 0)), "");
  EXPECT_EQ(OackText(Negotiate({{"windowsize", "65536"}}, limits, 0)), "");
  EXPECT_EQ(OackText(Negotiate({{"windowsize", "65535"}}, limits, 0)), "windowsize=64 ");
  EXPECT_EQ(OackText(Negotiate({{"tsize", "x"}}, limits, 0)), "");

  Limits jumbo{
      .max_blksize = BlksizeForMtu(9000), .max_windowsize = 256, .max_window_bytes = 1u << 20};
  EXPECT_EQ(jumbo.max_blksize, 8968u);
  // Window shrinks so blksize * windowsize stays within max_window_bytes.
  auto w = Negotiate({{"windowsize", "200"}, {"blksize", "8968"}}, jumbo, 0);
  EXPECT_EQ(OackText(w), "windowsize=116 blksize=8968 ");
}

TEST(TftpNegotiate, TimeoutOverTheServersMaximumIsDeclined) {
  Limits limits;  // max_timeout_s 10
  EXPECT_EQ(OackText(Negotiate({{"timeout", "1"}}, limits, 0)), "timeout=1 ");
  EXPECT_EQ(OackText(Negotiate({{"timeout", "6"}}, limits, 0)), "timeout=6 ");  // curl's default
  EXPECT_EQ(OackText(Negotiate({{"timeout", "10"}}, limits, 0)), "timeout=10 ");
  // RFC 2349 forbids answering another value: the option is left out, and
  // the transfer runs on the server's own timer.
  for (const char* v : {"11", "255"}) {
    auto n = Negotiate({{"timeout", v}, {"tsize", "0"}}, limits, 42);
    EXPECT_EQ(OackText(n), "tsize=42 ") << v;
    EXPECT_FALSE(n.timeout_s) << v;
    ASSERT_EQ(n.ignored.size(), 1u);
    EXPECT_NE(n.ignored[0].find("maximum"), std::string::npos) << n.ignored[0];
  }
  Limits patient = limits;
  patient.max_timeout_s = 255;
  EXPECT_EQ(OackText(Negotiate({{"timeout", "255"}}, patient, 0)), "timeout=255 ");
}

TEST(TftpDescribe, EscapesClientText) {
  Packet rrq = Request{false, "a\nb\x1b[2J", "octet", {{"x\r", "\xff"}}};
  EXPECT_EQ(Describe(rrq), R"(RRQ a\x0ab\x1b[2J octet x\x0d=\xff)");
}

TEST(TftpNegotiate, BlksizeForMtu) {
  EXPECT_EQ(BlksizeForMtu(1500), 1468u);
  EXPECT_EQ(BlksizeForMtu(576), 544u);
  EXPECT_EQ(BlksizeForMtu(65535), kMaxBlksize);
  EXPECT_EQ(BlksizeForMtu(0), kMinBlksize);
}

}  // namespace
}  // namespace isoboot::tftp
