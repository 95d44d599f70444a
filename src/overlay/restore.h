#pragma once
// `overlay restore`: checks an archive made by Backup completely — trailer
// checksum, every entry's path, every file's SHA-256 against the manifest —
// and only then writes it into the upper directory through libarchive,
// restoring whiteouts, xattrs (trusted.* needs CAP_SYS_ADMIN), ACLs, owners,
// modes, mtimes, hard links and sparse files. Single-threaded; Apply
// changes the working directory while it runs.

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "overlay/backup.h"
#include "overlay/manifest.h"
#include "overlay/trailer.h"

namespace isoboot::overlay {

struct Verified {
  Trailer trailer;
  Manifest manifest;
  uint64_t archive_bytes = 0;
  uint64_t content_bytes = 0;
};

// Pass 1: reads the whole archive from `fd` (seekable) and writes nothing.
// Fails on a bad checksum, a missing or mismatching manifest, or an entry
// that could write outside the target: an absolute path, a ".." component, a
// path through a symlink of the archive, a hard link to anything but an
// earlier file of the archive.
Result<Verified> Verify(int fd, const ProgressFn& progress = nullptr);

struct RestoreOptions {
  std::string target;
  bool dry_run = false;
  ProgressFn progress;
};

struct Change {
  char kind;  // '+' new, '~' differs from what is there, 'w' whiteout
  std::string path;
};

struct RestoreStats {
  uint64_t entries = 0;
  uint64_t unchanged = 0;
  std::vector<Change> changes;  // filled in a dry run
};

// Pass 2, after Verify: writes (or, dry run, compares) every entry under
// options.target. Throws std::runtime_error on failure.
RestoreStats Apply(int fd, const Verified& verified, const RestoreOptions& options);

// The path checks of Verify, exposed for tests. `symlinks` holds the symlink
// paths seen so far in the archive.
Result<std::string> SafeRelativePath(const std::string& path);

}  // namespace isoboot::overlay
