#pragma once
// HTTP-date (RFC 9110 §5.6.7): formatting as IMF-fixdate and parsing all
// three forms a recipient must accept (IMF-fixdate, obsolete RFC 850 and
// asctime). Pure and thread-safe: no locale, no time zone, no libc time calls.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isoboot::http {

// "Sun, 06 Nov 1994 08:49:37 GMT" for `seconds` since the epoch (UTC).
std::string FormatHttpDate(int64_t seconds);

// Seconds since the epoch, or nullopt when `text` is not an HTTP-date.
std::optional<int64_t> ParseHttpDate(std::string_view text);

}  // namespace isoboot::http
