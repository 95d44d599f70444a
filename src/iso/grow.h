#pragma once
// Grows an ISO 9660 image the way xorriso does on overwriteable media: a new
// session appended after the end of the base image holds a new directory
// tree (Rock Ridge, and Joliet when the base has it) whose unchanged files
// point at the base's own extents, the bytes of added and replaced files,
// and a new El Torito catalog naming the base's boot images where they are;
// the volume descriptors at the start of the image are rewritten to point
// at the new tree. libisofs writes the session (iso_write_opts_set_appendable,
// _ms_block, _overwrite_buf). The base's bytes are never copied: a grown
// image is the base file with its first blocks replaced (`head`), then
// zeros up to `session_offset`, then `session`.
//
// Boot images stay where they are and are not patched: a boot info table
// (isolinux's) names the primary volume descriptor at block 16, which now
// describes the new tree, and the boot file's own block, which did not move.
//
// Thread safety: Grow may run on several threads at once, for different or
// the same base.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace isoboot::iso {

class Image;

// One file, directory or symlink a grown image has at `path` ("/a/b"):
// added, or replacing what the base has there (a directory's contents are
// kept; a file or symlink is replaced). Parent directories are made.
struct AddedEntry {
  enum class Type {
    kFile,
    kDirectory,
    kSymlink
  };
  Type type = Type::kFile;
  std::string path;
  std::shared_ptr<const std::string> data;  // kFile: the content
  std::string target;                       // kSymlink
  uint32_t mode = 0644;                     // permission bits
  int64_t mtime = 0;                        // seconds since the epoch
};

struct GrownImage {
  uint64_t base_size = 0;       // bytes of the base file it is grown from
  std::vector<uint8_t> head;    // replaces the base's bytes [0, head.size())
  uint64_t session_offset = 0;  // block aligned, >= base_size
  std::vector<uint8_t> session;
  int64_t made_at = 0;  // seconds since the epoch
  uint64_t size() const { return session_offset + session.size(); }
  // Bytes that are not the base's: what growing costs in memory.
  uint64_t own_bytes() const { return head.size() + session.size(); }
};

// The new session's bytes are limited to this much (added files included).
inline constexpr uint64_t kMaxSessionBytes = uint64_t{2} << 30;

// Errors are one line: an entry whose path is invalid or collides (a file
// where a directory must be), a base whose first 64 KiB hold file data
// that rewriting its descriptors would destroy, libisofs failing.
Result<GrownImage> Grow(const Image& base, const std::vector<AddedEntry>& entries);

}  // namespace isoboot::iso
