#pragma once
// The served tree: what TFTP and HTTP clients can fetch. A name maps to a
// byte source: a file inside an opened image (read from its extents), the
// whole image, generated text, or a host file chosen by isoboot (bootloaders).
// Clients only ever get what was added by name; no client-supplied path
// reaches the host filesystem, so traversal is impossible by construction.
//
// Thread safety: a Tree is built once, then shared read-only
// (std::shared_ptr<const Tree>); Sources are immutable and their const
// methods may be called from any thread. A rebuilt image means a new Tree,
// swapped in by the server, while transfers in flight keep the old Sources.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace isoboot::iso {
class Image;
struct Node;
struct GrownImage;
}  // namespace isoboot::iso

namespace isoboot::vfs {

// A run of a source's bytes stored contiguously in a file: for zero-copy
// sends (sendfile/splice from `fd` at `file_offset`).
struct FileSpan {
  int fd = -1;
  uint64_t file_offset = 0;
  uint64_t length = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  // Seconds since the epoch, for Last-Modified; 0 if unknown.
  virtual int64_t mtime() const = 0;
  // Reads up to out.size() bytes at `offset`; fewer only at the end.
  // Errors (an I/O error of the image) are reported, never thrown.
  virtual Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) const = 0;
  // The contiguous file bytes holding byte `offset` (up to the end of that
  // extent), or nullopt for generated content or offset >= size().
  virtual std::optional<FileSpan> Contiguous(uint64_t offset) const = 0;
  // An identity that changes when the content does (for ETags).
  virtual std::string Etag() const = 0;
};

using SourcePtr = std::shared_ptr<const Source>;

// A file inside `image`; keeps the image alive.
SourcePtr ImageFileSource(std::shared_ptr<const iso::Image> image, const iso::Node& node);
// All bytes of `image`.
SourcePtr WholeImageSource(std::shared_ptr<const iso::Image> image);
// `image` grown by `grown` (iso/grow.h): the base's bytes straight from its
// file (sendfile), the new descriptors and session from memory. Keeps both
// alive, so a response started on it never mixes in another base.
SourcePtr GrownImageSource(std::shared_ptr<const iso::Image> image,
                           std::shared_ptr<const iso::GrownImage> grown);
// Generated text (boot menus, scripts).
SourcePtr TextSource(std::string text, int64_t mtime = 0);
// A host file opened now (bootloaders from Debian packages). Errors name the path.
Result<SourcePtr> HostFileSource(const std::string& path);

// Maps what a client asked for to the canonical name used in the tree:
// leading slashes dropped, backslashes (sent by some PXE ROMs and Windows
// style configs) turned into slashes, repeated slashes collapsed. Nothing
// else is rewritten: "a/../b" stays as it is and simply is not found.
std::string NormalizeClientPath(std::string_view requested);

class Tree {
 public:
  Tree() = default;
  // A tree whose own entries come first and which shows `base`'s others:
  // a few files for one client over the tree every client gets, without
  // copying it.
  explicit Tree(std::shared_ptr<const Tree> base) : base_(std::move(base)) {}

  // Asked for a canonical name that neither this tree nor its base has: a
  // file decided when it is asked for (e.g. one meant for one client alone).
  using Fallback = std::function<SourcePtr(const std::string& name)>;
  void set_fallback(Fallback fallback) { fallback_ = std::move(fallback); }

  // `name` is canonical ("boot/x86_64/loader/linux", no leading slash).
  // Replaces an earlier entry of the same name.
  void Add(std::string name, SourcePtr source);
  // Looks up a client's request after NormalizeClientPath.
  SourcePtr Lookup(std::string_view requested) const;
  // Every name, the base's included (the fallback's not), sorted.
  std::vector<std::string> Names() const;
  // This tree's own entries (not the base's).
  size_t size() const { return entries_.size(); }

 private:
  SourcePtr Find(const std::string& name) const;
  std::shared_ptr<const Tree> base_;
  Fallback fallback_;
  std::map<std::string, SourcePtr, std::less<>> entries_;
};

// Adds every regular file of `image` under `prefix` ("" or "iso/") with its
// image path (without the leading slash).
void AddImageFiles(Tree& tree, const std::shared_ptr<const iso::Image>& image,
                   std::string_view prefix = "");

}  // namespace isoboot::vfs
