#include "aoe/target.h"

#include <algorithm>
#include <cstring>

namespace isoboot::aoe {
namespace {

constexpr uint64_t kLba28Mask = 0x0fffffff;

void SetWord(std::array<uint8_t, 512>& id, size_t word, uint16_t v) {
  id[word * 2] = static_cast<uint8_t>(v);
  id[word * 2 + 1] = static_cast<uint8_t>(v >> 8);
}

// ATA strings: space-padded, two characters per word, the first in the high
// byte; words are little-endian, so each byte pair appears swapped.
void SetString(std::array<uint8_t, 512>& id, size_t word, size_t words, const std::string& s) {
  for (size_t i = 0; i < words * 2; ++i) {
    uint8_t c = i < s.size() ? static_cast<uint8_t>(s[i]) : ' ';
    id[word * 2 + (i ^ 1)] = c;
  }
}

bool Contains(const std::vector<Mac>& list, const Mac& mac) {
  return std::find(list.begin(), list.end(), mac) != list.end();
}

}  // namespace

std::array<uint8_t, 512> BuildIdentify(uint64_t sectors, const std::string& serial,
                                       uint8_t max_sectors) {
  std::array<uint8_t, 512> id{};
  uint64_t lba28 = std::min<uint64_t>(sectors, kLba28Mask);
  // Legacy CHS geometry (16 heads, 63 sectors/track) as disks report it.
  uint64_t cylinders = std::min<uint64_t>(sectors / (16 * 63), 16383);
  SetWord(id, 0, 0x0040);  // fixed device, not removable
  SetWord(id, 1, static_cast<uint16_t>(cylinders));
  SetWord(id, 3, 16);
  SetWord(id, 6, 63);
  SetString(id, 10, 10, serial);
  SetString(id, 23, 4, "isoboot1");
  SetString(id, 27, 20, "isoboot AoE target");
  SetWord(id, 47, static_cast<uint16_t>(0x8000 | max_sectors));  // READ/WRITE MULTIPLE
  SetWord(id, 49, 0x0200);                                       // LBA supported
  SetWord(id, 50, 0x4000);
  SetWord(id, 53, 0x0006);  // words 64-70 and 88 valid
  SetWord(id, 60, static_cast<uint16_t>(lba28));
  SetWord(id, 61, static_cast<uint16_t>(lba28 >> 16));
  SetWord(id, 80, 0x00f0);  // ATA/ATAPI-4 to -7
  SetWord(id, 82, 0x4000);
  SetWord(id, 83, 0x7400);  // LBA48, FLUSH CACHE, FLUSH CACHE EXT
  SetWord(id, 84, 0x4000);
  SetWord(id, 85, 0x4000);
  SetWord(id, 86, 0x3400);  // the same, enabled
  SetWord(id, 87, 0x4000);
  SetWord(id, 93, 0x400b);
  for (size_t i = 0; i < 4; ++i)
    SetWord(id, 100 + i, static_cast<uint16_t>(sectors >> (16 * i)));
  // Word 255: signature 0xa5 and a checksum making all 512 bytes sum to 0.
  id[510] = 0xa5;
  uint8_t sum = 0;
  for (size_t i = 0; i < 511; ++i)
    sum = static_cast<uint8_t>(sum + id[i]);
  id[511] = static_cast<uint8_t>(-sum);
  return id;
}

Export::Export(ExportOptions options, std::unique_ptr<BlockDevice> device)
    : options_(std::move(options)),
      device_(std::move(device)),
      sectors_(device_->size_bytes() / 512),
      config_(options_.config_string),
      mask_(options_.allow_macs) {
  restricted_ = !mask_.empty();
}

bool Export::Allowed(const Mac& mac) const {
  if (!restricted_.load(std::memory_order_acquire)) return true;
  std::lock_guard lock(mu_);
  return mask_.empty() || Contains(mask_, mac);
}

bool Export::ReservedAgainst(const Mac& mac) const {
  if (!restricted_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(mu_);
  return !reserved_.empty() && !Contains(reserved_, mac);
}

Target::Target(Mac self, uint8_t max_sectors, uint16_t buffer_count)
    : self_(self), max_sectors_(max_sectors ? max_sectors : 1), buffer_count_(buffer_count) {}

uint8_t Target::SectorsForMtu(unsigned mtu) {
  size_t room = mtu > kAoeHeaderSize + kAtaHeaderSize ? mtu - kAoeHeaderSize - kAtaHeaderSize : 0;
  return static_cast<uint8_t>(std::clamp<size_t>(room / 512, 1, 255));
}

Export& Target::AddExport(ExportOptions options, std::unique_ptr<BlockDevice> device) {
  if (options.serial.empty()) {
    options.serial =
        "ISOBOOT-E" + std::to_string(options.shelf) + "." + std::to_string(options.slot);
  }
  auto e = std::make_unique<Export>(std::move(options), std::move(device));
  e->identify_ = BuildIdentify(e->sectors_, e->options_.serial, max_sectors_);
  exports_.push_back(std::move(e));
  return *exports_.back();
}

Header Target::ResponseHeader(const Header& request, const Export& e) const {
  Header h;
  h.dst = request.src;
  h.src = self_;
  h.flags = kFlagResponse;
  h.shelf = e.shelf();
  h.slot = e.slot();
  h.command = request.command;
  h.tag = request.tag;
  return h;
}

HandleResult Target::Handle(std::span<const uint8_t> bytes, ResponseSink& sink) {
  HandleResult result;
  if (bytes.size() >= 12) {
    std::copy_n(bytes.begin() + 6, 6, result.src.begin());
    // A group source address is never an initiator's, and answering it
    // would broadcast the answer (a read from ff:ff:ff:ff:ff:ff would
    // flood the segment with up to 17 times its size in sectors).
    if (result.src[0] & 0x01) {
      result.disposition = Disposition::kBadSource;
      return result;
    }
    // Only frames to us or to broadcast (discovery): a switch floods
    // unicast to unknown MACs, and a promiscuous interface passes frames for
    // another target, which must not get a second answer from us.
    Mac dst;
    std::copy_n(bytes.begin(), 6, dst.begin());
    if (dst != self_ && dst != kBroadcastMac) {
      result.disposition = Disposition::kNotForUs;
      return result;
    }
  }
  auto parsed = Parse(bytes);
  if (!parsed) {
    result.disposition = Disposition::kMalformed;
    return result;
  }
  const Frame& f = *parsed;
  const Header& h = f.header;
  if (h.flags & kFlagResponse) return result;  // another target's answer
  bool wildcard = h.shelf == kBroadcastShelf || h.slot == kBroadcastSlot;
  for (auto& ep : exports_) {
    Export& e = *ep;
    bool match = (h.shelf == kBroadcastShelf || h.shelf == e.shelf()) &&
                 (h.slot == kBroadcastSlot || h.slot == e.slot());
    if (!match || !e.Allowed(h.src)) continue;
    switch (static_cast<Command>(h.command)) {
      case Command::kQueryConfig:
        AnswerConfig(f, e, sink, result);
        break;
      case Command::kAta:
        // ATA commands must name one device: a wildcard would make every
        // export write the same sectors.
        if (!wildcard) AnswerAta(f, e, sink, result);
        break;
      case Command::kMacMask:
        if (!wildcard) AnswerMask(f, e, sink, result);
        break;
      case Command::kReserve:
        if (!wildcard) AnswerReserve(f, e, sink, result);
        break;
      default:
        if (!wildcard) AnswerError(f, e, AoeError::kUnrecognizedCommand, sink, result);
        break;
    }
  }
  return result;
}

void Target::AnswerError(const Frame& f, const Export& e, AoeError error, ResponseSink& sink,
                         HandleResult& result) {
  std::vector<uint8_t>& out = sink.Next();
  Header h = ResponseHeader(f.header, e);
  h.flags |= kFlagError;
  h.error = static_cast<uint8_t>(error);
  AppendHeader(h, out);
  PadFrame(out);
  result.disposition = Disposition::kAnswered;
  result.ata_error = true;
}

void Target::AppendConfigResponse(const Header& h, uint8_t ccmd, Export& e,
                                  std::vector<uint8_t>& out) {
  AppendHeader(h, out);
  QueryConfig q;
  q.buffer_count = buffer_count_;
  q.firmware_version = kFirmwareVersion;
  q.sector_count = max_sectors_;
  q.ccmd = ccmd;
  std::lock_guard lock(e.mu_);
  q.config = std::span(reinterpret_cast<const uint8_t*>(e.config_.data()), e.config_.size());
  AppendQueryConfig(q, out);
  PadFrame(out);
}

void Target::AnswerConfig(const Frame& f, Export& e, ResponseSink& sink, HandleResult& result) {
  const QueryConfig& q = f.config;
  std::string_view wanted(reinterpret_cast<const char*>(q.config.data()), q.config.size());
  bool error = false;
  {
    std::lock_guard lock(e.mu_);
    switch (static_cast<ConfigCommand>(q.ccmd)) {
      case ConfigCommand::kRead:
        break;
      case ConfigCommand::kTest:
        if (e.config_ != wanted) return;  // silence means "no match"
        break;
      case ConfigCommand::kTestPrefix:
        if (!std::string_view(e.config_).starts_with(wanted)) return;
        break;
      case ConfigCommand::kSet:
      case ConfigCommand::kForceSet:
        if (!e.network_may_configure()) {
          // The string is the export's, fixed at start (spec 3.2's error
          // for a string that may not be replaced).
          error = true;
          result.refused = true;
        } else if (q.ccmd == static_cast<uint8_t>(ConfigCommand::kForceSet)) {
          e.config_ = wanted;
        } else if (!e.config_.empty()) {  // spec 3.2: set only an empty string
          error = true;
        } else {
          e.config_ = wanted;
        }
        break;
    }
  }
  Header h = ResponseHeader(f.header, e);
  if (error) {
    h.flags |= kFlagError;
    h.error = static_cast<uint8_t>(AoeError::kConfigStringPresent);
    result.ata_error = true;
  }
  AppendConfigResponse(h, q.ccmd, e, sink.Next());
  result.disposition = Disposition::kAnswered;
}

void Target::AppendAnnouncements(const Mac& dst, ResponseSink& sink) {
  for (auto& e : exports_) {
    Header h;
    h.dst = dst;
    h.src = self_;
    h.flags = kFlagResponse;
    h.shelf = e->shelf();
    h.slot = e->slot();
    h.command = static_cast<uint8_t>(Command::kQueryConfig);
    AppendConfigResponse(h, static_cast<uint8_t>(ConfigCommand::kRead), *e, sink.Next());
  }
}

}  // namespace isoboot::aoe
