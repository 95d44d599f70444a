#include "iso/data_image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "iso/libisofs_init.h"

namespace isoboot::iso {
namespace {

// A data medium holds configs, not a distribution: these bound the walk of
// a directory the user names, not anything an honest tree reaches.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxEntries = 100000;
constexpr int kMaxLinkHops = 40;  // as the kernel's MAXSYMLINKS

std::string LibisofsMessage(int code) {
  const char* m = iso_error_to_msg(code);
  return m ? m : fmt::format("libisofs error {}", code);
}

Result<std::string> ReadLink(const std::string& path) {
  std::vector<char> buf(4096);
  ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0) return OsError(errno, path + ": cannot read the symlink");
  if (static_cast<size_t>(n) == buf.size()) return MakeError(path + ": symlink target too long");
  return std::string(buf.data(), static_cast<size_t>(n));
}

// Whether `target`, followed from the directory `at` (components below
// `root`), stays inside `root`, following the symlinks it meets inside root
// as the kernel would: a target that is absolute, climbs above root with
// "..", or passes through a symlink that does, leaves it. On success `at`
// is where the target leads.
bool ResolvesInside(const std::string& root, std::vector<std::string>& at, std::string_view target,
                    int& hops) {
  if (target.empty() || target.front() == '/') return false;
  size_t pos = 0;
  while (pos <= target.size()) {
    size_t slash = target.find('/', pos);
    if (slash == std::string_view::npos) slash = target.size();
    std::string_view c = target.substr(pos, slash - pos);
    pos = slash + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (at.empty()) return false;
      at.pop_back();
      continue;
    }
    at.emplace_back(c);
    std::string path = root;
    for (const auto& part : at)
      path += "/" + part;
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++hops > kMaxLinkHops) return false;
      auto next = ReadLink(path);
      if (!next) return false;
      at.pop_back();
      if (!ResolvesInside(root, at, *next, hops)) return false;
    }
  }
  return true;
}

void CopyAttributes(IsoNode* node, const struct stat& st) {
  iso_node_set_permissions(node, st.st_mode & 07777);
  // A data medium's files belong to root on the live system, whoever made them here.
  iso_node_set_uid(node, 0);
  iso_node_set_gid(node, 0);
  iso_node_set_mtime(node, st.st_mtime);
  iso_node_set_atime(node, st.st_mtime);
  iso_node_set_ctime(node, st.st_mtime);
}

class Walker {
 public:
  Walker(IsoImage* image, std::string root) : image_(image), root_(std::move(root)) {}

  // Adds the entries of the directory `rel` (components below root) to `parent`.
  Result<void> AddDir(IsoDir* parent, std::vector<std::string>& rel) {
    std::string path = Path(rel);
    if (static_cast<int>(rel.size()) >= kMaxDepth) {
      return MakeError(fmt::format("{}: nested deeper than {} directories", path, kMaxDepth));
    }
    std::vector<std::string> names;
    {
      DIR* d = opendir(path.c_str());
      if (!d) return OsError(errno, path + ": cannot read the directory");
      std::unique_ptr<DIR, int (*)(DIR*)> closer(d, closedir);
      errno = 0;
      while (dirent* e = readdir(d)) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
        errno = 0;
      }
      if (errno != 0) return OsError(errno, path + ": cannot read the directory");
    }
    std::sort(names.begin(), names.end());  // the same tree gives the same image
    for (const auto& name : names) {
      if (++entries_ > kMaxEntries) {
        return MakeError(fmt::format("{}: more than {} entries", root_, kMaxEntries));
      }
      rel.push_back(name);
      auto r = AddEntry(parent, rel);
      rel.pop_back();
      if (!r) return r;
    }
    return {};
  }

 private:
  std::string Path(const std::vector<std::string>& rel) const {
    std::string p = root_;
    for (const auto& c : rel)
      p += "/" + c;
    return p;
  }

  Result<void> AddEntry(IsoDir* parent, std::vector<std::string>& rel) {
    std::string path = Path(rel);
    const std::string& name = rel.back();
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return OsError(errno, path);
    IsoNode* node = nullptr;
    int rc = 0;
    if (S_ISDIR(st.st_mode)) {
      IsoDir* dir = nullptr;
      rc = iso_tree_add_new_dir(parent, name.c_str(), &dir);
      if (rc < 0) return MakeError(path + ": " + LibisofsMessage(rc));
      CopyAttributes(reinterpret_cast<IsoNode*>(dir), st);
      return AddDir(dir, rel);
    }
    if (S_ISREG(st.st_mode)) {
      UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return OsError(errno, path + ": cannot read the file");
      rc = iso_tree_add_new_node(image_, parent, name.c_str(), path.c_str(), &node);
    } else if (S_ISLNK(st.st_mode)) {
      auto target = ReadLink(path);
      if (!target) return target.error();
      std::vector<std::string> at(rel.begin(), rel.end() - 1);
      int hops = 0;
      if (!ResolvesInside(root_, at, *target, hops)) {
        return MakeError(
            fmt::format("{}: the symlink to {} does not stay inside {}", path, *target, root_));
      }
      IsoSymlink* link = nullptr;
      rc = iso_tree_add_new_symlink(parent, name.c_str(), target->c_str(), &link);
      node = reinterpret_cast<IsoNode*>(link);
    } else {
      const char* what = S_ISFIFO(st.st_mode)   ? "a FIFO"
                         : S_ISSOCK(st.st_mode) ? "a socket"
                         : S_ISCHR(st.st_mode)  ? "a character device"
                         : S_ISBLK(st.st_mode)  ? "a block device"
                                                : "not a file";
      return MakeError(fmt::format(
          "{}: is {}; a data image holds only files, directories and symlinks", path, what));
    }
    if (rc < 0) return MakeError(path + ": " + LibisofsMessage(rc));
    CopyAttributes(node, st);
    return {};
  }

  IsoImage* image_;
  std::string root_;
  size_t entries_ = 0;
};

