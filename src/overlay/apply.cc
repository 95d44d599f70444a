// Pass 2 of restore (restore.h): writes or compares the verified entries.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

#include <fmt/format.h>

#include "base/file_io.h"
#include "overlay/archive_ptr.h"
#include "overlay/restore.h"
#include "overlay/sha256.h"

namespace isoboot::overlay {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Works inside the target with relative paths, so libarchive's own
// absolute-path and symlink checks apply to every entry; back where we were
// afterwards.
class InDirectory {
 public:
  explicit InDirectory(const std::string& dir) : saved_(OpenOrThrow(".", O_RDONLY | O_DIRECTORY)) {
    if (::chdir(dir.c_str()) != 0) ThrowErrno(dir);
  }
  ~InDirectory() {
    if (::fchdir(saved_.get()) != 0) {
      // Nothing sensible to do in a destructor; the CLI exits next.
    }
  }

 private:
  UniqueFd saved_;
};

struct Reader {
  int fd;
  uint64_t limit;
  uint64_t pos = 0;
  std::vector<uint8_t> buf = std::vector<uint8_t>(1 << 20);
  const ProgressFn* progress;
  std::string error;
};

la_ssize_t ReadCallback(struct archive*, void* client, const void** out) {
  auto* r = static_cast<Reader*>(client);
  try {
    size_t n = static_cast<size_t>(std::min<uint64_t>(r->buf.size(), r->limit - r->pos));
    n = PreadFull(r->fd, {r->buf.data(), n}, r->pos);
    r->pos += n;
    if (*r->progress) (*r->progress)(r->pos, r->limit);
    *out = r->buf.data();
    return static_cast<la_ssize_t>(n);
  } catch (const std::exception& e) {
    r->error = e.what();
    return -1;
  }
}

std::string FileSha(const std::string& path) {
  UniqueFd fd = OpenOrThrow(path, O_RDONLY | O_NOFOLLOW);
  Sha256 sha;
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0;;) {
    size_t n = PreadFull(fd.get(), buf, off);
    if (n == 0) break;
    sha.Update({buf.data(), n});
    off += n;
  }
  return Hex(sha.Final());
}

// Verify checked every path; this only guards against the file changing
// between the two passes (sources other than files are private memfds).
std::string Checked(const char* path) {
  auto p = SafeRelativePath(path ? path : "");
  if (!p) throw std::runtime_error("the archive changed after it was verified");
  return *p;
}

// Dry run: what would restoring `e` at `rel` change?
bool Differs(struct archive_entry* e, const std::string& rel, const std::string& sha) {
  struct stat st {};
  if (::lstat(rel.c_str(), &st) != 0) return true;
  if (const char* h = archive_entry_hardlink(e)) {
    struct stat target {};
    return ::lstat(Checked(h).c_str(), &target) != 0 || target.st_ino != st.st_ino ||
           target.st_dev != st.st_dev;
  }
  if ((st.st_mode & S_IFMT) != archive_entry_filetype(e)) return true;
  if (rel != "." && ((st.st_mode & 07777) != (archive_entry_mode(e) & 07777) ||
                     st.st_uid != static_cast<uid_t>(archive_entry_uid(e)) ||
                     st.st_gid != static_cast<gid_t>(archive_entry_gid(e)))) {
    return true;
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      return static_cast<int64_t>(st.st_size) != archive_entry_size(e) || FileSha(rel) != sha;
    case AE_IFLNK: {
      char buf[PATH_MAX + 1];
      ssize_t n = ::readlink(rel.c_str(), buf, PATH_MAX);
      const char* want = archive_entry_symlink(e);
      return n < 0 || std::string(buf, static_cast<size_t>(n)) != (want ? want : "");
    }
    case AE_IFCHR:
    case AE_IFBLK:
      return st.st_rdev != archive_entry_rdev(e);
    default:
      break;
  }
  // Directories: the opaque mark is what matters to the merged view.
  bool want_opaque = false;
  const char* name;
  const void* value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (std::string_view(name) == "trusted.overlay.opaque") want_opaque = true;
  }
  char v[8];
  bool is_opaque = ::lgetxattr(rel.c_str(), "trusted.overlay.opaque", v, sizeof v) > 0;
  return want_opaque != is_opaque;
}

