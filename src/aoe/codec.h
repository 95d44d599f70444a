#pragma once
// ATA over Ethernet wire format (Coraid, "AoE Protocol Definition", revision
// 11): Ethernet frame, AoE header and the four commands (ATA, Query Config,
// MAC Mask List, Reserve/Release). Pure: bytes in, structs out and back.
// Parsed structs hold spans into the parsed buffer (no copies, no allocation),
// so they must not outlive it. Thread-compatible (no shared state).

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/mac.h"
#include "base/result.h"

namespace isoboot::aoe {

using Mac = MacAddress;
inline constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline constexpr uint16_t kEtherType = 0x88A2;
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kEthernetHeaderSize = 14;
inline constexpr size_t kAoeHeaderSize = 10;            // after the Ethernet header
inline constexpr size_t kAtaHeaderSize = 12;            // after the AoE header
inline constexpr size_t kMinFrameSize = 60;             // Ethernet minimum without FCS
inline constexpr size_t kMaxConfigStringLength = 1024;  // spec section 3.2
inline constexpr uint16_t kBroadcastShelf = 0xffff;
inline constexpr uint8_t kBroadcastSlot = 0xff;

// AoE header flags (low nibble of the version byte).
inline constexpr uint8_t kFlagResponse = 0x08;
inline constexpr uint8_t kFlagError = 0x04;

enum class Command : uint8_t {
  kAta = 0,
  kQueryConfig = 1,
  kMacMask = 2,
  kReserve = 3
};

// AoE header error field (spec section 2.4).
enum class AoeError : uint8_t {
  kNone = 0,
  kUnrecognizedCommand = 1,
  kBadArgument = 2,
  kDeviceUnavailable = 3,
  kConfigStringPresent = 4,
  kUnsupportedVersion = 5,
  kTargetReserved = 6,
};

struct Header {
  Mac dst{};
  Mac src{};
  uint8_t version = kVersion;
  uint8_t flags = 0;    // kFlagResponse | kFlagError
  uint8_t error = 0;    // AoeError
  uint16_t shelf = 0;   // "major"
  uint8_t slot = 0;     // "minor"
  uint8_t command = 0;  // Command; unknown values parse (the target answers them with an error)
  uint32_t tag = 0;
};

// ATA aflags.
inline constexpr uint8_t kAtaFlagExtended = 0x40;  // E: LBA48
inline constexpr uint8_t kAtaFlagDevice = 0x10;    // D
inline constexpr uint8_t kAtaFlagAsync = 0x02;     // A
inline constexpr uint8_t kAtaFlagWrite = 0x01;     // W

struct AtaMessage {
  uint8_t aflags = 0;
  uint8_t err_feature = 0;
  uint8_t sector_count = 0;
  uint8_t cmd_status = 0;
  uint64_t lba = 0;               // 48 bits, little-endian on the wire
  std::span<const uint8_t> data;  // the rest of the frame (may include padding)
};

enum class ConfigCommand : uint8_t {
  kRead = 0,
  kTest = 1,
  kTestPrefix = 2,
  kSet = 3,
  kForceSet = 4
};

struct QueryConfig {
  uint16_t buffer_count = 0;
  uint16_t firmware_version = 0;
  uint8_t sector_count = 0;  // max sectors per ATA command
  uint8_t aoe_version = kVersion;
  uint8_t ccmd = 0;                 // ConfigCommand
  std::span<const uint8_t> config;  // at most kMaxConfigStringLength bytes
};

enum class MaskCommand : uint8_t {
  kRead = 0,
  kEdit = 1
};
enum class MaskError : uint8_t {
  kNone = 0,
  kUnspecified = 1,
  kBadDirective = 2,
  kListFull = 3
};
enum class DirectiveCommand : uint8_t {
  kNone = 0,
  kAdd = 1,
  kDelete = 2
};

struct MacDirective {
  uint8_t dcmd = 0;  // DirectiveCommand
  Mac mac{};
};

// Directives are decoded lazily from `directives` (8 bytes each) so parsing
// never allocates; Append writes `to_write` instead.
struct MacMaskList {
  uint8_t mcmd = 0;    // MaskCommand
  uint8_t merror = 0;  // MaskError
  uint8_t count = 0;
  std::span<const uint8_t> directives;  // count * 8 bytes
  std::span<const MacDirective> to_write;
  MacDirective Directive(size_t i) const;
};

enum class ReserveCommand : uint8_t {
  kRead = 0,
  kSet = 1,
  kForceSet = 2
};

struct Reserve {
  uint8_t rcmd = 0;  // ReserveCommand
  uint8_t count = 0;
  std::span<const uint8_t> macs;  // count * 6 bytes
  std::span<const Mac> to_write;
  Mac At(size_t i) const;
};

// A parsed frame: header plus the argument matching header.command (the
// others are left default). Unknown commands parse with only the header.
struct Frame {
  Header header;
  AtaMessage ata;
  QueryConfig config;
  MacMaskList mask;
  Reserve reserve;
};

// Parses an Ethernet frame carrying AoE. Rejects (with a reason) frames whose
// ethertype is not AoE, version is not 1, or whose command arguments are
// truncated or inconsistent. Trailing bytes (Ethernet padding) are allowed.
Result<Frame> Parse(std::span<const uint8_t> frame);

// Appends Ethernet + AoE headers and the argument for header.command.
// For ATA, `ata.data` is appended as is. Does not pad; see PadFrame.
void Append(const Frame& frame, std::vector<uint8_t>& out);
void AppendHeader(const Header& header, std::vector<uint8_t>& out);
void AppendAta(const AtaMessage& ata, std::vector<uint8_t>& out);  // without data
// The Query Config argument; a config string longer than
// kMaxConfigStringLength is cut to that length.
void AppendQueryConfig(const QueryConfig& config, std::vector<uint8_t>& out);

// Pads to the Ethernet minimum of 60 bytes: some drivers (veth) do not pad,
// and aoetools' aoeping ignores frames shorter than that.
void PadFrame(std::vector<uint8_t>& out);

// "e0.1" or "0.1" -> shelf, slot.
Result<std::pair<uint16_t, uint8_t>> ParseTargetName(const std::string& text);

}  // namespace isoboot::aoe
