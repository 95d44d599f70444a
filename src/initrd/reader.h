#pragma once
// Reads an initrd (initramfs) straight from its bytes, e.g. a file inside an
// ISO image, without extracting it: the names of every file it holds and the
// contents of the few small files asked for. Compressed members (gzip, xz,
// zstd, lz4, bzip2, lzma) are decompressed in memory by libarchive, a piece at
// a time; nothing is written to disk. Everything is bounded (entries, name
// length, content size, unpacked bytes), so a corrupt or hostile initrd gives
// a one-line error. Thread safety: no shared state; call from any thread.

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "initrd/cpio.h"

namespace isoboot::iso {
class Image;
struct Node;
}  // namespace isoboot::iso

namespace isoboot::initrd {

struct ReadLimits {
  CpioLimits cpio;
  uint64_t max_unpacked = 1ull << 30;  // decompressed bytes, all members together
};

struct InitrdFiles {
  std::vector<std::string> paths;               // every entry, in archive order
  std::map<std::string, std::string> contents;  // of the wanted entries
  std::vector<Compression> members;             // each member read, kNone for plain cpio
  uint64_t unpacked_bytes = 0;                  // cpio bytes, decompressed ones included
};

// Reads up to out.size() bytes at `offset` of the initrd; fewer only at its end.
using ReadAt = std::function<Result<size_t>(uint64_t offset, std::span<uint8_t> out)>;
// Whether the contents of the entry named `path` are wanted.
using WantPath = std::function<bool(std::string_view path)>;

// Reads an initrd of `size` bytes. As the kernel does, plain cpio members may
// precede a compressed one (early microcode). Bytes after the first
// compressed stream that libarchive does not take as part of it are not read.
Result<InitrdFiles> ReadInitrd(const ReadAt& read, uint64_t size, const WantPath& want,
                               const ReadLimits& limits = {});
Result<InitrdFiles> ReadInitrd(std::span<const uint8_t> bytes, const WantPath& want,
                               const ReadLimits& limits = {});
// The file `node` of `image`.
Result<InitrdFiles> ReadInitrd(const iso::Image& image, const iso::Node& node, const WantPath& want,
                               const ReadLimits& limits = {});

}  // namespace isoboot::initrd
