#pragma once
// The manifest: the last entry of an overlay backup (named kManifestName),
// listing every other entry with its type, size and, for regular files, the
// SHA-256 of its contents (holes of sparse files count as zeros). Restore
// recomputes these while verifying, so a tampered or mis-decoded entry is
// caught before anything is written. Text, one entry per line:
//   isoboot-overlay-manifest 1
//   <type> <size> <sha256 hex or -> <path>
// type: f file, d directory, l symlink, h hard link, c/b device (a 0/0 c is
// an overlay whiteout), p fifo, s socket. Paths are relative, '/'-separated,
// with bytes <= 0x20, '%' and >= 0x7f written as %XX. Pure codec: no I/O.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace isoboot::overlay {

inline constexpr char kManifestName[] = ".isoboot-overlay-manifest";

struct ManifestEntry {
  char type = 'f';
  uint64_t size = 0;
  std::string sha256;  // 64 lowercase hex digits for 'f', empty otherwise
  std::string path;

  bool operator==(const ManifestEntry&) const = default;
};

struct Manifest {
  std::vector<ManifestEntry> entries;
};

void AppendManifest(const Manifest& m, std::vector<uint8_t>& out);
Result<Manifest> ParseManifest(std::span<const uint8_t> text);

}  // namespace isoboot::overlay
