// Fuzzes the image opener: libisofs's import plus our tree walk and extent
// checks, on an image held in memory.

#include <cstdint>
#include <cstring>
#include <span>

#include "iso/image.h"
#include "iso/layout.h"

static constexpr uint64_t kBlock = 2048;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  isoboot::iso::BlockReader read = [data, size](uint32_t lba, uint8_t* block) {
    uint64_t offset = uint64_t{lba} * kBlock;
    if (offset >= size) return false;
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, size - offset));
    std::memcpy(block, data + offset, n);
    std::memset(block + n, 0, kBlock - n);
    return true;
  };
  auto tree = isoboot::iso::ReadTree(read, size);
  if (tree) {
    isoboot::iso::DetectLayout(*tree);
    for (const auto& node : tree->nodes)
      (void)tree->PathOf(node);
  }
  return 0;
}
