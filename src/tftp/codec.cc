#include "tftp/codec.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "base/byte_io.h"
#include "base/strings.h"

namespace isoboot::tftp {
namespace {

bool Printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
}

// Reads a NUL-terminated string; nullopt if no NUL remains.
std::optional<std::string_view> CString(ByteReader& r) {
  auto rest = r.Rest();
  auto nul = std::find(rest.begin(), rest.end(), uint8_t{0});
  if (nul == rest.end()) return std::nullopt;
  size_t n = static_cast<size_t>(nul - rest.begin());
  // Re-position: Rest() consumed everything, so rebuild from the remainder.
  r = ByteReader(rest.subspan(n + 1));
  return std::string_view(reinterpret_cast<const char*>(rest.data()), n);
}

Result<std::vector<Option>> ParseOptions(ByteReader& r) {
  std::vector<Option> options;
  while (!r.empty()) {
    auto name = CString(r);
    if (!name) return MakeError("option name is not NUL-terminated");
    if (name->empty()) return MakeError("empty option name");
    if (!Printable(*name)) return MakeError("option name has control characters");
    auto value = CString(r);
    if (!value) return MakeError(fmt::format("option '{}' has no NUL-terminated value", *name));
    if (!Printable(*value))
      return MakeError(fmt::format("option '{}' value has control characters", *name));
    if (options.size() >= 32) return MakeError("more than 32 options");
    options.push_back(Option{std::string(*name), std::string(*value)});
  }
  return options;
}

Result<Packet> ParseRequest(ByteReader& r, bool write) {
  Request req;
  req.write = write;
  auto filename = CString(r);
  if (!filename) return MakeError("file name is not NUL-terminated");
  if (filename->empty()) return MakeError("empty file name");
  if (filename->size() > kMaxFilenameLength)
    return MakeError(fmt::format("file name longer than {} bytes", kMaxFilenameLength));
  auto mode = CString(r);
  if (!mode) return MakeError("mode is not NUL-terminated");
  req.mode = ToLower(*mode);
  if (req.mode != "octet" && req.mode != "netascii" && req.mode != "mail")
    return MakeError(fmt::format("unknown mode '{}'", Printable(*mode) ? *mode : "?"));
  req.filename = std::string(*filename);
  auto options = ParseOptions(r);
  if (!options) return options.error();
  req.options = std::move(*options);
  return Packet(std::move(req));
}

// Strict decimal: digits only, no sign, no overflow past uint64.
std::optional<uint64_t> Number(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<Packet> Parse(std::span<const uint8_t> bytes) {
  ByteReader r(bytes);
  uint16_t op = r.U16();
  if (!r.ok())
    return MakeError(fmt::format("packet of {} bytes is too short for an opcode", bytes.size()));
  switch (static_cast<Opcode>(op)) {
    case Opcode::kRrq:
      return ParseRequest(r, false);
    case Opcode::kWrq:
      return ParseRequest(r, true);
    case Opcode::kData: {
      uint16_t block = r.U16();
      if (!r.ok()) return MakeError("DATA shorter than its 4-byte header");
      auto data = r.Rest();
      if (data.size() > kMaxBlksize)
        return MakeError(fmt::format("DATA of {} bytes exceeds {}", data.size(), kMaxBlksize));
      return Packet(Data{block, data});
    }
    case Opcode::kAck: {
      uint16_t block = r.U16();
      if (!r.ok()) return MakeError("ACK shorter than 4 bytes");
      // Trailing bytes after an ACK are tolerated: some PXE ROMs pad packets.
      return Packet(Ack{block});
    }
    case Opcode::kError: {
      uint16_t code = r.U16();
      if (!r.ok()) return MakeError("ERROR shorter than its 4-byte header");
      auto rest = r.Rest();
      // Accept a missing terminating NUL: an ERROR only ends a transfer, and
      // several clients omit it.
      auto nul = std::find(rest.begin(), rest.end(), uint8_t{0});
      std::string msg(rest.begin(), nul);
      for (char& c : msg)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
      return Packet(ErrorPacket{static_cast<ErrorCode>(code), std::move(msg)});
    }
    case Opcode::kOack: {
      auto options = ParseOptions(r);
      if (!options) return options.error();
      return Packet(Oack{std::move(*options)});
    }
  }
  return MakeError(fmt::format("unknown opcode {}", op));
}

void AppendDataHeader(uint16_t block, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U16(static_cast<uint16_t>(Opcode::kData));
  w.U16(block);
}

void Append(const Packet& packet, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  auto cstr = [&](std::string_view s) {
    w.Text(s);
    w.U8(0);
  };
  auto options = [&](const std::vector<Option>& opts) {
    for (const auto& o : opts) {
      cstr(o.name);
      cstr(o.value);
    }
  };
  if (const auto* req = std::get_if<Request>(&packet)) {
    w.U16(static_cast<uint16_t>(req->write ? Opcode::kWrq : Opcode::kRrq));
    cstr(req->filename);
    cstr(req->mode);
    options(req->options);
  } else if (const auto* data = std::get_if<Data>(&packet)) {
    AppendDataHeader(data->block, out);
    w.Bytes(data->data);
  } else if (const auto* ack = std::get_if<Ack>(&packet)) {
    w.U16(static_cast<uint16_t>(Opcode::kAck));
    w.U16(ack->block);
  } else if (const auto* err = std::get_if<ErrorPacket>(&packet)) {
    w.U16(static_cast<uint16_t>(Opcode::kError));
    w.U16(static_cast<uint16_t>(err->code));
    cstr(err->message);
  } else if (const auto* oack = std::get_if<Oack>(&packet)) {
    w.U16(static_cast<uint16_t>(Opcode::kOack));
    options(oack->options);
  }
}

Negotiated Negotiate(const std::vector<Option>& asked, const Limits& limits, uint64_t file_size) {
  Negotiated n;
  std::vector<std::string> seen;
  for (const auto& o : asked) {
    std::string name = ToLower(o.name);
    auto ignore = [&](std::string_view why) {
      n.ignored.push_back(
          fmt::format("{}={} ({})", EscapeForLog(o.name), EscapeForLog(o.value), why));
    };
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      ignore("duplicate");
      continue;
    }
    seen.push_back(name);
    auto v = Number(o.value);
    if (name == "blksize") {
      // RFC 2348: below 8 is invalid; above what we can send, answer smaller.
      if (!v || *v < kMinBlksize) {
        ignore("out of range");
        continue;
      }
      uint32_t cap = std::clamp<uint32_t>(limits.max_blksize, kMinBlksize, kMaxBlksize);
      n.blksize = static_cast<uint32_t>(std::min<uint64_t>(*v, cap));
      n.oack.push_back({o.name, std::to_string(n.blksize)});
    } else if (name == "tsize") {
      // RFC 2349: in an RRQ the client sends 0 and the server answers the size.
      if (!v) {
        ignore("not a number");
        continue;
      }
      if (file_size == 0) {
        // curl (tftp_parse_option_ack, still in 7.88) fails a transfer whose
        // OACK says tsize 0; declining the option is always allowed.
        ignore("empty file");
        continue;
      }
      n.tsize_asked = true;
      n.oack.push_back({o.name, std::to_string(file_size)});
    } else if (name == "timeout") {
      // RFC 2349: 1..255 seconds, and the server must not change the value;
      // it may decline it, and does above its own maximum.
      if (!v || *v < 1 || *v > 255) {
        ignore("out of range");
        continue;
      }
      if (*v > limits.max_timeout_s) {
        ignore("over the server's maximum");
        continue;
      }
      n.timeout_s = static_cast<uint32_t>(*v);
      n.oack.push_back({o.name, std::to_string(*v)});
    } else if (name == "windowsize") {
      // RFC 7440: 1..65535; the server may answer a smaller value.
      if (!v || *v < 1 || *v > 65535) {
        ignore("out of range");
        continue;
      }
      n.windowsize = static_cast<uint32_t>(
          std::min<uint64_t>(*v, std::max<uint32_t>(1, limits.max_windowsize)));
      n.oack.push_back({o.name, ""});  // value set below, once blksize is known
    } else {
      ignore("unknown");
    }
  }
  n.windowsize = std::clamp<uint32_t>(limits.max_window_bytes / n.blksize, 1, n.windowsize);
  for (auto& o : n.oack)
    if (ToLower(o.name) == "windowsize") o.value = std::to_string(n.windowsize);
  return n;
}

std::string Describe(const Packet& packet) {
  auto opts = [](const std::vector<Option>& options) {
    std::string s;
    for (const auto& o : options)
      s += fmt::format(" {}={}", EscapeForLog(o.name), EscapeForLog(o.value));
    return s;
  };
  if (const auto* req = std::get_if<Request>(&packet))
    return fmt::format("{} {} {}{}", req->write ? "WRQ" : "RRQ", EscapeForLog(req->filename),
                       req->mode, opts(req->options));
  if (const auto* data = std::get_if<Data>(&packet))
    return fmt::format("DATA {} ({} bytes)", data->block, data->data.size());
  if (const auto* ack = std::get_if<Ack>(&packet)) return fmt::format("ACK {}", ack->block);
  if (const auto* err = std::get_if<ErrorPacket>(&packet))
    return fmt::format("ERROR {} {}", static_cast<int>(err->code), EscapeForLog(err->message));
  if (const auto* oack = std::get_if<Oack>(&packet))
    return fmt::format("OACK{}", opts(oack->options));
  return "?";
}

}  // namespace isoboot::tftp
