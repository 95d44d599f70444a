#pragma once
// A small ISO 9660 image (Rock Ridge and Joliet) of a host directory, with a
// chosen volume label, for a second virtual medium that a live system finds
// by label (blkid LABEL=PITDATA, /dev/disk/by-label/PITDATA) without the
// live image being repacked. Written with libisofs. Thread-safe (no shared
// state besides libisofs's one-time set-up).

#include <string>
#include <string_view>

#include "base/result.h"

namespace isoboot::iso {

inline constexpr std::string_view kDefaultDataLabel = "PITDATA";

// Whether `label` can be a data image's volume id: 1 to 32 characters of
// A-Z, 0-9 and _ (ISO 9660 d-characters). The error says what is wrong.
Result<std::string> CheckDataLabel(std::string_view label);

// Writes an image of the tree under `dir` to `out_path` and returns
// `out_path`. The tree may hold regular files, directories and symlinks
// whose target stays inside `dir`; anything else (a symlink leading out of
// `dir`, a device, FIFO or socket, an unreadable file or directory, nesting
// deeper than 64 levels) is refused with one line naming the path. The image
// goes to a temporary file next to `out_path` that is renamed over it only
// once complete, so a failure never leaves a partial image at `out_path`.
Result<std::string> WriteDataImage(const std::string& dir, std::string_view label,
                                   const std::string& out_path);

}  // namespace isoboot::iso
