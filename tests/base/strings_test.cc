#include "base/strings.h"

#include <gtest/gtest.h>

namespace isoboot {
namespace {

TEST(Strings, Trim) {
  EXPECT_EQ(Trim("  a b\t\r\n"), "a b");
  EXPECT_EQ(Trim(" \t "), "");
  EXPECT_EQ(Trim(""), "");
  EXPECT_EQ(Trim("\tx ", " "), "\tx");
}

TEST(Strings, Case) {
  EXPECT_EQ(ToLower("Content-Length"), "content-length");
  EXPECT_EQ(ToUpper("Cd1 é"), "CD1 é");  // ASCII only
  EXPECT_TRUE(EqualsIgnoreCase("100-Continue", "100-continue"));
  EXPECT_FALSE(EqualsIgnoreCase("bytes", "byte"));
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));  // not a bit trick
}

TEST(Strings, Hex) {
  EXPECT_EQ(HexDecode("00ff7A"), std::string("\x00\xff\x7a", 3));
  EXPECT_FALSE(HexDecode("abc"));
  EXPECT_FALSE(HexDecode("zz"));
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x7a", 3)), "00ff7a");
  EXPECT_EQ(*HexByte("2F"), 0x2f);
  EXPECT_FALSE(HexByte("2"));
  EXPECT_EQ(HexDigitValue('g'), -1);
}

}  // namespace
}  // namespace isoboot

namespace isoboot {
namespace {

TEST(EscapeForLogTest, KeepsPrintableAsciiAndEscapesTheRest) {
  EXPECT_EQ(EscapeForLog("pxelinux.cfg/01-52-54-00"), "pxelinux.cfg/01-52-54-00");
  EXPECT_EQ(EscapeForLog("a\nGET /forged 200"), "a\\x0aGET /forged 200");
  EXPECT_EQ(EscapeForLog("back\\slash"), "back\\\\slash");
  EXPECT_EQ(EscapeForLog(std::string_view("\x1b[31m\x00\xff", 7)), "\\x1b[31m\\x00\\xff");
  EXPECT_EQ(EscapeForLog(""), "");
}

TEST(EscapeForLogTest, IsPrintableAscii) {
  EXPECT_TRUE(IsPrintableAscii("boot/x86_64/loader/linux ~"));
  EXPECT_TRUE(IsPrintableAscii(""));
  EXPECT_FALSE(IsPrintableAscii("a\tb"));
  EXPECT_FALSE(IsPrintableAscii("caf\xc3\xa9"));
  EXPECT_FALSE(IsPrintableAscii("\x7f"));
}

TEST(Strings, FormatSize) {
  EXPECT_EQ(FormatSize(900), "900 bytes");
  EXPECT_EQ(FormatSize(1 << 20), "1 MiB");
  EXPECT_EQ(FormatSize(1153434), "1.1 MiB");
  EXPECT_EQ(FormatSize(8ull << 30), "8 GiB");
}

}  // namespace
}  // namespace isoboot
