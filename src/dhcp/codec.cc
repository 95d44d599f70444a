#include "dhcp/codec.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "base/byte_io.h"

namespace isoboot::dhcp {
namespace {

constexpr size_t kSnameSize = 64;
constexpr size_t kFileSize = 128;

std::string FixedString(std::span<const uint8_t> field) {
  auto end = std::find(field.begin(), field.end(), uint8_t{0});
  return std::string(field.begin(), end);
}

// Reads code/length/value options until end or the end of `bytes`, joining
// repeated codes into the first instance (RFC 3396).
Result<void> ReadOptions(std::span<const uint8_t> bytes, std::string_view where,
                         std::vector<Option>& out) {
  ByteReader r(bytes);
  while (!r.empty()) {
    size_t at = r.offset();
    uint8_t code = r.U8();
    if (code == opt::kPad) continue;
    if (code == opt::kEnd) return {};
    if (r.empty())
      return MakeError(fmt::format("option {} at byte {} of {} has no length", code, at, where));
    uint8_t len = r.U8();
    auto data = r.Bytes(len);
    if (!r.ok()) {
      return MakeError(fmt::format("option {} at byte {} of {} needs {} bytes, {} left", code, at,
                                   where, len, bytes.size() - at - 2));
    }
    auto same =
        std::find_if(out.begin(), out.end(), [&](const Option& o) { return o.code == code; });
    if (same != out.end()) {
      same->data.insert(same->data.end(), data.begin(), data.end());
    } else {
      out.push_back(Option{code, std::vector<uint8_t>(data.begin(), data.end())});
    }
  }
  return {};
}

// Length rules for the options the protocol interprets.
Result<void> CheckLengths(const std::vector<Option>& options) {
  for (const auto& o : options) {
    size_t n = o.data.size();
    bool ok = true;
    switch (o.code) {
      case opt::kMessageType:
        ok = n == 1 && o.data[0] >= 1;
        break;
      case opt::kSubnetMask:
      case opt::kBroadcast:
      case opt::kRequestedIp:
      case opt::kServerId:
      case opt::kLeaseTime:
        ok = n == 4;
        break;
      case opt::kRouter:
      case opt::kDnsServer:
        ok = n >= 4 && n % 4 == 0;
        break;
      case opt::kClientArch:
        ok = n >= 2 && n % 2 == 0;
        break;
      case opt::kClientNdi:
        ok = n == 3;
        break;
      case opt::kClientUuid:  // RFC 4578 2.5: type 0 then a 16-byte GUID
        ok = n == 17 && o.data[0] == 0;
        break;
      case opt::kVendorSpecific:
      case opt::kIpxe:
        // Option 43 from a non-PXE vendor may be opaque; only ours is TLV.
        if (o.code == opt::kIpxe) {
          auto sub = ParseSubOptions(o.data);
          if (!sub) return MakeError(fmt::format("option 175: {}", sub.error().message));
        }
        break;
      default:
        break;
    }
    if (!ok) return MakeError(fmt::format("option {} has a bad length ({} bytes)", o.code, n));
  }
  return {};
}

void WriteOption(ByteWriter& w, uint8_t code, std::span<const uint8_t> data) {
  // Empty options still need one instance; longer ones are split (RFC 3396).
  size_t pos = 0;
  do {
    size_t chunk = std::min<size_t>(255, data.size() - pos);
    w.U8(code);
    w.U8(static_cast<uint8_t>(chunk));
    w.Bytes(data.subspan(pos, chunk));
    pos += chunk;
  } while (pos < data.size());
}

void WriteFixedString(ByteWriter& w, const std::string& s, size_t size) {
  size_t n = std::min(s.size(), size - 1);  // keep the terminating NUL
  w.Text(std::string_view(s).substr(0, n));
  w.Zeros(size - n);
}

}  // namespace

std::optional<MessageType> Message::Type() const {
  const Option* o = Find(opt::kMessageType);
  if (!o) return std::nullopt;
  return static_cast<MessageType>(o->data[0]);
}

const Option* Message::Find(uint8_t code) const {
  for (const auto& o : options) {
    if (o.code == code) return &o;
  }
  return nullptr;
}

std::optional<uint32_t> Message::GetU32(uint8_t code) const {
  const Option* o = Find(code);
  if (!o || o->data.size() < 4) return std::nullopt;
  ByteReader r(o->data);
  return r.U32();
}

std::optional<Ip4> Message::GetIp(uint8_t code) const {
  return GetU32(code);
}

std::string Message::GetString(uint8_t code) const {
  const Option* o = Find(code);
  if (!o) return {};
  return FixedString(o->data);  // some clients NUL-terminate strings
}

std::optional<uint16_t> Message::ClientArch() const {
  const Option* o = Find(opt::kClientArch);
  if (!o || o->data.size() < 2) return std::nullopt;
  return static_cast<uint16_t>(o->data[0] << 8 | o->data[1]);
}

MacAddress Message::Mac() const {
  MacAddress mac;
  std::copy_n(chaddr.begin(), mac.size(), mac.begin());
  return mac;
}

void Message::Set(uint8_t code, std::span<const uint8_t> data) {
  for (auto& o : options) {
    if (o.code == code) {
      o.data.assign(data.begin(), data.end());
      return;
    }
  }
  options.push_back(Option{code, std::vector<uint8_t>(data.begin(), data.end())});
}

void Message::SetU8(uint8_t code, uint8_t v) {
  Set(code, std::span<const uint8_t>(&v, 1));
}

void Message::SetU32(uint8_t code, uint32_t v) {
  std::vector<uint8_t> b;
  ByteWriter(b).U32(v);
  Set(code, b);
}

void Message::SetIps(uint8_t code, std::span<const Ip4> ips) {
  std::vector<uint8_t> b;
  ByteWriter w(b);
  for (Ip4 ip : ips)
    w.U32(ip);
  Set(code, b);
}

void Message::SetString(uint8_t code, std::string_view s) {
  Set(code, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

Result<Message> Parse(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize + 4) {
    return MakeError(fmt::format("packet of {} bytes is shorter than a BOOTP header ({})",
                                 bytes.size(), kHeaderSize + 4));
  }
  ByteReader r(bytes);
  Message m;
  m.op = r.U8();
  m.htype = r.U8();
  m.hlen = r.U8();
  m.hops = r.U8();
  m.xid = r.U32();
  m.secs = r.U16();
  m.flags = r.U16();
  m.ciaddr = r.U32();
  m.yiaddr = r.U32();
  m.siaddr = r.U32();
  m.giaddr = r.U32();
  auto chaddr = r.Bytes(16);
  std::copy(chaddr.begin(), chaddr.end(), m.chaddr.begin());
  auto sname = r.Bytes(kSnameSize);
  auto file = r.Bytes(kFileSize);
  uint32_t cookie = r.U32();
  if (m.op != kBootRequest && m.op != kBootReply) return MakeError(fmt::format("bad op {}", m.op));
  if (m.hlen > 16) return MakeError(fmt::format("hardware address length {} exceeds 16", m.hlen));
  if (cookie != kMagicCookie) return MakeError(fmt::format("bad magic cookie {:#010x}", cookie));

  if (auto ok = ReadOptions(r.Rest(), "options", m.options); !ok) return ok.error();
  uint8_t overload = 0;
  if (auto it = std::find_if(m.options.begin(), m.options.end(),
                             [](const Option& o) { return o.code == opt::kOverload; });
      it != m.options.end()) {
    if (it->data.size() != 1 || it->data[0] < 1 || it->data[0] > 3) {
      return MakeError("option 52 (overload) must be one byte, 1 to 3");
    }
    overload = it->data[0];
    m.options.erase(it);
  }
  // RFC 3396 order: options field, then file, then sname.
  if (overload & 1) {
    if (auto ok = ReadOptions(file, "file", m.options); !ok) return ok.error();
  } else {
    m.file = FixedString(file);
  }
  if (overload & 2) {
    if (auto ok = ReadOptions(sname, "sname", m.options); !ok) return ok.error();
  } else {
    m.sname = FixedString(sname);
  }
  if (auto ok = CheckLengths(m.options); !ok) return ok.error();
  return m;
}

void Append(const Message& m, std::vector<uint8_t>& out) {
  size_t start = out.size();
  ByteWriter w(out);
  w.U8(m.op);
  w.U8(m.htype);
  w.U8(m.hlen);
  w.U8(m.hops);
  w.U32(m.xid);
  w.U16(m.secs);
  w.U16(m.flags);
  w.U32(m.ciaddr);
  w.U32(m.yiaddr);
  w.U32(m.siaddr);
  w.U32(m.giaddr);
  w.Bytes(m.chaddr);
  WriteFixedString(w, m.sname, kSnameSize);
  WriteFixedString(w, m.file, kFileSize);
  w.U32(kMagicCookie);
  // Message type first: some PXE ROMs only look for it there.
  if (const Option* t = m.Find(opt::kMessageType)) WriteOption(w, t->code, t->data);
  for (const auto& o : m.options) {
    if (o.code == opt::kPad || o.code == opt::kEnd || o.code == opt::kOverload ||
        o.code == opt::kMessageType) {
      continue;
    }
    WriteOption(w, o.code, o.data);
  }
  w.U8(opt::kEnd);
  if (out.size() - start < kMinMessageSize) w.Zeros(kMinMessageSize - (out.size() - start));
}

Result<std::vector<Option>> ParseSubOptions(std::span<const uint8_t> bytes) {
  std::vector<Option> out;
  if (auto ok = ReadOptions(bytes, "encapsulated options", out); !ok) return ok.error();
  return out;
}

void AppendSubOptions(std::span<const Option> options, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  for (const auto& o : options) {
    // A sub-option cannot be split; clamp instead of corrupting the TLV.
    size_t n = std::min<size_t>(o.data.size(), 255);
    w.U8(o.code);
    w.U8(static_cast<uint8_t>(n));
    w.Bytes(std::span<const uint8_t>(o.data).first(n));
  }
  w.U8(opt::kEnd);
}

std::string FormatIp(Ip4 ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

std::optional<Ip4> ParseIp(std::string_view text) {
  Ip4 ip = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 4; ++i) {
    unsigned part = 0;
    auto [next, ec] = std::from_chars(p, end, part);
    if (ec != std::errc() || next == p || part > 255 || next - p > 3) return std::nullopt;
    ip = ip << 8 | part;
    p = next;
    if (i < 3) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
  }
  if (p != end) return std::nullopt;
  return ip;
}

std::string_view TypeName(MessageType type) {
  switch (type) {
    case MessageType::kDiscover:
      return "DHCPDISCOVER";
    case MessageType::kOffer:
      return "DHCPOFFER";
    case MessageType::kRequest:
      return "DHCPREQUEST";
    case MessageType::kDecline:
      return "DHCPDECLINE";
    case MessageType::kAck:
      return "DHCPACK";
    case MessageType::kNak:
      return "DHCPNAK";
    case MessageType::kRelease:
      return "DHCPRELEASE";
    case MessageType::kInform:
      return "DHCPINFORM";
  }
  return "DHCP(unknown)";
}

}  // namespace isoboot::dhcp
