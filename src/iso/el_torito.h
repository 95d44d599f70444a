#pragma once
// El Torito boot catalog (El Torito specification 1.0, section 2): a pure
// parser of the catalog's 2048-byte block into its boot entries. The
// catalog says which images the firmware boots: BIOS (platform 0x00) and
// UEFI (platform 0xEF) entries are what `isoboot iso info` reports.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace isoboot::iso {

enum class Platform : uint8_t {
  kBios = 0x00,
  kPowerPc = 0x01,
  kMac = 0x02,
  kUefi = 0xEF,
};
std::string PlatformName(uint8_t platform_id);

struct BootEntry {
  uint8_t platform_id = 0;
  bool bootable = false;
  uint8_t media_type = 0;     // 0 = no emulation, 1-3 floppy, 4 = hard disk
  uint16_t load_segment = 0;  // 0 means the default 0x7C0
  uint16_t sector_count = 0;  // virtual 512-byte sectors loaded at boot
  uint32_t lba = 0;           // 2048-byte block of the boot image
  std::string image_path;     // file in the tree at that block, if any
};
std::string MediaTypeName(uint8_t media_type);

struct BootCatalog {
  bool present = false;
  uint32_t lba = 0;  // block of the catalog itself
  std::vector<BootEntry> entries;
};

// Parses a boot catalog. Rejects a bad validation entry (header id, key bytes,
// checksum) and truncated input; stops at the first unused section header.
Result<std::vector<BootEntry>> ParseBootCatalog(std::span<const uint8_t> catalog);

}  // namespace isoboot::iso
