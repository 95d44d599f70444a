#pragma once
// TFTP wire format: RFC 1350 packets (RRQ, WRQ, DATA, ACK, ERROR) and the
// option extension (RFC 2347 OACK) with the options this server understands:
// blksize (RFC 2348), tsize and timeout (RFC 2349), windowsize (RFC 7440).
// Pure: bytes in, structs out and back; no sockets, clocks or files.
// Thread safety: free functions on values; safe from any thread.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace isoboot::tftp {

enum class Opcode : uint16_t {
  kRrq = 1,
  kWrq = 2,
  kData = 3,
  kAck = 4,
  kError = 5,
  kOack = 6
};

// RFC 1350 section 5 and RFC 2347 (8).
enum class ErrorCode : uint16_t {
  kNotDefined = 0,
  kFileNotFound = 1,
  kAccessViolation = 2,
  kDiskFull = 3,
  kIllegalOperation = 4,
  kUnknownTid = 5,
  kFileExists = 6,
  kNoSuchUser = 7,
  kOptionRefused = 8,
};

// RFC 2348 limits on blksize; 65464 = 65535 - 20 (IP) - 8 (UDP) - 4 (TFTP) +
// rounding as written in the RFC.
inline constexpr uint32_t kMinBlksize = 8;
inline constexpr uint32_t kMaxBlksize = 65464;
inline constexpr uint32_t kDefaultBlksize = 512;
// Longest file name accepted; PXE firmware and pxelinux stay far below.
inline constexpr size_t kMaxFilenameLength = 1024;

struct Option {
  std::string name;  // as sent; compare case-insensitively (RFC 2347)
  std::string value;
};

// RRQ or WRQ. `mode` is lowercased ("octet", "netascii", "mail").
struct Request {
  bool write = false;
  std::string filename;
  std::string mode;
  std::vector<Option> options;
};

// `data` points into the buffer that was parsed (or that the caller owns
// for Append); it must outlive the struct.
struct Data {
  uint16_t block = 0;
  std::span<const uint8_t> data;
};

struct Ack {
  uint16_t block = 0;
};

struct ErrorPacket {
  ErrorCode code = ErrorCode::kNotDefined;
  std::string message;
};

struct Oack {
  std::vector<Option> options;
};

using Packet = std::variant<Request, Data, Ack, ErrorPacket, Oack>;

// Parses one UDP payload. Errors are one line naming what was wrong.
Result<Packet> Parse(std::span<const uint8_t> bytes);

// Appends the wire form of `packet` to `out`.
void Append(const Packet& packet, std::vector<uint8_t>& out);

// Appends a DATA header (opcode, block); the caller appends the payload.
void AppendDataHeader(uint16_t block, std::vector<uint8_t>& out);

// What the server is willing to grant.
struct Limits {
  // Largest blksize offered: the path MTU minus IP (20) and UDP (8) headers
  // and the 4-byte TFTP header; 1468 for an Ethernet MTU of 1500.
  uint32_t max_blksize = 1468;
  uint32_t max_windowsize = 64;
  // Bytes in flight per transfer (blksize * windowsize) are capped so that
  // hundreds of transfers with big windows stay within memory.
  uint32_t max_window_bytes = 1u << 20;
  // Largest RFC 2349 `timeout` accepted (seconds); a larger one is declined
  // (left out of the OACK: the RFC forbids answering another value) and the
  // server's own retransmission timer is used. 10 s is above what real
  // clients ask (curl sends 6 by default, PXE ROMs and iPXE send none) and
  // keeps one lost packet from stalling a transfer, or a spoofed request from
  // holding a session, for minutes (255 s x 7 tries was 30 min).
  uint32_t max_timeout_s = 10;
};

// Largest blksize fitting an interface MTU (IPv4, no IP options).
constexpr uint32_t BlksizeForMtu(uint32_t mtu) {
  uint32_t b = mtu > 32 ? mtu - 32 : kMinBlksize;
  if (b < kMinBlksize) b = kMinBlksize;
  if (b > kMaxBlksize) b = kMaxBlksize;
  return b;
}

// The outcome of option negotiation for an RRQ (RFC 2347): the values in
// force for the transfer and the options to put in the OACK, in the order the
// client sent them. Unknown, duplicate, malformed or out-of-range options are
// left out of the OACK (that is how a server declines an option) and are
// listed in `ignored` for debug logging.
struct Negotiated {
  uint32_t blksize = kDefaultBlksize;
  uint32_t windowsize = 1;
  std::optional<uint32_t> timeout_s;
  bool tsize_asked = false;
  std::vector<Option> oack;  // empty: answer with DATA directly
  std::vector<std::string> ignored;
};

// `file_size` is the size answered for tsize.
Negotiated Negotiate(const std::vector<Option>& asked, const Limits& limits, uint64_t file_size);

// A short human form of a packet for debug logs ("DATA 17 (1468 bytes)").
std::string Describe(const Packet& packet);

}  // namespace isoboot::tftp
