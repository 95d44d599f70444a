#include "base/mac.h"

#include <gtest/gtest.h>

namespace isoboot {
namespace {

TEST(MacTest, FormatsAndParsesTheUsualForms) {
  const MacAddress mac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
  EXPECT_EQ(FormatMac(mac), "52:54:00:ab:cd:ef");
  EXPECT_EQ(ParseMac("52:54:00:ab:cd:ef"), mac);
  EXPECT_EQ(ParseMac("52-54-00-AB-CD-EF"), mac);
  EXPECT_EQ(ParseMac("525400abcdef"), mac);
}

TEST(MacTest, RejectsEverythingElse) {
  for (const char* bad :
       {"", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:01", "52:54-00:ab:cd:ef", "zz:54:00:ab:cd:ef",
        "52.54.00.ab.cd.ef", "525400abcde", "5254 00abcdef"}) {
    EXPECT_FALSE(ParseMac(bad)) << bad;
  }
}

}  // namespace
}  // namespace isoboot
