// libFuzzer target for the overlay archive's text parts: the manifest and
// the checksum trailer (overlay/manifest.h, overlay/trailer.h). Whatever
// parses must re-encode to something that parses to the same value.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "overlay/manifest.h"
#include "overlay/trailer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  if (auto m = isoboot::overlay::ParseManifest(in)) {
    std::vector<uint8_t> out;
    isoboot::overlay::AppendManifest(*m, out);
    auto again = isoboot::overlay::ParseManifest(out);
    if (!again || again->entries != m->entries) __builtin_trap();
  }
  if (auto t = isoboot::overlay::ParseTrailer(in)) {
    std::vector<uint8_t> out;
    isoboot::overlay::AppendTrailer(*t, out);
    auto again = isoboot::overlay::ParseTrailer(out);
    if (!again || again->sha256 != t->sha256 || again->size != t->size) __builtin_trap();
  }
  return 0;
}
