#include "serve/netif.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/unique_fd.h"

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

std::optional<MacAddress> NeighbourMacIn(std::string_view table, std::string_view ip,
                                         std::string_view interface) {
  constexpr unsigned kComplete = 0x2;  // ATF_COM
  // "IP address  HW type  Flags  HW address  Mask  Device", a header line
  // first; fields are separated by runs of blanks.
  size_t line_end = table.find('\n');
  while (line_end != std::string_view::npos) {
    table.remove_prefix(line_end + 1);
    line_end = table.find('\n');
    std::string_view line = table.substr(0, line_end);
    std::string_view fields[6];
    size_t n = 0;
    while (n < 6) {
      size_t start = line.find_first_not_of(' ');
      if (start == std::string_view::npos) break;
      line.remove_prefix(start);
      size_t end = line.find(' ');
      fields[n++] = line.substr(0, end);
      line.remove_prefix(end == std::string_view::npos ? line.size() : end);
    }
    if (n != 6 || fields[0] != ip || fields[5] != interface) continue;
    unsigned flags = 0;
    if (fields[2].starts_with("0x"))
      flags = std::strtoul(std::string(fields[2]).c_str(), nullptr, 16);
    if (!(flags & kComplete)) return std::nullopt;
    auto mac = ParseMac(fields[3]);
    if (!mac || *mac == MacAddress{}) return std::nullopt;
    return mac;
  }
  return std::nullopt;
}

std::optional<MacAddress> NeighbourMac(std::string_view ip, std::string_view interface) {
  // A /proc file has no size: read until the end (the table is small; the
  // kernel keeps a few thousand entries at most, gc_thresh3).
  UniqueFd fd(::open("/proc/net/arp", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string table;
  char buf[16384];
  for (int i = 0; i < 1024; ++i) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    table.append(buf, static_cast<size_t>(n));
  }
  return NeighbourMacIn(table, ip, interface);
}

}  // namespace isoboot::serve
