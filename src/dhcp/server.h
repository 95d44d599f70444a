#pragma once
// The DHCP/ProxyDHCP server: UDP port 67 (broadcast, bound to one interface)
// and the PXE port 4011, decoding with codec.h and deciding with protocol.h.
// Run() blocks in the calling thread until Stop(), which any thread may call.
// The on_client hook runs on the Run() thread and must not block for long.

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/log_throttle.h"
#include "base/logging.h"
#include "base/unique_fd.h"
#include "dhcp/protocol.h"

namespace isoboot::dhcp {

struct ServerConfig {
  ProtocolConfig protocol;  // with Mode::kOff, do not construct a Server at all
  // Interface the sockets are bound to (SO_BINDTODEVICE), so broadcasts go
  // out of the boot network. Empty: all interfaces (tests, single-NIC hosts).
  std::string interface;
  uint16_t server_port = 67;
  uint16_t client_port = 68;
  uint16_t proxy_port = 4011;  // 0: no PXE port
  // Full mode: leases are reloaded from here at start and rewritten
  // (atomically: tmp, fsync, rename, fsync of the directory) after changes.
  // Changes made while a write is in flight go into the next write together
  // (group commit), and an ACK is sent only once the lease it carries is on
  // disk. Empty: memory only, ACKs go out at once.
  std::string lease_file;
  // Called on the Run() thread for a DISCOVER or REQUEST from a client,
  // answered or not, so the AoE target can announce itself to that MAC at
  // once; never for INFORM, DECLINE or RELEASE. Rate: per MAC at most
  // kMaxReportsPerWindow (4) calls per kReportWindowSeconds (10 s), and a
  // repeat of the same (ip, is_pxe, ipxe) within that time is not reported
  // (protocol.h). The per-MAC count is kept for the kReportedMacs (4096) most
  // recently seen MACs. What is NOT bounded: the number of distinct MACs (and
  // ips) a sender can make up, so whatever the callee stores per MAC or per ip
  // it must bound itself (an LruMap), and `ip` is whatever the client claims
  // (its requested address or ciaddr, or the address we gave it).
  std::function<void(const ClientEvent& client)> on_client;
  // Why a client behind a router cannot boot what is served (e.g. the root is
  // exported over AoE, which is L2 only), logged with the client's MAC and
  // relay for relayed requests (at most one line per 10 s). Such clients are
  // still answered. Empty: relayed clients are fine.
  std::string relayed_problem;
};

struct ServerStats {
  uint64_t received = 0;
  uint64_t answered = 0;
  uint64_t dropped_bad = 0;   // failed to parse
  uint64_t ignored = 0;       // parsed, nothing to answer
  uint64_t no_range = 0;      // relayed, giaddr on no range's subnet (also in ignored)
  uint64_t relayed = 0;       // relayed requests answered
  uint64_t lease_writes = 0;  // lease file snapshots written (2 fsyncs each)
  uint64_t acks_held = 0;     // replies that waited for a lease write
  uint64_t acks_dropped = 0;  // held replies dropped (write failed, or too many)
  uint64_t leases = 0;        // full mode: leases held now, offered or bound
  uint64_t buffer_drops = 0;  // dropped by the kernel: the socket's receive buffer was full
};

class LeaseWriter;

class Server {
 public:
  // Opens and binds the sockets and loads the lease file. Throws
  // std::system_error / std::runtime_error naming what is missing.
  Server(ServerConfig config, Logger logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until Stop(). Throws std::system_error only if poll() itself
  // fails; bad packets and send errors are counted or logged, never thrown.
  void Run();
  void Stop();
  ServerStats stats() const;

 private:
  // A reply ready to go out, held while the lease it carries is written.
  struct Reply {
    uint64_t generation = 0;
    int fd = -1;
    bool proxy_port = false;
    sockaddr_in to{};
    std::vector<uint8_t> bytes;
    std::string note;
    std::string mac;
  };
  UniqueFd OpenSocket(uint16_t port) const;
  void HandlePacket(int fd, bool proxy_port);
  void Send(const Reply& reply);
  // Sends the held replies whose leases are on disk, drops those whose
  // write failed.
  void ReleaseHeld();

  ServerConfig config_;
  Logger logger_;
  Protocol protocol_;
  std::unique_ptr<LeaseWriter> lease_writer_;  // null: no lease file
  uint64_t generation_ = 0;                    // lease changes so far
  std::deque<Reply> held_;                     // oldest first
  std::atomic<uint64_t> acks_held_{0}, acks_dropped_{0};
  UniqueFd dhcp_fd_;
  UniqueFd proxy_fd_;
  UniqueFd wake_fd_;  // eventfd written by Stop()
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0}, answered_{0}, dropped_bad_{0}, ignored_{0};
  std::atomic<uint64_t> no_range_{0}, relayed_{0};
  std::atomic<uint64_t> leases_{0};  // protocol_.leases().size(), for stats()
  std::atomic<uint64_t> buffer_drops_{0};
  uint32_t overflow_seen_[2] = {};  // SO_RXQ_OVFL last read: server port, PXE port
  static constexpr int kReceiveBuffer = 4 << 20;
  LogThrottle no_range_log_;
  LogThrottle relayed_problem_log_;
};

}  // namespace isoboot::dhcp
