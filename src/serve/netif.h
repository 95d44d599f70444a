#pragma once
// The IPv4 address and prefix of a local interface, as clients on that
// network reach this server (for next-server, boot URLs and DHCP ranges).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/mac.h"
#include "base/result.h"

namespace isoboot::serve {

struct InterfaceAddress {
  std::string ip;         // dotted quad
  uint32_t ip_host = 0;   // host byte order
  int prefix_length = 0;  // 24 for a /24
};

Result<InterfaceAddress> InterfaceIpv4(const std::string& interface);

// The link-layer address the kernel's neighbour (ARP) table holds for `ip`
// on `interface`: the MAC that really sent that host's packets on this
// segment, since the table is filled from what arrives, and a TCP handshake
// or a TFTP exchange cannot complete unless the peer receives at that MAC.
// nullopt when there is no complete entry (not on this segment, or not
// resolved yet). Reads /proc/net/arp of the caller's network namespace.
std::optional<MacAddress> NeighbourMac(std::string_view ip, std::string_view interface);

// One /proc/net/arp table's answer (the parsing, for tests).
std::optional<MacAddress> NeighbourMacIn(std::string_view arp_table, std::string_view ip,
                                         std::string_view interface);

}  // namespace isoboot::serve
