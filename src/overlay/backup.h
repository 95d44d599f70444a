#pragma once
// `overlay backup`: writes an overlay upper directory as a pax tar archive
// through libarchive, keeping what an overlay needs and `tar czf` loses:
// whiteouts (0/0 character devices), trusted.overlay.* and all other
// xattrs, POSIX ACLs, numeric owners, modes, mtimes, hard links and sparse
// files. Compressed with zstd (or gzip), a manifest last (manifest.h) and a
// checksum trailer (trailer.h). Single-threaded.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "overlay/trailer.h"

namespace isoboot::overlay {

class Sink;

// Called now and then with bytes of file content read so far and the total.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct BackupOptions {
  std::string upper;
  Compression compression = Compression::kZstd;
  std::vector<std::string> excludes;  // fnmatch(3) globs on the relative path or the name
  ProgressFn progress;
};

struct BackupStats {
  uint64_t entries = 0;
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t whiteouts = 0;
  uint64_t opaque_directories = 0;
  uint64_t xattrs = 0;
  uint64_t sparse_files = 0;
  uint64_t excluded = 0;
  uint64_t content_bytes = 0;  // file contents, holes included
  uint64_t archive_bytes = 0;  // trailer included
  std::string sha256;          // of the archive before the trailer
};

// Writes the archive to `sink` and commits it. Throws std::runtime_error on
// any read or write failure; the sink is then left uncommitted.
BackupStats Backup(const BackupOptions& options, Sink& sink);

// True when `rel` (relative path) matches one of `globs`.
bool Excluded(const std::string& rel, const std::vector<std::string>& globs);

}  // namespace isoboot::overlay
