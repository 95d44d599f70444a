#pragma once
// DHCP answers: ProxyDHCP per the PXE 2.1 specification, and a small full
// DHCP server (RFC 2131) for an isolated boot network. Pure: a request, the
// port it came in on and the time go in; the reply, where to send it and what
// happened come out. Not thread-safe: one owner (the server loop) calls it.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/lru_map.h"
#include "base/result.h"
#include "dhcp/codec.h"

namespace isoboot::dhcp {

enum class Mode {
  kOff,
  kProxy,
  kFull
};

// RFC 4578 2.1 / IANA processor architecture types (option 93).
namespace arch {
inline constexpr uint16_t kBios = 0;
inline constexpr uint16_t kEfiIa32 = 6;
inline constexpr uint16_t kEfiX64 = 7;
inline constexpr uint16_t kEfiBc = 9;  // EFI byte code; x86-64 firmware sends it too
inline constexpr uint16_t kEfiArm64 = 0x0b;
}  // namespace arch

// One --dhcp-range: addresses start..end of the subnet start & netmask.
struct Range {
  Ip4 start = 0;
  Ip4 end = 0;
  Ip4 netmask = 0xffffff00;
  bool OnSubnet(Ip4 ip) const { return (ip & netmask) == (start & netmask); }
  bool Contains(Ip4 ip) const { return ip >= start && ip <= end; }
  bool operator==(const Range&) const = default;
};

struct ProtocolConfig {
  Mode mode = Mode::kProxy;
  Ip4 server_ip = 0;  // server id, next-server (siaddr) and TFTP server
  // Boot files by client architecture; an empty name means "do not answer
  // that architecture".
  std::string bios_file = "pxelinux.0";    // or undionly.kpxe for iPXE
  std::string uefi_x64_file = "ipxe.efi";  // or snponly.efi
  std::string uefi_arm64_file;
  // What iPXE (user class "iPXE" or option 175) gets instead of the ROM image
  // again, e.g. http://10.0.0.1:8080/boot.ipxe. Empty: iPXE gets the ROM file.
  std::string ipxe_script_url;
  // Full mode only: the address ranges, at most one per subnet. A directly
  // attached client leases from the range on server_ip's subnet (or from the
  // only range there is); a relayed one (giaddr set) from the range whose
  // subnet holds giaddr (RFC 2131 4.3.1).
  std::vector<Range> ranges;
  Ip4 router = 0;  // directly attached clients; 0: none. Relayed: giaddr.
  std::vector<Ip4> dns_servers;
  uint32_t lease_seconds = 3600;
};

// Parses "START,END" (and optionally ",NETMASK", /24 by default) as for
// --dhcp-range and appends it to config.ranges; refuses a range on the subnet
// of one already there (a giaddr could not choose between them).
Result<void> ParseRange(std::string_view text, ProtocolConfig& config);

// The range a request leases from: the one on giaddr's subnet when relayed,
// else on ciaddr's (a renewing client unicasts without a relay), else the one
// for directly attached clients. Null: none (the request is dropped).
const Range* RangeFor(const ProtocolConfig& config, const Message& request);

// RFC 3046 2.2: the Relay Agent Information option of the request, if any,
// copied unchanged into the reply as its last option (Append writes END right
// after it).
void EchoRelayAgentInfo(const Message& request, Message& reply);

struct Lease {
  MacAddress mac{};
  Ip4 ip = 0;
  int64_t expires = 0;  // seconds since the epoch
  bool acked = false;   // ACKed once, not just offered
  bool operator==(const Lease&) const = default;
};

// A client worth telling the rest of isoboot about (the AoE target announces
// itself to it); ip is 0 when not known yet. Reported for DISCOVER and
// REQUEST only (never INFORM, whose ciaddr nobody checks), and per MAC at most
// kMaxReportsPerWindow times per kReportWindowSeconds: see Protocol::Handle.
struct ClientEvent {
  MacAddress mac{};
  Ip4 ip = 0;
  bool is_pxe = false;
  // What the client is, for the status page: its architecture (option 93,
  // or the one in "PXEClient:Arch:NNNNN"; arch::kBios when it says none),
  // whether it is iPXE, and the relay it came through (0: none).
  uint16_t arch = arch::kBios;
  bool ipxe = false;
  Ip4 relayed_by = 0;
};

inline constexpr int64_t kReportWindowSeconds = 10;
inline constexpr int kMaxReportsPerWindow = 4;
// MACs whose report count is remembered; a flood of new MACs forgets the
// least recently seen first.
inline constexpr size_t kReportedMacs = 4096;

struct Outcome {
  std::optional<Message> reply;
  // Where to send the reply; port 0 means "the client's port" (68).
  Ip4 dest_ip = 0;
  uint16_t dest_port = 0;
  std::optional<ClientEvent> client;
  bool leases_changed = false;
  // Set when the request came through a relay agent (its giaddr).
  Ip4 relayed_by = 0;
  // A relayed request whose giaddr is on no range's subnet (dropped).
  bool no_range = false;
  // Why nothing was sent, or what was sent, for the log.
  std::string note;
};

class Protocol {
 public:
  explicit Protocol(ProtocolConfig config);

