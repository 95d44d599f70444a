#pragma once
// HTTP/1.1 server for the vfs tree: GET and HEAD, byte ranges (single and
// multipart/byteranges), If-Range, ETag/Last-Modified, keep-alive, and file
// bytes sent zero-copy with sendfile from the image's extents. Built for
// many slow clients (BMCs pulling an ISO, iPXE fetching kernel and initrd):
// one Asio event loop per thread (`threads`), connections handed to the
// loops in turn; every connection is bounded in header size and in time
// (slowloris clients are dropped).
// Optionally a writable store under one path prefix (PUT, streamed to disk
// by a StoreHandler: the overlay backups of `isoboot serve`).
// Boost.Beast/Asio stay inside server.cc (compile time, pimpl).
//
// Threading: construct, then call Run() on one thread; it blocks until
// Stop(), which (like Counters()) may be called from any thread. Destroy the
// Server only after Run() has returned. The tree provider and
// options.on_request are called on the server's threads, concurrently when
// threads > 1. The server touches no signals: its owner ignores SIGPIPE
// (sendfile has no MSG_NOSIGNAL; see cli/signals.h).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/logging.h"
#include "http/response.h"
#include "http/store.h"
#include "vfs/vfs.h"

namespace isoboot::http {

// One finished (or aborted) response, for access logs and boot milestones.
struct RequestRecord {
  std::string client;  // IP address of the peer
  // method and path are the client's text: escape them (EscapeForLog) to log
  // them; a decoded path may hold any byte, "%0a" a newline.
  std::string method;  // "-" when the request head did not parse
  std::string path;    // decoded path, without the query
  unsigned status = 0;
  uint64_t content_length = 0;
  uint64_t bytes = 0;     // body bytes actually sent
  uint64_t received = 0;  // request body bytes taken in (uploads to the store)
  double seconds = 0;     // from the complete request head to the last byte
  bool complete = false;  // all content_length body bytes were sent
};

using RequestHook = std::function<void(const RequestRecord&)>;

struct ServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 80;  // 0: the kernel picks one (see Server::port())
  unsigned threads = 1;
  // Request line plus header fields; larger heads get 431 and a close.
  size_t header_limit = 8 * 1024;
  // A request head must arrive completely within this time after the
  // previous response (or the connect); it also bounds idle keep-alive.
  std::chrono::milliseconds request_timeout{30'000};
  // A client that accepts no body bytes for this long is dropped.
  std::chrono::milliseconds send_timeout{60'000};
  // Connections over this are closed right after accept. Each holds one
  // file descriptor: see sys::CheckFileLimit (linux/file_limit.h).
  size_t max_connections = 4096;
  // Connections open from one client IP address; a new one over this is
  // closed right after accept, so one host cannot take every connection.
  // 128: twice what bench/http_bench.sh opens from loopback (wrk -c 64); a
  // BMC or an iPXE client uses one or two.
  size_t max_connections_per_client = 128;
  // Paths under store_prefix go to `store` (GET/HEAD/PUT; http/store.h)
  // rather than the tree. No store: everything is read-only.
  std::shared_ptr<StoreHandler> store;
  std::string store_prefix = "/overlay/";
  // Called after each response ends (finished or aborted), on a server
  // thread, concurrently when threads > 1. May be empty.
  RequestHook on_request;
  // Pages made per request (`isoboot serve`'s status page and metrics, or a
  // refusal), asked before the tree for every GET and HEAD with the decoded
  // path, the raw query ("" when none) and the client's IP address;
  // nullopt: the tree answers. Called on a server
  // thread, concurrently when threads > 1; it must not block. May be empty.
  std::function<std::optional<Page>(const std::string& path, std::string_view query,
                                    std::string_view client)>
      pages;
};

// Per client IP address, since the server started.
struct ClientCounters {
  uint64_t body_bytes = 0;   // response body bytes sent, counted as they go (not pages')
  uint64_t requests = 0;     // responses finished or aborted
  uint32_t connections = 0;  // open right now
};

// Since the server started.
struct ServerStats {
  uint64_t accept_errors = 0;       // accept() failed (EMFILE, ENFILE, ...); retried after 100 ms
  uint64_t refused_full = 0;        // closed at once: max_connections were open
  uint64_t refused_per_client = 0;  // closed at once: the client's share was open
};

class ServerCore;

class Server {
 public:
  // The tree to answer one request of `client` (its IP address) from.
  using TreeProvider = std::function<std::shared_ptr<const vfs::Tree>(std::string_view client)>;

  // Binds and listens at once (so port() is known before Run()). `tree` is
  // asked for the client's current tree on every request, so a rebuilt
  // image can be swapped in and a node can see files meant for it alone;
  // responses in flight keep the Sources they started with.
  // Throws std::system_error when the address cannot be bound.
  Server(TreeProvider tree, ServerOptions options, Logger logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the chosen one when options.port was 0).
  uint16_t port() const;

  void Run();
  void Stop();

  // A snapshot of the per-client counters, keyed by IP address.
  std::map<std::string, ClientCounters> Counters() const;
  ClientCounters CountersFor(std::string_view ip) const;
  ServerStats Stats() const;

 private:
  std::unique_ptr<ServerCore> core_;
};

}  // namespace isoboot::http
