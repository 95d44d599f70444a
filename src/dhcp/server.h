#pragma once
// The DHCP/ProxyDHCP server: UDP port 67 (broadcast, bound to one interface)
// and the PXE port 4011, decoding with codec.h and deciding with protocol.h.
// Run() blocks in the calling thread until Stop(), which any thread may call.
// The on_client hook runs on the Run() thread and must not block for long.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

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
  // Full mode: leases are reloaded from here at start and rewritten (atomically)
  // after each change. Empty: memory only.
  std::string lease_file;
  // Called for every DISCOVER/REQUEST/INFORM from a client, answered or not,
  // so the AoE target can announce itself to that MAC at once.
  std::function<void(const MacAddress& mac, Ip4 ip, bool is_pxe)> on_client;
};

struct ServerStats {
  uint64_t received = 0;
  uint64_t answered = 0;
  uint64_t dropped_bad = 0;  // failed to parse
  uint64_t ignored = 0;      // parsed, nothing to answer
};

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
  UniqueFd OpenSocket(uint16_t port) const;
  void HandlePacket(int fd, bool proxy_port);
  void SaveLeases();

  ServerConfig config_;
  Logger logger_;
  Protocol protocol_;
  UniqueFd dhcp_fd_;
  UniqueFd proxy_fd_;
  UniqueFd wake_fd_;  // eventfd written by Stop()
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0}, answered_{0}, dropped_bad_{0}, ignored_{0};
};

}  // namespace isoboot::dhcp
