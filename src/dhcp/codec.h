#pragma once
// BOOTP/DHCP message codec (RFC 951, RFC 2131, options per RFC 2132, PXE
// options per RFC 4578 and the PXE 2.1 specification). Pure: bytes to
// Message and back, no sockets or clocks; safe to call from any thread.
//
// Options are kept as (code, bytes) in arrival order. Parse joins repeated
// instances of one code (RFC 3396), reads options overloaded into the file and
// sname fields (option 52), and checks the length of every option the PXE and
// DHCP logic interprets, so the typed getters below can trust what they read.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/mac.h"
#include "base/result.h"

namespace isoboot::dhcp {

// IPv4 addresses are host-order integers: 10.0.0.1 is 0x0a000001.
using Ip4 = uint32_t;

inline constexpr uint8_t kBootRequest = 1;
inline constexpr uint8_t kBootReply = 2;
inline constexpr uint16_t kFlagBroadcast = 0x8000;
inline constexpr size_t kHeaderSize = 236;  // up to and including `file`
inline constexpr uint32_t kMagicCookie = 0x63825363;
// RFC 1542 2.1: replies are padded to the 300-byte BOOTP size, which some
// old relay agents and PXE ROMs insist on.
inline constexpr size_t kMinMessageSize = 300;

enum class MessageType : uint8_t {
  kDiscover = 1,
  kOffer = 2,
  kRequest = 3,
  kDecline = 4,
  kAck = 5,
  kNak = 6,
  kRelease = 7,
  kInform = 8,
};

// Option codes this project reads or writes.
namespace opt {
inline constexpr uint8_t kPad = 0;
inline constexpr uint8_t kSubnetMask = 1;
inline constexpr uint8_t kRouter = 3;
inline constexpr uint8_t kDnsServer = 6;
inline constexpr uint8_t kBroadcast = 28;
inline constexpr uint8_t kVendorSpecific = 43;  // PXE sub-options
inline constexpr uint8_t kRequestedIp = 50;
inline constexpr uint8_t kLeaseTime = 51;
inline constexpr uint8_t kOverload = 52;
inline constexpr uint8_t kMessageType = 53;
inline constexpr uint8_t kServerId = 54;
inline constexpr uint8_t kParameterList = 55;
inline constexpr uint8_t kMessage = 56;
inline constexpr uint8_t kVendorClass = 60;
inline constexpr uint8_t kClientId = 61;
inline constexpr uint8_t kTftpServer = 66;
inline constexpr uint8_t kBootfile = 67;
inline constexpr uint8_t kUserClass = 77;
inline constexpr uint8_t kRelayAgentInfo = 82;  // RFC 3046: echoed back unchanged
inline constexpr uint8_t kClientArch = 93;
inline constexpr uint8_t kClientNdi = 94;
inline constexpr uint8_t kClientUuid = 97;
inline constexpr uint8_t kIpxe = 175;  // iPXE encapsulated options
inline constexpr uint8_t kEnd = 255;
}  // namespace opt

// PXE 2.1 vendor-encapsulated sub-options (inside option 43).
namespace pxe {
inline constexpr uint8_t kDiscoveryControl = 6;
// Bit 3 of PXE_DISCOVERY_CONTROL: the offer carries a boot file name, so the
// ROM downloads it at once instead of running boot-server discovery.
inline constexpr uint8_t kUseBootfile = 0x08;
}  // namespace pxe

struct Option {
  uint8_t code = 0;
  std::vector<uint8_t> data;
  bool operator==(const Option&) const = default;
};

struct Message {
  uint8_t op = kBootRequest;
  uint8_t htype = 1;  // Ethernet
  uint8_t hlen = 6;
  uint8_t hops = 0;
  uint32_t xid = 0;
  uint16_t secs = 0;
  uint16_t flags = 0;
  Ip4 ciaddr = 0;
  Ip4 yiaddr = 0;
  Ip4 siaddr = 0;
  Ip4 giaddr = 0;
  std::array<uint8_t, 16> chaddr{};
  std::string sname;            // at most 63 bytes on the wire (NUL-terminated)
  std::string file;             // at most 127 bytes on the wire
  std::vector<Option> options;  // without pad, end and overload

  bool operator==(const Message&) const = default;

  // Typed access; absent (or, for the first, not a DHCP message) gives nullopt.
  std::optional<MessageType> Type() const;
  const Option* Find(uint8_t code) const;
  std::optional<Ip4> GetIp(uint8_t code) const;  // first address of the option
  std::optional<uint32_t> GetU32(uint8_t code) const;
  std::string GetString(uint8_t code) const;  // empty if absent
  // Option 93 (RFC 4578 2.1): the first architecture type the client lists.
  std::optional<uint16_t> ClientArch() const;
  MacAddress Mac() const;  // first 6 bytes of chaddr

  // Replace (or add) one option.
  void Set(uint8_t code, std::span<const uint8_t> data);
  void SetU8(uint8_t code, uint8_t v);
  void SetU32(uint8_t code, uint32_t v);
  void SetIp(uint8_t code, Ip4 ip) { SetU32(code, ip); }
  void SetIps(uint8_t code, std::span<const Ip4> ips);
  void SetString(uint8_t code, std::string_view s);
};

// Parses one UDP payload. Rejects short packets, a wrong magic cookie, bad
// op/hlen, options running past the end, and interpreted options of the
// wrong length; the error says which.
Result<Message> Parse(std::span<const uint8_t> bytes);

// Appends the wire form: header, cookie, options (those longer than 255 bytes
// split as RFC 3396 says), end, padding to kMinMessageSize. sname and file
// longer than their fields are truncated.
void Append(const Message& message, std::vector<uint8_t>& out);

// Sub-options of an encapsulated option (43, 175): code/length/data, pad and
// end allowed, same rules as top-level options.
Result<std::vector<Option>> ParseSubOptions(std::span<const uint8_t> bytes);
void AppendSubOptions(std::span<const Option> options, std::vector<uint8_t>& out);

std::string FormatIp(Ip4 ip);
std::optional<Ip4> ParseIp(std::string_view text);
std::string_view TypeName(MessageType type);

}  // namespace isoboot::dhcp
