#pragma once
// Small text helpers shared by the parsers and the CLI (ASCII only: the
// protocols' tokens, header names and file names compared here are ASCII;
// nothing is locale-dependent). Pure functions, thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isoboot {

// `s` without leading and trailing characters from `chars`.
constexpr std::string_view Trim(std::string_view s, std::string_view chars = " \t\r\n") {
  size_t first = s.find_first_not_of(chars);
  if (first == std::string_view::npos) return {};
  size_t last = s.find_last_not_of(chars);
  return s.substr(first, last - first + 1);
}

constexpr char ToLowerAscii(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
constexpr char ToUpperAscii(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}
std::string ToLower(std::string_view s);
std::string ToUpper(std::string_view s);

constexpr bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLowerAscii(a[i]) != ToLowerAscii(b[i])) return false;
  }
  return true;
}

// 0-15 for a hex digit (either case), -1 otherwise.
constexpr int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
// The byte that two hex digits at s[0], s[1] spell, if they are hex digits.
constexpr std::optional<unsigned char> HexByte(std::string_view s) {
  if (s.size() < 2) return std::nullopt;
  int hi = HexDigitValue(s[0]), lo = HexDigitValue(s[1]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<unsigned char>(hi << 4 | lo);
}
// Decodes an even number of hex digits; nullopt on any other character.
std::optional<std::string> HexDecode(std::string_view hex);
// Lower-case hex of every byte.
std::string HexEncode(std::string_view bytes);

// `s` safe to put on one log line: printable ASCII is kept, a backslash
// becomes two backslashes and every other byte (newlines, escapes, UTF-8)
// "\xNN", so a name chosen by a client cannot forge or hide log lines.
std::string EscapeForLog(std::string_view s);
// True if every byte of `s` is printable ASCII (0x20-0x7e).
bool IsPrintableAscii(std::string_view s);

// A size for people: 900 -> "900 bytes", 1048576 -> "1 MiB", 1153434 -> "1.1 MiB".
std::string FormatSize(uint64_t bytes);

}  // namespace isoboot
