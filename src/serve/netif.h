#pragma once
// The IPv4 address and prefix of a local interface, as clients on that
// network reach this server (for next-server, boot URLs and DHCP ranges).

#include <cstdint>
#include <string>

#include "base/result.h"

namespace isoboot::serve {

struct InterfaceAddress {
  std::string ip;         // dotted quad
  uint32_t ip_host = 0;   // host byte order
  int prefix_length = 0;  // 24 for a /24
};

Result<InterfaceAddress> InterfaceIpv4(const std::string& interface);

}  // namespace isoboot::serve
