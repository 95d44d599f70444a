// Pass 2 of restore (restore.h): unpacks the verified entries into a staging
// directory and moves them in (staging.h), or compares them (dry run).

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

#include <fmt/format.h>

#include "base/file_io.h"
#include "overlay/archive_ptr.h"
#include "overlay/restore.h"
#include "overlay/sha256.h"
#include "overlay/staging.h"

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
  Sha256* sha = nullptr;  // hashes what is read, when set
};

la_ssize_t ReadCallback(struct archive*, void* client, const void** out) {
  auto* r = static_cast<Reader*>(client);
  try {
    size_t n = static_cast<size_t>(std::min<uint64_t>(r->buf.size(), r->limit - r->pos));
    n = PreadFull(r->fd, {r->buf.data(), n}, r->pos);
    if (r->sha) r->sha->Update({r->buf.data(), n});
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
// its xattrs are set on the staging tree here (failing before the target is
// touched when they cannot be set) and copied over with its owner, mode and
// mtime by Staging::MoveIn.
void SetRootXattrs(struct archive_entry* e) {
  const char* name;
  const void* value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (::lsetxattr(".", name, value, size, 0) != 0)
      ThrowErrno(fmt::format("setting xattr {} on the upper directory", name));
  }
}

// Why a libarchive write failed, in one line; a full disk names the
// filesystem and the space it had.
std::string WriteFailure(struct archive* disk, const std::string& rel, const Staging& staging,
                         const Verified& verified, uint64_t free_before) {
  int err = archive_errno(disk);
  const char* msg = archive_error_string(disk);
  if (err == ENOSPC || err == EDQUOT) {
    return fmt::format(
        "no space left on {} ({} were free; the backup holds {} of files) while writing {}",
        staging.mount_point(), SizeText(free_before), SizeText(verified.content_bytes), rel);
  }
  std::string why = msg ? msg : "libarchive error";
  if (err > 0 && why.find(std::strerror(err)) == std::string::npos)
    why += fmt::format(": {}", std::strerror(err));
  return fmt::format("writing {}: {}", rel, why);
}

// The staged entries against the manifest: each is there, with its type and
// (files) size. Catches whatever a write error report did not.
void CheckStaged(const std::string& tree, const Manifest& manifest) {
  UniqueFd dir = OpenOrThrow(tree, O_RDONLY | O_DIRECTORY);
  for (const auto& m : manifest.entries) {
    if (m.path == ".") continue;
    struct stat st {};
    if (::fstatat(dir.get(), m.path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      throw std::runtime_error(fmt::format("{} is missing after it was written", m.path));
    bool ok = true;
    switch (m.type) {
      case 'f':
        ok = S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == m.size;
        break;
      case 'd':
        ok = S_ISDIR(st.st_mode);
        break;
      case 'l':
        ok = S_ISLNK(st.st_mode);
        break;
      case 'c':
        ok = S_ISCHR(st.st_mode);
        break;
      case 'b':
        ok = S_ISBLK(st.st_mode);
        break;
      case 'p':
        ok = S_ISFIFO(st.st_mode);
        break;
      default:
        break;
    }
    if (!ok) throw std::runtime_error(fmt::format("{} was not written as archived", m.path));
  }
}

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return 0;
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

ArchivePtr OpenArchive(Reader& in) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &in, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    throw std::runtime_error(archive_error_string(a.get()));
  }
  return a;
}

RestoreStats DryRun(int fd, const Verified& verified, const RestoreOptions& options,
                    const std::string& target) {
  std::unordered_map<std::string, std::string> sha;
  for (const auto& m : verified.manifest.entries) {
    if (m.type == 'f') sha[m.path] = m.sha256;
  }
  Reader in{fd, verified.trailer.size, 0, std::vector<uint8_t>(1 << 20), &options.progress, {}};
  ArchivePtr a = OpenArchive(in);
  InDirectory cd(target);
  RestoreStats stats;
  struct archive_entry* e;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    std::string rel = Checked(archive_entry_pathname(e));
    if (rel == kManifestName) break;
    ++stats.entries;
    if (Differs(e, rel, sha[rel])) {
      bool whiteout = archive_entry_filetype(e) == AE_IFCHR && archive_entry_rdev(e) == 0;
      struct stat st {};
      bool exists = ::lstat(rel.c_str(), &st) == 0;
      stats.changes.push_back({whiteout ? 'w' : (exists ? '~' : '+'), rel});
    } else {
      ++stats.unchanged;
    }
  }
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN && r != ARCHIVE_EOF) {
    throw std::runtime_error(fmt::format("reading the archive: {}", archive_error_string(a.get())));
  }
  return stats;
}

