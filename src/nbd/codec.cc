#include "nbd/codec.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/byte_io.h"

namespace isoboot::nbd {
namespace {

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A string as proto.md "Conventions" allows it: at most kMaxString bytes,
// no NUL. (UTF-8 validity is not checked: names are compared as bytes.)
Result<std::string> CheckString(std::span<const uint8_t> bytes, std::string_view what) {
  if (bytes.size() > kMaxString) {
    return MakeError(ErrorKind::kExhausted,
                     fmt::format("{} of {} bytes (at most {})", what, bytes.size(), kMaxString));
  }
  if (std::find(bytes.begin(), bytes.end(), 0) != bytes.end()) {
    return MakeError(fmt::format("{} holds a NUL byte", what));
  }
  return std::string(bytes.begin(), bytes.end());
}

// The 32-bit length and the export name that begin NBD_OPT_INFO, _GO and
// the metadata-context options' data (of `total` bytes).
Result<std::string> ReadExportName(ByteReader& r, size_t total) {
  uint32_t name_length = r.U32();
  if (!r.ok()) return MakeError("option data shorter than its name length");
  if (name_length > r.remaining()) {
    return MakeError(
        fmt::format("export name of {} bytes past the option's {} bytes", name_length, total));
  }
  return CheckString(r.Bytes(name_length), "export name");
}

void AppendInfo(uint32_t option, uint16_t info, std::span<const uint8_t> payload,
                std::vector<uint8_t>& out) {
  std::vector<uint8_t> data;
  ByteWriter w(data);
  w.U16(info);
  w.Bytes(payload);
  AppendOptionReply(option, kRepInfo, data, out);
}

// Messages we send are ours, but clip them to what a string may be.
std::string_view Clip(std::string_view s) {
  return s.substr(0, std::min(s.size(), kMaxString));
}

}  // namespace

void AppendGreeting(uint16_t handshake_flags, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U64(kNbdMagic);
  w.U64(kOptionMagic);
  w.U16(handshake_flags);
}

Result<Greeting> ParseGreeting(std::span<const uint8_t> data) {
  ByteReader r(data);
  uint64_t magic = r.U64(), opt = r.U64();
  Greeting g{r.U16()};
  if (!r.ok()) return MakeError("greeting shorter than 18 bytes");
  if (magic != kNbdMagic) return MakeError("greeting without NBDMAGIC");
  if (opt != kOptionMagic) return MakeError(ErrorKind::kUnsupported, "not a newstyle server");
  return g;
}

Result<uint32_t> ParseClientFlags(std::span<const uint8_t> data) {
  ByteReader r(data);
  uint32_t flags = r.U32();
  if (!r.ok()) return MakeError("client flags shorter than 4 bytes");
  if (!(flags & kClientFixedNewstyle)) {
    return MakeError(ErrorKind::kUnsupported,
                     "client is not fixed newstyle (NBD_FLAG_C_FIXED_NEWSTYLE unset)");
  }
  if (flags & ~(kClientFixedNewstyle | kClientNoZeroes)) {
    return MakeError(ErrorKind::kUnsupported, fmt::format("unknown client flags {:#x}", flags));
  }
  return flags;
}

Result<OptionHeader> ParseOptionHeader(std::span<const uint8_t> data) {
  ByteReader r(data);
  uint64_t magic = r.U64();
  OptionHeader h;
  h.option = r.U32();
  h.length = r.U32();
  if (!r.ok()) return MakeError("option header shorter than 16 bytes");
  if (magic != kOptionMagic) return MakeError("option without IHAVEOPT");
  return h;
}

void AppendOption(uint32_t option, std::span<const uint8_t> data, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U64(kOptionMagic);
  w.U32(option);
  w.U32(static_cast<uint32_t>(data.size()));
  w.Bytes(data);
}

Result<InfoRequest> ParseInfoRequest(std::span<const uint8_t> data) {
  ByteReader r(data);
  auto name = ReadExportName(r, data.size());
  if (!name) return name.error();
  InfoRequest req{std::move(*name), {}};
  uint16_t count = r.U16();
  if (!r.ok()) return MakeError("option data ends before its number of requests");
  if (r.remaining() != size_t{count} * 2) {
    return MakeError(fmt::format("{} information requests in {} bytes", count, r.remaining()));
  }
  req.requests.reserve(count);
  for (uint16_t i = 0; i < count; ++i)
    req.requests.push_back(r.U16());
  return req;
}

void AppendInfoRequest(const InfoRequest& request, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U32(static_cast<uint32_t>(request.name.size()));
  w.Text(request.name);
  w.U16(static_cast<uint16_t>(request.requests.size()));
  for (uint16_t i : request.requests)
    w.U16(i);
}

Result<std::string> ParseExportName(std::span<const uint8_t> data) {
  return CheckString(data, "export name");
}

Result<MetaContextRequest> ParseMetaContextRequest(std::span<const uint8_t> data,
                                                   size_t max_queries) {
  ByteReader r(data);
  auto name = ReadExportName(r, data.size());
  if (!name) return name.error();
  MetaContextRequest req{std::move(*name), {}};
  uint32_t count = r.U32();
  if (!r.ok()) return MakeError("option data ends before its number of queries");
  if (count > max_queries) {
    return MakeError(ErrorKind::kExhausted,
                     fmt::format("{} queries (at most {})", count, max_queries));
  }
  req.queries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t length = r.U32();
    if (!r.ok()) return MakeError(fmt::format("option data ends before query {}", i));
    if (length > r.remaining()) {
      return MakeError(fmt::format("query {} of {} bytes past the option's data", i, length));
    }
    auto query = CheckString(r.Bytes(length), "query");
    if (!query) return query.error();
    // proto.md "Metadata querying": a namespace (non-empty, no colon), a
    // colon, a leaf name.
    if (size_t colon = query->find(':'); colon == std::string::npos || colon == 0) {
      return MakeError(fmt::format("query '{}' has no namespace", *query));
    }
    req.queries.push_back(std::move(*query));
  }
  if (!r.empty()) return MakeError(fmt::format("{} bytes after the last query", r.remaining()));
  return req;
}

