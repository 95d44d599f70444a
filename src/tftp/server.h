#pragma once
// The TFTP server: Boost.Asio event loops serving read requests for the
// current vfs::Tree, with one ephemeral UDP socket per transfer (its TID,
// RFC 1350) and one timer each, so hundreds of transfers share a thread. Each
// request, client packet and timer expiry is handed to a tftp::Transfer (the
// pure state machine); this file only does I/O and logging. Bad packets are
// dropped and counted.
//
// Threading: ServerConfig::threads event loops, each on its own thread with
// its own listening socket on the same port (SO_REUSEPORT: the kernel spreads
// the requests by source address and port, so a client's repeated request
// reaches the loop that serves it). A transfer lives on the loop that
// received its request; only admission (the limits below) and the table of
// running transfers are shared, under one mutex taken once per request, per
// first ACK and per finished transfer, never per block. Run() blocks the
// calling thread, which runs the first loop, and starts and joins the
// others; Stop() and stats() may be called from any thread. The tree
// provider and config.on_transfer are called on the loop threads, several at
// once when threads > 1: both must be thread-safe. The server touches no
// signals or other process-wide state.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/logging.h"
#include "tftp/protocol.h"
#include "vfs/vfs.h"

namespace isoboot::tftp {

// One finished request, for the log line and for the on_transfer hook.
struct TransferRecord {
  std::string client_address;  // "10.0.0.7"
  uint16_t client_port = 0;
  std::string filename;  // as the client asked: escape it (EscapeForLog) to log it
  Outcome outcome = Outcome::kRunning;
  std::string detail;         // may quote the client's ERROR text: escape it to log it
  bool acknowledged = false;  // the client ACKed something (false: maybe spoofed)
  uint64_t size = 0;          // of the file; 0 when not found
  uint64_t bytes = 0;         // acknowledged by the client
  double seconds = 0;
  uint32_t blksize = 0;
  uint32_t windowsize = 0;
  uint64_t retransmits = 0;
};

// Called on a loop thread after each request ends (found or not); with
// several loops, from several threads at once.
using TransferHook = std::function<void(const TransferRecord&)>;

struct ServerConfig {
  std::string address = "0.0.0.0";  // IPv4 or IPv6 literal
  uint16_t port = 69;               // 0 picks a free port (tests); see Server::port()
  TransferConfig transfer;          // transfer.limits.max_blksize: see BlksizeForMtu
  // Transfers in flight, and the share of one client IP address. A new
  // request beyond either displaces the oldest transfer (of that address,
  // for the share) that was never acknowledged; when there is none it gets
  // ERROR 0 "server busy". The share is 128 so that a rack behind one
  // address, or bench/tftp_bench.sh's 32 and 128 clients from one address,
  // still fit. Each transfer holds one file descriptor (its socket).
  size_t max_transfers = 2048;
  size_t max_transfers_per_client = 128;
  // Event loops (threads). 0: one per CPU, at most kMaxThreads. Lock-step
  // transfers spend most of their CPU in the kernel (each DATA wakes its
  // client), so one loop per CPU is what lets a boot storm use them all.
  unsigned threads = 0;
  static constexpr unsigned kMaxThreads = 16;
  // With a hook, the server logs each transfer at debug level only, leaving
  // the milestone line to the hook (e.g. with the client's MAC). May be empty.
  TransferHook on_transfer;
};

struct ServerStats {
  uint64_t requests = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;       // rejected, aborted, timed out, read errors
  uint64_t bad_packets = 0;  // unparsable or unexpected, dropped
  uint64_t duplicate_requests = 0;
  uint64_t busy = 0;            // refused: the table was full of acknowledged transfers
  uint64_t client_busy = 0;     // refused: the client's share was full of them
  uint64_t displaced = 0;       // never-acknowledged transfers ended for a new request
  uint64_t unacknowledged = 0;  // transfers that ended without any ACK (spoofed?)
  uint64_t no_socket = 0;       // requests answered from the listening socket
                                // because no transfer socket could be opened (EMFILE)
  uint64_t active = 0;
  unsigned threads = 0;  // event loops running (or to run)
};

class Server {
 public:
  // Returns the tree to serve a new request of `client` (its IP address)
  // from; called once per request, so a rebuilt image can be swapped in while
  // running transfers keep theirs, and a node can see files meant for it alone.
  // Called on the loop threads, concurrently when there are several.
  using TreeProvider = std::function<std::shared_ptr<const vfs::Tree>(std::string_view client)>;

  // Binds the listening socket now; throws std::system_error naming the
  // address if that fails (e.g. port 69 without CAP_NET_BIND_SERVICE).
  Server(ServerConfig config, TreeProvider trees, Logger logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (useful with port 0).
  uint16_t port() const;

  // Serves until Stop(); call once. Transfers still running when it returns
  // are dropped. An exception from a loop stops every loop and is rethrown
  // here.
  void Run();
  void Stop();
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace isoboot::tftp
