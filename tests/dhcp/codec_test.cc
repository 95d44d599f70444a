#include "dhcp/codec.h"

#include <gtest/gtest.h>

#include "base/byte_io.h"

namespace isoboot::dhcp {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

// A PXE ROM's DHCPDISCOVER as udhcpc -V PXEClient... -x 93:0007 would send.
Message PxeDiscover() {
  Message m;
  m.xid = 0x12345678;
  m.flags = kFlagBroadcast;
  m.chaddr = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  m.SetU8(opt::kMessageType, 1);
  m.SetString(opt::kVendorClass, "PXEClient:Arch:00007:UNDI:003016");
  m.Set(opt::kClientArch, Bytes(std::string_view("\x00\x07", 2)));
  m.Set(opt::kClientNdi, Bytes(std::string_view("\x01\x03\x10", 3)));
  std::vector<uint8_t> uuid(17, 0xab);
  uuid[0] = 0;
  m.Set(opt::kClientUuid, uuid);
  m.Set(opt::kParameterList, Bytes("\x01\x03\x06\x2b\x3c\x42\x43"));
  return m;
}

std::vector<uint8_t> Wire(const Message& m) {
  std::vector<uint8_t> out;
  Append(m, out);
  return out;
}

TEST(DhcpCodec, RoundTrip) {
  Message m = PxeDiscover();
  m.sname = "server";
  m.file = "pxelinux.0";
  m.ciaddr = 0x0a000005;
  m.giaddr = 0x0a000001;
  auto wire = Wire(m);
  EXPECT_GE(wire.size(), kMinMessageSize);
  EXPECT_EQ(Wire(Message{}).size(), kMinMessageSize);
  auto back = Parse(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, m);
  EXPECT_EQ(back->Type(), MessageType::kDiscover);
  EXPECT_EQ(back->ClientArch(), 7);
  EXPECT_EQ(back->GetString(opt::kVendorClass), "PXEClient:Arch:00007:UNDI:003016");
  EXPECT_EQ(FormatMac(back->Mac()), "52:54:00:12:34:56");
}

TEST(DhcpCodec, MessageTypeIsWrittenFirst) {
  Message m;
  m.SetString(opt::kVendorClass, "x");
  m.SetU8(opt::kMessageType, 2);
  auto wire = Wire(m);
  EXPECT_EQ(wire[240], opt::kMessageType);
  EXPECT_EQ(wire[242], 2);
}

TEST(DhcpCodec, LongOptionIsSplitAndJoined) {
  Message m;
  m.SetU8(opt::kMessageType, 5);
  std::string url(300, 'u');
  m.SetString(opt::kBootfile, url);
  auto wire = Wire(m);
  auto back = Parse(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->GetString(opt::kBootfile), url);
}

TEST(DhcpCodec, OverloadedFileAndSnameAreRead) {
  Message m;
  auto wire = Wire(m);
  // Options: 53=DISCOVER, 52=3 (both fields), end.
  std::vector<uint8_t> opts = {53, 1, 1, 52, 1, 3, 255};
  wire.resize(240);
  wire.insert(wire.end(), opts.begin(), opts.end());
  // file field (offset 108): option 60 "PXEClient"; sname (offset 44): 93=0.
  std::string vc = "PXEClient";
  wire[108] = 60;
  wire[109] = static_cast<uint8_t>(vc.size());
  std::copy(vc.begin(), vc.end(), wire.begin() + 110);
  wire[110 + vc.size()] = 255;
  uint8_t arch[] = {93, 2, 0, 0, 255};
  std::copy(std::begin(arch), std::end(arch), wire.begin() + 44);
  auto back = Parse(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->GetString(opt::kVendorClass), "PXEClient");
  EXPECT_EQ(back->ClientArch(), 0);
  EXPECT_TRUE(back->file.empty());
  EXPECT_TRUE(back->sname.empty());
}

TEST(DhcpCodec, MissingEndOptionIsTolerated) {
  auto wire = Wire(PxeDiscover());
  wire.resize(240);
  wire.insert(wire.end(), {53, 1, 3});
  auto back = Parse(wire);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->Type(), MessageType::kRequest);
}

TEST(DhcpCodec, SubOptions) {
  std::vector<Option> in = {{6, {8}}, {71, {0x80, 0, 0, 0}}};
  std::vector<uint8_t> bytes;
  AppendSubOptions(in, bytes);
  EXPECT_EQ(bytes, (std::vector<uint8_t>{6, 1, 8, 71, 4, 0x80, 0, 0, 0, 255}));
  auto back = ParseSubOptions(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, in);
  EXPECT_FALSE(ParseSubOptions(std::vector<uint8_t>{6, 5, 1}));
}