  // `proxy_port` is true for requests that arrived on port 4011; src_ip and
  // src_port are the UDP source (4011 answers go straight back there).
  // Outcome::client is set for a DISCOVER or REQUEST (answered or not) unless
  // this MAC was reported with the same IP, PXE and iPXE flags within the
  // last kReportWindowSeconds, or already kMaxReportsPerWindow times in the
  // current window. A normal boot (PXE ROM, iPXE, the initrd's client) needs
  // four: (0, pxe), (ip, pxe), (ip, pxe, ipxe), (ip, plain).
  Outcome Handle(const Message& request, bool proxy_port, Ip4 src_ip, uint16_t src_port,
                 int64_t now);

  // Lease file: one "MAC IP EXPIRES" line per bound lease.
  std::string SaveLeases() const;
  Result<void> LoadLeases(std::string_view text);
  const std::map<MacAddress, Lease>& leases() const { return leases_; }
  size_t declined_count() const { return declined_.size(); }
  const ProtocolConfig& config() const { return config_; }

 private:
  Outcome HandleProxy(const Message& request, bool proxy_port, Ip4 src_ip, uint16_t src_port);
  Outcome HandleFull(const Message& request, int64_t now);
  Message ReplyTo(const Message& request, MessageType type) const;
  // Adds siaddr, file, options 60/43/66/67; false when the architecture has
  // no boot file configured.
  bool AddBootInfo(const Message& request, Message& reply, std::string& note) const;
  void AddNetConfig(const Range& range, Ip4 giaddr, Message& reply) const;
  std::optional<Ip4> PickAddress(const Range& range, const Message& request, int64_t now) const;
  bool AddressFree(const Range& range, Ip4 ip, const MacAddress& mac, int64_t now) const;
  // In a range (any, when `range` is null), and not the server's address.
  bool InRange(const Range* range, Ip4 ip) const;
  std::optional<ClientEvent> Report(const ClientEvent& event, int64_t now);

  ProtocolConfig config_;
  std::map<MacAddress, Lease> leases_;
  // Addresses a client declined (in use by someone we do not know), until
  // when. Bounded by the range: only an address of the range that the
  // declining MAC was offered or leased is recorded (RFC 2131 4.3.3: the
  // client declines the address the server gave it).
  std::map<Ip4, int64_t> declined_;
  struct Reported {
    ClientEvent last;
    int64_t last_at = 0;
    int64_t window_start = 0;
    int count = 0;
  };
  LruMap<MacAddress, Reported> reported_{kReportedMacs};
};

// True when option 60 starts with "PXEClient" (PXE 2.1, 2.2.5).
bool IsPxeClient(const Message& m);
// True for iPXE: user class "iPXE" (plain or RFC 3004 framed) or option 175.
bool IsIpxe(const Message& m);
// The client's architecture: option 93, else the one in option 60's
// "PXEClient:Arch:NNNNN", else arch::kBios (old BIOS ROMs send neither).
uint16_t ArchOf(const Message& m);

}  // namespace isoboot::dhcp
