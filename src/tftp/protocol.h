#pragma once
// One TFTP read transfer as a pure state machine: the server feeds it the
// request, the client's packets and timer expiries, each with the current
// time, and sends the packets it returns; it never touches sockets or clocks,
// so tests drive it with fake time. File bytes come from a vfs::Source.
//
// Rules it follows: options answered with an OACK (only those understood,
// RFC 2347), DATA sent in windows (RFC 7440; windowsize 1 is RFC 1350
// lock-step), retransmission only on timeout with exponential backoff and a
// bounded retry count; a duplicate or stale ACK never triggers a send
// (Sorcerer's Apprentice, RFC 1123 4.2.3.1); block numbers wrap past 65535 to
// 0; a file that is an exact multiple of blksize ends with an empty block.
// Thread safety: none; one transfer is driven by one thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tftp/codec.h"
#include "vfs/vfs.h"

namespace isoboot::tftp {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct TransferConfig {
  Limits limits;
  // Retransmission timeout when the client did not ask for one; doubled on
  // every retry up to max_timeout.
  std::chrono::milliseconds initial_timeout{1000};
  std::chrono::milliseconds max_timeout{8000};
  // Retransmissions of the same window before giving up.
  int max_retries = 6;
  // netascii needs the whole converted file in memory; bigger files are refused.
  uint64_t max_netascii_size = 1u << 20;
  // A transfer with no ACK at all this long after the request is dropped.
  // Real clients answer the first OACK or DATA within a round trip (PXE ROMs,
  // iPXE, pxelinux: milliseconds); a request from a spoofed address never
  // does, so it holds its socket and slot for 10 s (the first answer and up
  // to 3 retransmissions, at 1, 3 and 7 s) instead of the retries' ~40 s.
  std::chrono::milliseconds first_ack_timeout{10'000};
  // A transfer still running this long after the request is abandoned, so a
  // client that ACKs just often enough cannot hold a session for days. One
  // hour lets a slow real client finish a large initrd: 1 GiB at 300 KB/s
  // (512-byte lock-step blocks at a 1.7 ms round trip), 5x the fastest
  // 200 MiB KIWI initrd over plain RFC 1350.
  std::chrono::milliseconds max_lifetime{3'600'000};
};

enum class Outcome {
  kRunning,
  kComplete,   // the client acknowledged the last block
  kRejected,   // an ERROR was sent at once (not found, WRQ, bad mode)
  kAborted,    // the client sent an ERROR (e.g. after a tsize probe)
  kTimedOut,   // retries exhausted
  kReadError,  // the source failed; an ERROR was sent
  kDisplaced,  // never acknowledged, and its slot went to a newer request
};

const char* OutcomeName(Outcome outcome);

class Transfer {
 public:
  // `source` is what the tree holds for the request, or null if nothing.
  // The first packets to send are in output() right after construction.
  Transfer(const Request& request, vfs::SourcePtr source, const TransferConfig& config,
           TimePoint now);
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // A packet from the client's TID. Replaces output().
  void OnPacket(const Packet& packet, TimePoint now);
  // The server lost the client (e.g. ICMP port unreachable): ends as kAborted.
  void Abandon(std::string why);
  // The server needs the slot of this never-acknowledged transfer for a new
  // request: ends as kDisplaced, sending nothing.
  void Displace(std::string why);
  // Call when now >= deadline(); earlier calls do nothing. Replaces output().
  void OnTimer(TimePoint now);

  // Packets to send now, in order (valid until the next call).
  std::span<const std::vector<uint8_t>> output() const { return {out_.data(), out_count_}; }
  // When OnTimer is due; nullopt once finished.
  std::optional<TimePoint> deadline() const;
  bool finished() const { return outcome_ != Outcome::kRunning; }
  Outcome outcome() const { return outcome_; }
  // Why it ended, for logs ("file not found", "client: ERROR 8 ...").
  const std::string& detail() const { return detail_; }

  const std::string& filename() const { return filename_; }
  uint64_t size() const { return size_; }
  // Bytes the client has acknowledged.
  uint64_t bytes_acked() const;
  const Negotiated& negotiated() const { return negotiated_; }
  uint64_t retransmits() const { return retransmits_; }
  uint64_t ignored_acks() const { return ignored_acks_; }
  // True once the client has acknowledged anything (the OACK or a block):
  // it then is a real client at that address, not a spoofed request.
  bool acknowledged() const { return acknowledged_; }

 private:
  void Start(const Request& request, TimePoint now);
  std::vector<uint8_t>& NextOut();
  // Sends ERROR `code` with `message` (also the detail) and ends as kRejected.
  void Reject(ErrorCode code, std::string message);
  // The source failed: drops what is queued, sends ERROR 0 "read error" and
  // ends as kReadError with `detail` (the source's error) for the log.
  void FailRead(std::string detail);
  void SendOack();
  void SendWindow(uint64_t first);
  // Fills `out` with the file's bytes at `offset`, from the read-ahead
  // buffer when it holds them; false (with `error`) if the source failed.
  bool ReadBlock(uint64_t offset, std::span<uint8_t> out, std::string& error);
  void Arm(TimePoint now);
  // The first-ACK or lifetime deadline, whichever comes first.
  TimePoint HardDeadline() const;

  TransferConfig config_;
  std::string filename_;
  vfs::SourcePtr source_;
  Negotiated negotiated_;
  uint64_t size_ = 0;
  uint64_t last_block_ = 0;  // absolute number of the final (short) block
  uint64_t acked_ = 0;       // highest absolute block acknowledged
  uint64_t sent_ = 0;        // highest absolute block sent
  bool oack_pending_ = false;
  bool acknowledged_ = false;
  int retries_ = 0;
  TimePoint started_{};
  std::chrono::milliseconds base_timeout_;
  std::chrono::milliseconds timeout_;
  TimePoint deadline_{};
  Outcome outcome_ = Outcome::kRunning;
  std::string detail_;
  uint64_t retransmits_ = 0;
  uint64_t ignored_acks_ = 0;
  std::vector<std::vector<uint8_t>> out_;
  size_t out_count_ = 0;
  // Read-ahead, once the client has acknowledged something: one Source::Read
  // (a pread of the image) per 32 KiB instead of one per block (22 blocks of
  // 1432 bytes). At most 32 KiB per transfer: 64 MiB if all 2048 slots of
  // the default limit were held by clients that answered.
  static constexpr size_t kReadAhead = 32 * 1024;
  std::vector<uint8_t> ahead_;
  uint64_t ahead_offset_ = 0;
  size_t ahead_len_ = 0;
};

}  // namespace isoboot::tftp
