#pragma once
// The AoE target's protocol logic, without sockets: given one received frame
// and the export table, write the response frame(s). The server owns the
// sockets and calls Handle from several worker threads at once: exports are
// immutable except their control state (config string, MAC mask list,
// reservation), which a mutex guards and which the ATA fast path reads only
// when it is non-empty.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "aoe/codec.h"
#include "aoe/device.h"

namespace isoboot::aoe {

// ATA status and error bits and the commands a disk answers here.
inline constexpr uint8_t kAtaStatusErr = 0x01;
inline constexpr uint8_t kAtaStatusDrdy = 0x40;
inline constexpr uint8_t kAtaErrorAbrt = 0x04;
inline constexpr uint8_t kAtaErrorIdnf = 0x10;
inline constexpr uint8_t kAtaReadSectors = 0x20;
inline constexpr uint8_t kAtaReadSectorsExt = 0x24;
inline constexpr uint8_t kAtaWriteSectors = 0x30;
inline constexpr uint8_t kAtaWriteSectorsExt = 0x34;
inline constexpr uint8_t kAtaCheckPowerMode = 0xE5;
inline constexpr uint8_t kAtaFlushCache = 0xE7;
inline constexpr uint8_t kAtaFlushCacheExt = 0xEA;
inline constexpr uint8_t kAtaIdentify = 0xEC;
inline constexpr uint16_t kFirmwareVersion = 0x0001;  // isoboot's AoE target, revision 1
inline constexpr size_t kMaxMaskEntries = 64;
inline constexpr size_t kMaxReservations = 64;

struct ExportOptions {
  uint16_t shelf = 0;
  uint8_t slot = 1;
  bool writable = false;
  std::string config_string;
  std::vector<Mac> allow_macs;  // initial MAC mask list; empty = everyone
  std::string serial;           // IDENTIFY serial number (20 characters max)
  // Whether initiators may change the export's control state: the config
  // string (Query Config set/force set), the MAC mask list (edit) and the
  // reservation (set/force set), as vblade lets them. Off, those are refused
  // with an error answer and reads of that state still work: one frame
  // from any MAC could otherwise lock every other initiator out.
  bool network_may_configure = true;
};

// One exported device: shelf.slot -> BlockDevice.
class Export {
 public:
  Export(ExportOptions options, std::unique_ptr<BlockDevice> device);
  Export(const Export&) = delete;
  Export& operator=(const Export&) = delete;

  uint16_t shelf() const { return options_.shelf; }
  uint8_t slot() const { return options_.slot; }
  bool writable() const { return options_.writable; }
  bool network_may_configure() const { return options_.network_may_configure; }
  uint64_t sectors() const { return sectors_; }
  BlockDevice& device() { return *device_; }
  const std::array<uint8_t, 512>& identify() const { return identify_; }

  // True if `mac` may use this export (MAC mask list empty or containing it).
  bool Allowed(const Mac& mac) const;
  // True if `mac` is blocked by another initiator's reservation.
  bool ReservedAgainst(const Mac& mac) const;

 private:
  friend class Target;
  ExportOptions options_;
  std::unique_ptr<BlockDevice> device_;
  uint64_t sectors_;
  std::array<uint8_t, 512> identify_{};

  mutable std::mutex mu_;
  std::atomic<bool> restricted_{false};  // mask or reservation non-empty
  std::string config_;                   // guarded by mu_
  std::vector<Mac> mask_;                // guarded by mu_
  std::vector<Mac> reserved_;            // guarded by mu_
};

// Builds the 512-byte IDENTIFY DEVICE block (ATA8-ACS words, strings
// byte-swapped per word as disks return them, word 255 checksum).
std::array<uint8_t, 512> BuildIdentify(uint64_t sectors, const std::string& serial,
                                       uint8_t max_sectors);

// Where Handle writes responses: each Next() returns an empty buffer that the
// caller sends after Handle returns. Buffers keep their capacity, so steady
// state does not allocate.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual std::vector<uint8_t>& Next() = 0;
};

enum class Disposition {
  kAnswered,   // one or more responses written
  kIgnored,    // valid, but not for us (other shelf, a response, masked out)
  kMalformed,  // rejected by the codec or inconsistent
  kBadSource,  // multicast or broadcast source MAC: dropped, never answered
  kNotForUs,   // addressed to another unicast or a multicast MAC: dropped
};

struct HandleResult {
  Disposition disposition = Disposition::kIgnored;
  bool ata_error = false;   // an ATA or AoE error was returned
  bool refused = false;     // a control change refused (network_may_configure off)
  Mac src{};                // the sender (valid once the Ethernet header parsed)
  uint64_t data_bytes = 0;  // sector bytes read or written
};

class Target {
 public:
  // `max_sectors` is how many 512-byte sectors fit in one frame at the
  // interface MTU; `buffer_count` is what Query Config advertises.
  Target(Mac self, uint8_t max_sectors, uint16_t buffer_count);
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  // Not thread-safe; call before serving.
  Export& AddExport(ExportOptions options, std::unique_ptr<BlockDevice> device);

  HandleResult Handle(std::span<const uint8_t> frame, ResponseSink& sink);

  // Unsolicited Query Config responses for every export, to `dst`
  // (broadcast to announce, or one initiator's MAC).
  void AppendAnnouncements(const Mac& dst, ResponseSink& sink);

  uint8_t max_sectors() const { return max_sectors_; }
  uint16_t buffer_count() const { return buffer_count_; }
  // Not thread-safe; the server calls it once its sockets know their buffers.
  void set_buffer_count(uint16_t n) { buffer_count_ = n; }
  const Mac& self() const { return self_; }
  const std::vector<std::unique_ptr<Export>>& exports() const { return exports_; }

  // Sectors that fit in one frame of the given MTU (capped at 255).
  static uint8_t SectorsForMtu(unsigned mtu);

 private:
  Header ResponseHeader(const Header& request, const Export& e) const;
  void AnswerConfig(const Frame& f, Export& e, ResponseSink& sink, HandleResult& result);
  void AnswerAta(const Frame& f, Export& e, ResponseSink& sink, HandleResult& result);
  void AnswerMask(const Frame& f, Export& e, ResponseSink& sink, HandleResult& result);
  void AnswerReserve(const Frame& f, Export& e, ResponseSink& sink, HandleResult& result);
  void AnswerError(const Frame& f, const Export& e, AoeError error, ResponseSink& sink,
                   HandleResult& result);
  void AppendConfigResponse(const Header& h, uint8_t ccmd, Export& e, std::vector<uint8_t>& out);

  Mac self_;
  uint8_t max_sectors_;
  uint16_t buffer_count_;
  std::vector<std::unique_ptr<Export>> exports_;
};

}  // namespace isoboot::aoe
