#include "linux/file_limit.h"

#include <errno.h>
#include <sys/resource.h>

#include <system_error>

#include <fmt/format.h>

namespace isoboot::sys {

FileLimit RaiseFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
    throw std::system_error(errno, std::system_category(), "getrlimit(RLIMIT_NOFILE)");
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return FileLimit{static_cast<uint64_t>(rl.rlim_cur), static_cast<uint64_t>(rl.rlim_max)};
}

std::optional<std::string> CheckFileLimit(const FileLimit& limit, const FileNeeds& needs) {
  const uint64_t wanted = uint64_t{needs.http_connections} + needs.tftp_sessions + needs.slack;
  if (limit.soft >= wanted) return std::nullopt;
  return fmt::format(
      "open files limited to {}, fewer than the {} HTTP connections and {} TFTP sessions "
      "configured: raise LimitNOFILE",
      limit.soft, needs.http_connections, needs.tftp_sessions);
}

}  // namespace isoboot::sys
