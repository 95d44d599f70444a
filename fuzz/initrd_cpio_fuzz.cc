// Fuzzes the initrd reader: the cpio newc stream parser fed in uneven
// pieces, plus compressed members through libarchive, then transport
// detection on whatever came out.

#include <cstdint>
#include <span>

#include "initrd/cpio.h"
#include "initrd/reader.h"
#include "initrd/transports.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace isoboot::initrd;
  ReadLimits limits;
  limits.max_unpacked = 64u << 20;
  limits.cpio.max_entries = 100000;
  auto files = ReadInitrd(std::span<const uint8_t>(data, size), WantsContents, limits);
  if (files) (void)DetectRootSupport(*files);
  // The same bytes in pieces of 1..17 bytes must parse as they do whole.
  CpioStream stream(
      {}, [](const CpioEntry&) { return true; }, nullptr);
  size_t i = 0, piece = 1;
  while (i < size && !stream.stopped()) {
    size_t n = std::min(piece, size - i);
    auto r = stream.Feed(std::span<const uint8_t>(data + i, n));
    if (!r) break;
    i += *r;
    if (*r < n) break;
    piece = piece % 17 + 1;
  }
  return 0;
}