TEST(DhcpCodec, TextHelpers) {
  EXPECT_EQ(FormatIp(0x0a4d0001), "10.77.0.1");
  EXPECT_EQ(ParseIp("10.77.0.1"), 0x0a4d0001u);
  EXPECT_FALSE(ParseIp("10.77.0"));
  EXPECT_FALSE(ParseIp("10.77.0.256"));
  EXPECT_FALSE(ParseIp("10.77.0.1x"));
  auto mac = ParseMac("52:54:00:ab:cd:ef");
  ASSERT_TRUE(mac);
  EXPECT_EQ(FormatMac(*mac), "52:54:00:ab:cd:ef");
  EXPECT_FALSE(ParseMac("52:54:00:ab:cd"));
}

struct Malformed {
  const char* name;
  std::vector<uint8_t> (*make)();
  const char* error_part;
};

std::vector<uint8_t> WithOptions(std::vector<uint8_t> opts) {
  auto wire = Wire(Message{});
  wire.resize(240);
  wire.insert(wire.end(), opts.begin(), opts.end());
  return wire;
}

const Malformed kMalformed[] = {
    {"empty", [] { return std::vector<uint8_t>{}; }, "shorter than a BOOTP header"},
    {"header only", [] { return std::vector<uint8_t>(236, 0); }, "shorter than a BOOTP header"},
    {"bad op",
     [] {
       auto w = Wire(Message{});
       w[0] = 3;
       return w;
     },
     "bad op 3"},
    {"bad hlen",
     [] {
       auto w = Wire(Message{});
       w[2] = 17;
       return w;
     },
     "hardware address length 17"},
    {"bad cookie",
     [] {
       auto w = Wire(Message{});
       w[236] = 0;
       return w;
     },
     "bad magic cookie"},
    {"option without length", [] { return WithOptions({53}); }, "has no length"},
    {"truncated option",
     [] {
       return WithOptions({60, 10, 'P', 'X'});
     },
     "needs 10 bytes"},
    {"type too long",
     [] {
       return WithOptions({53, 2, 1, 1, 255});
     },
     "option 53 has a bad length"},
    {"type zero",
     [] {
       return WithOptions({53, 1, 0, 255});
     },
     "option 53 has a bad length"},
    {"server id short",
     [] {
       return WithOptions({54, 3, 1, 2, 3, 255});
     },
     "option 54"},
    {"lease short",
     [] {
       return WithOptions({51, 2, 1, 2, 255});
     },
     "option 51"},
    {"router not x4",
     [] {
       return WithOptions({3, 5, 1, 2, 3, 4, 5, 255});
     },
     "option 3"},
    {"arch odd",
     [] {
       return WithOptions({93, 3, 0, 0, 7, 255});
     },
     "option 93"},
    {"ndi short",
     [] {
       return WithOptions({94, 2, 1, 2, 255});
     },
     "option 94"},
    {"uuid short",
     [] {
       return WithOptions({97, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255});
     },
     "option 97"},
    {"ipxe bad sub",
     [] {
       return WithOptions({175, 3, 1, 5, 1, 255});
     },
     "option 175"},
    {"overload bad",
     [] {
       return WithOptions({52, 1, 4, 255});
     },
     "option 52"},
    {"overloaded file truncated",
     [] {
       auto w = WithOptions({52, 1, 1, 255});
       w[108] = 60;
       w[109] = 200;
       return w;
     },
     "of file needs 200 bytes"},
};

TEST(DhcpCodec, MalformedInputIsRejectedWithAReason) {
  for (const auto& c : kMalformed) {
    auto r = Parse(c.make());
    ASSERT_FALSE(r) << c.name;
    EXPECT_NE(r.error().message.find(c.error_part), std::string::npos)
        << c.name << ": " << r.error().message;
  }
}

TEST(DhcpCodec, EveryTruncationOfAValidPacketIsHandled) {
  auto wire = Wire(PxeDiscover());
  for (size_t n = 0; n < wire.size(); ++n) {
    auto r = Parse(std::span<const uint8_t>(wire.data(), n));
    if (n < 240) {
      EXPECT_FALSE(r) << n;
    }
  }
}

}  // namespace
}  // namespace isoboot::dhcp
