#pragma once
// The NBD server's decisions, without sockets: which replies an option gets
// during the handshake, and what to do with each transmission request of a
// read-only export. The server (server.h) reads the bytes, calls these and
// sends what they return. Pure; one Handshake per connection.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nbd/codec.h"

namespace isoboot::nbd {

// What a client learns about an export.
struct ExportInfo {
  std::string name;
  std::string description;
  uint64_t size = 0;
};

struct Limits {
  // Advertised with NBD_INFO_BLOCK_SIZE and enforced: a read longer than
  // max_block gets EINVAL (proto.md "Block size constraints").
  uint32_t min_block = 1;
  uint32_t preferred_block = 4096;
  uint32_t max_block = 32 * 1024 * 1024;
  // Option data over this is not read: the connection is closed (nbdkit's
  // limit is in the same spirit). GO and INFO need at most a 4096-byte name;
  // a metadata-context option with max_queries queries of 4096 bytes would
  // need more, but real queries ("base:allocation") are tens of bytes.
  uint32_t max_option_length = 64 * 1024;
  // Options per connection before the server gives up on the client.
  unsigned max_options = 64;
  // Queries in one NBD_OPT_{LIST,SET}_META_CONTEXT (more: NBD_REP_ERR_TOO_BIG;
  // clients send one or two).
  size_t max_queries = 16;
  // Descriptors in one block status reply; the client asks again for the
  // rest (proto.md lets a server return fewer than the range needs).
  size_t max_extents = 2048;
};

// The one metadata context (proto.md "The `base:` metadata namespace") and
// the id NBD_OPT_SET_META_CONTEXT gives it (any value; clients treat it as
// opaque).
constexpr char kBaseAllocation[] = "base:allocation";
constexpr uint32_t kBaseAllocationId = 1;

// The transmission flags every export gets: read-only data, so flush is a
// no-op that always succeeds, and many connections see the same bytes.
constexpr uint16_t kExportFlags =
    kFlagHasFlags | kFlagReadOnly | kFlagSendFlush | kFlagCanMultiConn;

// NBD_OPT_STARTTLS (proto.md "TLS support"). kOff is proto.md's NOTLS
// (STARTTLS gets NBD_REP_ERR_UNSUP), kOn lets the client choose (every export
// may be read either way), kRequire is FORCEDTLS: before TLS, every option
// but STARTTLS and ABORT gets NBD_REP_ERR_TLS_REQD and EXPORT_NAME closes.
enum class TlsMode {
  kOff,
  kOn,
  kRequire
};

class Handshake {
 public:
  // `exports` must outlive the Handshake. The empty name "" means
  // exports[0] unless an export is named "".
  Handshake(std::span<const ExportInfo> exports, Limits limits, TlsMode tls = TlsMode::kOff)
      : exports_(exports), limits_(limits), tls_mode_(tls) {}

  enum class Next {
    kContinue,  // send `reply`, read the next option
    kTransmit,  // send `reply`, then the transmission phase for `export_index`
    kClose,     // send `reply` (may be empty), then close
    kStartTls,  // send `reply` (in plaintext), then the TLS handshake; then
                // TlsStarted() and read the next option over TLS
  };
  struct Step {
    std::vector<uint8_t> reply;
    Next next = Next::kContinue;
    int export_index = -1;
    bool bad = false;  // the option was malformed or unknown (for counters)
    std::string note;  // why, for the log, when bad or closing
  };

  // After the greeting: the client's flags (already checked by
  // ParseClientFlags).
  void SetClientFlags(uint32_t flags) { no_zeroes_ = flags & kClientNoZeroes; }
  // An option whose header said `header.length` bytes; `data` holds them.
  // A length over max_option_length must not be read: call TooLong instead.
  Step OnOption(uint32_t option, std::span<const uint8_t> data);
  // An option whose data is over the limit (not read): closes.
  Step TooLong(const OptionHeader& header) const;

  // The TLS handshake after kStartTls succeeded. What was negotiated before
  // it (structured replies, a metadata context selection) is forgotten: it
  // was not protected.
  void TlsStarted() {
    tls_ = true;
    structured_ = false;
    meta_index_ = -1;
  }

  bool tls() const { return tls_; }
  bool structured() const { return structured_; }
  // After kTransmit: base:allocation was selected by the last
  // NBD_OPT_SET_META_CONTEXT, for the export transmission began with, so
  // NBD_CMD_BLOCK_STATUS may be used.
  bool block_status() const { return block_status_; }
  unsigned options_seen() const { return options_; }
  // The export index for `name`, or -1.
  int Find(const std::string& name) const;

 private:
  Step InfoOrGo(uint32_t option, std::span<const uint8_t> data);
  Step MetaContext(uint32_t option, std::span<const uint8_t> data);
  // Entering transmission for `index`: the selection counts only for the
  // export it was made for.
  void Enter(int index) { block_status_ = meta_index_ >= 0 && meta_index_ == index; }
  Step StartTls(std::span<const uint8_t> data);

  std::span<const ExportInfo> exports_;
  Limits limits_;
  TlsMode tls_mode_;
  bool tls_ = false;
  bool no_zeroes_ = false;
  bool structured_ = false;
  // The export the last NBD_OPT_SET_META_CONTEXT selected base:allocation
  // for, or -1 (none selected, or the last SET failed or selected nothing).
  int meta_index_ = -1;
  bool block_status_ = false;
  unsigned options_ = 0;
};

// What to do with one transmission request.
struct Decision {
  enum class Kind {
    kRead,         // send `length` bytes at `offset`
    kBlockStatus,  // send base:allocation for [offset, offset + length)
    kOk,           // reply success with no data (flush)
    kError,        // reply `error` (after skipping `skip` payload bytes)
    kDisconnect,   // NBD_CMD_DISC, or a request we cannot safely skip
  };
  Kind kind = Kind::kError;
  uint32_t error = 0;
  uint64_t skip = 0;  // payload bytes the client sends after the header
  bool bad = false;   // a malformed or refused request (for counters)
  std::string note;   // why, for the log
};
// `block_status`: Handshake::block_status() (else NBD_CMD_BLOCK_STATUS gets
// EINVAL, as proto.md advises).
Decision Decide(const Request& request, uint64_t export_size, const Limits& limits,
                bool block_status = false);

// A run of the export's bytes as the server found them on the host: a hole
// (reads as zeroes, not allocated) or data (or not known).
struct AllocationRun {
  uint64_t length = 0;
  bool hole = false;
  bool operator==(const AllocationRun&) const = default;
};
// The descriptors answering a block status `request` from `runs`, which
// start at request.offset: runs clipped to the request's length, adjacent
// runs of one status merged, zero-length runs dropped, at most
// `max_extents` descriptors (one with NBD_CMD_FLAG_REQ_ONE). Holes are
// NBD_STATE_HOLE | NBD_STATE_ZERO, data 0. Never empty: runs that cover
// nothing give one data descriptor of the request's length (status 0 is
// always true, proto.md). REQUIRES: request.length > 0 (Decide refuses 0).
std::vector<BlockDescriptor> BlockStatusDescriptors(const Request& request,
                                                    std::span<const AllocationRun> runs,
                                                    size_t max_extents);

}  // namespace isoboot::nbd
