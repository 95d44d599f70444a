#pragma once
// An ISO 9660 image opened read-only without mounting: its file tree (Rock
// Ridge names, falling back to Joliet, then plain ISO 9660), each regular
// file's extents (byte ranges in the image), the El Torito boot catalog and
// the volume id. The tree is read once with libisofs at Open; file bytes are
// read later straight from the image's extents with pread/copy_file_range.
//
// An Image is an immutable snapshot: it keeps its file descriptor, so a
// rebuilt image written to the same path (a new inode) does not change it.
// Thread safety: all const methods may be called from any thread.

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "iso/el_torito.h"

namespace isoboot::iso {

// One contiguous piece of a file: `length` bytes at byte `offset` of the image.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
};

enum class NodeType {
  kDirectory,
  kRegular,
  kSymlink,
  kSpecial
};

struct Node {
  std::string name;  // empty for the root
  NodeType type = NodeType::kRegular;
  uint32_t mode = 0;  // st_mode, including the file type bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime = 0;  // seconds since the epoch
  uint64_t size = 0;  // regular files: content bytes; symlinks: target length
  std::string link_target;
  std::vector<Extent> extents;     // regular files only, in file order
  uint32_t parent = 0;             // index into Tree::nodes; the root is its own parent
  std::vector<uint32_t> children;  // directories only, sorted by name
};

// Which of the image's name spaces the tree was read from.
enum class NameSpace {
  kRockRidge,
  kJoliet,
  kIso9660
};
std::string_view ToString(NameSpace ns);

struct Tree {
  std::vector<Node> nodes;  // nodes[0] is the root directory
  std::string volume_id;
  NameSpace names = NameSpace::kIso9660;
  uint64_t volume_bytes = 0;  // from the primary volume descriptor
  BootCatalog boot;           // empty when the image has no El Torito record

  const Node& root() const { return nodes[0]; }
  // Looks up "/a/b" or "a/b" (no symlinks followed, no "." or ".."). The
  // root is "/" or "".
  const Node* Find(std::string_view path) const;
  // "/a/b" for a node of this tree.
  std::string PathOf(const Node& node) const;
  uint32_t IndexOf(const Node& node) const { return static_cast<uint32_t>(&node - nodes.data()); }
};

// Reads one 2048-byte block; returns false when the block lies outside the
// source. Lets the tree be read from a file or, for fuzzing, from memory.
using BlockReader = std::function<bool(uint32_t lba, uint8_t* block)>;

// Reads the tree of an image of `size_bytes` bytes. Every extent is checked to
// lie inside the image. Errors name the problem in one line.
Result<Tree> ReadTree(const BlockReader& read, uint64_t size_bytes);

class Image {
 public:
  // Opens the image file at `path`. Errors are one line naming the problem.
  static Result<std::unique_ptr<Image>> Open(const std::string& path);

  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;
  ~Image();

  const Tree& tree() const { return tree_; }
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }  // bytes in the image file
  int fd() const { return fd_.get(); }
  // The whole file mapped read-only (MAP_SHARED), or null if it could not
  // be mapped. Touching a page past the end of a file that shrank raises
  // SIGBUS: copy out of it with sys::CopyFromMapping.
  const uint8_t* mapped() const { return mapped_; }
  // Identity of the opened file (device, inode, mtime) for noticing rebuilds.
  const struct stat& file_stat() const { return stat_; }

  // Reads up to out.size() bytes of `node` starting at `offset` within the
  // file; returns the count read (short only at the end of the file).
  // Throws std::system_error on an I/O error.
  size_t Read(const Node& node, uint64_t offset, std::span<uint8_t> out) const;

  // Copies the whole file `node` to `out_fd` from its extents without
  // buffering it in user space where the kernel allows. `progress` receives
  // the bytes copied so far. Throws std::system_error on an I/O error.
  void CopyTo(const Node& node, int out_fd,
              const std::function<void(uint64_t)>& progress = nullptr) const;

 private:
  Image(std::string path, UniqueFd fd, uint64_t size, const struct stat& st, Tree tree,
        const uint8_t* mapped)
      : path_(std::move(path)),
        fd_(std::move(fd)),
        size_(size),
        stat_(st),
        tree_(std::move(tree)),
        mapped_(mapped) {}

  std::string path_;
  UniqueFd fd_;
  uint64_t size_;
  struct stat stat_;
  Tree tree_;
  const uint8_t* mapped_ = nullptr;
};

}  // namespace isoboot::iso
