#include "vfs/vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "base/file_io.h"
#include "base/unique_fd.h"
#include "iso/grow.h"
#include "iso/image.h"

namespace isoboot::vfs {
namespace {

// A std::system_error from base/file_io (errno in the generic category) as an
// Error of that errno's kind; the message stays "context: what()".
Error FromSystemError(const std::system_error& e, std::string_view context = {}) {
  bool os = e.code().category() == std::generic_category() ||
            e.code().category() == std::system_category();
  Error error = os ? OsError(e.code().value(), {}) : MakeError(ErrorKind::kIo, {});
  error.message = context.empty() ? e.what() : fmt::format("{}: {}", context, e.what());
  return error;
}

class ImageFile final : public Source {
 public:
  ImageFile(std::shared_ptr<const iso::Image> image, const iso::Node& node)
      : image_(std::move(image)), node_(node) {}
  uint64_t size() const override { return node_.size; }
  int64_t mtime() const override { return node_.mtime; }
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    if (offset >= node_.size) return size_t{0};
    try {
      return image_->Read(node_, offset, out);
    } catch (const std::system_error& e) {
      return FromSystemError(e, image_->path());
    }
  }
  std::optional<FileSpan> Contiguous(uint64_t offset) const override {
    uint64_t pos = 0;
    for (const auto& e : node_.extents) {
      if (offset < pos + e.length) {
        uint64_t within = offset - pos;
        return FileSpan{image_->fd(), e.offset + within, e.length - within};
      }
      pos += e.length;
    }
    return std::nullopt;
  }
  std::string Etag() const override {
    const auto& st = image_->file_stat();
    return fmt::format("{:x}-{:x}-{:x}-{:x}", st.st_ino, st.st_mtime,
                       node_.extents.empty() ? 0 : node_.extents[0].offset, node_.size);
  }

 private:
  std::shared_ptr<const iso::Image> image_;
  const iso::Node& node_;  // owned by image_
};

// A whole file of the host, opened once: the image itself or a bootloader.
class WholeFile final : public Source {
 public:
  WholeFile(std::shared_ptr<const iso::Image> image, int fd, uint64_t size, const struct stat& st)
      : image_(std::move(image)), fd_(fd), size_(size), st_(st) {}
  WholeFile(UniqueFd owned, uint64_t size, const struct stat& st)
      : owned_(std::move(owned)), fd_(owned_.get()), size_(size), st_(st) {}
  uint64_t size() const override { return size_; }
  int64_t mtime() const override { return st_.st_mtime; }
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    if (offset >= size_) return size_t{0};
    size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - offset));
    try {
      return PreadFull(fd_, out.first(n), offset);
    } catch (const std::system_error& e) {
      return FromSystemError(e);
    }
  }
  std::optional<FileSpan> Contiguous(uint64_t offset) const override {
    if (offset >= size_) return std::nullopt;
    return FileSpan{fd_, offset, size_ - offset};
  }
  std::string Etag() const override {
    return fmt::format("{:x}-{:x}-{:x}", st_.st_ino, st_.st_mtime, size_);
  }

 private:
  std::shared_ptr<const iso::Image> image_;  // keeps fd_ open, if from an image
  UniqueFd owned_;
  int fd_;
  uint64_t size_;
  struct stat st_;
};

// The base's bytes, except its first blocks (the new descriptors), then
// zeros to the session's start, then the session.
class Grown final : public Source {
 public:
  Grown(std::shared_ptr<const iso::Image> image, std::shared_ptr<const iso::GrownImage> grown)
      : image_(std::move(image)), grown_(std::move(grown)) {
    const auto& st = image_->file_stat();
    const iso::GrownImage& g = *grown_;
    std::string_view session(reinterpret_cast<const char*>(g.session.data()), g.session.size());
    std::string_view head(reinterpret_cast<const char*>(g.head.data()), g.head.size());
    etag_ =
        fmt::format("{:x}-{:x}-{:x}-{:x}-{:x}", st.st_ino, st.st_mtime, g.size(),
                    std::hash<std::string_view>{}(head), std::hash<std::string_view>{}(session));
  }
  uint64_t size() const override { return grown_->size(); }
  // When it was grown (a node's new arguments make a new image of the same
  // base), never before the base was written.
  int64_t mtime() const override {
    return std::max<int64_t>(image_->file_stat().st_mtime, grown_->made_at);
  }
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    const iso::GrownImage& g = *grown_;
    size_t done = 0;
    while (done < out.size() && offset < g.size()) {
      std::span<uint8_t> rest = out.subspan(done);
      size_t n = 0;
      if (offset < g.head.size()) {
        n = static_cast<size_t>(std::min<uint64_t>(rest.size(), g.head.size() - offset));
        std::memcpy(rest.data(), g.head.data() + offset, n);
      } else if (offset < g.base_size) {
        n = static_cast<size_t>(std::min<uint64_t>(rest.size(), g.base_size - offset));
        try {
          if (PreadFull(image_->fd(), rest.first(n), offset) != n) {
            return MakeError(ErrorKind::kIo,
                             fmt::format("{}: shorter than when it was grown", image_->path()));
          }
        } catch (const std::system_error& e) {
          return FromSystemError(e, image_->path());
        }
      } else if (offset < g.session_offset) {
        n = static_cast<size_t>(std::min<uint64_t>(rest.size(), g.session_offset - offset));
        std::memset(rest.data(), 0, n);
      } else {
        uint64_t at = offset - g.session_offset;
        n = static_cast<size_t>(std::min<uint64_t>(rest.size(), g.session.size() - at));
        std::memcpy(rest.data(), g.session.data() + at, n);
      }
      done += n;
      offset += n;
    }
    return done;
  }
  std::optional<FileSpan> Contiguous(uint64_t offset) const override {
    if (offset < grown_->head.size() || offset >= grown_->base_size) return std::nullopt;
    return FileSpan{image_->fd(), offset, grown_->base_size - offset};
  }
  std::string Etag() const override { return etag_; }

 private:
  std::shared_ptr<const iso::Image> image_;
  std::shared_ptr<const iso::GrownImage> grown_;
  std::string etag_;
};

