#include "aoe/initiator.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdexcept>

#include <fmt/format.h>

#include "aoe/target.h"

namespace isoboot::aoe {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kBatch = 64;
constexpr auto kRetransmitAfter = std::chrono::milliseconds(200);
constexpr unsigned kMaxTries = 25;  // ~5 s of silence before giving up

struct Work {
  uint8_t cmd = 0;
  uint64_t lba = 0;
  uint8_t count = 0;
};

std::string AtaString(std::span<const uint8_t> id, size_t word, size_t words) {
  std::string s;
  for (size_t i = 0; i < words * 2; ++i)
    s += static_cast<char>(id[word * 2 + (i ^ 1)]);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0'))
    s.pop_back();
  return s;
}

uint16_t Word(std::span<const uint8_t> id, size_t w) {
  return static_cast<uint16_t>(id[w * 2] | id[w * 2 + 1] << 8);
}

}  // namespace

// Keeps `slots.size()` requests outstanding: asks `next` for work when a slot
// is idle, retransmits what stays unanswered, hands answers to `done`.
struct Initiator::Engine {
  struct Slot {
    Mac src{};
    bool busy = false;
    uint32_t tag = 0;
    Work work;
    Clock::time_point sent;
    unsigned tries = 0;
    std::vector<uint8_t> frame;
  };
  using NextFn = std::function<bool(size_t slot, Work& work)>;
  using DoneFn = std::function<void(size_t slot, const Work& work, std::span<const uint8_t> data)>;

  Initiator& self;
  const TargetInfo& target;
  std::vector<Slot> slots;
  uint32_t seq = static_cast<uint32_t>(getpid());

  void Build(Slot& s, size_t index) {
    Header h;
    h.dst = target.mac;
    h.src = s.src;
    h.shelf = target.shelf;
    h.slot = target.slot;
    h.command = static_cast<uint8_t>(Command::kAta);
    h.tag = s.tag = (++seq << 16) | static_cast<uint32_t>(index);
    AtaMessage a;
    a.aflags = s.work.cmd == kAtaReadSectorsExt ? kAtaFlagExtended : 0;
    a.sector_count = s.work.count;
    a.cmd_status = s.work.cmd;
    a.lba = s.work.lba;
    s.frame.clear();
    AppendHeader(h, s.frame);
    AppendAta(a, s.frame);
    PadFrame(s.frame);
  }

  TransferStats Run(const NextFn& next, const DoneFn& done, double seconds) {
    TransferStats stats;
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(seconds > 0 ? seconds : 1e9));
    size_t frame_size = self.iface_.mtu + kEthernetHeaderSize + 64;
    std::vector<std::vector<uint8_t>> rx(kBatch, std::vector<uint8_t>(frame_size));
    std::vector<std::span<uint8_t>> rx_spans(rx.begin(), rx.end());
    std::vector<size_t> lens(kBatch);
    std::vector<std::span<const uint8_t>> out;
    while (true) {
      auto now = Clock::now();
      if (now >= deadline) break;
      out.clear();
      bool any_busy = false;
      for (size_t i = 0; i < slots.size(); ++i) {
        Slot& s = slots[i];
        if (!s.busy && next(i, s.work)) {
          Build(s, i);
          s.busy = true;
          s.tries = 1;
          s.sent = now;
          out.emplace_back(s.frame);
        } else if (s.busy && now - s.sent > kRetransmitAfter) {
          if (++s.tries > kMaxTries) {
            throw std::runtime_error(fmt::format("e{}.{} at {} stopped answering (lba {})",
                                                 target.shelf, target.slot, FormatMac(target.mac),
                                                 s.work.lba));
          }
          s.sent = now;
          ++stats.retransmits;
          out.emplace_back(s.frame);
        }
        any_busy |= s.busy;
      }
      if (!out.empty()) self.socket_->Send(out);
      if (!any_busy) break;
      size_t n = self.socket_->Receive(rx_spans, lens, 5);
      for (size_t k = 0; k < n; ++k) {
        auto f = Parse(std::span<const uint8_t>(rx[k].data(), lens[k]));
        if (!f) continue;
        const Header& h = f->header;
        if (!(h.flags & kFlagResponse) || h.src != target.mac ||
            h.command != static_cast<uint8_t>(Command::kAta) || h.shelf != target.shelf ||
            h.slot != target.slot) {
          continue;
        }
        size_t i = h.tag & 0xffff;
        if (i >= slots.size() || !slots[i].busy || slots[i].tag != h.tag) continue;
        Slot& s = slots[i];
        if ((h.flags & kFlagError) || (f->ata.cmd_status & kAtaStatusErr)) {
          throw std::runtime_error(fmt::format(
              "e{}.{}: error at lba {} (AoE error {}, ATA status {:#x} error {:#x})", target.shelf,
              target.slot, s.work.lba, h.error, f->ata.cmd_status, f->ata.err_feature));
        }
        size_t want = s.work.cmd == kAtaIdentify ? 512 : size_t{s.work.count} * 512;
        if (f->ata.data.size() < want) continue;  // runt: retransmit
        done(i, s.work, f->ata.data.first(want));
        s.busy = false;
        ++stats.requests;
        stats.bytes += s.work.cmd == kAtaIdentify ? 0 : want;
      }
    }
    stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return stats;
  }
};

