#pragma once
// (Named privilege.h, not capability.h, so it never shadows <linux/capability.h>.)
// Linux capability checks, so a server can say exactly which privilege is
// missing instead of reporting a bare EPERM. Thread-safe.

#include <string>

namespace isoboot::sys {

// True if the calling thread has CAP_NET_RAW in its effective set.
bool HasCapNetRaw();

// "needs CAP_NET_RAW (run as root or setcap cap_net_raw+ep /path/to/isoboot)".
std::string NeedsCapNetRawMessage();

}  // namespace isoboot::sys
