#include "overlay/manifest.h"

#include <string_view>

#include <fmt/format.h>

#include "base/byte_io.h"
#include "base/strings.h"

namespace isoboot::overlay {
namespace {

constexpr std::string_view kHeader = "isoboot-overlay-manifest 1\n";
constexpr std::string_view kTypes = "fdlhcbps";

void AppendEscaped(std::string_view path, std::string& out) {
  for (unsigned char c : path) {
    if (c <= 0x20 || c == '%' || c >= 0x7f) {
      out += fmt::format("%{:02X}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}

Result<std::string> Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return MakeError("truncated %XX escape");
    auto byte = HexByte(s.substr(i + 1, 2));
    if (!byte) return MakeError("bad %XX escape");
    out.push_back(static_cast<char>(*byte));
    i += 2;
  }
  return out;
}

// Splits off the text up to the next space.
bool NextField(std::string_view& line, std::string_view& field) {
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return false;
  field = line.substr(0, sp);
  line.remove_prefix(sp + 1);
  return true;
}

Result<ManifestEntry> ParseLine(std::string_view line) {
  std::string_view type, size, sha;
  if (!NextField(line, type) || !NextField(line, size) || !NextField(line, sha)) {
    return MakeError("expected 4 fields");
  }
  ManifestEntry e;
  if (type.size() != 1 || kTypes.find(type[0]) == std::string_view::npos) {
    return MakeError("unknown entry type");
  }
  e.type = type[0];
  if (size.empty() || size.size() > 19) return MakeError("bad size");
  for (char c : size) {
    if (c < '0' || c > '9') return MakeError("bad size");
    e.size = e.size * 10 + static_cast<uint64_t>(c - '0');
  }
  if (e.type == 'f') {
    if (sha.size() != 64) return MakeError("bad sha256");
    for (char c : sha) {
      if (c < '0' || (c > '9' && c < 'a') || c > 'f') return MakeError("bad sha256");
    }
    e.sha256 = std::string(sha);
  } else if (sha != "-") {
    return MakeError("sha256 given for a non-file");
  }
  auto path = Unescape(line);
  if (!path) return path.error();
  if (path->empty()) return MakeError("empty path");
  e.path = std::move(*path);
  return e;
}

}  // namespace

void AppendManifest(const Manifest& m, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.Text(kHeader);
  std::string line;
  for (const auto& e : m.entries) {
    line = fmt::format("{} {} {} ", e.type, e.size, e.sha256.empty() ? "-" : e.sha256);
    AppendEscaped(e.path, line);
    line.push_back('\n');
    w.Text(line);
  }
}

Result<Manifest> ParseManifest(std::span<const uint8_t> bytes) {
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.substr(0, kHeader.size()) != kHeader) {
    return MakeError("manifest does not start with \"isoboot-overlay-manifest 1\"");
  }
  text.remove_prefix(kHeader.size());
  Manifest m;
  size_t line_no = 1;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos)
      return MakeError(fmt::format("manifest line {} is not terminated", line_no));
    auto e = ParseLine(text.substr(0, nl));
    if (!e) return MakeError(fmt::format("manifest line {}: {}", line_no, e.error().message));
    m.entries.push_back(std::move(*e));
    text.remove_prefix(nl + 1);
  }
  return m;
}

}  // namespace isoboot::overlay
