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

// Bounds on what Verify unpacks, so that a small archive cannot make it
// decompress or hash without end: a "zstd bomb" uploaded to the store (which
// verifies on an HTTP thread), or a sparse file of 2^60 bytes of holes.
struct VerifyLimits {
  // Both the decompressed tar stream and the files' logical sizes (holes
  // included, since they are hashed as zeros and written) stay under this.
  uint64_t max_bytes = uint64_t{64} << 30;
  uint64_t max_entries = 4'000'000;
};

// Pass 1: reads the whole archive from `fd` (seekable) and writes nothing.
// Fails on a bad checksum, a missing or mismatching manifest, or an entry
// that could write outside the target: an absolute path, a ".." component, a
// path through a symlink of the archive, a hard link to anything but an
// earlier file of the archive. An archive over `limits` fails with
// ErrorKind::kExhausted as soon as the limit is passed.
Result<Verified> Verify(int fd, const ProgressFn& progress = nullptr,
                        const VerifyLimits& limits = {});

struct RestoreOptions {
  std::string target;
  bool dry_run = false;
  ProgressFn progress;
};

// "8 GiB", "1.5 MiB", "300 bytes": sizes in messages.
std::string SizeText(uint64_t bytes);

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
// options.target. The archive is unpacked into a staging directory on the
// target's filesystem (overlay/staging.h), checked again (the archive's
// checksum, each entry's type and size against the manifest) and only then
// moved into options.target. Throws std::runtime_error with a one-line
// reason on failure; options.target is then as it was (see staging.h for
// a crash while moving).
RestoreStats Apply(int fd, const Verified& verified, const RestoreOptions& options);

// The path checks of Verify, exposed for tests. `symlinks` holds the symlink
// paths seen so far in the archive.
Result<std::string> SafeRelativePath(const std::string& path);

}  // namespace isoboot::overlay