class Text final : public Source {
 public:
  Text(std::string text, int64_t mtime) : text_(std::move(text)), mtime_(mtime) {}
  uint64_t size() const override { return text_.size(); }
  int64_t mtime() const override { return mtime_; }
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    if (offset >= text_.size()) return size_t{0};
    size_t n = std::min<size_t>(out.size(), text_.size() - offset);
    if (n > 0)
      std::memcpy(out.data(), text_.data() + offset, n);  // an empty span's data() may be null
    return n;
  }
  std::optional<FileSpan> Contiguous(uint64_t) const override { return std::nullopt; }
  std::string Etag() const override {
    return fmt::format("{:x}-{:x}", std::hash<std::string>{}(text_), text_.size());
  }

 private:
  std::string text_;
  int64_t mtime_;
};

}  // namespace

SourcePtr ImageFileSource(std::shared_ptr<const iso::Image> image, const iso::Node& node) {
  return std::make_shared<ImageFile>(std::move(image), node);
}

SourcePtr WholeImageSource(std::shared_ptr<const iso::Image> image) {
  int fd = image->fd();
  uint64_t size = image->size();
  struct stat st = image->file_stat();
  return std::make_shared<WholeFile>(std::move(image), fd, size, st);
}

SourcePtr GrownImageSource(std::shared_ptr<const iso::Image> image,
                           std::shared_ptr<const iso::GrownImage> grown) {
  return std::make_shared<Grown>(std::move(image), std::move(grown));
}

SourcePtr TextSource(std::string text, int64_t mtime) {
  return std::make_shared<Text>(std::move(text), mtime);
}

Result<SourcePtr> HostFileSource(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return OsError(errno, path);
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return OsError(errno, path);
  if (!S_ISREG(st.st_mode)) return MakeError(fmt::format("{}: not a regular file", path));
  auto size = static_cast<uint64_t>(st.st_size);
  return SourcePtr(std::make_shared<WholeFile>(std::move(fd), size, st));
}

std::string NormalizeClientPath(std::string_view requested) {
  std::string out;
  out.reserve(requested.size());
  for (char c : requested) {
    if (c == '\\') c = '/';
    if (c == '/' && (out.empty() || out.back() == '/')) continue;
    out.push_back(c);
  }
  return out;
}

void Tree::Add(std::string name, SourcePtr source) {
  entries_[std::move(name)] = std::move(source);
}

SourcePtr Tree::Find(const std::string& name) const {
  if (auto it = entries_.find(name); it != entries_.end()) return it->second;
  if (base_) {
    if (SourcePtr found = base_->Find(name)) return found;
  }
  return fallback_ ? fallback_(name) : nullptr;
}

SourcePtr Tree::Lookup(std::string_view requested) const {
  return Find(NormalizeClientPath(requested));
}

std::vector<std::string> Tree::Names() const {
  std::vector<std::string> names = base_ ? base_->Names() : std::vector<std::string>{};
  names.reserve(names.size() + entries_.size());
  for (const auto& [name, _] : entries_)
    names.push_back(name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

void AddImageFiles(Tree& tree, const std::shared_ptr<const iso::Image>& image,
                   std::string_view prefix) {
  const iso::Tree& t = image->tree();
  for (const iso::Node& n : t.nodes) {
    if (n.type != iso::NodeType::kRegular) continue;
    tree.Add(std::string(prefix) + t.PathOf(n).substr(1), ImageFileSource(image, n));
  }
}

}  // namespace isoboot::vfs
