// Fuzzes the El Torito boot catalog parser.

#include <cstdint>
#include <span>

#include "iso/el_torito.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto entries = isoboot::iso::ParseBootCatalog(std::span(data, size));
  if (entries) {
    for (const auto& e : *entries)
      (void)isoboot::iso::PlatformName(e.platform_id);
  }
  return 0;
}
