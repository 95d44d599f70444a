#pragma once
// Byte ranges for HTTP (RFC 9110 §14): parsing a Range header, resolving it
// against a representation's length, and evaluating If-Range (§13.1.5).
// Pure: no sockets, clocks or files; every function is thread-safe.
//
// Outcomes follow the RFC: a Range header the server cannot parse or whose
// unit is not "bytes" is ignored (full 200); a syntactically valid set with no
// satisfiable range gets 416 with "Content-Range: bytes */<length>".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
// EqualsIgnoreCase, which callers of this header use for tokens.
#include "base/strings.h"

namespace isoboot::http {

// One range-spec as written by the client, before the length is known.
struct RangeSpec {
  // first-pos "-" [last-pos]: first and (optionally) last byte, inclusive.
  // "-" suffix-length: the last `suffix` bytes (first/last unused).
  bool is_suffix = false;
  uint64_t first = 0;
  std::optional<uint64_t> last;
  uint64_t suffix = 0;
};

// Parses a Range field value ("bytes=0-99, 200-, -50"). Errors mean "ignore
// the header": a syntax error, an int-range with last < first, or a unit
// other than bytes. Numbers too large for 64 bits saturate (they can only
// mean "beyond the end").
Result<std::vector<RangeSpec>> ParseRange(std::string_view value);

// A resolved range: byte offsets [first, last] inside the representation.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t length() const { return last - first + 1; }
  bool operator==(const ByteRange&) const = default;
};

enum class RangeOutcome {
  kFull,           // serve the whole representation (200)
  kPartial,        // serve `ranges` (206); one range or multipart/byteranges
  kUnsatisfiable,  // 416 with Content-Range: bytes */length
};

struct RangeDecision {
  RangeOutcome outcome = RangeOutcome::kFull;
  std::vector<ByteRange> ranges;  // kPartial only; never empty then
};

// Ranges above this many (after coalescing) make the server send the whole
// representation instead (RFC 9110 §14.2 lets a server ignore a Range header
// whose many small parts would cost more than they save).
inline constexpr size_t kMaxRanges = 200;

// Resolves `specs` against a representation of `length` bytes. Unsatisfiable
// specs are dropped. When ranges overlap, or there are more than kMaxRanges,
// they are sorted and overlapping or touching ones coalesced (§14.2 allows
// it; it stops a request of many overlapping ranges from multiplying the
// bytes sent); otherwise the client's order is kept.
RangeDecision ResolveRanges(const std::vector<RangeSpec>& specs, uint64_t length);

// Parses `range_value` (absent: nullopt) and resolves it; a header that does
// not parse is ignored (kFull).
RangeDecision DecideRanges(std::optional<std::string_view> range_value, uint64_t length);

// The validators of the selected representation. `etag` is the full quoted
// entity-tag as sent in the ETag field ("\"abc\""); `last_modified` is
// seconds since the epoch, or 0 when unknown.
struct Validators {
  std::string etag;
  int64_t last_modified = 0;
};

// Evaluates If-Range (RFC 9110 §13.1.5): true when the Range header may be
// honoured. An entity-tag matches only by strong comparison (a weak tag never
// matches); an HTTP-date only when it equals Last-Modified exactly. Anything
// unparsable is false (send the whole representation), which is always safe.
bool IfRangeMatches(std::string_view if_range_value, const Validators& current);

}  // namespace isoboot::http