// The target directory itself ("."): libarchive refuses an empty name, so
// its owner, mode and xattrs are set here.
void ApplyRoot(struct archive_entry* e) {
  if (::lchown(".", static_cast<uid_t>(archive_entry_uid(e)),
               static_cast<gid_t>(archive_entry_gid(e))) != 0 ||
      ::chmod(".", archive_entry_mode(e) & 07777) != 0) {
    ThrowErrno("setting owner and mode of the upper directory");
  }
  const char* name;
  const void* value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (::lsetxattr(".", name, value, size, 0) != 0)
      ThrowErrno(fmt::format("setting xattr {} on .", name));
  }
}

}  // namespace

RestoreStats Apply(int fd, const Verified& verified, const RestoreOptions& options) {
  char real[PATH_MAX];
  if (!::realpath(options.target.c_str(), real)) ThrowErrno(options.target);
  std::unordered_map<std::string, std::string> sha;
  for (const auto& m : verified.manifest.entries) {
    if (m.type == 'f') sha[m.path] = m.sha256;
  }
  Reader in{fd, verified.trailer.size, 0, std::vector<uint8_t>(1 << 20), &options.progress, {}};
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &in, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    throw std::runtime_error(archive_error_string(a.get()));
  }
  ArchivePtr disk(archive_write_disk_new(), archive_write_free);
  // Numeric owners (no name lookup), and libarchive's own refusals on top of
  // Verify's: no absolute paths, no "..", nothing through a symlink.
  archive_write_disk_set_options(
      disk.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                      ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_XATTR |
                      ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                      ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK);
  InDirectory cd(real);
  RestoreStats stats;
  struct archive_entry* root = nullptr;
  struct archive_entry* e;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    std::string rel = Checked(archive_entry_pathname(e));
    if (rel == kManifestName) break;
    ++stats.entries;
    if (options.dry_run) {
      if (Differs(e, rel, sha[rel])) {
        bool whiteout = archive_entry_filetype(e) == AE_IFCHR && archive_entry_rdev(e) == 0;
        struct stat st {};
        bool exists = ::lstat(rel.c_str(), &st) == 0;
        stats.changes.push_back({whiteout ? 'w' : (exists ? '~' : '+'), rel});
      } else {
        ++stats.unchanged;
      }
      continue;
    }
    if (rel == ".") {
      root = archive_entry_clone(e);
      ApplyRoot(e);
      continue;
    }
    archive_entry_copy_pathname(e, rel.c_str());
    if (const char* h = archive_entry_hardlink(e))
      archive_entry_copy_hardlink(e, Checked(h).c_str());
    if (archive_write_header(disk.get(), e) < ARCHIVE_WARN) {
      throw std::runtime_error(fmt::format("{}: {}", rel, archive_error_string(disk.get())));
    }
    const void* buf;
    size_t len;
    la_int64_t offset;
    while ((r = archive_read_data_block(a.get(), &buf, &len, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(disk.get(), buf, len, offset) < ARCHIVE_WARN) {
        throw std::runtime_error(fmt::format("{}: {}", rel, archive_error_string(disk.get())));
      }
    }
    if (r != ARCHIVE_EOF)
      throw std::runtime_error(fmt::format("{}: {}", rel, archive_error_string(a.get())));
    if (archive_write_finish_entry(disk.get()) < ARCHIVE_WARN) {
      throw std::runtime_error(fmt::format("{}: {}", rel, archive_error_string(disk.get())));
    }
  }
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN && r != ARCHIVE_EOF) {
    throw std::runtime_error(fmt::format("reading the archive: {}", archive_error_string(a.get())));
  }
  if (archive_write_close(disk.get()) != ARCHIVE_OK) {
    throw std::runtime_error(
        fmt::format("finishing the restore: {}", archive_error_string(disk.get())));
  }
  if (root) {  // last, because writing entries changed the directory's mtime
    struct timespec ts[2] = {{archive_entry_mtime(root), archive_entry_mtime_nsec(root)},
                             {archive_entry_mtime(root), archive_entry_mtime_nsec(root)}};
    ::utimensat(AT_FDCWD, ".", ts, AT_SYMLINK_NOFOLLOW);
    archive_entry_free(root);
  }
  return stats;
}

}  // namespace isoboot::overlay
