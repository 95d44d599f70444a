#include "iso/el_torito.h"

#include <algorithm>
#include <cstddef>
#include <initializer_list>

#include <gtest/gtest.h>

namespace isoboot::iso {
namespace {

// Builds a catalog: validation entry for `platform`, a default entry, and
// optional section headers with one entry each.
std::vector<uint8_t> Catalog(uint8_t platform, std::vector<uint8_t> sections = {}) {
  std::vector<uint8_t> c(2048, 0);
  c[0] = 0x01;
  c[1] = platform;
  c[30] = 0x55;
  c[31] = 0xAA;
  uint16_t sum = 0;
  for (int i = 0; i < 32; i += 2)
    sum = static_cast<uint16_t>(sum + (c[i] | (c[i + 1] << 8)));
  uint16_t fix = static_cast<uint16_t>(-sum);
  c[28] = fix & 0xFF;
  c[29] = fix >> 8;
  // Default entry: bootable, no emulation, 4 sectors at block 0x1234.
  c[32] = 0x88;
  c[32 + 6] = 4;
  c[32 + 8] = 0x34;
  c[32 + 9] = 0x12;
  size_t pos = 64;
  for (size_t i = 0; i < sections.size(); ++i) {
    c[pos] = i + 1 == sections.size() ? 0x91 : 0x90;
    c[pos + 1] = sections[i];
    c[pos + 2] = 1;
    pos += 32;
    c[pos] = 0x88;
    c[pos + 6] = 0x40;  // 64 sectors
    c[pos + 8] = static_cast<uint8_t>(0x50 + i);
    pos += 32;
  }
  return c;
}

TEST(ElToritoTest, ParsesBiosAndUefiEntries) {
  auto entries = ParseBootCatalog(Catalog(0x00, {0xEF}));
  ASSERT_TRUE(entries) << entries.error().message;
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].platform_id, 0x00);
  EXPECT_TRUE((*entries)[0].bootable);
  EXPECT_EQ((*entries)[0].sector_count, 4);
  EXPECT_EQ((*entries)[0].lba, 0x1234u);
  EXPECT_EQ((*entries)[1].platform_id, 0xEF);
  EXPECT_EQ((*entries)[1].sector_count, 64);
  EXPECT_EQ((*entries)[1].lba, 0x50u);
  EXPECT_EQ(PlatformName(0xEF), "UEFI");
  EXPECT_EQ(MediaTypeName(0), "no emulation");
}

// The catalog xorriso 1.5.4 writes for the KIWI test image
// (tests/image/build-kiwi-live.sh: -b isolinux/isolinux.bin -boot-load-size 4
// -eltorito-alt-boot -e boot/x86_64/efi of 1000 KiB): a BIOS default entry
// and one final UEFI section, as read from the image (the rest of the block
// is 0).
TEST(ElToritoTest, ParsesXorrisosHybridCatalog) {
  std::vector<uint8_t> c(2048, 0);
  auto put = [&c](size_t at, std::initializer_list<uint8_t> bytes) {
    std::copy(bytes.begin(), bytes.end(), c.begin() + static_cast<ptrdiff_t>(at));
  };
  // Validation entry: header id 1, platform BIOS, checksum AA 55, key 55 AA.
  put(0, {0x01, 0x00});
  put(28, {0xaa, 0x55, 0x55, 0xaa});
  // Default entry: bootable, no emulation, 4 sectors at block 0x21d (541).
  put(32, {0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x1d, 0x02, 0x00, 0x00});
  // Final section header: platform UEFI, one entry.
  put(64, {0x91, 0xef, 0x01, 0x00});
  // Its entry, the ESP image: bootable, 0x7d0 (2000) sectors at block 0x29 (41).
  put(96, {0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x07, 0x29, 0x00, 0x00, 0x00});
  auto entries = ParseBootCatalog(c);
  ASSERT_TRUE(entries) << entries.error().message;
  ASSERT_EQ(entries->size(), 2u);
  const BootEntry& bios = (*entries)[0];
  EXPECT_EQ(PlatformName(bios.platform_id), "BIOS");
  EXPECT_TRUE(bios.bootable);
  EXPECT_EQ(bios.media_type, 0);
  EXPECT_EQ(bios.sector_count, 4);
  EXPECT_EQ(bios.lba, 541u);
  const BootEntry& uefi = (*entries)[1];
  EXPECT_EQ(PlatformName(uefi.platform_id), "UEFI");
  EXPECT_TRUE(uefi.bootable);
  EXPECT_EQ(uefi.media_type, 0);
  EXPECT_EQ(uefi.sector_count, 2000);
  EXPECT_EQ(uefi.lba, 41u);
}

TEST(ElToritoTest, RejectsBrokenCatalogs) {
  auto good = Catalog(0x00, {0xEF});
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* message;
  };
  auto bad_header = good;
  bad_header[0] = 0x02;
  auto bad_key = good;
  bad_key[31] = 0x00;
  auto bad_sum = good;
  bad_sum[4] ^= 1;
  auto truncated_section = std::vector<uint8_t>(good.begin(), good.begin() + 96 + 16);
  std::vector<Case> cases = {
      {"empty", {}, "shorter than"},
      {"one entry", std::vector<uint8_t>(good.begin(), good.begin() + 32), "shorter than"},
      {"header id", bad_header, "header id"},
      {"key bytes", bad_key, "key bytes"},
      {"checksum", bad_sum, "checksum"},
      {"truncated section", truncated_section, "announces 1 entries"},
  };
  for (const auto& c : cases) {
    auto r = ParseBootCatalog(c.bytes);
    ASSERT_FALSE(r) << c.what;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos)
        << c.what << ": " << r.error().message;
  }
}

}  // namespace
}  // namespace isoboot::iso
