#include "aoe/codec.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "base/byte_io.h"

namespace isoboot::aoe {
namespace {

Mac ReadMac(ByteReader& r) {
  Mac m{};
  auto b = r.Bytes(6);
  if (b.size() == 6) std::copy(b.begin(), b.end(), m.begin());
  return m;
}

Result<AtaMessage> ParseAta(ByteReader& r) {
  AtaMessage a;
  a.aflags = r.U8();
  a.err_feature = r.U8();
  a.sector_count = r.U8();
  a.cmd_status = r.U8();
  a.lba = r.U48Le();
  r.Skip(2);  // reserved
  if (!r.ok()) return MakeError("ATA header truncated (needs 12 bytes)");
  a.data = r.Rest();
  return a;
}

Result<QueryConfig> ParseQueryConfig(ByteReader& r) {
  QueryConfig q;
  q.buffer_count = r.U16();
  q.firmware_version = r.U16();
  q.sector_count = r.U8();
  uint8_t ver_ccmd = r.U8();
  uint16_t length = r.U16();
  if (!r.ok()) return MakeError("Query Config header truncated (needs 8 bytes)");
  q.aoe_version = ver_ccmd >> 4;
  q.ccmd = ver_ccmd & 0x0f;
  if (q.ccmd > static_cast<uint8_t>(ConfigCommand::kForceSet)) {
    return MakeError("Query Config: unknown sub-command " + std::to_string(q.ccmd));
  }
  if (length > kMaxConfigStringLength) {
    return MakeError("Query Config: config string length " + std::to_string(length) +
                     " exceeds 1024");
  }
  q.config = r.Bytes(length);
  if (!r.ok()) return MakeError("Query Config: config string runs past the end of the frame");
  return q;
}

Result<MacMaskList> ParseMask(ByteReader& r) {
  MacMaskList m;
  r.Skip(1);  // reserved
  m.mcmd = r.U8();
  m.merror = r.U8();
  m.count = r.U8();
  if (!r.ok()) return MakeError("MAC Mask List header truncated (needs 4 bytes)");
  if (m.mcmd > static_cast<uint8_t>(MaskCommand::kEdit)) {
    return MakeError("MAC Mask List: unknown command " + std::to_string(m.mcmd));
  }
  m.directives = r.Bytes(size_t{m.count} * 8);
  if (!r.ok()) return MakeError("MAC Mask List: directives run past the end of the frame");
  return m;
}

Result<Reserve> ParseReserve(ByteReader& r) {
  Reserve v;
  v.rcmd = r.U8();
  v.count = r.U8();
  if (!r.ok()) return MakeError("Reserve/Release header truncated (needs 2 bytes)");
  if (v.rcmd > static_cast<uint8_t>(ReserveCommand::kForceSet)) {
    return MakeError("Reserve/Release: unknown command " + std::to_string(v.rcmd));
  }
  v.macs = r.Bytes(size_t{v.count} * 6);
  if (!r.ok()) return MakeError("Reserve/Release: MAC list runs past the end of the frame");
  return v;
}

void WriteMac(ByteWriter& w, const Mac& m) {
  w.Bytes(m);
}

}  // namespace

MacDirective MacMaskList::Directive(size_t i) const {
  MacDirective d;
  if ((i + 1) * 8 > directives.size()) return d;
  d.dcmd = directives[i * 8 + 1];
  std::copy_n(directives.begin() + static_cast<ptrdiff_t>(i * 8 + 2), 6, d.mac.begin());
  return d;
}

Mac Reserve::At(size_t i) const {
  Mac m{};
  if ((i + 1) * 6 > macs.size()) return m;
  std::copy_n(macs.begin() + static_cast<ptrdiff_t>(i * 6), 6, m.begin());
  return m;
}

Result<Frame> Parse(std::span<const uint8_t> bytes) {
  ByteReader r(bytes);
  Frame f;
  Header& h = f.header;
  h.dst = ReadMac(r);
  h.src = ReadMac(r);
  uint16_t type = r.U16();
  if (!r.ok()) return MakeError("Ethernet header truncated (needs 14 bytes)");
  if (type != kEtherType) return MakeError("ethertype is not AoE (0x88a2)");
  uint8_t ver_flags = r.U8();
  h.error = r.U8();
  h.shelf = r.U16();
  h.slot = r.U8();
  h.command = r.U8();
  h.tag = r.U32();
  if (!r.ok()) return MakeError("AoE header truncated (needs 10 bytes)");
  h.version = ver_flags >> 4;
  h.flags = ver_flags & 0x0f;
  if (h.version != kVersion) {
    return MakeError("unsupported AoE version " + std::to_string(h.version));
  }
  switch (static_cast<Command>(h.command)) {
    case Command::kAta: {
      auto a = ParseAta(r);
      if (!a) return a.error();
      f.ata = *a;
      break;
    }
    case Command::kQueryConfig: {
      auto q = ParseQueryConfig(r);
      if (!q) return q.error();
      f.config = *q;
      break;
    }
    case Command::kMacMask: {
      auto m = ParseMask(r);
      if (!m) return m.error();
      f.mask = *m;
      break;
    }
    case Command::kReserve: {
      auto v = ParseReserve(r);
      if (!v) return v.error();
      f.reserve = *v;
      break;
    }
    default:
      break;  // vendor or future command: the header alone is valid
  }
  return f;
}

void AppendHeader(const Header& h, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  WriteMac(w, h.dst);
  WriteMac(w, h.src);
  w.U16(kEtherType);
  w.U8(static_cast<uint8_t>((h.version << 4) | (h.flags & 0x0f)));
  w.U8(h.error);
  w.U16(h.shelf);
  w.U8(h.slot);
  w.U8(h.command);
  w.U32(h.tag);
}

void AppendAta(const AtaMessage& a, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U8(a.aflags);
  w.U8(a.err_feature);
  w.U8(a.sector_count);
  w.U8(a.cmd_status);
  w.U48Le(a.lba);
  w.Zeros(2);
}

void AppendQueryConfig(const QueryConfig& q, std::vector<uint8_t>& out) {
  ByteWriter w(out);
  w.U16(q.buffer_count);
  w.U16(q.firmware_version);
  w.U8(q.sector_count);
  w.U8(static_cast<uint8_t>((q.aoe_version << 4) | (q.ccmd & 0x0f)));
  size_t n = std::min(q.config.size(), kMaxConfigStringLength);
  w.U16(static_cast<uint16_t>(n));
  w.Bytes(q.config.first(n));
}

void Append(const Frame& f, std::vector<uint8_t>& out) {
  AppendHeader(f.header, out);
  ByteWriter w(out);
  switch (static_cast<Command>(f.header.command)) {
    case Command::kAta:
      AppendAta(f.ata, out);
      w.Bytes(f.ata.data);
      break;
    case Command::kQueryConfig:
      AppendQueryConfig(f.config, out);
      break;
    case Command::kMacMask: {
      const MacMaskList& m = f.mask;
      w.U8(0);
      w.U8(m.mcmd);
      w.U8(m.merror);
      if (!m.to_write.empty()) {
        w.U8(static_cast<uint8_t>(m.to_write.size()));
        for (const MacDirective& d : m.to_write) {
          w.U8(0);
          w.U8(d.dcmd);
          WriteMac(w, d.mac);
        }
      } else {
        w.U8(static_cast<uint8_t>(m.directives.size() / 8));
        w.Bytes(m.directives.first(m.directives.size() / 8 * 8));
      }
      break;
    }
    case Command::kReserve: {
      const Reserve& v = f.reserve;
      w.U8(v.rcmd);
      if (!v.to_write.empty()) {
        w.U8(static_cast<uint8_t>(v.to_write.size()));
        for (const Mac& m : v.to_write)
          WriteMac(w, m);
      } else {
        w.U8(static_cast<uint8_t>(v.macs.size() / 6));
        w.Bytes(v.macs.first(v.macs.size() / 6 * 6));
      }
      break;
    }
    default:
      break;
  }
}

void PadFrame(std::vector<uint8_t>& out) {
  if (out.size() < kMinFrameSize) out.resize(kMinFrameSize, 0);
}

Result<std::pair<uint16_t, uint8_t>> ParseTargetName(const std::string& text) {
  std::string s = text;
  if (!s.empty() && (s[0] == 'e' || s[0] == 'E')) s = s.substr(1);
  auto dot = s.find('.');
  auto bad = [&] { return MakeError("bad AoE target '" + text + "' (want e.g. e0.1)"); };
  if (dot == std::string::npos || dot == 0 || dot + 1 == s.size()) return bad();
  unsigned long shelf = 0, slot = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == dot) continue;
    if (s[i] < '0' || s[i] > '9') return bad();
    unsigned long& v = i < dot ? shelf : slot;
    v = v * 10 + static_cast<unsigned long>(s[i] - '0');
    if (v > 0xffff) return bad();
  }
  if (shelf >= 0xffff || slot >= 0xff) return bad();
  return std::pair<uint16_t, uint8_t>{static_cast<uint16_t>(shelf), static_cast<uint8_t>(slot)};
}

}  // namespace isoboot::aoe
