#include "base/mac.h"

#include <fmt/format.h>

#include "base/strings.h"

namespace isoboot {
std::string FormatMac(const MacAddress& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                     m[5]);
}

std::optional<MacAddress> ParseMac(std::string_view text) {
  // Either 12 bare hex digits, or 6 pairs joined by one kind of separator.
  size_t stride = 2;
  char separator = 0;
  if (text.size() == 17) {
    separator = text[2];
    if (separator != ':' && separator != '-') return std::nullopt;
    stride = 3;
  } else if (text.size() != 12) {
    return std::nullopt;
  }
  MacAddress mac{};
  for (size_t i = 0; i < 6; ++i) {
    size_t at = i * stride;
    auto byte = HexByte(text.substr(at, 2));
    if (!byte) return std::nullopt;
    if (separator && i < 5 && text[at + 2] != separator) return std::nullopt;
    mac[i] = *byte;
  }
  return mac;
}

}  // namespace isoboot
