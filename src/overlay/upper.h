#pragma once
// Finding the overlay upper directory of a live system: the mount table
// (/proc/self/mountinfo) lists overlay mounts with their upperdir=, and KIWI
// live systems keep it at /run/overlay/overlayfs/rw (current) or
// /run/overlayfs/rw (older images such as the PIT). Single-threaded.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace isoboot::overlay {

struct OverlayMount {
  std::string mount_point;
  std::string upperdir;  // empty for a read-only overlay
  std::string workdir;
  std::string lowerdir;
};

// Pure: the overlay mounts in the text of a mountinfo file.
std::vector<OverlayMount> ParseOverlayMounts(std::string_view mountinfo);

// KIWI's upper directories, newest layout first.
inline constexpr const char* kKnownUppers[] = {"/run/overlay/overlayfs/rw", "/run/overlayfs/rw"};

struct Upper {
  std::string path;
  std::optional<OverlayMount> mount;  // set when an overlay mounted now uses it
};

// With `explicit_dir`: that directory (it must exist), with the overlay using
// it if any. Without: the upper of a mounted overlay among kKnownUppers or of
// the overlay mounted on /. Throws std::runtime_error with a message saying
// what was looked for when there is none (not a live overlay system).
Upper FindUpper(const std::string& explicit_dir,
                const std::string& mountinfo_path = "/proc/self/mountinfo");

}  // namespace isoboot::overlay