void AppendMetaContextRequest(const MetaContextRequest& request, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U32(static_cast<uint32_t>(request.name.size()));
  w.Text(request.name);
  w.U32(static_cast<uint32_t>(request.queries.size()));
  for (const std::string& q : request.queries) {
    w.U32(static_cast<uint32_t>(q.size()));
    w.Text(q);
  }
}

void AppendOptionReply(uint32_t option, uint32_t type, std::span<const uint8_t> data,
                       std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U64(kOptionReplyMagic);
  w.U32(option);
  w.U32(type);
  w.U32(static_cast<uint32_t>(data.size()));
  w.Bytes(data);
}

Result<OptionReply> ParseOptionReply(std::span<const uint8_t> data) {
  ByteReader r(data);
  uint64_t magic = r.U64();
  OptionReply reply;
  reply.option = r.U32();
  reply.type = r.U32();
  uint32_t length = r.U32();
  if (!r.ok()) return MakeError("option reply shorter than 20 bytes");
  if (magic != kOptionReplyMagic) return MakeError("option reply with a wrong magic");
  reply.data = r.Bytes(length);
  if (!r.ok()) return MakeError("option reply data past the input");
  return reply;
}

void AppendInfoExport(uint32_t option, uint64_t size, uint16_t flags, std::vector<uint8_t>& out) {
  std::vector<uint8_t> p;
  ByteWriter w(p);
  w.U64(size);
  w.U16(flags);
  AppendInfo(option, kInfoExport, p, out);
}

void AppendInfoName(uint32_t option, std::string_view name, std::vector<uint8_t>& out) {
  AppendInfo(option, kInfoName, AsBytes(Clip(name)), out);
}

void AppendInfoDescription(uint32_t option, std::string_view text, std::vector<uint8_t>& out) {
  AppendInfo(option, kInfoDescription, AsBytes(Clip(text)), out);
}

void AppendInfoBlockSize(uint32_t option, uint32_t minimum, uint32_t preferred, uint32_t maximum,
                         std::vector<uint8_t>& out) {
  std::vector<uint8_t> p;
  ByteWriter w(p);
  w.U32(minimum);
  w.U32(preferred);
  w.U32(maximum);
  AppendInfo(option, kInfoBlockSize, p, out);
}

