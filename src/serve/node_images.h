#pragma once
// The node images `isoboot serve` offers at /nodes/<mac>.iso (iso/node_image.h):
// each made the first time it is asked for, and kept, until the node's
// inputs or the base image change; a request for an image being made waits
// for it rather than making it again. An image that cannot be made is
// remembered as such (and logged once) for the same inputs.
//
// Thread safety: Get may be called from any thread (the HTTP server's).

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/logging.h"
#include "iso/node_image.h"
#include "vfs/vfs.h"

namespace isoboot::iso {
class Image;
}

namespace isoboot::serve {

bool operator==(const iso::NodeImageSpec& a, const iso::NodeImageSpec& b);

class NodeImages {
 public:
  explicit NodeImages(Logger log) : log_(std::move(log)) {}
  NodeImages(const NodeImages&) = delete;
  NodeImages& operator=(const NodeImages&) = delete;

  // `name`'s image of `base` with `spec`, made now unless it is kept; null
  // when it cannot be made (the reason logged the first time).
  vfs::SourcePtr Get(const std::shared_ptr<const iso::Image>& base, const std::string& name,
                     const iso::NodeImageSpec& spec);
  // Images kept, and the bytes of theirs that are not the base's.
  size_t count() const;
  uint64_t own_bytes() const;

 private:
  struct Made;
  struct Entry {
    std::shared_ptr<const iso::Image> base;
    iso::NodeImageSpec spec;
    std::shared_ptr<Made> made;  // filled once, under its own mutex
  };
  const Logger log_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_; by node name
};

}  // namespace isoboot::serve
