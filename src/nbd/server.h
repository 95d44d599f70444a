#pragma once
// NBD server for read-only exports (fixed newstyle handshake; simple and
// structured replies; proto.md). Each export is a vfs::Source: a host file
// (`isoboot nbd export`) or a whole image (`isoboot serve`). Read data goes
// from the file to the socket with sendfile where the source is a file
// (vfs::Source::Contiguous); nothing holds an export's bytes in memory, and a
// connection buffers at most one request header and a few KiB.
//
// One thread per connection, blocking sockets: an NBD connection carries
// one client's requests in order (the server answers them in order), so a
// thread per connection costs no latency and lets sendfile block. Bounded:
// max_connections in all and max_connections_per_client per IP address
// (further connections are closed at accept and counted), a deadline for the
// whole handshake (slow or half-open clients are dropped), a send timeout
// (a client that stops reading is dropped).
//
// Threading: construct (binds and listens, so port() is known), then Run()
// on one thread; it blocks until Stop(), which (like Stats()) may be called
// from any thread. Run() returns once every connection thread has ended.
// The server touches no signals: its owner ignores SIGPIPE (sendfile has no
// MSG_NOSIGNAL, nor has OpenSSL's socket write; cli/signals.h).
//
// TLS (ServerOptions::tls, off by default): after NBD_OPT_STARTTLS the rest
// of the handshake and the transmission phase go over TLS (tls.h). The TLS
// handshake counts against handshake_timeout. Reads over TLS go through a
// bounded buffer (the source's Read, then SSL_write): no sendfile.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/logging.h"
#include "base/unique_fd.h"
#include "nbd/protocol.h"
#include "vfs/vfs.h"

namespace isoboot::nbd {

class TlsContext;

struct Export {
  std::string name;  // "" is allowed; exports[0] also answers to ""
  std::string description;
  vfs::SourcePtr source;  // read-only; its size is the export's
  // When set, a connection reads what this returns at the end of its
  // handshake instead (isoboot serve: the newest image), so new clients get
  // a rebuilt image while connected ones keep theirs. A result of another
  // size than `source` (or null) is not used: clients were told that size.
  // Called on connection threads, concurrently.
  std::function<vfs::SourcePtr()> current;
};

struct ServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 10809;  // 0: the kernel picks one (see Server::port())
  size_t max_connections = 1024;
  size_t max_connections_per_client = 64;
  // From accept to the end of the handshake (NBD_OPT_GO or EXPORT_NAME).
  std::chrono::milliseconds handshake_timeout{10'000};
  // A reply the client does not take for this long drops the connection.
  std::chrono::milliseconds send_timeout{60'000};
  Limits limits;
  // kOn or kRequire need tls_context (TlsContext::Load).
  TlsMode tls = TlsMode::kOff;
  std::shared_ptr<const TlsContext> tls_context;
  // Called with the client's IP address for each admitted connection, on
  // that connection's thread, before its handshake. May be empty.
  std::function<void(std::string_view ip)> on_connect;
};

// Since the server started.
struct ServerStats {
  uint64_t connections = 0;         // accepted and admitted
  uint64_t active = 0;              // open right now
  uint64_t refused_full = 0;        // closed at accept: max_connections open
  uint64_t refused_per_client = 0;  // closed at accept: the client's share open
  uint64_t handshake_failures = 0;  // cut short, not fixed newstyle, bad framing
  uint64_t handshake_timeouts = 0;  // handshake deadline passed
  uint64_t bad_options = 0;         // unknown, malformed or too long options
  uint64_t bad_requests = 0;        // refused commands (writes, past the end, unknown)
  uint64_t protocol_errors = 0;     // bad request magic, cut short mid-request
  uint64_t requests = 0;            // transmission requests answered
  uint64_t bytes_read = 0;          // export bytes sent
  uint64_t read_errors = 0;         // the source failed while reading
  uint64_t accept_errors = 0;       // accept() failed (EMFILE, ...)

  // With TLS on (ServerOptions::tls).
  uint64_t tls_sessions = 0;            // TLS handshakes completed
  uint64_t tls_handshake_failures = 0;  // failed or timed out (also bad bytes after STARTTLS)
};

class Server {
 public:
  // Binds and listens. Throws std::system_error when the address cannot be
  // bound, std::invalid_argument without exports, with duplicate names or
  // with TLS on and no tls_context.
  Server(std::vector<Export> exports, ServerOptions options, Logger logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const { return port_; }
  void Run();
  void Stop();
  ServerStats Stats() const;

 private:
  struct Counters;
  class Connection;
  void Serve(UniqueFd fd, std::string ip, std::string peer, uint64_t id);
  bool Admit(const std::string& client);
  void Release(const std::string& client);
  void ReapFinished();

  const std::vector<Export> exports_;
  std::vector<ExportInfo> infos_;
  const ServerOptions options_;
  const Logger log_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;  // eventfd: Stop() wakes the accept loop
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::unique_ptr<Counters> counters_;

  std::mutex mu_;
  std::map<std::string, size_t> per_client_;  // guarded by mu_
  std::map<uint64_t, int> open_sockets_;      // guarded by mu_: id -> fd, for Stop()
  std::map<uint64_t, std::thread> threads_;   // guarded by mu_
  std::vector<uint64_t> finished_;            // guarded by mu_: threads to join
};

}  // namespace isoboot::nbd