Initiator::Initiator(const sys::InterfaceInfo& iface, bool promiscuous) : iface_(iface) {
  sys::PacketSocketOptions o;
  o.ethertype = kEtherType;
  o.promiscuous = promiscuous;
  o.receive_buffer = 8 << 20;
  o.batch = kBatch;
  socket_ = std::make_unique<sys::PacketSocket>(iface_, o);
}

Initiator::~Initiator() = default;

std::vector<TargetInfo> Initiator::Discover(uint16_t shelf, uint8_t slot, int wait_ms) {
  Frame q;
  q.header.dst = kBroadcastMac;
  q.header.src = iface_.mac;
  q.header.shelf = shelf;
  q.header.slot = slot;
  q.header.command = static_cast<uint8_t>(Command::kQueryConfig);
  q.header.tag = static_cast<uint32_t>(getpid());
  std::vector<uint8_t> frame;
  Append(q, frame);
  PadFrame(frame);
  socket_->SendOne(frame);

  std::vector<TargetInfo> found;
  std::vector<uint8_t> buf(iface_.mtu + 64);
  std::span<uint8_t> bufs[1] = {buf};
  size_t lens[1];
  auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  while (Clock::now() < deadline) {
    if (socket_->Receive(bufs, lens, 20) == 0) continue;
    auto f = Parse(std::span<const uint8_t>(buf.data(), lens[0]));
    if (!f) continue;
    const Header& h = f->header;
    if (!(h.flags & kFlagResponse) || (h.flags & kFlagError) ||
        h.command != static_cast<uint8_t>(Command::kQueryConfig)) {
      continue;
    }
    if ((shelf != kBroadcastShelf && h.shelf != shelf) ||
        (slot != kBroadcastSlot && h.slot != slot)) {
      continue;
    }
    bool dup = std::any_of(found.begin(), found.end(), [&](const TargetInfo& t) {
      return t.shelf == h.shelf && t.slot == h.slot && t.mac == h.src;
    });
    if (dup) continue;
    TargetInfo t;
    t.shelf = h.shelf;
    t.slot = h.slot;
    t.mac = h.src;
    t.buffer_count = f->config.buffer_count;
    t.firmware_version = f->config.firmware_version;
    t.max_sectors = f->config.sector_count;
    t.config.assign(f->config.config.begin(), f->config.config.end());
    found.push_back(t);
  }
  for (TargetInfo& t : found) {
    Engine e{*this, t, std::vector<Engine::Slot>(1)};
    e.slots[0].src = iface_.mac;
    bool asked = false;
    e.Run(
        [&](size_t, Work& w) {
          if (asked) return false;
          asked = true;
          w = {kAtaIdentify, 0, 1};
          return true;
        },
        [&](size_t, const Work&, std::span<const uint8_t> id) {
          t.sectors = (Word(id, 83) & 0x0400)
                          ? uint64_t{Word(id, 100)} | uint64_t{Word(id, 101)} << 16 |
                                uint64_t{Word(id, 102)} << 32 | uint64_t{Word(id, 103)} << 48
                          : uint64_t{Word(id, 60)} | uint64_t{Word(id, 61)} << 16;
          t.serial = AtaString(id, 10, 10);
          t.firmware = AtaString(id, 23, 4);
          t.model = AtaString(id, 27, 20);
        },
        0);
  }
  std::sort(found.begin(), found.end(), [](const TargetInfo& a, const TargetInfo& b) {
    return std::tie(a.shelf, a.slot, a.mac) < std::tie(b.shelf, b.slot, b.mac);
  });
  return found;
}

