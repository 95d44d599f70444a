#include "http/range.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "http/date.h"

namespace isoboot::http {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// OWS of RFC 9110 §5.6.3: spaces and horizontal tabs only.
constexpr std::string_view kOws = " \t";

std::string_view TrimOws(std::string_view s) {
  return Trim(s, kOws);
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// tchar of RFC 9110 §5.6.2.
bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// 1*DIGIT, saturating at 2^64-1. Empty or non-digit text fails.
std::optional<uint64_t> ParseDigits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    auto d = static_cast<uint64_t>(c - '0');
    v = v > (kMax - d) / 10 ? kMax : v * 10 + d;
  }
  return v;
}

Result<RangeSpec> ParseSpec(std::string_view s) {
  size_t dash = s.find('-');
  if (dash == std::string_view::npos) return MakeError(fmt::format("range '{}' has no '-'", s));
  RangeSpec spec;
  if (dash == 0) {
    auto n = ParseDigits(s.substr(1));
    if (!n) return MakeError(fmt::format("bad suffix range '{}'", s));
    spec.is_suffix = true;
    spec.suffix = *n;
    return spec;
  }
  auto first = ParseDigits(s.substr(0, dash));
  if (!first) return MakeError(fmt::format("bad first position in '{}'", s));
  spec.first = *first;
  std::string_view rest = s.substr(dash + 1);
  if (!rest.empty()) {
    auto last = ParseDigits(rest);
    if (!last) return MakeError(fmt::format("bad last position in '{}'", s));
    if (*last < *first) return MakeError(fmt::format("range '{}' ends before it starts", s));
    spec.last = *last;
  }
  return spec;
}

}  // namespace

Result<std::vector<RangeSpec>> ParseRange(std::string_view value) {
  value = TrimOws(value);
  size_t eq = value.find('=');
  if (eq == std::string_view::npos) return MakeError("no '=' after the range unit");
  std::string_view unit = value.substr(0, eq);
  if (unit.empty() || !std::all_of(unit.begin(), unit.end(), IsTchar)) {
    return MakeError("bad range unit");
  }
  if (!EqualsIgnoreCase(unit, "bytes")) {
    return MakeError(fmt::format("range unit '{}' is not bytes", unit));
  }
  // range-set = 1#range-spec; empty list elements are allowed (§5.6.1).
  std::vector<RangeSpec> specs;
  std::string_view rest = value.substr(eq + 1);
  while (true) {
    size_t comma = rest.find(',');
    std::string_view element = TrimOws(rest.substr(0, comma));
    if (!element.empty()) {
      auto spec = ParseSpec(element);
      if (!spec) return spec.error();
      specs.push_back(*spec);
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (specs.empty()) return MakeError("empty range set");
  return specs;
}

RangeDecision ResolveRanges(const std::vector<RangeSpec>& specs, uint64_t length) {
  RangeDecision d;
  for (const RangeSpec& s : specs) {
    if (length == 0) break;  // nothing is satisfiable in an empty representation
    if (s.is_suffix) {
      if (s.suffix == 0) continue;
      d.ranges.push_back({length - std::min(s.suffix, length), length - 1});
    } else {
      if (s.first >= length) continue;
      d.ranges.push_back({s.first, std::min(s.last.value_or(kMax), length - 1)});
    }
  }
  if (d.ranges.empty()) {
    d.outcome = RangeOutcome::kUnsatisfiable;
    return d;
  }
  std::vector<ByteRange> sorted = d.ranges;
  std::sort(sorted.begin(), sorted.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.first < b.first; });
  bool overlap = false;
  for (size_t i = 1; i < sorted.size() && !overlap; ++i) {
    overlap = sorted[i].first <= sorted[i - 1].last;
  }
  if (overlap || sorted.size() > kMaxRanges) {
    std::vector<ByteRange> merged;
    for (const ByteRange& r : sorted) {
      // Touching ranges merge too (last + 1 == first); last < length, so no overflow.
      if (!merged.empty() && r.first <= merged.back().last + 1) {
        merged.back().last = std::max(merged.back().last, r.last);
      } else {
        merged.push_back(r);
      }
    }
    d.ranges = std::move(merged);
  }
  if (d.ranges.size() > kMaxRanges) {
    d.ranges.clear();
    d.outcome = RangeOutcome::kFull;
    return d;
  }
  d.outcome = RangeOutcome::kPartial;
  return d;
}

RangeDecision DecideRanges(std::optional<std::string_view> range_value, uint64_t length) {
  if (!range_value) return {};
  auto specs = ParseRange(*range_value);
  if (!specs) return {};
  return ResolveRanges(*specs, length);
}

bool IfRangeMatches(std::string_view if_range_value, const Validators& current) {
  std::string_view v = TrimOws(if_range_value);
  if (v.empty()) return false;
  if (v.front() == '"' || v.starts_with("W/")) {
    // Strong comparison: both tags strong and identical (§8.8.3.2). Ours are
    // always strong, so a weak tag from the client never matches.
    return !current.etag.empty() && v == current.etag;
  }
  auto date = ParseHttpDate(v);
  return date.has_value() && current.last_modified != 0 && *date == current.last_modified;
}

}  // namespace isoboot::http
