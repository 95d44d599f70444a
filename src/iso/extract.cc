#include "iso/extract.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "iso/image.h"

namespace isoboot::iso {
namespace {

Error Errno(const std::string& what) {
  return MakeError(fmt::format("{}: {}", what, std::strerror(errno)));
}

// Opens (creating if needed) directory `name` inside `parent` without
// following a symlink there.
Result<UniqueFd> OpenSubdir(int parent, const std::string& name, const std::string& shown) {
  if (::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) return Errno(shown);
  int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return MakeError(
          fmt::format("{}: exists and is not a directory; refusing to follow it", shown));
    }
    return Errno(shown);
  }
  return UniqueFd(fd);
}

struct Timestamps {
  struct timespec t[2];
  explicit Timestamps(int64_t mtime) {
    t[0].tv_sec = t[1].tv_sec = static_cast<time_t>(mtime);
    t[0].tv_nsec = t[1].tv_nsec = 0;
  }
};

class Extractor {
 public:
  Extractor(const Image& image, const std::string& target, const ExtractOptions& options)
      : image_(image), tree_(image.tree()), target_(target), options_(options) {}

  Result<void> ExtractNode(int parent_fd, const Node& node) {
    std::string shown = target_ + tree_.PathOf(node);
    switch (node.type) {
      case NodeType::kDirectory: {
        auto dir = OpenSubdir(parent_fd, node.name, shown);
        if (!dir) return dir.error();
        ++stats_.directories;
        if (auto r = ExtractChildren(dir->get(), node); !r) return r;
        if (::fchmod(dir->get(), node.mode & 07777) != 0) return Errno(shown);
        Timestamps ts(node.mtime);
        if (::futimens(dir->get(), ts.t) != 0) return Errno(shown);
        return {};
      }
      case NodeType::kRegular: {
        int fd = ::openat(parent_fd, node.name.c_str(),
                          O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == ELOOP) {
          // A symlink sits where the file goes: replace the link, never follow it.
          if (::unlinkat(parent_fd, node.name.c_str(), 0) != 0) return Errno(shown);
          fd = ::openat(parent_fd, node.name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (fd < 0) return Errno(shown);
        UniqueFd out(fd);
        try {
          std::string path = tree_.PathOf(node);
          image_.CopyTo(node, out.get(),
                        options_.progress
                            ? [&](uint64_t done) { options_.progress(path, done, node.size); }
                            : std::function<void(uint64_t)>());
        } catch (const std::system_error& e) {
          return MakeError(fmt::format("{}: {}", shown, e.what()));
        }
        if (::fchmod(out.get(), node.mode & 07777) != 0) return Errno(shown);
        Timestamps ts(node.mtime);
        if (::futimens(out.get(), ts.t) != 0) return Errno(shown);
        ++stats_.files;
        stats_.bytes += node.size;
        return {};
      }
      case NodeType::kSymlink: {
        if (::symlinkat(node.link_target.c_str(), parent_fd, node.name.c_str()) != 0) {
          if (errno != EEXIST) return Errno(shown);
          if (::unlinkat(parent_fd, node.name.c_str(), 0) != 0) return Errno(shown);
          if (::symlinkat(node.link_target.c_str(), parent_fd, node.name.c_str()) != 0) {
            return Errno(shown);
          }
        }
        Timestamps ts(node.mtime);
        ::utimensat(parent_fd, node.name.c_str(), ts.t, AT_SYMLINK_NOFOLLOW);
        ++stats_.symlinks;
        return {};
      }
      case NodeType::kSpecial:
        ++stats_.skipped_special;
        return {};
    }
    return {};
  }

  Result<void> ExtractChildren(int dir_fd, const Node& dir) {
    for (uint32_t c : dir.children) {
      if (auto r = ExtractNode(dir_fd, tree_.nodes[c]); !r) return r;
    }
    return {};
  }

  // Opens (creating) the directories leading to `node` below the target.
  Result<UniqueFd> OpenParents(int target_fd, const Node& node) {
    std::vector<const Node*> chain;
    for (const Node* n = &tree_.nodes[node.parent]; n != &tree_.root();
         n = &tree_.nodes[n->parent]) {
      chain.push_back(n);
    }
    UniqueFd current(::fcntl(target_fd, F_DUPFD_CLOEXEC, 0));
    if (!current.valid()) return Errno(target_);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      auto next = OpenSubdir(current.get(), (*it)->name, target_ + tree_.PathOf(**it));
      if (!next) return next.error();
      current = std::move(*next);
    }
    return current;
  }

  const ExtractStats& stats() const { return stats_; }

 private:
  const Image& image_;
  const Tree& tree_;
  const std::string& target_;
  const ExtractOptions& options_;
  ExtractStats stats_;
};

}  // namespace

Result<ExtractStats> Extract(const Image& image, const std::vector<std::string>& paths,
                             const std::string& target, const ExtractOptions& options) {
  const Tree& tree = image.tree();
  std::vector<const Node*> selected;
  for (const auto& p : paths) {
    const Node* n = tree.Find(p);
    if (!n) return MakeError(fmt::format("{}: no such file in the image", p));
    selected.push_back(n);
  }
  if (selected.empty()) selected.push_back(&tree.root());

  if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) return Errno(target);
  int raw = ::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) return Errno(target);
  UniqueFd target_fd(raw);

  Extractor x(image, target, options);
  for (const Node* n : selected) {
    if (n == &tree.root()) {
      if (auto r = x.ExtractChildren(target_fd.get(), *n); !r) return r.error();
      continue;
    }
    auto parent = x.OpenParents(target_fd.get(), *n);
    if (!parent) return parent.error();
    if (auto r = x.ExtractNode(parent->get(), *n); !r) return r.error();
  }
  return x.stats();
}

}  // namespace isoboot::iso