TransferStats Initiator::Read(const TargetInfo& t, int out_fd, unsigned window) {
  uint8_t per =
      std::min(t.max_sectors ? t.max_sectors : uint8_t{1}, Target::SectorsForMtu(iface_.mtu));
  Engine e{*this, t, std::vector<Engine::Slot>(std::max(window, 1u))};
  for (auto& s : e.slots)
    s.src = iface_.mac;
  uint64_t next_lba = 0, received = 0;
  auto stats = e.Run(
      [&](size_t, Work& w) {
        if (next_lba >= t.sectors) return false;
        uint8_t n = static_cast<uint8_t>(std::min<uint64_t>(per, t.sectors - next_lba));
        w = {kAtaReadSectorsExt, next_lba, n};
        next_lba += n;
        return true;
      },
      [&](size_t, const Work& w, std::span<const uint8_t> data) {
        size_t done = 0;
        while (done < data.size()) {
          ssize_t k = pwrite(out_fd, data.data() + done, data.size() - done,
                             static_cast<off_t>(w.lba * 512 + done));
          if (k <= 0) throw std::runtime_error("write failed");
          done += static_cast<size_t>(k);
        }
        received += w.count;
      },
      0);
  if (received != t.sectors) {
    throw std::runtime_error(
        fmt::format("read {} of {} sectors from e{}.{}", received, t.sectors, t.shelf, t.slot));
  }
  return stats;
}

TransferStats Initiator::Bench(const TargetInfo& t, unsigned clients, unsigned window,
                               double seconds) {
  clients = std::clamp(clients, 1u, 250u);
  window = std::max(window, 1u);
  uint8_t per =
      std::min(t.max_sectors ? t.max_sectors : uint8_t{1}, Target::SectorsForMtu(iface_.mtu));
  Engine e{*this, t, std::vector<Engine::Slot>(size_t{clients} * window)};
  uint64_t part = std::max<uint64_t>(t.sectors / clients, per);
  std::vector<uint64_t> cursor(clients);
  for (unsigned c = 0; c < clients; ++c) {
    cursor[c] = c * part;
    for (unsigned j = 0; j < window; ++j) {
      // Locally administered MACs, one per simulated client.
      e.slots[c * window + j].src = {0x02,
                                     0xb0,
                                     0x0e,
                                     static_cast<uint8_t>(getpid()),
                                     static_cast<uint8_t>(getpid() >> 8),
                                     static_cast<uint8_t>(c)};
    }
  }
  return e.Run(
      [&](size_t i, Work& w) {
        unsigned c = static_cast<unsigned>(i / window);
        uint64_t begin = c * part;
        if (cursor[c] + per > std::min(begin + part, t.sectors)) cursor[c] = begin;
        w = {kAtaReadSectorsExt, cursor[c], per};
        cursor[c] += per;
        return true;
      },
      [](size_t, const Work&, std::span<const uint8_t>) {}, seconds);
}

}  // namespace isoboot::aoe
