#pragma once
// Result<T>: a value or an Error, for code where bad input is normal (codecs,
// parsers, image readers). Mirrors the names of std::expected (C++23) so it
// can become an alias later. Never throws except on misuse (value() of an
// error), which is a bug.

#include <cassert>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace isoboot {

// What went wrong, for code that must decide what to do about an error
// (LevelDB's Status::IsNotFound(), KJ's Exception::Type). Code branches on
// the kind, never on the message, which is for people.
enum class ErrorKind {
  kInvalidInput,  // malformed bytes or arguments: the input's fault (the default)
  kNotFound,      // a name that does not exist
  kIo,            // an OS call failed (Error::os_error holds errno when known)
  kUnsupported,   // well-formed but beyond what we implement
  kPermission,    // refused for lack of a right (credentials, capabilities)
  kExhausted,     // a limit was reached: size, count, space
  kTimeout,
  kCancelled,  // stopped on request (a signal, Stop())
};

// The kind's name, e.g. "not found" (for logs and tests' failure messages).
constexpr std::string_view ToString(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput:
      return "invalid input";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kIo:
      return "I/O error";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kPermission:
      return "permission denied";
    case ErrorKind::kExhausted:
      return "limit reached";
    case ErrorKind::kTimeout:
      return "timed out";
    case ErrorKind::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

// An error is a kind and one human-readable line naming what was wrong, e.g.
// "directory record at byte 38912 points past the end of the image".
struct Error {
  ErrorKind kind = ErrorKind::kInvalidInput;
  std::string message;
  int os_error = 0;  // errno, when an OS call failed

  bool Is(ErrorKind k) const { return kind == k; }
};

inline Error MakeError(std::string message) {
  return Error{ErrorKind::kInvalidInput, std::move(message)};
}
inline Error MakeError(ErrorKind kind, std::string message) {
  return Error{kind, std::move(message)};
}
// An OS call failed with `err` (errno); kind follows from it (ENOENT is
// kNotFound, EACCES kPermission, ENOSPC kExhausted, ...).
Error OsError(int err, std::string_view context);

// A setup error that must end the command (STYLE.md: setup errors throw):
// what() is "context: message"; the Error stays available to catchers.
class ErrorException : public std::runtime_error {
 public:
  explicit ErrorException(Error error, std::string_view context = {});
  const Error& error() const { return error_; }

 private:
  Error error_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  const Error& error() const {
    assert(!has_value());
    return std::get<1>(v_);
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

// Unwraps a Result where an error is a setup error: throws ErrorException
// with `context` (e.g. "--dhcp-range") before the error's message.
template <typename T>
T OrThrow(Result<T> result, std::string_view context = {}) {
  if (!result) throw ErrorException(result.error(), context);
  return std::move(result).value();
}
inline void OrThrow(const Result<void>& result, std::string_view context = {}) {
  if (!result) throw ErrorException(result.error(), context);
}

}  // namespace isoboot
