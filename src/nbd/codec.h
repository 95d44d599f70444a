#pragma once
// The NBD wire format (NetworkBlockDevice/nbd doc/proto.md): the fixed
// newstyle handshake (greeting, client flags, option requests and replies),
// transmission requests, simple replies and structured reply chunks. Pure:
// bytes in, structs out, and back; bad input is an Error, never a throw.
// All integers are big-endian on the wire.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace isoboot::nbd {

// proto.md "Newstyle negotiation".
constexpr uint64_t kNbdMagic = 0x4e42444d41474943;     // "NBDMAGIC"
constexpr uint64_t kOptionMagic = 0x49484156454f5054;  // "IHAVEOPT"
constexpr uint64_t kOptionReplyMagic = 0x3e889045565a9;
constexpr uint32_t kRequestMagic = 0x25609513;
constexpr uint32_t kSimpleReplyMagic = 0x67446698;
constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;

// Handshake flags (server, 16 bits) and client flags (32 bits).
constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
constexpr uint16_t kFlagNoZeroes = 1 << 1;
constexpr uint32_t kClientFixedNewstyle = 1 << 0;
constexpr uint32_t kClientNoZeroes = 1 << 1;

// Transmission flags (proto.md "Transmission flags").
constexpr uint16_t kFlagHasFlags = 1 << 0;
constexpr uint16_t kFlagReadOnly = 1 << 1;
constexpr uint16_t kFlagSendFlush = 1 << 2;
constexpr uint16_t kFlagSendFua = 1 << 3;
constexpr uint16_t kFlagRotational = 1 << 4;
constexpr uint16_t kFlagSendTrim = 1 << 5;
constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;
constexpr uint16_t kFlagSendDf = 1 << 7;
constexpr uint16_t kFlagCanMultiConn = 1 << 8;

// Options (proto.md "Option types").
constexpr uint32_t kOptExportName = 1;
constexpr uint32_t kOptAbort = 2;
constexpr uint32_t kOptList = 3;
constexpr uint32_t kOptStartTls = 5;
constexpr uint32_t kOptInfo = 6;
constexpr uint32_t kOptGo = 7;
constexpr uint32_t kOptStructuredReply = 8;
constexpr uint32_t kOptListMetaContext = 9;
constexpr uint32_t kOptSetMetaContext = 10;

// Option reply types; errors have bit 31 set.
constexpr uint32_t kRepAck = 1;
constexpr uint32_t kRepServer = 2;
constexpr uint32_t kRepInfo = 3;
constexpr uint32_t kRepMetaContext = 4;
constexpr uint32_t kRepErrUnsup = (1u << 31) + 1;
constexpr uint32_t kRepErrPolicy = (1u << 31) + 2;
constexpr uint32_t kRepErrInvalid = (1u << 31) + 3;
constexpr uint32_t kRepErrPlatform = (1u << 31) + 4;
constexpr uint32_t kRepErrTlsReqd = (1u << 31) + 5;
constexpr uint32_t kRepErrUnknown = (1u << 31) + 6;
constexpr uint32_t kRepErrShutdown = (1u << 31) + 7;
constexpr uint32_t kRepErrBlockSizeReqd = (1u << 31) + 8;
constexpr uint32_t kRepErrTooBig = (1u << 31) + 9;

// NBD_REP_INFO types.
constexpr uint16_t kInfoExport = 0;
constexpr uint16_t kInfoName = 1;
constexpr uint16_t kInfoDescription = 2;
constexpr uint16_t kInfoBlockSize = 3;

// Commands and command flags.
constexpr uint16_t kCmdRead = 0;
constexpr uint16_t kCmdWrite = 1;
constexpr uint16_t kCmdDisc = 2;
constexpr uint16_t kCmdFlush = 3;
constexpr uint16_t kCmdTrim = 4;
constexpr uint16_t kCmdCache = 5;
constexpr uint16_t kCmdWriteZeroes = 6;
constexpr uint16_t kCmdBlockStatus = 7;
constexpr uint16_t kCmdFlagFua = 1 << 0;
constexpr uint16_t kCmdFlagDf = 1 << 2;
constexpr uint16_t kCmdFlagReqOne = 1 << 3;  // NBD_CMD_BLOCK_STATUS: one extent only

