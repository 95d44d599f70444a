#include "iso/el_torito.h"

#include <fmt/format.h>

#include "base/byte_io.h"

namespace isoboot::iso {
namespace {

constexpr size_t kEntrySize = 32;
constexpr uint8_t kHeaderMore = 0x90;
constexpr uint8_t kHeaderFinal = 0x91;
constexpr uint8_t kExtension = 0x44;
constexpr uint8_t kBootable = 0x88;
// Media type bit 5: "continuation entry (extension) follows".
constexpr uint8_t kMediaHasExtension = 0x20;

BootEntry ReadEntry(std::span<const uint8_t> e, uint8_t platform) {
  ByteReader r(e);
  BootEntry out;
  out.platform_id = platform;
  out.bootable = r.U8() == kBootable;
  out.media_type = r.U8() & 0x0F;
  out.load_segment = r.U16Le();
  r.Skip(2);  // system type, unused
  out.sector_count = r.U16Le();
  out.lba = r.U32Le();
  return out;
}

}  // namespace

std::string PlatformName(uint8_t platform_id) {
  switch (platform_id) {
    case 0x00:
      return "BIOS";
    case 0x01:
      return "PowerPC";
    case 0x02:
      return "Mac";
    case 0xEF:
      return "UEFI";
    default:
      return fmt::format("platform 0x{:02x}", platform_id);
  }
}

std::string MediaTypeName(uint8_t media_type) {
  switch (media_type) {
    case 0:
      return "no emulation";
    case 1:
      return "1.2M floppy";
    case 2:
      return "1.44M floppy";
    case 3:
      return "2.88M floppy";
    case 4:
      return "hard disk";
    default:
      return fmt::format("media type {}", media_type);
  }
}

Result<std::vector<BootEntry>> ParseBootCatalog(std::span<const uint8_t> catalog) {
  if (catalog.size() < 2 * kEntrySize) {
    return MakeError(fmt::format("boot catalog is {} bytes, shorter than its two mandatory entries",
                                 catalog.size()));
  }
  auto validation = catalog.first(kEntrySize);
  if (validation[0] != 0x01) {
    return MakeError(fmt::format("boot catalog validation entry has header id 0x{:02x}, not 0x01",
                                 validation[0]));
  }
  if (validation[30] != 0x55 || validation[31] != 0xAA) {
    return MakeError("boot catalog validation entry lacks its key bytes 55 AA");
  }
  uint16_t sum = 0;
  for (size_t i = 0; i < kEntrySize; i += 2) {
    sum = static_cast<uint16_t>(sum + (validation[i] | (validation[i + 1] << 8)));
  }
  if (sum != 0) return MakeError("boot catalog validation entry has a bad checksum");

  std::vector<BootEntry> entries;
  entries.push_back(ReadEntry(catalog.subspan(kEntrySize, kEntrySize), validation[1]));

  // Section headers with their entries follow until a final header's entries
  // end, or an unused (zero) entry.
  size_t pos = 2 * kEntrySize;
  while (pos + kEntrySize <= catalog.size()) {
    uint8_t indicator = catalog[pos];
    if (indicator != kHeaderMore && indicator != kHeaderFinal) break;
    uint8_t platform = catalog[pos + 1];
    size_t count = catalog[pos + 2] | (catalog[pos + 3] << 8);
    pos += kEntrySize;
    for (size_t i = 0; i < count; ++i) {
      if (pos + kEntrySize > catalog.size()) {
        return MakeError(fmt::format(
            "boot catalog section for {} announces {} entries but the catalog ends after {}",
            PlatformName(platform), count, i));
      }
      auto e = catalog.subspan(pos, kEntrySize);
      pos += kEntrySize;
      entries.push_back(ReadEntry(e, platform));
      bool more = e[1] & kMediaHasExtension;
      while (more && pos + kEntrySize <= catalog.size() && catalog[pos] == kExtension) {
        more = catalog[pos + 1] & 0x20;  // "further extensions follow"
        pos += kEntrySize;
      }
    }
    if (indicator == kHeaderFinal) break;
  }
  return entries;
}

}  // namespace isoboot::iso
