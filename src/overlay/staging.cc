#include "overlay/staging.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <stdlib.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace isoboot::overlay {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string Join(const std::string& rel, const std::string& name) {
  return rel == "." ? name : rel + "/" + name;
}

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

UniqueFd OpenDirAt(int dir, const std::string& name) {
  int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) ThrowErrno(fmt::format("opening {}", name));
  return UniqueFd(fd);
}

// The names in a directory, sorted, so the moves happen in a fixed order.
std::vector<std::string> Names(int dir) {
  int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno("opening a staged directory");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    ThrowErrno("reading a staged directory");
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

using Xattrs = std::vector<std::pair<std::string, std::string>>;

Xattrs ReadXattrs(int fd) {
  ssize_t n = ::flistxattr(fd, nullptr, 0);
  if (n < 0) ThrowErrno("listing xattrs");
  std::string list(static_cast<size_t>(n), '\0');
  n = ::flistxattr(fd, list.data(), list.size());
  if (n < 0) ThrowErrno("listing xattrs");
  list.resize(static_cast<size_t>(n));
  Xattrs out;
  for (size_t pos = 0; pos < list.size();) {
    std::string name(list.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty()) continue;
    ssize_t len = ::fgetxattr(fd, name.c_str(), nullptr, 0);
    if (len < 0) ThrowErrno(fmt::format("reading xattr {}", name));
    std::string value(static_cast<size_t>(len), '\0');
    len = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
    if (len < 0) ThrowErrno(fmt::format("reading xattr {}", name));
    value.resize(static_cast<size_t>(len));
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

void SetXattrs(int fd, const Xattrs& xattrs, const std::string& rel) {
  for (const auto& [name, value] : xattrs) {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0)
      ThrowErrno(fmt::format("setting xattr {} on {}", name, rel));
  }
}

// One move of MoveIn, with what is needed to undo it.
struct Step {
  enum Kind {
    kAdded,
    kExchanged,
    kLinked,
    kDirMeta
  } kind;
  std::string rel;
  std::string backup;  // kLinked: the old entry's name in the staging dir's old/
  struct stat st {};   // kDirMeta: the directory as it was
  Xattrs xattrs;       // kDirMeta
};

class Mover {
 public:
  Mover(int tree, int target, int old, const std::unordered_map<std::string, DirMeta>& dirs)
      : tree_(tree), target_(target), old_(old), dirs_(dirs) {}

  void Merge(int sdir, int tdir, const std::string& rel) {
    Step meta{Step::kDirMeta, rel, {}, {}, {}};
    if (::fstat(tdir, &meta.st) != 0) ThrowErrno(rel);
    meta.xattrs = ReadXattrs(tdir);
    journal_.push_back(std::move(meta));  // first in, so undone last: after its contents
    for (const std::string& name : Names(sdir)) {
      std::string child = Join(rel, name);
      struct stat ss {
      }, ts{};
      if (::fstatat(sdir, name.c_str(), &ss, AT_SYMLINK_NOFOLLOW) != 0) ThrowErrno(child);
      if (::fstatat(tdir, name.c_str(), &ts, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) ThrowErrno(child);
        // New: renamed in, a directory with everything in it.
        if (::renameat2(sdir, name.c_str(), tdir, name.c_str(), RENAME_NOREPLACE) != 0 &&
            (errno != EINVAL || ::renameat(sdir, name.c_str(), tdir, name.c_str()) != 0)) {
          ThrowErrno(fmt::format("moving {} in", child));
        }
        journal_.push_back({Step::kAdded, child, {}, {}, {}});
        continue;
      }
      if (S_ISDIR(ss.st_mode) && S_ISDIR(ts.st_mode)) {
        UniqueFd s = OpenDirAt(sdir, name), t = OpenDirAt(tdir, name);
        Merge(s.get(), t.get(), child);
        continue;
      }
      // Replaced in one step: the old entry goes to the staging dir.
      if (::renameat2(sdir, name.c_str(), tdir, name.c_str(), RENAME_EXCHANGE) == 0) {
        journal_.push_back({Step::kExchanged, child, {}, {}, {}});
        continue;
      }
      if (errno != EINVAL || S_ISDIR(ss.st_mode) || S_ISDIR(ts.st_mode))
        ThrowErrno(fmt::format("replacing {}", child));
      // No RENAME_EXCHANGE on this filesystem: keep a second name of the
      // old entry, then rename over it (still atomic for readers).
      std::string backup = std::to_string(journal_.size());
      if (::linkat(tdir, name.c_str(), old_, backup.c_str(), 0) != 0)
        ThrowErrno(fmt::format("keeping the old {}", child));
      journal_.push_back({Step::kLinked, child, backup, {}, {}});
      if (::renameat(sdir, name.c_str(), tdir, name.c_str()) != 0)
        ThrowErrno(fmt::format("replacing {}", child));
    }
    // Last, because moving entries in changed the directory's mtime.
    auto it = dirs_.find(rel);
    if (it == dirs_.end()) return;
    const DirMeta& m = it->second;
    if (::fchown(tdir, m.uid, m.gid) != 0) ThrowErrno(fmt::format("setting the owner of {}", rel));
    SetXattrs(tdir, ReadXattrs(sdir), rel);
    if (::fchmod(tdir, m.mode & 07777) != 0) ThrowErrno(fmt::format("setting the mode of {}", rel));
    struct timespec ts[2] = {{0, UTIME_OMIT}, m.mtime};
    if (::futimens(tdir, ts) != 0) ThrowErrno(fmt::format("setting the mtime of {}", rel));
  }

  // Undoes every step, newest first; returns the steps that failed.
  std::vector<std::string> Undo() noexcept {
    std::vector<std::string> failed;
    for (auto it = journal_.rbegin(); it != journal_.rend(); ++it) {
      try {
        UndoStep(*it);
      } catch (const std::exception& e) {
        failed.push_back(e.what());
      }
    }
    journal_.clear();
    return failed;
  }

 private:
  void UndoStep(const Step& s) {
    const char* rel = s.rel.c_str();
    switch (s.kind) {
      case Step::kAdded:
        if (::renameat(target_, rel, tree_, rel) != 0)
          ThrowErrno(fmt::format("moving {} out", rel));
        return;
      case Step::kExchanged:
        if (::renameat2(target_, rel, tree_, rel, RENAME_EXCHANGE) != 0)
          ThrowErrno(fmt::format("putting the old {} back", rel));
        return;
      case Step::kLinked:
        if (::renameat(old_, s.backup.c_str(), target_, rel) != 0)
          ThrowErrno(fmt::format("putting the old {} back", rel));
        return;
      case Step::kDirMeta: {
        UniqueFd fd = OpenDirAt(target_, s.rel);
        for (const auto& present : ReadXattrs(fd.get())) {
          const std::string& name = present.first;
          bool had = std::any_of(s.xattrs.begin(), s.xattrs.end(),
                                 [&](const auto& x) { return x.first == name; });
          if (!had && ::fremovexattr(fd.get(), name.c_str()) != 0)
            ThrowErrno(fmt::format("removing xattr {} from {}", name, rel));
        }
        SetXattrs(fd.get(), s.xattrs, s.rel);
        if (::fchown(fd.get(), s.st.st_uid, s.st.st_gid) != 0 ||
            ::fchmod(fd.get(), s.st.st_mode & 07777) != 0) {
          ThrowErrno(fmt::format("putting back the owner and mode of {}", rel));
        }
        struct timespec ts[2] = {s.st.st_atim, s.st.st_mtim};
        if (::futimens(fd.get(), ts) != 0)
          ThrowErrno(fmt::format("putting back the mtime of {}", rel));
        return;
      }
    }
  }

  int tree_, target_, old_;
  const std::unordered_map<std::string, DirMeta>& dirs_;
  std::vector<Step> journal_;
};

}  // namespace

Staging::Staging(const std::string& target) : target_(target) {
  struct stat t {
  }, p{};
  std::string parent = Parent(target);
  if (::stat(target.c_str(), &t) != 0) ThrowErrno(target);
  if (::stat(parent.c_str(), &p) != 0) ThrowErrno(parent);
  // rename(2) works within one filesystem: beside the target, unless the
  // target is the root of its filesystem.
  inside_target_ = target == "/" || t.st_dev != p.st_dev;
  std::string mp = target;
  for (struct stat up{};
       mp != "/" && ::stat(Parent(mp).c_str(), &up) == 0 && up.st_dev == t.st_dev;)
    mp = Parent(mp);
  mount_point_ = mp;
  target_mtime_ = t.st_mtim;
  path_ = fmt::format("{}/.isoboot-restore-XXXXXX",
                      inside_target_ ? (target == "/" ? "" : target) : parent);
  if (!::mkdtemp(path_.data()))
    ThrowErrno(fmt::format("creating a staging directory in {}", Parent(path_)));
  tree_ = path_ + "/tree";
  old_ = path_ + "/old";
  if (::mkdir(tree_.c_str(), 0700) != 0 || ::mkdir(old_.c_str(), 0700) != 0) {
    int err = errno;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    throw std::system_error(err, std::generic_category(), fmt::format("creating {}", tree_));
  }
}

Staging::~Staging() {
  if (keep_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // never follows symlinks
  if (inside_target_) {
    // Creating and removing the staging dir changed the target's mtime.
    struct timespec ts[2] = {{0, UTIME_OMIT}, target_mtime_};
    ::utimensat(AT_FDCWD, target_.c_str(), ts, AT_SYMLINK_NOFOLLOW);
  }
}

void Staging::MoveIn(const std::unordered_map<std::string, DirMeta>& dirs) {
  UniqueFd tree(::open(tree_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  UniqueFd target(::open(target_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UniqueFd old(::open(old_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!tree.valid() || !target.valid() || !old.valid())
    ThrowErrno(fmt::format("opening {} to move the restore in", target_));
  Mover mover(tree.get(), target.get(), old.get(), dirs);
  try {
    mover.Merge(tree.get(), target.get(), ".");
  } catch (const std::exception& e) {
    std::vector<std::string> failed = mover.Undo();
    if (failed.empty()) {
      throw std::runtime_error(
          fmt::format("{}; every entry moved in so far was put back", e.what()));
    }
    keep_ = true;  // it holds the old entries that could not be put back
    throw std::runtime_error(
        fmt::format("{}; putting back what was moved in failed for {} entries (the old entries "
                    "are in {}): {}",
                    e.what(), failed.size(), path_, failed.front()));
  }
  struct stat st {};
  if (::fstat(target.get(), &st) == 0) target_mtime_ = st.st_mtim;
}

}  // namespace isoboot::overlay
