#pragma once
// The trailer: the last bytes of an overlay backup, carrying the SHA-256 and
// length of everything before it, so a restore can check the whole archive
// before it writes anything. It is a frame that standard decompressors skip,
// so `zstd -d`, `gzip -d`, `tar xf` and bsdtar still read the archive:
//   zstd: a skippable frame (magic 0x184D2A5E, RFC 8878 section 3.1.2);
//   gzip: an extra, empty gzip member whose FCOMMENT holds the text
//         (RFC 1952 section 2.2: a file is a series of members).
// The payload is one fixed-length text line:
//   "isoboot-overlay v1 sha256=<64 hex> size=<20 decimal digits>\n"
// Pure codec: no I/O.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "overlay/sha256.h"

namespace isoboot::overlay {

enum class Compression {
  kZstd,
  kGzip,
};

struct Trailer {
  Compression compression = Compression::kZstd;
  Digest sha256{};
  uint64_t size = 0;  // bytes before the trailer
};

// The payload line's length and each encoding's total length.
inline constexpr size_t kTrailerPayloadSize = 117;
inline constexpr size_t kZstdTrailerSize = 8 + kTrailerPayloadSize;
inline constexpr size_t kGzipTrailerSize = 10 + kTrailerPayloadSize + 1 + 2 + 8;
inline constexpr size_t kMaxTrailerSize = kGzipTrailerSize;

void AppendTrailer(const Trailer& t, std::vector<uint8_t>& out);
size_t TrailerSize(Compression c);

// `tail` is the last bytes of an archive (at least kMaxTrailerSize when the
// archive is that long). Finds and checks the trailer at its very end.
Result<Trailer> ParseTrailer(std::span<const uint8_t> tail);

}  // namespace isoboot::overlay
