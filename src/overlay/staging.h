#pragma once
// A restore never leaves a half-written upper directory: Apply unpacks the
// archive into a staging directory on the upper dir's filesystem (a hidden
// sibling `.isoboot-restore-XXXXXX`, or inside the upper dir when the upper
// dir is itself a mount point), and only when every entry is written and
// checked does MoveIn rename the staged entries in. The upper dir is never
// swapped as a whole (it may be the live upperdir of a mounted overlay):
// new entries are renamed in (a new directory as a whole), an existing entry
// is replaced atomically with RENAME_EXCHANGE, and a directory on both sides
// is merged, its mode, owner, xattrs and mtime set after its contents are in.
// Every move is journaled, so a failure while moving is undone. A crash
// while moving is not: see docs/overlay.md. Single-threaded.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>

#include "base/unique_fd.h"

namespace isoboot::overlay {

// What the archive says about one of its directories: applied to a
// directory that already existed in the target, after its contents.
struct DirMeta {
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  struct timespec mtime {};
};

class Staging {
 public:
  // `target` is an absolute path without symlinks (realpath). Creates the
  // staging directory (mode 0700). Throws std::system_error.
  explicit Staging(const std::string& target);
  // Removes the staging directory and whatever is still in it: everything
  // after a failure, the replaced old entries after a success.
  ~Staging();
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // Where Apply unpacks the archive: `<staging dir>/tree`.
  const std::string& tree() const { return tree_; }
  // True after MoveIn failed and could not undo all of its moves: the
  // target is then mixed, and the staging directory is kept.
  bool mixed() const { return keep_; }
  // The filesystem the restore writes to, for messages: its mount point.
  const std::string& mount_point() const { return mount_point_; }

  // Moves every staged entry into the target. `dirs`: the archive's
  // directories by relative path ("." is the target itself); a directory
  // merged into an existing one gets these values and the staged
  // directory's xattrs. Throws std::runtime_error after undoing every move
  // it made (the message says if an undo step failed).
  void MoveIn(const std::unordered_map<std::string, DirMeta>& dirs);

 private:
  std::string target_, path_, tree_, old_, mount_point_;
  bool inside_target_ = false;  // the target is a mount point: staging is in it
  bool keep_ = false;           // an undo failed: the old entries stay here
  struct timespec target_mtime_ {};
};

}  // namespace isoboot::overlay