// Structured reply chunk types and flags.
constexpr uint16_t kReplyFlagDone = 1 << 0;
constexpr uint16_t kReplyTypeNone = 0;
constexpr uint16_t kReplyTypeOffsetData = 1;
constexpr uint16_t kReplyTypeBlockStatus = 5;
constexpr uint16_t kReplyTypeError = (1 << 15) + 1;
constexpr uint16_t kReplyTypeErrorOffset = (1 << 15) + 2;

// base:allocation's status flags (proto.md "`base:allocation` metadata
// context").
constexpr uint32_t kStateHole = 1 << 0;
constexpr uint32_t kStateZero = 1 << 1;

// Error values on the wire (proto.md "Error values"), whatever the host's
// errno numbering.
constexpr uint32_t kEperm = 1;
constexpr uint32_t kEio = 5;
constexpr uint32_t kEnomem = 12;
constexpr uint32_t kEinval = 22;
constexpr uint32_t kEnospc = 28;
constexpr uint32_t kEoverflow = 75;
constexpr uint32_t kEnotsup = 95;
constexpr uint32_t kEshutdown = 108;

// Sizes of the fixed parts.
constexpr size_t kGreetingSize = 18;  // NBDMAGIC, IHAVEOPT, handshake flags
constexpr size_t kClientFlagsSize = 4;
constexpr size_t kOptionHeaderSize = 16;  // IHAVEOPT, option, length
constexpr size_t kOptionReplyHeaderSize = 20;
constexpr size_t kRequestSize = 28;
constexpr size_t kSimpleReplySize = 16;
constexpr size_t kChunkHeaderSize = 20;
constexpr size_t kExportNamePadding = 124;  // zeroes after NBD_OPT_EXPORT_NAME's reply
// proto.md "Conventions": strings (export names, messages) MUST be at most
// 4096 bytes.
constexpr size_t kMaxString = 4096;

// The server's first 18 bytes.
void AppendGreeting(uint16_t handshake_flags, std::vector<uint8_t>& out);
struct Greeting {
  uint16_t flags = 0;
};
Result<Greeting> ParseGreeting(std::span<const uint8_t> data);

// The client's 32-bit flags. Errors: short input, unknown bits, or no
// NBD_FLAG_C_FIXED_NEWSTYLE (a client that is not fixed newstyle).
Result<uint32_t> ParseClientFlags(std::span<const uint8_t> data);

struct OptionHeader {
  uint32_t option = 0;
  uint32_t length = 0;  // of the data that follows
};
Result<OptionHeader> ParseOptionHeader(std::span<const uint8_t> data);
void AppendOption(uint32_t option, std::span<const uint8_t> data, std::vector<uint8_t>& out);

// The data of NBD_OPT_INFO and NBD_OPT_GO: an export name and the
// information requests.
struct InfoRequest {
  std::string name;
  std::vector<uint16_t> requests;
};
Result<InfoRequest> ParseInfoRequest(std::span<const uint8_t> data);
void AppendInfoRequest(const InfoRequest& request, std::vector<uint8_t>& out);
// NBD_OPT_EXPORT_NAME's data is the name itself.
Result<std::string> ParseExportName(std::span<const uint8_t> data);

// The data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: an
// export name and queries ("base:allocation", "base:"), each a string.
struct MetaContextRequest {
  std::string name;
  std::vector<std::string> queries;
};
// Errors: lengths past the data, bytes after the last query, a NUL, a query
// without a namespace ("namespace:leaf"): kInvalidInput; more than `max_queries`
// queries or a string over kMaxString bytes: kExhausted.
Result<MetaContextRequest> ParseMetaContextRequest(std::span<const uint8_t> data,
                                                   size_t max_queries);
void AppendMetaContextRequest(const MetaContextRequest& request, std::vector<uint8_t>& out);

// An option reply: header and `data`.
void AppendOptionReply(uint32_t option, uint32_t type, std::span<const uint8_t> data,
                       std::vector<uint8_t>& out);
struct OptionReply {
  uint32_t option = 0;
  uint32_t type = 0;
  std::span<const uint8_t> data;  // views the parsed input
};
// One whole reply at the start of `data` (for tests and peers); the data must
// be complete.
Result<OptionReply> ParseOptionReply(std::span<const uint8_t> data);

