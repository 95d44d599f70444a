#pragma once
// Per-client-MAC counters kept by each server worker without locks or
// allocation: a fixed open-addressing table owned by one worker thread, read
// (approximately) by the reporting thread through relaxed atomics. Its size
// is fixed (kSlots entries, then one shared overflow entry), whatever source
// MACs the network invents; frames from group (multicast) source MACs and
// frames for other targets get no entry, only a table-wide count.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>

#include "aoe/codec.h"

namespace isoboot::aoe {

struct ClientCounts {
  uint64_t frames = 0;      // frames received from the client
  uint64_t bytes = 0;       // bytes received plus bytes sent back
  uint64_t ata_errors = 0;  // ATA or AoE errors returned
  uint64_t dropped = 0;     // malformed frames dropped
  uint64_t refused = 0;     // control changes refused (ExportOptions::network_may_configure)
  ClientCounts& operator+=(const ClientCounts& o) {
    frames += o.frames;
    bytes += o.bytes;
    ata_errors += o.ata_errors;
    dropped += o.dropped;
    refused += o.refused;
    return *this;
  }
};

// Frames dropped before they are anyone's: not counted per client.
struct DropCounts {
  uint64_t bad_source = 0;  // multicast or broadcast source MAC
  uint64_t not_for_us = 0;  // destination neither this target nor broadcast
  DropCounts& operator+=(const DropCounts& o) {
    bad_source += o.bad_source;
    not_for_us += o.not_for_us;
    return *this;
  }
};

class ClientStats {
 public:
  static constexpr size_t kSlots = 1024;  // clients beyond this share slot "overflow"

  // Writer: the owning worker thread only.
  void Add(const Mac& mac, uint64_t bytes, bool ata_error, bool dropped, bool refused = false) {
    Slot& s = Find(mac);
    Bump(s.frames, 1);
    Bump(s.bytes, bytes);
    if (ata_error) Bump(s.ata_errors, 1);
    if (dropped) Bump(s.dropped, 1);
    if (refused) Bump(s.refused, 1);
  }
  void AddBadSource() { Bump(bad_source_, 1); }
  void AddNotForUs() { Bump(not_for_us_, 1); }

  // Reader: any thread. Adds this table's counts into `out`.
  void MergeInto(std::map<Mac, ClientCounts>& out) const {
    for (const Slot& s : slots_) {
      if (!s.used.load(std::memory_order_acquire)) continue;
      ClientCounts c{
          s.frames.load(std::memory_order_relaxed), s.bytes.load(std::memory_order_relaxed),
          s.ata_errors.load(std::memory_order_relaxed), s.dropped.load(std::memory_order_relaxed),
          s.refused.load(std::memory_order_relaxed)};
      out[s.mac] += c;
    }
    ClientCounts o{overflow_.frames.load(std::memory_order_relaxed),
                   overflow_.bytes.load(std::memory_order_relaxed),
                   overflow_.ata_errors.load(std::memory_order_relaxed),
                   overflow_.dropped.load(std::memory_order_relaxed),
                   overflow_.refused.load(std::memory_order_relaxed)};
    if (o.frames) out[kBroadcastMac] += o;
  }
  DropCounts Drops() const {
    return {bad_source_.load(std::memory_order_relaxed),
            not_for_us_.load(std::memory_order_relaxed)};
  }

 private:
  struct Slot {
    std::atomic<bool> used{false};
    Mac mac{};
    std::atomic<uint64_t> frames{0}, bytes{0}, ata_errors{0}, dropped{0}, refused{0};
  };
  // Single writer, so load+store (plain moves) suffice; no locked RMW.
  static void Bump(std::atomic<uint64_t>& a, uint64_t n) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  Slot& Find(const Mac& mac) {
    size_t h = 0;
    for (uint8_t b : mac)
      h = h * 131 + b;
    for (size_t probe = 0; probe < 16; ++probe) {
      Slot& s = slots_[(h + probe) % kSlots];
      if (!s.used.load(std::memory_order_relaxed)) {
        s.mac = mac;
        s.used.store(true, std::memory_order_release);
        return s;
      }
      if (s.mac == mac) return s;
    }
    return overflow_;
  }
  std::array<Slot, kSlots> slots_;
  Slot overflow_;
  std::atomic<uint64_t> bad_source_{0}, not_for_us_{0};
};

}  // namespace isoboot::aoe
