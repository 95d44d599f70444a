// ATA, MAC Mask List and Reserve/Release handling for Target (target.h).

#include <algorithm>

#include "aoe/target.h"

namespace isoboot::aoe {
namespace {

constexpr uint64_t kLba28Mask = 0x0fffffff;
constexpr uint64_t kLba48Mask = 0x0000ffffffffffff;
// Offsets of the ATA error and status bytes in a response frame.
constexpr size_t kErrOffset = kEthernetHeaderSize + kAoeHeaderSize + 1;
constexpr size_t kStatusOffset = kEthernetHeaderSize + kAoeHeaderSize + 3;
constexpr size_t kCountOffset = kEthernetHeaderSize + kAoeHeaderSize + 2;

}  // namespace

void Target::AnswerAta(const Frame& f, Export& e, ResponseSink& sink, HandleResult& result) {
  const AtaMessage& a = f.ata;
  if (e.ReservedAgainst(f.header.src)) {
    AnswerError(f, e, AoeError::kTargetReserved, sink, result);
    return;
  }
  uint8_t cmd = a.cmd_status;
  bool is_read = cmd == kAtaReadSectors || cmd == kAtaReadSectorsExt;
  bool is_write = cmd == kAtaWriteSectors || cmd == kAtaWriteSectorsExt;
  size_t count = a.sector_count;
  if ((is_read || is_write) && count > max_sectors_) {
    AnswerError(f, e, AoeError::kBadArgument, sink, result);
    return;
  }
  if (is_write && e.writable() && a.data.size() < count * 512) {
    AnswerError(f, e, AoeError::kBadArgument, sink, result);
    return;
  }

  std::vector<uint8_t>& out = sink.Next();
  AppendHeader(ResponseHeader(f.header, e), out);
  AtaMessage r;
  r.aflags = a.aflags;
  r.sector_count = a.sector_count;
  r.cmd_status = kAtaStatusDrdy;
  r.lba = a.lba;
  auto fail = [&](uint8_t error) {
    r.cmd_status = kAtaStatusDrdy | kAtaStatusErr;
    r.err_feature = error;
    result.ata_error = true;
  };

  if (is_read || is_write) {
    uint64_t lba = a.lba & ((cmd == kAtaReadSectorsExt || cmd == kAtaWriteSectorsExt) ? kLba48Mask
                                                                                      : kLba28Mask);
    r.lba = lba;
    if (is_write && !e.writable()) {
      fail(kAtaErrorAbrt);
    } else if (lba > e.sectors() || count > e.sectors() - lba) {
      fail(kAtaErrorIdnf);
    } else if (is_read) {
      AppendAta(r, out);
      size_t at = out.size();
      out.resize(at + count * 512);
      if (!e.device().ReadFor(f.header.src, lba * 512, std::span(out).subspan(at))) {
        out.resize(at);
        out[kStatusOffset] = kAtaStatusDrdy | kAtaStatusErr;
        out[kErrOffset] = kAtaErrorAbrt;
        result.ata_error = true;
      } else {
        out[kCountOffset] = 0;
        result.data_bytes = count * 512;
        // The response reports where the transfer ended, as vblade does.
        uint64_t end = lba + count;
        for (size_t i = 0; i < 6; ++i)
          out[at - 8 + i] = static_cast<uint8_t>(end >> (8 * i));
      }
      PadFrame(out);
      result.disposition = Disposition::kAnswered;
      return;
    } else if (!e.device().Write(lba * 512, a.data.first(count * 512))) {
      fail(kAtaErrorAbrt);
    } else {
      r.sector_count = 0;
      r.lba = lba + count;
      result.data_bytes = count * 512;
    }
    AppendAta(r, out);
  } else if (cmd == kAtaIdentify) {
    r.sector_count = 0;
    AppendAta(r, out);
    out.insert(out.end(), e.identify().begin(), e.identify().end());
  } else if (cmd == kAtaCheckPowerMode) {
    r.sector_count = 0xff;  // active or idle
    AppendAta(r, out);
  } else if (cmd == kAtaFlushCache || cmd == kAtaFlushCacheExt) {
    if (e.writable() && !e.device().Flush()) fail(kAtaErrorAbrt);
    AppendAta(r, out);
  } else {
    fail(kAtaErrorAbrt);  // what a disk answers to a command it does not implement
    AppendAta(r, out);
  }
  PadFrame(out);
  result.disposition = Disposition::kAnswered;
}

void Target::AnswerMask(const Frame& f, Export& e, ResponseSink& sink, HandleResult& result) {
  const MacMaskList& m = f.mask;
  if (m.mcmd == static_cast<uint8_t>(MaskCommand::kEdit) && !e.network_may_configure()) {
    // As a target without MAC mask support answers: the list stays as the
    // operator set it, and MCmd 0 still reads it.
    AnswerError(f, e, AoeError::kUnrecognizedCommand, sink, result);
    result.refused = true;
    return;
  }
  std::vector<MacDirective> list;
  uint8_t merror = 0;
  {
    std::lock_guard lock(e.mu_);
    if (m.mcmd == static_cast<uint8_t>(MaskCommand::kEdit)) {
      for (size_t i = 0; i < m.count; ++i) {
        MacDirective d = m.Directive(i);
        auto it = std::find(e.mask_.begin(), e.mask_.end(), d.mac);
        if (d.dcmd == static_cast<uint8_t>(DirectiveCommand::kNone)) continue;
        if (d.dcmd == static_cast<uint8_t>(DirectiveCommand::kAdd)) {
          if (it != e.mask_.end()) continue;
          if (e.mask_.size() >= kMaxMaskEntries) {
            merror = static_cast<uint8_t>(MaskError::kListFull);
            break;
          }
          e.mask_.push_back(d.mac);
        } else if (d.dcmd == static_cast<uint8_t>(DirectiveCommand::kDelete)) {
          if (it != e.mask_.end()) e.mask_.erase(it);
        } else {
          merror = static_cast<uint8_t>(MaskError::kBadDirective);
          break;
        }
      }
      e.restricted_ = !e.mask_.empty() || !e.reserved_.empty();
    }
    for (const Mac& mac : e.mask_)
      list.push_back({0, mac});
  }
  Frame r;
  r.header = ResponseHeader(f.header, e);
  r.mask.mcmd = m.mcmd;
  r.mask.merror = merror;
  r.mask.to_write = list;
  std::vector<uint8_t>& out = sink.Next();
  Append(r, out);
  PadFrame(out);
  result.disposition = Disposition::kAnswered;
  result.ata_error = merror != 0;
}

void Target::AnswerReserve(const Frame& f, Export& e, ResponseSink& sink, HandleResult& result) {
  const Reserve& v = f.reserve;
  if (v.rcmd != static_cast<uint8_t>(ReserveCommand::kRead) && !e.network_may_configure()) {
    // A shared read-only export is never reserved by one initiator; the
    // answer is a target's without Reserve/Release, and RCmd 0 still reads.
    AnswerError(f, e, AoeError::kUnrecognizedCommand, sink, result);
    result.refused = true;
    return;
  }
  std::vector<Mac> list;
  bool conflict = false;
  {
    std::lock_guard lock(e.mu_);
    bool may_set =
        v.rcmd == static_cast<uint8_t>(ReserveCommand::kForceSet) || e.reserved_.empty() ||
        std::find(e.reserved_.begin(), e.reserved_.end(), f.header.src) != e.reserved_.end();
    if (v.rcmd != static_cast<uint8_t>(ReserveCommand::kRead)) {
      if (!may_set) {
        conflict = true;
      } else {
        e.reserved_.clear();
        for (size_t i = 0; i < v.count && i < kMaxReservations; ++i) {
          e.reserved_.push_back(v.At(i));
        }
        e.restricted_ = !e.mask_.empty() || !e.reserved_.empty();
      }
    }
    list = e.reserved_;
  }
  Frame r;
  r.header = ResponseHeader(f.header, e);
  if (conflict) {
    r.header.flags |= kFlagError;
    r.header.error = static_cast<uint8_t>(AoeError::kTargetReserved);
    result.ata_error = true;
  }
  r.reserve.rcmd = v.rcmd;
  r.reserve.to_write = list;
  std::vector<uint8_t>& out = sink.Next();
  Append(r, out);
  PadFrame(out);
  result.disposition = Disposition::kAnswered;
}

}  // namespace isoboot::aoe
