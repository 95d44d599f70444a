#include "iso/node_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "iso/boot_menu.h"
#include "iso/image.h"

namespace isoboot::iso {
namespace {

constexpr size_t kMaxEntries = 100'000;
constexpr size_t kMaxDepth = 64;
constexpr uint64_t kMaxFileBytes = uint64_t{1} << 30;

Result<std::shared_ptr<const std::string>> ReadHostFile(const std::string& path, uint64_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return MakeError(fmt::format("{}: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return MakeError(fmt::format("{}: not a regular file", path));
  }
  if (static_cast<uint64_t>(st.st_size) > limit) {
    return MakeError(
        fmt::format("{}: {} bytes, more than the {} a node image takes", path, st.st_size, limit));
  }
  auto data = std::make_shared<std::string>(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data->size()) {
    ssize_t n = ::read(fd.get(), data->data() + done, data->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return MakeError(fmt::format("{}: {}", path, std::strerror(errno)));
    if (n == 0) return MakeError(fmt::format("{}: shrank while being read", path));
    done += static_cast<size_t>(n);
  }
  return std::shared_ptr<const std::string>(std::move(data));
}

std::string JoinPath(std::string_view at, std::string_view rel) {
  std::string out(at);
  while (out.size() > 1 && out.ends_with('/'))
    out.pop_back();
  if (rel.empty()) return out.empty() ? "/" : out;
  return (out == "/" ? "" : out) + "/" + std::string(rel);
}

}  // namespace

Result<std::vector<AddedEntry>> ReadHostTree(const std::string& dir, std::string_view at) {
  namespace fs = std::filesystem;
  std::error_code ec;
  struct stat top {};
  if (::lstat(dir.c_str(), &top) != 0)
    return MakeError(fmt::format("{}: {}", dir, std::strerror(errno)));
  if (!S_ISDIR(top.st_mode)) return MakeError(fmt::format("{}: not a directory", dir));
  std::vector<AddedEntry> out;
  out.push_back({AddedEntry::Type::kDirectory, JoinPath(at, ""), nullptr, "",
                 static_cast<uint32_t>(top.st_mode & 07777), top.st_mtim.tv_sec});
  uint64_t bytes = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) return MakeError(fmt::format("{}: {}", dir, ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) return MakeError(fmt::format("{}: {}", dir, ec.message()));
    if (out.size() > kMaxEntries) {
      return MakeError(fmt::format("{}: more than {} entries", dir, kMaxEntries));
    }
    if (static_cast<size_t>(it.depth()) >= kMaxDepth) {
      return MakeError(fmt::format("{}: deeper than {} levels", dir, kMaxDepth));
    }
    const fs::path& p = it->path();
    const std::string rel = p.lexically_relative(dir).generic_string();
    const std::string shown = p.string();
    struct stat st {};
    if (::lstat(shown.c_str(), &st) != 0) {
      return MakeError(fmt::format("{}: {}", shown, std::strerror(errno)));
    }
    AddedEntry e;
    e.path = JoinPath(at, rel);
    e.mode = static_cast<uint32_t>(st.st_mode & 07777);
    e.mtime = st.st_mtim.tv_sec;
    if (S_ISDIR(st.st_mode)) {
      e.type = AddedEntry::Type::kDirectory;
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(shown.c_str(), target.data(), target.size());
      if (n < 0 || static_cast<size_t>(n) >= target.size()) {
        return MakeError(fmt::format("{}: cannot read the symlink", shown));
      }
      target.resize(static_cast<size_t>(n));
      // Resolved where it stands, a symlink must stay in the tree: the
      // image is mounted somewhere else, and what lies outside is not in it.
      fs::path resolved = (fs::path(rel).parent_path() / target).lexically_normal();
      if (target.empty() || target.starts_with('/') || resolved.empty() ||
          *resolved.begin() == "..") {
        return MakeError(fmt::format(
            "{}: a symlink to {} points out of {} (refused: the image would not hold its target)",
            shown, target, dir));
      }
      e.type = AddedEntry::Type::kSymlink;
      e.target = std::move(target);
    } else if (S_ISREG(st.st_mode)) {
      if (bytes + static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
        return MakeError(fmt::format("{}: more than {} bytes of files", dir, kMaxFileBytes));
      }
      auto data = ReadHostFile(shown, kMaxFileBytes - bytes);
      if (!data) return data.error();
      bytes += (*data)->size();
      e.type = AddedEntry::Type::kFile;
      e.data = std::move(*data);
    } else {
      return MakeError(
          fmt::format("{}: a device, FIFO or socket (only files, directories and "
                      "symlinks go into an image)",
                      shown));
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<NodeImage> MakeNodeImage(const Image& base, const NodeImageSpec& spec) {
  if (auto ok = CheckKernelArgs(spec.kernel_args); !ok) return ok.error();
  NodeImage out;
  std::vector<AddedEntry> entries;
  MenuChange change;
  change.kernel_args = spec.kernel_args;
  if (!spec.extra_initrds.empty()) {
    auto joined = std::make_shared<std::string>();
    for (const std::string& path : spec.extra_initrds) {
      auto data = ReadHostFile(path, kMaxFileBytes);
      if (!data) return data.error();
      // Concatenated archives are unpacked one after the other; the next
      // one starts on 4 bytes, where the kernel's unpacker looks for a
      // header after skipping NULs.
      joined->resize((joined->size() + 3) / 4 * 4, '\0');
      joined->append(**data);
    }
    AddedEntry e;
    e.path = kNodeInitrdPath;
    e.data = std::move(joined);
    entries.push_back(std::move(e));
    change.extra_initrd = kNodeInitrdPath;
  }
  if (!change.kernel_args.empty() || !change.extra_initrd.empty()) {
    const Tree& tree = base.tree();
    for (const Node& n : tree.nodes) {
      if (n.type != NodeType::kRegular) continue;
      std::string path = tree.PathOf(n);
      std::optional<MenuKind> kind = MenuKindOf(path);
      if (!kind) continue;
      if (n.size > kMaxMenuBytes) {
        out.warnings.push_back(
            fmt::format("{}: left as it is: {} bytes is no boot menu", path, n.size));
        continue;
      }
      std::vector<uint8_t> text(static_cast<size_t>(n.size));
      if (base.Read(n, 0, text) != text.size()) {
        return MakeError(fmt::format("{}: {} could not be read whole", base.path(), path));
      }
      auto menu = RewriteMenu(*kind, text, change);
      if (!menu) {
        out.warnings.push_back(fmt::format("{}: left as it is: {}", path, menu.error().message));
        continue;
      }
      if (menu->entries == 0) continue;
      out.menus.push_back(path);
      out.entries += menu->entries;
      AddedEntry e;
      e.path = path;
      e.data = std::make_shared<const std::string>(std::move(menu->text));
      e.mode = n.mode & 07777;
      e.mtime = n.mtime;
      entries.push_back(std::move(e));
    }
    if (out.menus.empty()) {
      std::string why;
      for (const std::string& w : out.warnings)
        why += "; " + w;
      return MakeError(fmt::format(
          "{}: no boot menu with a Linux entry (isolinux.cfg, syslinux.cfg, grub.cfg) to put the "
          "node's kernel arguments and initrd in{}",
          base.path(), why));
    }
  }
  if (!spec.files_dir.empty()) {
    auto files = ReadHostTree(spec.files_dir, spec.files_path);
    if (!files) return files.error();
    for (AddedEntry& e : *files)
      entries.push_back(std::move(e));
  }
  auto grown = Grow(base, entries);
  if (!grown) return grown.error();
  out.grown = std::move(*grown);
  return out;
}

}  // namespace isoboot::iso