// Writes the image to `fd`; returns the bytes written.
Result<uint64_t> Burn(IsoImage* image, int fd) {
  IsoWriteOpts* raw_opts = nullptr;
  int rc = iso_write_opts_new(&raw_opts, 0);
  if (rc < 0) return MakeError("libisofs: " + LibisofsMessage(rc));
  WriteOptsPtr opts(raw_opts);
  iso_write_opts_set_iso_level(opts.get(), 3);  // files of 4 GiB and more
  iso_write_opts_set_rockridge(opts.get(), 1);
  iso_write_opts_set_joliet(opts.get(), 1);
  iso_write_opts_set_joliet_longer_paths(opts.get(), 1);
  iso_write_opts_set_joliet_long_names(opts.get(), 1);
  burn_source* src = nullptr;
  rc = iso_image_create_burn_source(image, opts.get(), &src);
  if (rc < 0) return MakeError("cannot lay out the image: " + LibisofsMessage(rc));
  auto expected = static_cast<uint64_t>(src->get_size(src));
  uint64_t written = 0;
  Result<uint64_t> result = written;
  // libisofs's demo reads one block at a time; a larger read stopped short here.
  std::vector<unsigned char> buf(2048);
  while (written < expected) {
    int n = src->read_xt(src, buf.data(), static_cast<int>(buf.size()));
    if (n <= 0) break;
    size_t off = 0;
    while (off < static_cast<size_t>(n)) {
      ssize_t w = write(fd, buf.data() + off, static_cast<size_t>(n) - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        result = OsError(errno, "cannot write the image");
        break;
      }
      off += static_cast<size_t>(w);
    }
    if (!result) break;
    written += static_cast<uint64_t>(n);
  }
  if (result && written != expected) {
    result = MakeError(fmt::format(
        "libisofs stopped after {} of {} bytes (a file could not be read?)", written, expected));
  }
  if (!result) src->cancel(src);
  src->free_data(src);
  free(src);
  if (!result) return result;
  return written;
}

}  // namespace

Result<std::string> CheckDataLabel(std::string_view label) {
  if (label.empty() || label.size() > 32) {
    return MakeError(fmt::format("data label \"{}\": must be 1 to 32 characters (it has {})", label,
                                 label.size()));
  }
  for (char c : label) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return MakeError(fmt::format(
          "data label \"{}\": only A-Z, 0-9 and _ are allowed in a volume id (not '{}')", label,
          c));
    }
  }
  return std::string(label);
}

Result<std::string> WriteDataImage(const std::string& dir, std::string_view label,
                                   const std::string& out_path) {
  if (auto l = CheckDataLabel(label); !l) return l.error();
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return OsError(errno, dir);
  if (!S_ISDIR(st.st_mode)) return MakeError(dir + ": not a directory");
  std::string root = dir;
  while (root.size() > 1 && root.back() == '/')
    root.pop_back();

  InitLibisofsOnce();
  IsoImage* raw = nullptr;
  std::string volid(label);
  int rc = iso_image_new(volid.c_str(), &raw);
  if (rc < 0) return MakeError("libisofs: " + LibisofsMessage(rc));
  ImagePtr image(raw);
  iso_image_set_volume_id(image.get(), volid.c_str());
  iso_tree_set_follow_symlinks(image.get(), 0);
  IsoDir* iso_root = iso_image_get_root(image.get());
  CopyAttributes(reinterpret_cast<IsoNode*>(iso_root), st);
  Walker walker(image.get(), root);
  std::vector<std::string> rel;
  if (auto r = walker.AddDir(iso_root, rel); !r) return r.error();

  std::string tmp = out_path + ".tmp.XXXXXX";
  UniqueFd fd(mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return OsError(errno, tmp);
  auto written = Burn(image.get(), fd.get());
  Result<void> done;
  if (!written) {
    done = written.error();
  } else if (fchmod(fd.get(), 0644) != 0 || fsync(fd.get()) != 0) {
    done = OsError(errno, tmp);
  } else if (close(fd.release()) != 0) {
    done = OsError(errno, tmp);
  } else if (rename(tmp.c_str(), out_path.c_str()) != 0) {
    done = OsError(errno, "cannot rename " + tmp + " to " + out_path);
  }
  if (!done) {
    unlink(tmp.c_str());
    return done.error();
  }
  return out_path;
}

}  // namespace isoboot::iso
