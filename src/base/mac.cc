#include "base/mac.h"

#include <fmt/format.h>

namespace isoboot {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

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
    int hi = HexDigit(text[at]);
    int lo = HexDigit(text[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (separator && i < 5 && text[at + 2] != separator) return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

}  // namespace isoboot
