// `isoboot iso info|ls|cat|extract`: read a live ISO without mounting it;
// `isoboot iso grow`: write one node's image (iso/node_image.h) to a file.

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/file_io.h"
#include "cli/command.h"
#include "initrd/reader.h"
#include "initrd/transports.h"
#include "iso/extract.h"
#include "iso/image.h"
#include "iso/layout.h"
#include "iso/node_image.h"

namespace isoboot::cli {
namespace {

using iso::Node;
using iso::NodeType;

std::unique_ptr<iso::Image> OpenImage(const std::string& path) {
  return OrThrow(iso::Image::Open(path));
}

const Node& FindOrThrow(const iso::Tree& tree, const std::string& path) {
  const Node* n = tree.Find(path);
  if (!n) throw std::runtime_error(fmt::format("{}: no such file in the image", path));
  return *n;
}

std::string ModeString(const Node& n) {
  std::string s = "?---------";
  switch (n.mode & S_IFMT) {
    case S_IFDIR:
      s[0] = 'd';
      break;
    case S_IFREG:
      s[0] = '-';
      break;
    case S_IFLNK:
      s[0] = 'l';
      break;
    case S_IFCHR:
      s[0] = 'c';
      break;
    case S_IFBLK:
      s[0] = 'b';
      break;
    case S_IFIFO:
      s[0] = 'p';
      break;
    case S_IFSOCK:
      s[0] = 's';
      break;
  }
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (n.mode & (0400u >> i)) s[1 + i] = rwx[i];
  }
  if (n.mode & S_ISUID) s[3] = (n.mode & S_IXUSR) ? 's' : 'S';
  if (n.mode & S_ISGID) s[6] = (n.mode & S_IXGRP) ? 's' : 'S';
  if (n.mode & S_ISVTX) s[9] = (n.mode & S_IXOTH) ? 't' : 'T';
  return s;
}

std::string TimeString(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  localtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

struct LsOptions {
  bool long_format = false;
  bool recursive = false;
  bool extents = false;
};

void PrintEntry(const Node& n, const std::string& shown, const LsOptions& o) {
  if (o.extents && n.type == NodeType::kRegular) {
    // Where the bytes are: "offset+length" per extent, for dd or debugging.
    std::vector<std::string> parts;
    for (const auto& e : n.extents)
      parts.push_back(fmt::format("{}+{}", e.offset, e.length));
    fmt::print("{} {}\n", shown, fmt::join(parts, ","));
    return;
  }
  if (!o.long_format) {
    fmt::print("{}\n", shown);
    return;
  }
  std::string target = n.type == NodeType::kSymlink ? " -> " + n.link_target : "";
  fmt::print("{} {:>5} {:>5} {:>12} {} {}{}\n", ModeString(n), n.uid, n.gid, n.size,
             TimeString(n.mtime), shown, target);
}

int RunLs(const std::string& image_path, const std::string& path, const LsOptions& o) {
  auto image = OpenImage(image_path);
  const iso::Tree& tree = image->tree();
  const Node& start = FindOrThrow(tree, path);
  if (start.type != NodeType::kDirectory) {
    PrintEntry(start, tree.PathOf(start), o);
    return 0;
  }
  if (!o.recursive) {
    for (uint32_t c : start.children)
      PrintEntry(tree.nodes[c], tree.nodes[c].name, o);
    return 0;
  }
  // -R: every entry below `path`, depth first, by full path.
  std::vector<uint32_t> stack(start.children.rbegin(), start.children.rend());
  while (!stack.empty()) {
    const Node& n = tree.nodes[stack.back()];
    stack.pop_back();
    PrintEntry(n, tree.PathOf(n), o);
    stack.insert(stack.end(), n.children.rbegin(), n.children.rend());
  }
  return 0;
}

// What the image's initrd can mount its root with, or why that is unknown.
struct InitrdInfo {
  std::optional<initrd::RootSupport> support;
  std::string error;  // when the initrd could not be read
};

InitrdInfo ReadInitrdInfo(const iso::Image& image, const iso::Layout& layout) {
  InitrdInfo info;
  const Node* node = layout.initrd.empty() ? nullptr : image.tree().Find(layout.initrd);
  if (!node) return info;
  auto files = initrd::ReadInitrd(image, *node, initrd::WantsContents);
  if (!files) {
    info.error = files.error().message;
    return info;
  }
  info.support = initrd::DetectRootSupport(*files);
  return info;
}

nlohmann::json InitrdJson(const InitrdInfo& info) {
  if (!info.support) {
    return info.error.empty() ? nlohmann::json(nullptr) : nlohmann::json{{"error", info.error}};
  }
  nlohmann::json ways = nlohmann::json::array();
  for (const auto& w : info.support->ways) {
    ways.push_back({{"transport", std::string(initrd::ToString(w.transport))},
                    {"ok", w.ok},
                    {w.ok ? "via" : "missing", w.reason}});
  }
  std::vector<std::string> available;
  for (auto t : info.support->Available())
    available.emplace_back(initrd::ToString(t));
  return {{"kind", info.support->name}, {"root_transports", available}, {"ways", ways}};
}

nlohmann::json InfoJson(const iso::Image& image, const iso::Layout& layout,
                        const InitrdInfo& initrd_info) {
  const iso::Tree& tree = image.tree();
  auto file = [&](const std::string& p) -> nlohmann::json {
    if (p.empty()) return nullptr;
    const Node* n = tree.Find(p);
    return {{"path", p}, {"size", n ? n->size : 0}};
  };
  nlohmann::json boot = nlohmann::json::array();
  for (const auto& e : tree.boot.entries) {
    boot.push_back(
        {{"platform", iso::PlatformName(e.platform_id)},
         {"platform_id", e.platform_id},
         {"bootable", e.bootable},
         {"media", iso::MediaTypeName(e.media_type)},
         {"lba", e.lba},
         {"sectors", e.sector_count},
         {"image", e.image_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.image_path)}});
  }
  return {
      {"image", image.path()},
      {"size", image.size()},
      {"volume_size", tree.volume_bytes},
      {"volume_id", tree.volume_id},
      {"names", std::string(iso::ToString(tree.names))},
      {"layout", std::string(iso::ToString(layout.kind))},
      {"arch", layout.arch.empty() ? nlohmann::json(nullptr) : nlohmann::json(layout.arch)},
      {"kernel", file(layout.kernel)},
      {"initrd", file(layout.initrd)},
      {"root_image", file(layout.root_image)},
      {"initrd_contents", InitrdJson(initrd_info)},
      {"candidate_kernels", layout.candidate_kernels},
      {"boot_catalog", tree.boot.present ? nlohmann::json{{"lba", tree.boot.lba}, {"entries", boot}}
                                         : nlohmann::json(nullptr)},
  };
}

int RunInfo(const std::string& image_path, bool json) {
  auto image = OpenImage(image_path);
  const iso::Tree& tree = image->tree();
  iso::Layout layout = iso::DetectLayout(tree);
  InitrdInfo initrd_info = ReadInitrdInfo(*image, layout);
  if (json) {
    fmt::print("{}\n", InfoJson(*image, layout, initrd_info).dump(2));
    return 0;
  }
  auto sized = [&](const std::string& p) {
    const Node* n = tree.Find(p);
    return fmt::format("{} ({} bytes)", p, n ? n->size : 0);
  };
  fmt::print("image      {} ({} bytes)\n", image->path(), image->size());
  fmt::print("volume id  {}\n", tree.volume_id);
  fmt::print("names      {}\n", iso::ToString(tree.names));
  if (layout.kind == iso::LayoutKind::kUnknown) {
    fmt::print("layout     unknown: not a KIWI, dracut live, Debian live-boot or casper image\n");
    fmt::print("kernels    {}\n",
               layout.candidate_kernels.empty()
                   ? std::string("none found")
                   : fmt::format("{}", fmt::join(layout.candidate_kernels, ", ")));
  } else {
    fmt::print("layout     {} ({})\n", iso::ToString(layout.kind),
               layout.arch.empty() ? "architecture unknown" : layout.arch);
    fmt::print("kernel     {}\n", sized(layout.kernel));
    fmt::print("initrd     {}\n", sized(layout.initrd));
    if (!layout.root_image.empty()) fmt::print("root       {}\n", sized(layout.root_image));
    if (initrd_info.support) {
      fmt::print("initrd is  {}\n", initrd_info.support->name);
      fmt::print("transports {}\n", initrd_info.support->Summary());
      for (auto t : {initrd::Transport::kAoe, initrd::Transport::kHttp, initrd::Transport::kNbd}) {
        if (!initrd_info.support->Best(t)) {
          fmt::print("{:<10} {}\n", fmt::format("no {}", initrd::ToString(t)),
                     initrd_info.support->Missing(t));
        }
      }
    } else if (!initrd_info.error.empty()) {
      fmt::print("transports unknown: the initrd cannot be read: {}\n", initrd_info.error);
    }
  }
  if (!tree.boot.present) {
    fmt::print("boot       no El Torito boot catalog\n");
  }
  bool first = true;
  for (const auto& e : tree.boot.entries) {
    fmt::print("{}{:<4} {}, {} at block {}{}, {} sectors{}\n",
               first ? "boot       " : "           ", iso::PlatformName(e.platform_id),
               iso::MediaTypeName(e.media_type),
               e.image_path.empty() ? std::string("image") : e.image_path, e.lba, "",
               e.sector_count, e.bootable ? "" : ", not bootable");
    first = false;
  }
  return 0;
}

int RunCat(const std::string& image_path, const std::string& path) {
  auto image = OpenImage(image_path);
  const Node& n = FindOrThrow(image->tree(), path);
  if (n.type != NodeType::kRegular) {
    throw std::runtime_error(fmt::format("{}: not a regular file", path));
  }
  std::fflush(stdout);
  image->CopyTo(n, STDOUT_FILENO);
  return 0;
}

// Progress on a terminal for files large enough to wait for.
class Progress {
 public:
  Progress() : enabled_(::isatty(STDERR_FILENO)) {}
  void Update(const std::string& path, uint64_t done, uint64_t total) {
    constexpr uint64_t kLarge = 32u << 20;
    if (!enabled_ || total < kLarge) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    fmt::print(stderr, "\r{} {:3}% {}/{} MiB\033[K", path, done * 100 / total, done >> 20,
               total >> 20);
    if (done == total) fmt::print(stderr, "\n");
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point last_{};
};

int RunExtract(const std::string& image_path, const std::vector<std::string>& paths,
               const std::string& target) {
  auto image = OpenImage(image_path);
  Progress progress;
  iso::ExtractOptions options;
  options.progress = [&](const std::string& p, uint64_t done, uint64_t total) {
    progress.Update(p, done, total);
  };
  auto stats = OrThrow(iso::Extract(*image, paths, target, options));
  fmt::print(stderr, "extracted {} files ({} bytes), {} directories, {} symlinks to {}\n",
             stats.files, stats.bytes, stats.directories, stats.symlinks, target);
  if (stats.skipped_special) {
    fmt::print(stderr, "skipped {} device, fifo or socket entries\n", stats.skipped_special);
  }
  return 0;
}

// The node image as a file: the base's bytes copied by the kernel
// (copy_file_range: shared extents where the filesystem reflinks), the new
// head and session written; a temporary file renamed into place, so a
// failure leaves no partial OUT.
int RunGrow(const std::string& image_path, const iso::NodeImageSpec& spec,
            const std::string& out_path) {
  auto image = OpenImage(image_path);
  auto node = OrThrow(iso::MakeNodeImage(*image, spec), image_path);
  for (const std::string& w : node.warnings)
    fmt::print(stderr, "warning: {}\n", w);
  const iso::GrownImage& g = node.grown;
  const std::string tmp = out_path + ".partial";
  UniqueFd out = OpenOrThrow(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  try {
    WriteAll(out.get(), g.head);
    CopyRange(image->fd(), g.head.size(), g.base_size - g.head.size(), out.get());
    if (::ftruncate(out.get(), static_cast<off_t>(g.session_offset)) != 0 ||
        ::lseek(out.get(), static_cast<off_t>(g.session_offset), SEEK_SET) < 0) {
      throw std::system_error(errno, std::generic_category(), tmp);
    }
    WriteAll(out.get(), g.session);
    if (::fsync(out.get()) != 0) throw std::system_error(errno, std::generic_category(), tmp);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  out.Reset();
  if (::rename(tmp.c_str(), out_path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(err, std::generic_category(), out_path);
  }
  fmt::print(
      stderr, "{}: {} bytes, {} of them new (session at byte {}); menus changed: {} ({} entries)\n",
      out_path, g.size(), g.own_bytes(), g.session_offset,
      node.menus.empty() ? std::string("none") : fmt::format("{}", fmt::join(node.menus, ", ")),
      node.entries);
  return 0;
}

}  // namespace

void AddIsoCommand(CLI::App& app, Run& run) {
  auto* iso = app.add_subcommand("iso", "Read a live ISO image without mounting it");
  iso->require_subcommand(1);

  struct Args {
    std::string image;
    std::string path = "/";
    bool json = false;
    LsOptions ls;
    std::vector<std::string> paths;
    std::string target = ".";
    iso::NodeImageSpec node;
    std::string out;
  };
  auto args = std::make_shared<Args>();

  auto* info = iso->add_subcommand("info", "Volume id, size, layout, kernel, initrd, boot catalog");
  info->add_option("IMAGE", args->image, "ISO image")->required();
  info->add_flag("--json", args->json, "Print JSON");
  info->callback([&run, args] { run = [args] { return RunInfo(args->image, args->json); }; });

  auto* ls = iso->add_subcommand("ls", "List files in the image");
  ls->add_option("IMAGE", args->image, "ISO image")->required();
  ls->add_option("PATH", args->path, "Directory or file inside the image");
  ls->add_flag("-l", args->ls.long_format, "Long format: mode, owner, size, mtime");
  ls->add_flag("-R", args->ls.recursive, "Recurse, printing full paths");
  ls->add_flag("--extents", args->ls.extents, "Show where each file's bytes are in the image");
  ls->callback([&run, args] { run = [args] { return RunLs(args->image, args->path, args->ls); }; });

  auto* cat = iso->add_subcommand("cat", "Write a file of the image to stdout");
  cat->add_option("IMAGE", args->image, "ISO image")->required();
  cat->add_option("PATH", args->path, "File inside the image")->required();
  cat->callback([&run, args] { run = [args] { return RunCat(args->image, args->path); }; });

  auto* extract = iso->add_subcommand("extract", "Copy files out of the image");
  extract->add_option("IMAGE", args->image, "ISO image")->required();
  extract->add_option("PATH", args->paths, "Files or directories inside the image (default: all)");
  extract->add_option("-C,--directory", args->target, "Target directory")->required();
  extract->callback([&run, args] {
    run = [args] { return RunExtract(args->image, args->paths, args->target); };
  });

  auto* grow = iso->add_subcommand(
      "grow", "Write a node's image: the ISO plus an appended session with its changes");
  grow->add_option("IMAGE", args->image, "ISO image")->required();
  grow->add_option("-o,--output", args->out, "The node image to write")->required();
  grow->add_option("--append", args->node.kernel_args,
                   "Kernel arguments added to every Linux entry of the boot menus");
  grow->add_option("--initrd-add", args->node.extra_initrds,
                   "Initramfs archive the menus load after the image's own (repeatable)");
  grow->add_option("--files", args->node.files_dir, "Host directory put into the image");
  grow->add_option("--files-path", args->node.files_path, "Where --files goes in the image")
      ->capture_default_str();
  grow->callback(
      [&run, args] { run = [args] { return RunGrow(args->image, args->node, args->out); }; });
}

}  // namespace isoboot::cli
