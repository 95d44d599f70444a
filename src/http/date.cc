#include "http/date.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

namespace isoboot::http {
namespace {

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's
// days_from_civil), valid for any year representable here.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

bool IsLeap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kLen[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kLen[m - 1];
}

// A cursor over the date text; every step fails softly (ok_ = false).
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool ok() const { return ok_ && pos_ == s_.size(); }

  void Literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) ok_ = false;
    pos_ += lit.size();
    if (pos_ > s_.size()) pos_ = s_.size();
  }
  unsigned Digits(size_t n) {
    unsigned v = 0;
    for (size_t i = 0; i < n; ++i) {
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') {
        ok_ = false;
        return 0;
      }
      v = v * 10 + static_cast<unsigned>(s_[pos_++] - '0');
    }
    return v;
  }
  // Index of the name in `names` that the text continues with, or -1.
  template <size_t N>
  int Name(const std::array<std::string_view, N>& names) {
    for (size_t i = 0; i < N; ++i) {
      if (s_.substr(pos_, names[i].size()) == names[i]) {
        pos_ += names[i].size();
        return static_cast<int>(i);
      }
    }
    ok_ = false;
    return -1;
  }
  bool Peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::optional<int64_t> Combine(int64_t year, int month, unsigned day, unsigned hour, unsigned min,
                               unsigned sec) {
  if (month < 0 || day < 1 || day > DaysInMonth(year, static_cast<unsigned>(month) + 1) ||
      hour > 23 || min > 59 || sec > 60) {
    return std::nullopt;
  }
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month) + 1, day);
  return days * 86400 + hour * 3600 + min * 60 + sec;
}

// "08:49:37"
void TimeOfDay(Scanner& sc, unsigned& h, unsigned& m, unsigned& s) {
  h = sc.Digits(2);
  sc.Literal(":");
  m = sc.Digits(2);
  sc.Literal(":");
  s = sc.Digits(2);
}

std::optional<int64_t> ParseImfFixdate(std::string_view text) {
  Scanner sc(text);
  sc.Name(kDays);
  sc.Literal(", ");
  unsigned day = sc.Digits(2);
  sc.Literal(" ");
  int month = sc.Name(kMonths);
  sc.Literal(" ");
  unsigned year = sc.Digits(4);
  sc.Literal(" ");
  unsigned h, m, s;
  TimeOfDay(sc, h, m, s);
  sc.Literal(" GMT");
  if (!sc.ok()) return std::nullopt;
  return Combine(year, month, day, h, m, s);
}

std::optional<int64_t> ParseRfc850(std::string_view text) {
  Scanner sc(text);
  sc.Name(kLongDays);
  sc.Literal(", ");
  unsigned day = sc.Digits(2);
  sc.Literal("-");
  int month = sc.Name(kMonths);
  sc.Literal("-");
  unsigned yy = sc.Digits(2);
  sc.Literal(" ");
  unsigned h, m, s;
  TimeOfDay(sc, h, m, s);
  sc.Literal(" GMT");
  if (!sc.ok()) return std::nullopt;
  // RFC 9110 wants two-digit years read relative to "now"; being pure, we
  // use the fixed POSIX pivot (69 and below are 20xx), right until 2069.
  return Combine(yy < 70 ? 2000 + yy : 1900 + yy, month, day, h, m, s);
}

std::optional<int64_t> ParseAsctime(std::string_view text) {
  Scanner sc(text);
  sc.Name(kDays);
  sc.Literal(" ");
  int month = sc.Name(kMonths);
  sc.Literal(" ");
  unsigned day;
  if (sc.Peek(' ')) {
    sc.Literal(" ");
    day = sc.Digits(1);
  } else {
    day = sc.Digits(2);
  }
  sc.Literal(" ");
  unsigned h, m, s;
  TimeOfDay(sc, h, m, s);
  sc.Literal(" ");
  unsigned year = sc.Digits(4);
  if (!sc.ok()) return std::nullopt;
  return Combine(year, month, day, h, m, s);
}

}  // namespace

std::string FormatHttpDate(int64_t seconds) {
  // IMF-fixdate has a four-digit year: clamp to 1970-01-01 .. 9999-12-31.
  seconds = std::clamp<int64_t>(seconds, 0, 253402300799);
  int64_t days = seconds / 86400;
  int64_t rem = seconds - days * 86400;
  Civil c = CivilFromDays(days);
  // 1970-01-01 was a Thursday.
  int64_t weekday = ((days % 7) + 7 + 4) % 7;
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", kDays[weekday], c.day,
                     kMonths[c.month - 1], c.year, rem / 3600, rem / 60 % 60, rem % 60);
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  if (auto t = ParseImfFixdate(text)) return t;
  if (auto t = ParseRfc850(text)) return t;
  return ParseAsctime(text);
}

}  // namespace isoboot::http
