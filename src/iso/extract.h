#pragma once
// Extracts files of an Image into a host directory, keeping modes, mtimes and
// symlinks. Every file is created relative to an open directory descriptor
// with O_NOFOLLOW, so neither an image's names nor symlinks it created (or
// that were already in the target) can make it write outside the target.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace isoboot::iso {

class Image;

struct ExtractStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t skipped_special = 0;
  uint64_t bytes = 0;
};

struct ExtractOptions {
  // Called while a regular file is copied: its image path, bytes done, total.
  std::function<void(const std::string&, uint64_t, uint64_t)> progress;
};

// Extracts `paths` (absolute or relative paths inside the image; all of it
// when empty) below `target`, each at its own path ("/boot/x/linux" lands in
// target/boot/x/linux). Creates `target` if missing.
Result<ExtractStats> Extract(const Image& image, const std::vector<std::string>& paths,
                             const std::string& target, const ExtractOptions& options = {});

}  // namespace isoboot::iso