void AppendServerEntry(std::string_view name, std::vector<uint8_t>& out) {
  name = Clip(name);
  std::vector<uint8_t> p;
  // Reserved up front: GCC 12 at -O3 otherwise reports the name's copy into
  // the grown vector as a stringop-overflow (a false positive).
  p.reserve(4 + name.size());
  ByteWriter w(p);
  w.U32(static_cast<uint32_t>(name.size()));
  w.Text(name);
  AppendOptionReply(kOptList, kRepServer, p, out);
}

void AppendMetaContext(uint32_t option, uint32_t id, std::string_view name,
                       std::vector<uint8_t>& out) {
  name = Clip(name);
  std::vector<uint8_t> p;
  p.reserve(4 + name.size());  // as AppendServerEntry: GCC 12's stringop-overflow
  ByteWriter w(p);
  w.U32(id);
  w.Text(name);
  AppendOptionReply(option, kRepMetaContext, p, out);
}

void AppendOptionError(uint32_t option, uint32_t type, std::string_view message,
                       std::vector<uint8_t>& out) {
  AppendOptionReply(option, type, AsBytes(Clip(message)), out);
}

void AppendExportNameReply(uint64_t size, uint16_t flags, bool no_zeroes,
                           std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U64(size);
  w.U16(flags);
  if (!no_zeroes) w.Zeros(kExportNamePadding);
}

Result<Request> ParseRequest(std::span<const uint8_t> data) {
  ByteReader r(data);
  uint32_t magic = r.U32();
  Request q;
  q.flags = r.U16();
  q.type = r.U16();
  q.cookie = r.U64();
  q.offset = r.U64();
  q.length = r.U32();
  if (!r.ok()) return MakeError("request shorter than 28 bytes");
  if (magic != kRequestMagic) return MakeError(fmt::format("request magic {:#010x}", magic));
  return q;
}

void AppendRequest(const Request& q, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U32(kRequestMagic);
  w.U16(q.flags);
  w.U16(q.type);
  w.U64(q.cookie);
  w.U64(q.offset);
  w.U32(q.length);
}

void AppendSimpleReply(uint32_t error, uint64_t cookie, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U32(kSimpleReplyMagic);
  w.U32(error);
  w.U64(cookie);
}

Result<SimpleReply> ParseSimpleReply(std::span<const uint8_t> data) {
  ByteReader r(data);
  uint32_t magic = r.U32();
  SimpleReply s;
  s.error = r.U32();
  s.cookie = r.U64();
  if (!r.ok()) return MakeError("simple reply shorter than 16 bytes");
  if (magic != kSimpleReplyMagic) return MakeError("not a simple reply");
  return s;
}

void AppendChunkHeader(const ChunkHeader& c, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U32(kStructuredReplyMagic);
  w.U16(c.flags);
  w.U16(c.type);
  w.U64(c.cookie);
  w.U32(c.length);
}

Result<ChunkHeader> ParseChunkHeader(std::span<const uint8_t> data) {
  ByteReader r(data);
  uint32_t magic = r.U32();
  ChunkHeader c;
  c.flags = r.U16();
  c.type = r.U16();
  c.cookie = r.U64();
  c.length = r.U32();
  if (!r.ok()) return MakeError("chunk header shorter than 20 bytes");
  if (magic != kStructuredReplyMagic) return MakeError("not a structured reply chunk");
  return c;
}

void AppendOffsetDataHeader(uint64_t cookie, uint16_t flags, uint64_t offset, uint32_t data_length,
                            std::vector<uint8_t>& out) {
  AppendChunkHeader({flags, kReplyTypeOffsetData, cookie, data_length + 8}, out);
  ByteWriter(out).U64(offset);
}

void AppendErrorChunk(uint64_t cookie, uint32_t error, std::string_view message,
                      std::vector<uint8_t>& out) {
  message = Clip(message);
  AppendChunkHeader(
      {kReplyFlagDone, kReplyTypeError, cookie, static_cast<uint32_t>(6 + message.size())}, out);
  ByteWriter w(out);
  w.U32(error);
  w.U16(static_cast<uint16_t>(message.size()));
  w.Text(message);
}

