#pragma once
// Where each node is in its boot, for the status page, `isoboot status` and
// /metrics: what DHCP, TFTP, HTTP, AoE and NBD saw of one MAC, folded into
// one phase per node, the way an operator asks "which node is stuck where":
//
//   dhcp -> loader -> kernel -> initrd -> root -> up      (or failed: why)
//
// dhcp: a PXE request; loader: the NBP over TFTP or iPXE's script; kernel
// and initrd: those files; root: the first bytes of the root (AoE reads, an
// NBD connection, the squashfs or ISO over HTTP); up: the booted system
// said so (GET /up). Phases only move forward within one boot; a PXE
// request from a node that got past its loader starts its next boot. A
// node that is neither up nor failed and was served nothing new for
// stall_after is marked stalled.
//
// Bounded: at most `capacity` nodes (the least recently active is
// forgotten first), and a node not heard of for forget_after is dropped, so
// a network making up MACs costs a fixed amount of memory and the metrics'
// per-node series stay few.
//
// Thread-safe: every method may be called from any thread (the servers'
// hooks run on their own threads); each takes one short lock.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/lru_map.h"
#include "base/mac.h"

namespace isoboot::serve {

enum class Phase {
  kDhcp,
  kLoader,
  kKernel,
  kInitrd,
  kRoot,
  kUp,
  kFailed
};
std::string_view ToString(Phase phase);

struct NodeStatus {
  MacAddress mac{};
  std::string ip;        // the last IPv4 address it had; empty: none yet
  std::string firmware;  // "bios-pxe", "uefi-ipxe", ...; empty: not seen booting
  Phase phase = Phase::kDhcp;
  std::string failure;         // why, when phase is kFailed
  int64_t phase_since_ms = 0;  // Unix time (ms) it reached `phase`
  int64_t last_active_ms = 0;  // Unix time (ms) of its latest progress
  uint64_t bytes = 0;          // served to it in this boot, every protocol
  uint64_t boots = 0;          // boots seen since the server started
  bool relayed = false;        // its DHCP came through a relay agent
  bool stalled = false;        // no progress for stall_after, neither up nor failed
};

struct NodeTrackerOptions {
  size_t capacity = 4096;
  std::chrono::milliseconds stall_after{60'000};
  std::chrono::milliseconds forget_after{3'600'000};
};

class NodeTracker {
 public:
  // Unix time in milliseconds; tests pass their own clock.
  using Clock = std::function<int64_t()>;
  explicit NodeTracker(NodeTrackerOptions options = {}, Clock clock = {});

  // A DHCP DISCOVER or REQUEST (dhcp::ClientEvent). Only PXE clients (option
  // 60 PXEClient) become nodes; the others (an initrd's own DHCP, say) update
  // a node already known. `arch` is option 93 (0 BIOS, 6/7/9 UEFI, 11 arm64).
  void Dhcp(const MacAddress& mac, std::string_view ip, bool pxe, bool ipxe, uint16_t arch,
            bool relayed);
  // The node fetched what puts it in `phase` (a loader, its kernel, ...),
  // from `ip` (its address, when known).
  void Reached(const MacAddress& mac, Phase phase, std::string_view ip = {});
  // iPXE asked for its script: the loader phase, and the firmware runs iPXE.
  void IpxeScript(const MacAddress& mac, std::string_view ip = {});
  // Bytes served to the node (TFTP, HTTP, NBD).
  void AddBytes(const MacAddress& mac, uint64_t bytes);
  // The AoE target's running total for this MAC (since the server started):
  // what is new since the last call counts, and any new bytes mean root.
  void AoeTotal(const MacAddress& mac, uint64_t total);
  void Failed(const MacAddress& mac, std::string reason);
  void Up(const MacAddress& mac);

  // The MAC DHCP gave `ip` to, if it did.
  std::optional<MacAddress> MacFor(std::string_view ip) const;
  // For log lines: "52:54:00:12:34:56 (10.0.0.7)", or just the IP.
  std::string Name(std::string_view ip) const;

  // Every node known now, most recently active first; `stalled` is computed
  // for this moment, nodes past forget_after are left out (and dropped).
  std::vector<NodeStatus> Snapshot() const;
  const NodeTrackerOptions& options() const { return options_; }
  // Its clock's time now (Unix ms): what Snapshot's ages are measured from.
  int64_t Now() const { return clock_(); }

 private:
  struct Node {
    NodeStatus status;
    uint64_t aoe_total = 0;  // the last AoeTotal seen
  };
  // The node for `mac`, made when `create`; null when unknown and not made.
  Node* Touch(const MacAddress& mac, bool create);
  void Advance(Node& node, Phase phase, int64_t now);

  NodeTrackerOptions options_;
  Clock clock_;
  mutable std::mutex mu_;
  mutable LruMap<MacAddress, Node> nodes_;  // guarded by mu_
  LruMap<std::string, MacAddress> by_ip_;   // guarded by mu_
};

// Renders for the status page and `isoboot status --json` (one format).
std::string NodesJson(const std::vector<NodeStatus>& nodes, int64_t now_ms);

}  // namespace isoboot::serve
