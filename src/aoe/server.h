#pragma once
// The AoE target's data plane: one AF_PACKET socket per worker thread in a
// PACKET_FANOUT group, frames received and sent in batches, responses built
// by Target into preallocated buffers (no allocation or logging per frame),
// per-client counters per worker. Run() blocks until Stop(), which (like
// AnnounceTo() and Stats()) may be called from any thread. The server never
// touches signals: the caller decides who takes them (cli/signals.h). A
// worker that fails (e.g. its interface was removed) stops the server and
// Run() throws its error.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aoe/announce_limiter.h"
#include "aoe/client_stats.h"
#include "aoe/target.h"
#include "base/logging.h"
#include "linux/packet_socket.h"

namespace isoboot::aoe {

struct ServerOptions {
  sys::InterfaceInfo iface;
  unsigned announce_seconds = 5;   // unsolicited Query Config period; 0 = never
  unsigned workers = 0;            // 0 = one per CPU
  std::string stats_file;          // rewritten every second and at exit, if set
  AnnounceLimits announce_limits;  // for AnnounceTo
};

class Server {
 public:
  // `target` must outlive the server. Opens the sockets (throws, naming a
  // missing CAP_NET_RAW) and sets the target's advertised buffer count.
  Server(Target& target, ServerOptions options, Logger logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Run();
  void Stop();
  // Sends every export's Query Config response to one initiator (e.g. when
  // DHCP saw it boot), so it need not wait for its next discovery. Rate
  // limited per MAC and overall (options.announce_limits), since what asks
  // for it may be spoofed; false if suppressed. A group MAC is refused.
  bool AnnounceTo(const Mac& mac);
  std::map<Mac, ClientCounts> Stats() const;
  DropCounts Drops() const;
  uint64_t AnnouncementsSuppressed() const;

 private:
  struct Worker;
  void WorkerLoop(Worker& w);
  void WriteStats() const;
  void SendAnnouncements(const Mac& dst);

  Target& target_;
  ServerOptions options_;
  Logger log_;
  std::atomic<bool> stop_{false};
  std::mutex stop_mu_;  // with stop_cv_: Run()'s control loop wakes at once on Stop()
  std::condition_variable stop_cv_;
  std::exception_ptr failure_;  // guarded by stop_mu_: a worker's, rethrown by Run()
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex announce_mu_;
  std::unique_ptr<sys::PacketSocket> announce_socket_;  // guarded by announce_mu_
  mutable std::mutex limiter_mu_;
  AnnounceLimiter limiter_;  // guarded by limiter_mu_
};

}  // namespace isoboot::aoe
