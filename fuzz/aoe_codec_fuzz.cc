// libFuzzer target for the AoE codec and the target logic: any bytes must
// parse or be rejected without reading out of bounds, a parsed frame must
// re-encode, and the target must answer or drop it without crashing.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "aoe/codec.h"
#include "aoe/target.h"

namespace {

class Sink : public isoboot::aoe::ResponseSink {
 public:
  std::vector<uint8_t>& Next() override {
    frames_[n_ % 4].clear();
    return frames_[n_++ % 4];
  }

 private:
  std::vector<uint8_t> frames_[4];
  size_t n_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace isoboot::aoe;
  static Target* target = [] {
    auto* t = new Target({2, 0, 0, 0, 0, 1}, 17, 16);
    ExportOptions ro;
    t->AddExport(ro, std::make_unique<MemoryDevice>(std::vector<uint8_t>(64 * 512, 0x11)));
    ExportOptions rw;
    rw.slot = 2;
    rw.writable = true;
    t->AddExport(rw, std::make_unique<MemoryDevice>(std::vector<uint8_t>(16 * 512, 0x22)));
    return t;
  }();
  std::span<const uint8_t> in(data, size);
  auto f = Parse(in);
  if (f) {
    std::vector<uint8_t> out;
    Append(*f, out);
    auto again = Parse(out);
    if (!again) __builtin_trap();
  }
  Sink sink;
  target->Handle(in, sink);
  return 0;
}
