// libFuzzer target for the NBD codec and the server's decisions: any bytes
// must parse or be rejected without reading out of bounds; what parses must
// re-encode to the same bytes; a handshake fed any options and a stream of
// requests must answer each without crashing; block status descriptors
// built from any runs must obey proto.md's rules.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "nbd/codec.h"
#include "nbd/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace isoboot::nbd;
  std::span<const uint8_t> in(data, size);
  (void)ParseGreeting(in);
  (void)ParseClientFlags(in);
  (void)ParseExportName(in);
  (void)ParseOptionReply(in);
  (void)ParseSimpleReply(in);
  if (auto c = ParseChunkHeader(in)) {
    (void)ParseErrorPayload(c->type, in.subspan(kChunkHeaderSize));
  }
  if (auto r = ParseInfoRequest(in)) {
    std::vector<uint8_t> out;
    AppendInfoRequest(*r, out);
    if (out.size() != size || !std::equal(out.begin(), out.end(), data)) std::abort();
  }
  if (auto q = ParseRequest(in)) {
    std::vector<uint8_t> out;
    AppendRequest(*q, out);
    if (!std::equal(out.begin(), out.end(), data)) std::abort();
  }
  if (auto m = ParseMetaContextRequest(in, Limits{}.max_queries)) {
    std::vector<uint8_t> out;
    AppendMetaContextRequest(*m, out);
    if (out.size() != size || !std::equal(out.begin(), out.end(), data)) std::abort();
  }
  if (auto p = ParseBlockStatusPayload(in)) {
    std::vector<uint8_t> out;
    AppendBlockStatusChunk(0, p->context_id, p->descriptors, out);
    if (out.size() != kChunkHeaderSize + size ||
        !std::equal(out.begin() + kChunkHeaderSize, out.end(), data)) {
      std::abort();
    }
  }

  // The input as a client's byte stream after the greeting: options until
  // the handshake ends, then requests.
  static const ExportInfo kExports[] = {{"disk", "a disk", 1 << 20}, {"", "", 4096}};
  Handshake hs(kExports, Limits{});
  size_t pos = 0;
  int export_index = -1;
  while (pos + kOptionHeaderSize <= size) {
    auto h = ParseOptionHeader(in.subspan(pos, kOptionHeaderSize));
    if (!h) return 0;
    pos += kOptionHeaderSize;
    Handshake::Step step;
    if (h->length > Limits{}.max_option_length) {
      step = hs.TooLong(*h);
    } else {
      if (h->length > size - pos) return 0;
      step = hs.OnOption(h->option, in.subspan(pos, h->length));
      pos += h->length;
    }
    if (step.next == Handshake::Next::kClose) return 0;
    if (step.next == Handshake::Next::kTransmit) {
      export_index = step.export_index;
      break;
    }
  }
  if (export_index < 0) return 0;
  while (pos + kRequestSize <= size) {
    auto q = ParseRequest(in.subspan(pos, kRequestSize));
    if (!q) return 0;
    pos += kRequestSize;
    const uint64_t export_size = kExports[export_index].size;
    Decision d = Decide(*q, export_size, Limits{}, hs.block_status());
    if (d.kind == Decision::Kind::kRead &&
        (q->offset + q->length > export_size || q->length > Limits{}.max_block)) {
      std::abort();
    }
    if (d.kind == Decision::Kind::kBlockStatus) {
      if (!hs.block_status() || q->length == 0 || q->offset + q->length > export_size) std::abort();
      // Runs from the bytes that follow (as lengths and hole bits), as an
      // lseek walk might find them.
      std::vector<AllocationRun> runs;
      for (size_t i = pos; i + 4 <= size && runs.size() < 64; i += 4) {
        uint32_t v =
            uint32_t{data[i]} << 24 | uint32_t{data[i + 1]} << 16 | data[i + 2] << 8 | data[i + 3];
        runs.push_back({v >> 1, (v & 1) != 0});
      }
      const size_t most = 8;
      auto descriptors = BlockStatusDescriptors(*q, runs, most);
      uint64_t sum = 0;
      if (descriptors.empty() || descriptors.size() > most) std::abort();
      if ((q->flags & kCmdFlagReqOne) && descriptors.size() != 1) std::abort();
      for (size_t i = 0; i < descriptors.size(); ++i) {
        const BlockDescriptor& b = descriptors[i];
        if (b.length == 0 || (b.flags & ~(kStateHole | kStateZero)) != 0) std::abort();
        if (i > 0 && descriptors[i - 1].flags == b.flags) std::abort();  // merged
        sum += b.length;
      }
      if (sum > q->length) std::abort();  // clipped to the request
    }
    if (d.kind == Decision::Kind::kDisconnect) return 0;
    pos += std::min<uint64_t>(d.skip, size - pos);
  }
  return 0;
}
