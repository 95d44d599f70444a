#include "overlay/trailer.h"

#include <algorithm>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/byte_io.h"
#include "base/strings.h"

namespace isoboot::overlay {
namespace {

constexpr uint32_t kZstdSkippableMagic = 0x184D2A5E;
constexpr std::string_view kPrefix = "isoboot-overlay v1 sha256=";

std::string Payload(const Trailer& t) {
  return fmt::format("{}{} size={:020}\n", kPrefix, Hex(t.sha256), t.size);
}

Result<Trailer> ParsePayload(std::span<const uint8_t> p, Compression c) {
  std::string_view s(reinterpret_cast<const char*>(p.data()), p.size());
  if (s.size() != kTrailerPayloadSize || s.substr(0, kPrefix.size()) != kPrefix ||
      s.substr(kPrefix.size() + 64, 6) != " size=" || s.back() != '\n') {
    return MakeError("archive trailer is not an isoboot overlay checksum line");
  }
  Trailer t;
  t.compression = c;
  // Payload() writes lower case; anything else is not our line.
  std::string_view hex = s.substr(kPrefix.size(), 2 * t.sha256.size());
  auto digest = HexDecode(hex);
  if (!digest || hex != ToLower(hex)) return MakeError("archive trailer has a malformed sha256");
  std::copy(digest->begin(), digest->end(), t.sha256.begin());
  std::string_view digits = s.substr(kPrefix.size() + 70, 20);
  for (char d : digits) {
    if (d < '0' || d > '9') return MakeError("archive trailer has a malformed size");
    uint64_t next = t.size * 10 + static_cast<uint64_t>(d - '0');
    if (next / 10 != t.size) return MakeError("archive trailer size overflows");
    t.size = next;
  }
  return t;
}

}  // namespace

size_t TrailerSize(Compression c) {
  return c == Compression::kZstd ? kZstdTrailerSize : kGzipTrailerSize;
}

void AppendTrailer(const Trailer& t, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  std::string payload = Payload(t);
  if (t.compression == Compression::kZstd) {
    w.U32Le(kZstdSkippableMagic);
    w.U32Le(static_cast<uint32_t>(payload.size()));
    w.Text(payload);
    return;
  }
  // ID1 ID2 CM=deflate FLG=FCOMMENT MTIME=0 XFL=0 OS=unknown
  for (uint8_t b : {0x1f, 0x8b, 0x08, 0x10, 0, 0, 0, 0, 0, 0xff})
    w.U8(b);
  w.Text(payload);
  w.U8(0);
  w.U8(0x03);  // one final fixed-Huffman block holding only end-of-block
  w.U8(0x00);
  w.U32Le(0);  // CRC-32 of no bytes
  w.U32Le(0);  // ISIZE
}

Result<Trailer> ParseTrailer(std::span<const uint8_t> tail) {
  if (tail.size() >= kZstdTrailerSize) {
    ByteReader r(tail.subspan(tail.size() - kZstdTrailerSize));
    if (r.U32Le() == kZstdSkippableMagic) {
      if (r.U32Le() != kTrailerPayloadSize)
        return MakeError("archive trailer frame has a bad length");
      return ParsePayload(r.Rest(), Compression::kZstd);
    }
  }
  if (tail.size() >= kGzipTrailerSize) {
    ByteReader r(tail.subspan(tail.size() - kGzipTrailerSize));
    auto head = r.Bytes(10);
    static const uint8_t kHead[10] = {0x1f, 0x8b, 0x08, 0x10, 0, 0, 0, 0, 0, 0xff};
    if (std::equal(head.begin(), head.end(), kHead)) {
      auto payload = r.Bytes(kTrailerPayloadSize);
      if (r.U8() != 0 || r.U8() != 0x03 || r.U8() != 0x00 || r.U32Le() != 0 || r.U32Le() != 0) {
        return MakeError("archive trailer gzip member is malformed");
      }
      return ParsePayload(payload, Compression::kGzip);
    }
  }
  return MakeError(
      "no isoboot checksum trailer at the end of the archive (truncated, or not made by "
      "`isoboot overlay backup`)");
}

}  // namespace isoboot::overlay
