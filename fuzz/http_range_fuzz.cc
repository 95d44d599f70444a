// libFuzzer target for the HTTP codecs: Range parsing and resolution,
// If-Range, HTTP-dates and response planning. Input: 8 bytes of
// representation length, then "range\nif-range\ntarget".
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/date.h"
#include "http/range.h"
#include "http/response.h"
#include "vfs/vfs.h"

using namespace isoboot::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t length = 0;
  for (int i = 0; i < 8; ++i)
    length = (length << 8) | data[i];
  std::string_view rest(reinterpret_cast<const char*>(data) + 8, size - 8);
  std::string_view range = rest.substr(0, rest.find('\n'));
  rest.remove_prefix(std::min(rest.size(), range.size() + 1));
  std::string_view if_range = rest.substr(0, rest.find('\n'));
  rest.remove_prefix(std::min(rest.size(), if_range.size() + 1));
  std::string_view target = rest;

  RangeDecision d = DecideRanges(range, length);
  if (d.outcome == RangeOutcome::kPartial) {
    if (d.ranges.empty() || d.ranges.size() > kMaxRanges) __builtin_trap();
    for (const ByteRange& r : d.ranges) {
      if (r.first > r.last || r.last >= length) __builtin_trap();
    }
  }
  if (auto t = ParseHttpDate(if_range)) {
    if (t >= 0 && *t <= 253402300799 && ParseHttpDate(FormatHttpDate(*t)) != t) __builtin_trap();
  }
  (void)IfRangeMatches(if_range, {"\"abc\"", static_cast<int64_t>(length)});

  // A small tree so planning runs end to end (text sources only: no files).
  static const auto* tree = [] {
    auto* t = new isoboot::vfs::Tree();
    t->Add("a", isoboot::vfs::TextSource("0123456789abcdefghijklmnopqrstuvwxyz", 784111777));
    t->Add("live.iso", isoboot::vfs::TextSource(std::string(5000, 'x')));
    return t;
  }();
  RequestHead req;
  req.method = length & 1 ? "GET" : "HEAD";
  req.target = target;
  req.range = range;
  req.if_range = if_range;
  ResponsePlan plan = PlanResponse(req, tree, "BOUNDARY");
  uint64_t sum = 0;
  for (const BodyPiece& p : plan.body) {
    sum += p.size();
    if (p.from_source && (!plan.source || p.offset + p.length > plan.source->size())) {
      __builtin_trap();
    }
  }
  if (!plan.body.empty() && sum != plan.content_length) __builtin_trap();
  return 0;
}
