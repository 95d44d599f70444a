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
