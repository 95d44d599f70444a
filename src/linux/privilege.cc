#include "linux/privilege.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

namespace isoboot::sys {

bool HasCapNetRaw() {
  // The raw syscall avoids a libcap dependency for one bit.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_NET_RAW / 32].effective >> (CAP_NET_RAW % 32)) & 1;
}

std::string NeedsCapNetRawMessage() {
  char exe[PATH_MAX] = {};
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string path = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "isoboot";
  return "needs CAP_NET_RAW (run as root or setcap cap_net_raw+ep " + path + ")";
}

}  // namespace isoboot::sys
