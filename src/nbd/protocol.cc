#include "nbd/protocol.h"

#include <algorithm>

#include <fmt/format.h>

namespace isoboot::nbd {

int Handshake::Find(const std::string& name) const {
  for (size_t i = 0; i < exports_.size(); ++i) {
    if (exports_[i].name == name) return static_cast<int>(i);
  }
  if (name.empty() && !exports_.empty()) return 0;
  return -1;
}

Handshake::Step Handshake::TooLong(const OptionHeader& header) const {
  Step s;
  s.next = Next::kClose;
  s.bad = true;
  s.note = fmt::format("{} with {} bytes of data (at most {})", OptionName(header.option),
                       header.length, limits_.max_option_length);
  return s;
}

Handshake::Step Handshake::OnOption(uint32_t option, std::span<const uint8_t> data) {
  Step s;
  if (++options_ > limits_.max_options) {
    s.next = Next::kClose;
    s.bad = true;
    s.note = fmt::format("more than {} options", limits_.max_options);
    return s;
  }
  auto error = [&](uint32_t type, std::string message) {
    AppendOptionError(option, type, message, s.reply);
    s.bad = true;
    s.note = std::move(message);
    return s;
  };
  if (tls_mode_ == TlsMode::kRequire && !tls_ && option != kOptStartTls && option != kOptAbort) {
    // proto.md FORCEDTLS. EXPORT_NAME has no error reply: it closes.
    if (option == kOptExportName) {
      s.next = Next::kClose;
      s.bad = true;
      s.note = "NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS: this server requires TLS";
      return s;
    }
    return error(kRepErrTlsReqd, fmt::format("{} before NBD_OPT_STARTTLS: this server requires TLS",
                                             OptionName(option)));
  }
  switch (option) {
    case kOptExportName: {
      // No error reply exists for this option: an unknown name closes.
      auto name = ParseExportName(data);
      int index = name ? Find(*name) : -1;
      if (index < 0) {
        s.next = Next::kClose;
        s.bad = true;
        s.note = name ? fmt::format("NBD_OPT_EXPORT_NAME: no export '{}'", *name)
                      : "NBD_OPT_EXPORT_NAME: " + name.error().message;
        return s;
      }
      AppendExportNameReply(exports_[index].size, kExportFlags, no_zeroes_, s.reply);
      s.next = Next::kTransmit;
      s.export_index = index;
      Enter(index);
      return s;
    }
    case kOptAbort:
      // proto.md: the server SHOULD reply NBD_REP_ACK, then closes.
      AppendOptionReply(option, kRepAck, {}, s.reply);
      s.next = Next::kClose;
      s.note = "client aborted the handshake";
      return s;
    case kOptList:
      if (!data.empty()) return error(kRepErrInvalid, "NBD_OPT_LIST with data");
      for (const ExportInfo& e : exports_)
        AppendServerEntry(e.name, s.reply);
      AppendOptionReply(option, kRepAck, {}, s.reply);
      return s;
    case kOptStructuredReply:
      if (!data.empty()) return error(kRepErrInvalid, "NBD_OPT_STRUCTURED_REPLY with data");
      if (structured_) return error(kRepErrInvalid, "structured replies already negotiated");
      structured_ = true;
      AppendOptionReply(option, kRepAck, {}, s.reply);
      return s;
    case kOptInfo:
    case kOptGo:
      return InfoOrGo(option, data);
    case kOptStartTls:
      return StartTls(data);
    case kOptListMetaContext:
    case kOptSetMetaContext:
      return MetaContext(option, data);
  }
  return error(kRepErrUnsup, fmt::format("{} is not supported", OptionName(option)));
}

Handshake::Step Handshake::StartTls(std::span<const uint8_t> data) {
  Step s;
  auto error = [&](uint32_t type, std::string message) {
    AppendOptionError(kOptStartTls, type, message, s.reply);
    s.bad = true;
    s.note = std::move(message);
    return s;
  };
  if (tls_mode_ == TlsMode::kOff) return error(kRepErrUnsup, "TLS is not enabled on this server");
  if (!data.empty()) return error(kRepErrInvalid, "NBD_OPT_STARTTLS with data");
  if (tls_) return error(kRepErrInvalid, "TLS already negotiated");
  AppendOptionReply(kOptStartTls, kRepAck, {}, s.reply);
  s.next = Next::kStartTls;
  s.note = "client starts TLS";
  return s;
}

Handshake::Step Handshake::InfoOrGo(uint32_t option, std::span<const uint8_t> data) {
  Step s;
  auto request = ParseInfoRequest(data);
  if (!request) {
    uint32_t type = request.error().Is(ErrorKind::kExhausted) ? kRepErrTooBig : kRepErrInvalid;
    s.note = fmt::format("{}: {}", OptionName(option), request.error().message);
    AppendOptionError(option, type, s.note, s.reply);
    s.bad = true;
    return s;
  }
  int index = Find(request->name);
  if (index < 0) {
    s.note = fmt::format("{}: no export '{}'", OptionName(option), request->name);
    AppendOptionError(option, kRepErrUnknown, s.note, s.reply);
    s.bad = true;
    return s;
  }
  const ExportInfo& e = exports_[index];
  bool want_name = false, want_description = false;
  for (uint16_t r : request->requests) {
    want_name = want_name || r == kInfoName;
    want_description = want_description || r == kInfoDescription;
  }
  AppendInfoExport(option, e.size, kExportFlags, s.reply);
  if (want_name) AppendInfoName(option, e.name, s.reply);
  if (want_description && !e.description.empty()) {
    AppendInfoDescription(option, e.description, s.reply);
  }
  // Sent whether asked for or not (proto.md allows it): a client that
  // knows the maximum never sends a read we would refuse.
  AppendInfoBlockSize(option, limits_.min_block, limits_.preferred_block, limits_.max_block,
                      s.reply);
  AppendOptionReply(option, kRepAck, {}, s.reply);
  if (option == kOptGo) {
    s.next = Next::kTransmit;
    s.export_index = index;
    Enter(index);
  }
  return s;
}

// proto.md "NBD_OPT_LIST_META_CONTEXT", "NBD_OPT_SET_META_CONTEXT" and "The
// `base:` metadata namespace". The one context is base:allocation; queries
// of other namespaces, and unknown base: leaves, match nothing.
Handshake::Step Handshake::MetaContext(uint32_t option, std::span<const uint8_t> data) {
  Step s;
  const bool set = option == kOptSetMetaContext;
  // A SET replaces the selection even when it fails.
  if (set) meta_index_ = -1;
  auto error = [&](uint32_t type, std::string message) {
    s.note = fmt::format("{}: {}", OptionName(option), message);
    AppendOptionError(option, type, s.note, s.reply);
    s.bad = true;
    return s;
  };
  // proto.md: SET MUST NOT come before structured replies (the server
  // SHOULD answer NBD_REP_ERR_INVALID); for LIST it is only SHOULD NOT and
  // a server MAY refuse, so a LIST is answered anyway.
  if (set && !structured_) {
    return error(kRepErrInvalid, "structured replies were not negotiated");
  }
  auto request = ParseMetaContextRequest(data, limits_.max_queries);
  if (!request) {
    return error(request.error().Is(ErrorKind::kExhausted) ? kRepErrTooBig : kRepErrInvalid,
                 request.error().message);
  }
  int index = Find(request->name);
  if (index < 0) return error(kRepErrUnknown, fmt::format("no export '{}'", request->name));
  bool match = false;
  if (!set && request->queries.empty()) match = true;  // LIST of everything
  for (const std::string& q : request->queries) {
    // "base:" is LIST's wildcard for the namespace; SET MUST ignore it.
    if (q == kBaseAllocation || (!set && q == "base:")) match = true;
  }
  if (match) AppendMetaContext(option, set ? kBaseAllocationId : 0, kBaseAllocation, s.reply);
  AppendOptionReply(option, kRepAck, {}, s.reply);
  if (set && match) meta_index_ = index;
  s.note = fmt::format("{} for '{}': {}", OptionName(option), request->name,
                       match ? kBaseAllocation : "no context");
  return s;
}

Decision Decide(const Request& q, uint64_t export_size, const Limits& limits, bool block_status) {
  Decision d;
  auto refuse = [&](uint32_t error, std::string note) {
    d.kind = Decision::Kind::kError;
    d.error = error;
    d.bad = true;
    d.note =
        fmt::format("{} at {} for {} bytes: {}", CommandName(q.type), q.offset, q.length, note);
    return d;
  };
  switch (q.type) {
    case kCmdRead:
      if (q.length == 0) return refuse(kEinval, "zero length");
      if (q.length > limits.max_block) return refuse(kEinval, "over the maximum block size");
      if (q.offset > export_size || export_size - q.offset < q.length) {
        return refuse(kEinval, "past the end of the export");
      }
      d.kind = Decision::Kind::kRead;
      return d;
    case kCmdBlockStatus:
      // nbdkit answers the same way without a selected context.
      if (!block_status) return refuse(kEinval, "no metadata context selected");
      if (q.length == 0) return refuse(kEinval, "zero length");
      if (q.offset > export_size || export_size - q.offset < q.length) {
        return refuse(kEinval, "past the end of the export");
      }
      d.kind = Decision::Kind::kBlockStatus;
      return d;
    case kCmdDisc:
      d.kind = Decision::Kind::kDisconnect;
      d.note = "client disconnected (NBD_CMD_DISC)";
      return d;
    case kCmdFlush:
      d.kind = Decision::Kind::kOk;
      return d;
    case kCmdWrite:
      // The payload follows the header; it is read and dropped, within the
      // block size limit. A longer one cannot be told from garbage.
      if (q.length > limits.max_block) {
        d.kind = Decision::Kind::kDisconnect;
        d.bad = true;
        d.note = fmt::format("NBD_CMD_WRITE of {} bytes (over the maximum block size)", q.length);
        return d;
      }
      d.skip = q.length;
      return refuse(kEperm, "the export is read-only");
    case kCmdTrim:
    case kCmdWriteZeroes:
      return refuse(kEperm, "the export is read-only");
  }
  return refuse(kEinval, "not supported");
}

std::vector<BlockDescriptor> BlockStatusDescriptors(const Request& q,
                                                    std::span<const AllocationRun> runs,
                                                    size_t max_extents) {
  const size_t most = (q.flags & kCmdFlagReqOne) ? 1 : std::max<size_t>(max_extents, 1);
  std::vector<BlockDescriptor> out;
  uint64_t left = q.length;  // a request's length is 32 bits: so is every descriptor's
  for (const AllocationRun& run : runs) {
    if (left == 0) break;
    uint64_t n = std::min(run.length, left);
    if (n == 0) continue;
    uint32_t flags = run.hole ? (kStateHole | kStateZero) : 0;
    if (!out.empty() && out.back().flags == flags) {
      out.back().length += static_cast<uint32_t>(n);
    } else {
      if (out.size() == most) break;
      out.push_back({static_cast<uint32_t>(n), flags});
    }
    left -= n;
  }
  if (out.empty()) out.push_back({q.length, 0});
  return out;
}

}  // namespace isoboot::nbd
