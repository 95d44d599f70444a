#include "serve/netif.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace isoboot::serve {

Result<InterfaceAddress> InterfaceIpv4(const std::string& interface) {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return MakeError(fmt::format("getifaddrs: {}", std::strerror(errno)));
  std::unique_ptr<struct ifaddrs, decltype(&freeifaddrs)> owned(list, &freeifaddrs);
  bool exists = false;
  for (auto* a = list; a; a = a->ifa_next) {
    if (interface != a->ifa_name) continue;
    exists = true;
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    InterfaceAddress out;
    auto* sin = reinterpret_cast<struct sockaddr_in*>(a->ifa_addr);
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    out.ip = text;
    out.ip_host = ntohl(sin->sin_addr.s_addr);
    if (a->ifa_netmask) {
      auto* mask = reinterpret_cast<struct sockaddr_in*>(a->ifa_netmask);
      out.prefix_length = std::popcount(ntohl(mask->sin_addr.s_addr));
    }
    return out;
  }
  if (!exists) return MakeError(fmt::format("interface {} does not exist", interface));
  return MakeError(
      fmt::format("interface {} has no IPv4 address: give it one (ip addr add "
                  "10.0.0.1/24 dev {}) or pass --server-ip",
                  interface, interface));
}

}  // namespace isoboot::serve