void AppendErrorOffsetChunk(uint64_t cookie, uint32_t error, uint64_t offset,
                            std::string_view message, std::vector<uint8_t>& out) {
  message = Clip(message);
  AppendChunkHeader(
      {kReplyFlagDone, kReplyTypeErrorOffset, cookie, static_cast<uint32_t>(14 + message.size())},
      out);
  ByteWriter w(out);
  w.U32(error);
  w.U16(static_cast<uint16_t>(message.size()));
  w.Text(message);
  w.U64(offset);
}

void AppendBlockStatusChunk(uint64_t cookie, uint32_t context_id,
                            std::span<const BlockDescriptor> descriptors,
                            std::vector<uint8_t>& out) {
  AppendChunkHeader({kReplyFlagDone, kReplyTypeBlockStatus, cookie,
                     static_cast<uint32_t>(4 + 8 * descriptors.size())},
                    out);
  ByteWriter w(out);
  w.U32(context_id);
  for (const BlockDescriptor& d : descriptors) {
    w.U32(d.length);
    w.U32(d.flags);
  }
}

Result<BlockStatusPayload> ParseBlockStatusPayload(std::span<const uint8_t> payload) {
  if (payload.size() < 12 || (payload.size() - 4) % 8 != 0) {
    return MakeError(fmt::format("block status payload of {} bytes", payload.size()));
  }
  ByteReader r(payload);
  BlockStatusPayload p;
  p.context_id = r.U32();
  while (!r.empty()) {
    BlockDescriptor d;
    d.length = r.U32();
    d.flags = r.U32();
    if (d.length == 0) return MakeError("block status descriptor of length 0");
    p.descriptors.push_back(d);
  }
  return p;
}

Result<ErrorPayload> ParseErrorPayload(uint16_t type, std::span<const uint8_t> payload) {
  if (type != kReplyTypeError && type != kReplyTypeErrorOffset) {
    return MakeError(fmt::format("chunk type {} is not an error", type));
  }
  ByteReader r(payload);
  ErrorPayload e;
  e.error = r.U32();
  uint16_t length = r.U16();
  auto message = r.Bytes(length);
  if (!r.ok()) return MakeError("error message past the chunk");
  e.message.assign(message.begin(), message.end());
  if (type == kReplyTypeErrorOffset) e.offset = r.U64();
  if (!r.ok()) return MakeError("error offset past the chunk");
  if (!r.empty()) return MakeError("bytes after the error chunk's payload");
  if (e.error == 0) return MakeError("error chunk with error 0");
  return e;
}

std::string OptionName(uint32_t option) {
  switch (option) {
    case kOptExportName:
      return "NBD_OPT_EXPORT_NAME";
    case kOptAbort:
      return "NBD_OPT_ABORT";
    case kOptList:
      return "NBD_OPT_LIST";
    case kOptStartTls:
      return "NBD_OPT_STARTTLS";
    case kOptInfo:
      return "NBD_OPT_INFO";
    case kOptGo:
      return "NBD_OPT_GO";
    case kOptStructuredReply:
      return "NBD_OPT_STRUCTURED_REPLY";
    case kOptListMetaContext:
      return "NBD_OPT_LIST_META_CONTEXT";
    case kOptSetMetaContext:
      return "NBD_OPT_SET_META_CONTEXT";
  }
  return fmt::format("option {}", option);
}

std::string CommandName(uint16_t type) {
  switch (type) {
    case kCmdRead:
      return "NBD_CMD_READ";
    case kCmdWrite:
      return "NBD_CMD_WRITE";
    case kCmdDisc:
      return "NBD_CMD_DISC";
    case kCmdFlush:
      return "NBD_CMD_FLUSH";
    case kCmdTrim:
      return "NBD_CMD_TRIM";
    case kCmdCache:
      return "NBD_CMD_CACHE";
    case kCmdWriteZeroes:
      return "NBD_CMD_WRITE_ZEROES";
    case kCmdBlockStatus:
      return "NBD_CMD_BLOCK_STATUS";
  }
  return fmt::format("command {}", type);
}

}  // namespace isoboot::nbd
