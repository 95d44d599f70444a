#include "base/result.h"

#include <errno.h>

#include <cstring>
#include <string>

namespace isoboot {

Error OsError(int err, std::string_view context) {
  ErrorKind kind = ErrorKind::kIo;
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      kind = ErrorKind::kNotFound;
      break;
    case EACCES:
    case EPERM:
    case EROFS:
      kind = ErrorKind::kPermission;
      break;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      kind = ErrorKind::kExhausted;
      break;
    case ETIMEDOUT:
      kind = ErrorKind::kTimeout;
      break;
    case ECANCELED:
    case EINTR:
      kind = ErrorKind::kCancelled;
      break;
    case EINVAL:
      kind = ErrorKind::kInvalidInput;
      break;
    case ENOSYS:
    case EOPNOTSUPP:
      kind = ErrorKind::kUnsupported;
      break;
    default:
      break;
  }
  std::string message(context);
  if (!message.empty()) message += ": ";
  message += std::strerror(err);
  return Error{kind, std::move(message), err};
}

namespace {
std::string WithContext(const Error& error, std::string_view context) {
  if (context.empty()) return error.message;
  std::string s(context);
  s += ": ";
  s += error.message;
  return s;
}
}  // namespace

ErrorException::ErrorException(Error error, std::string_view context)
    : std::runtime_error(WithContext(error, context)), error_(std::move(error)) {}

}  // namespace isoboot