void AppendInfoExport(uint32_t option, uint64_t size, uint16_t flags, std::vector<uint8_t>& out);
void AppendInfoName(uint32_t option, std::string_view name, std::vector<uint8_t>& out);
void AppendInfoDescription(uint32_t option, std::string_view text, std::vector<uint8_t>& out);
void AppendInfoBlockSize(uint32_t option, uint32_t minimum, uint32_t preferred, uint32_t maximum,
                         std::vector<uint8_t>& out);
// NBD_REP_SERVER for NBD_OPT_LIST: the name (no details).
void AppendServerEntry(std::string_view name, std::vector<uint8_t>& out);
// NBD_REP_META_CONTEXT: a context's id and name.
void AppendMetaContext(uint32_t option, uint32_t id, std::string_view name,
                       std::vector<uint8_t>& out);
// An error reply carrying a message for people.
void AppendOptionError(uint32_t option, uint32_t type, std::string_view message,
                       std::vector<uint8_t>& out);
// The answer to NBD_OPT_EXPORT_NAME: size, flags and, unless the client
// set NBD_FLAG_C_NO_ZEROES, 124 zero bytes.
void AppendExportNameReply(uint64_t size, uint16_t flags, bool no_zeroes,
                           std::vector<uint8_t>& out);

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};
Result<Request> ParseRequest(std::span<const uint8_t> data);
void AppendRequest(const Request& request, std::vector<uint8_t>& out);

struct SimpleReply {
  uint32_t error = 0;
  uint64_t cookie = 0;
};
void AppendSimpleReply(uint32_t error, uint64_t cookie, std::vector<uint8_t>& out);
Result<SimpleReply> ParseSimpleReply(std::span<const uint8_t> data);

struct ChunkHeader {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint32_t length = 0;  // of the payload that follows
};
void AppendChunkHeader(const ChunkHeader& chunk, std::vector<uint8_t>& out);
Result<ChunkHeader> ParseChunkHeader(std::span<const uint8_t> data);
// NBD_REPLY_TYPE_OFFSET_DATA's header and offset; `data_length` bytes of
// data must follow (sent by the caller, e.g. with sendfile).
void AppendOffsetDataHeader(uint64_t cookie, uint16_t flags, uint64_t offset, uint32_t data_length,
                            std::vector<uint8_t>& out);
// NBD_REPLY_TYPE_ERROR with NBD_REPLY_FLAG_DONE.
void AppendErrorChunk(uint64_t cookie, uint32_t error, std::string_view message,
                      std::vector<uint8_t>& out);
// NBD_REPLY_TYPE_ERROR_OFFSET with NBD_REPLY_FLAG_DONE.
void AppendErrorOffsetChunk(uint64_t cookie, uint32_t error, uint64_t offset,
                            std::string_view message, std::vector<uint8_t>& out);
// One NBD_REPLY_TYPE_BLOCK_STATUS descriptor: `length` bytes (nonzero)
// with status `flags`.
struct BlockDescriptor {
  uint32_t length = 0;
  uint32_t flags = 0;
  bool operator==(const BlockDescriptor&) const = default;
};
// NBD_REPLY_TYPE_BLOCK_STATUS with NBD_REPLY_FLAG_DONE: the context id,
// then the descriptors (at least one; the caller bounds their number).
void AppendBlockStatusChunk(uint64_t cookie, uint32_t context_id,
                            std::span<const BlockDescriptor> descriptors,
                            std::vector<uint8_t>& out);
struct BlockStatusPayload {
  uint32_t context_id = 0;
  std::vector<BlockDescriptor> descriptors;
};
// The payload of a block status chunk: 4 + 8*N bytes, N >= 1, no zero
// lengths.
Result<BlockStatusPayload> ParseBlockStatusPayload(std::span<const uint8_t> payload);

struct ErrorPayload {
  uint32_t error = 0;
  std::string message;
  uint64_t offset = 0;  // NBD_REPLY_TYPE_ERROR_OFFSET only
};
// The payload of an error chunk of `type` (ERROR or ERROR_OFFSET).
Result<ErrorPayload> ParseErrorPayload(uint16_t type, std::span<const uint8_t> payload);

// Option and command names for logs ("NBD_OPT_GO", "option 42").
std::string OptionName(uint32_t option);
std::string CommandName(uint16_t type);

}  // namespace isoboot::nbd