// Unpacks the archive into staging.tree(), failing on anything but
// ARCHIVE_OK from libarchive's writer; returns the archive's directories.
std::unordered_map<std::string, DirMeta> Unpack(int fd, const Verified& verified,
                                                const RestoreOptions& options,
                                                const Staging& staging, RestoreStats& stats) {
  uint64_t free_before = FreeBytes(staging.tree());
  Sha256 sha;
  Reader in{fd, verified.trailer.size, 0, std::vector<uint8_t>(1 << 20), &options.progress, {}};
  in.sha = &sha;
  ArchivePtr a = OpenArchive(in);
  std::unordered_map<std::string, DirMeta> dirs;
  // Relative paths, so that libarchive's own checks apply; `disk` is freed
  // (which runs its pending directory fix-ups) before the directory changes back.
  InDirectory cd(staging.tree());
  ArchivePtr disk(archive_write_disk_new(), archive_write_free);
  // Numeric owners (no name lookup), and libarchive's own refusals on top of
  // Verify's: no absolute paths, no "..", nothing through a symlink.
  archive_write_disk_set_options(
      disk.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                      ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_XATTR |
                      ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                      ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK);
  auto fail = [&](const std::string& rel) {
    throw std::runtime_error(WriteFailure(disk.get(), rel, staging, verified, free_before));
  };
  uint64_t data = 0;
  struct archive_entry* e;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    std::string rel = Checked(archive_entry_pathname(e));
    if (rel == kManifestName) break;
    if (++stats.entries > verified.manifest.entries.size())
      throw std::runtime_error("the archive changed after it was verified");
    if (archive_entry_filetype(e) == AE_IFDIR) {
      dirs[rel] = DirMeta{static_cast<mode_t>(archive_entry_mode(e)),
                          static_cast<uid_t>(archive_entry_uid(e)),
                          static_cast<gid_t>(archive_entry_gid(e)),
                          {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
    }
    if (rel == ".") {  // libarchive refuses an empty name: its xattrs by hand
      SetRootXattrs(e);
      continue;
    }
    archive_entry_copy_pathname(e, rel.c_str());
    if (const char* h = archive_entry_hardlink(e))
      archive_entry_copy_hardlink(e, Checked(h).c_str());
    if (archive_write_header(disk.get(), e) != ARCHIVE_OK) fail(rel);
    const void* buf;
    size_t len;
    la_int64_t offset;
    while ((r = archive_read_data_block(a.get(), &buf, &len, &offset)) == ARCHIVE_OK) {
      data += len;
      if (data > verified.content_bytes)
        throw std::runtime_error("the archive changed after it was verified");
      if (archive_write_data_block(disk.get(), buf, len, offset) < 0) fail(rel);
    }
    if (r != ARCHIVE_EOF)
      throw std::runtime_error(fmt::format("{}: {}", rel, archive_error_string(a.get())));
    if (archive_write_finish_entry(disk.get()) != ARCHIVE_OK) fail(rel);
  }
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN && r != ARCHIVE_EOF) {
    throw std::runtime_error(fmt::format("reading the archive: {}", archive_error_string(a.get())));
  }
  if (archive_write_close(disk.get()) != ARCHIVE_OK) fail("the directories' modes and times");
  // The bytes written came from the bytes Verify checked (a file source
  // could have changed in between).
  while (in.pos < in.limit) {
    const void* ignored;
    if (ReadCallback(a.get(), &in, &ignored) <= 0) break;
  }
  if (!in.error.empty() || sha.Final() != verified.trailer.sha256)
    throw std::runtime_error("the archive changed after it was verified");
  return dirs;
}

}  // namespace

RestoreStats Apply(int fd, const Verified& verified, const RestoreOptions& options) {
  char real[PATH_MAX];
  if (!::realpath(options.target.c_str(), real)) ThrowErrno(options.target);
  if (options.dry_run) return DryRun(fd, verified, options, real);
  RestoreStats stats;
  std::optional<Staging> staging;
  try {
    staging.emplace(real);
    auto dirs = Unpack(fd, verified, options, *staging, stats);
    CheckStaged(staging->tree(), verified.manifest);
    staging->MoveIn(dirs);
  } catch (const std::exception& e) {
    if (staging && staging->mixed()) {
      throw std::runtime_error(
          fmt::format("restore into {} failed and left it partly restored: {}", real, e.what()));
    }
    throw std::runtime_error(
        fmt::format("restore into {} failed, {} is unchanged: {}", real, real, e.what()));
  }
  return stats;
}

}  // namespace isoboot::overlay
