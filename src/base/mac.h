#pragma once
// Ethernet MAC addresses as text, shared by the AoE, DHCP and boot code.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isoboot {

using MacAddress = std::array<uint8_t, 6>;

// "52:54:00:12:34:56" (lower case, colons).
std::string FormatMac(const MacAddress& mac);

// Accepts "52:54:00:12:34:56", "52-54-00-12-34-56" and vblade's
// "525400123456", in either case; nothing else.
std::optional<MacAddress> ParseMac(std::string_view text);

}  // namespace isoboot
