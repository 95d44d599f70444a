#include "serve/node_tracker.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace isoboot::serve {
namespace {

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// RFC 4578 2.1 architecture types, as the status page names firmware.
std::string FirmwareOf(uint16_t arch) {
  switch (arch) {
    case 0:
      return "bios";
    case 6:
    case 7:
    case 9:
      return "uefi";
    case 0x0b:
      return "uefi-arm64";
    default:
      return fmt::format("arch{}", arch);
  }
}

std::string FormatUtc(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

std::string_view ToString(Phase phase) {
  switch (phase) {
    case Phase::kDhcp:
      return "dhcp";
    case Phase::kLoader:
      return "loader";
    case Phase::kKernel:
      return "kernel";
    case Phase::kInitrd:
      return "initrd";
    case Phase::kRoot:
      return "root";
    case Phase::kUp:
      return "up";
    case Phase::kFailed:
      return "failed";
  }
  return "?";
}

NodeTracker::NodeTracker(NodeTrackerOptions options, Clock clock)
    : options_(options),
      clock_(clock ? std::move(clock) : Clock(SystemNowMs)),
      nodes_(options.capacity),
      by_ip_(options.capacity) {}

NodeTracker::Node* NodeTracker::Touch(const MacAddress& mac, bool create) {
  if (Node* n = nodes_.Find(mac)) return n;
  if (!create) return nullptr;
  Node node;
  node.status.mac = mac;
  node.status.phase_since_ms = node.status.last_active_ms = clock_();
  node.status.boots = 1;
  return &nodes_.Put(mac, std::move(node));
}

void NodeTracker::Advance(Node& node, Phase phase, int64_t now) {
  NodeStatus& s = node.status;
  s.last_active_ms = now;
  // Forward only, within a boot; a failed node that gets further is moving
  // again (a retry worked).
  if (phase <= s.phase && s.phase != Phase::kFailed) return;
  s.phase = phase;
  s.phase_since_ms = now;
  s.failure.clear();
}

void NodeTracker::Dhcp(const MacAddress& mac, std::string_view ip, bool pxe, bool ipxe,
                       uint16_t arch, bool relayed) {
  std::lock_guard lock(mu_);
  if (!ip.empty() && ip != "0.0.0.0") by_ip_.Put(std::string(ip), mac);
  Node* n = Touch(mac, pxe);
  if (!n) return;
  NodeStatus& s = n->status;
  const int64_t now = clock_();
  if (!ip.empty() && ip != "0.0.0.0") s.ip = std::string(ip);
  if (!pxe) {
    s.last_active_ms = now;
    return;
  }
  // Past its loader (or up, or failed), a PXE request is the next boot.
  if (s.phase >= Phase::kKernel) {
    s.phase = Phase::kDhcp;
    s.phase_since_ms = now;
    s.failure.clear();
    s.bytes = 0;
    s.firmware.clear();
    ++s.boots;
  }
  std::string base = FirmwareOf(arch);
  if (s.firmware.empty() || !s.firmware.starts_with(base + "-")) s.firmware = base + "-pxe";
  if (ipxe) s.firmware = base + "-ipxe";
  s.relayed = relayed;
  s.last_active_ms = now;
}

void NodeTracker::Reached(const MacAddress& mac, Phase phase, std::string_view ip) {
  std::lock_guard lock(mu_);
  Node& n = *Touch(mac, true);
  if (!ip.empty()) n.status.ip = std::string(ip);
  Advance(n, phase, clock_());
}

void NodeTracker::IpxeScript(const MacAddress& mac, std::string_view ip) {
  std::lock_guard lock(mu_);
  Node& n = *Touch(mac, true);
  if (!ip.empty()) n.status.ip = std::string(ip);
  std::string& fw = n.status.firmware;
  if (fw.ends_with("-pxe")) fw.replace(fw.size() - 4, 4, "-ipxe");
  if (fw.empty()) fw = "ipxe";
  Advance(n, Phase::kLoader, clock_());
}

void NodeTracker::AddBytes(const MacAddress& mac, uint64_t bytes) {
  if (bytes == 0) return;
  std::lock_guard lock(mu_);
  Node* n = Touch(mac, false);
  if (!n) return;
  n->status.bytes += bytes;
  n->status.last_active_ms = clock_();
}

void NodeTracker::AoeTotal(const MacAddress& mac, uint64_t total) {
  std::lock_guard lock(mu_);
  Node* n = nodes_.Find(mac);
  if (!n && total == 0) return;
  if (!n) n = Touch(mac, true);
  // A restarted count (it never shrinks otherwise) counts from zero.
  const uint64_t fresh = total >= n->aoe_total ? total - n->aoe_total : total;
  n->aoe_total = total;
  if (fresh == 0) return;
  n->status.bytes += fresh;
  Advance(*n, Phase::kRoot, clock_());
}

void NodeTracker::Failed(const MacAddress& mac, std::string reason) {
  std::lock_guard lock(mu_);
  Node& n = *Touch(mac, true);
  const int64_t now = clock_();
  n.status.phase = Phase::kFailed;
  n.status.phase_since_ms = n.status.last_active_ms = now;
  n.status.failure = std::move(reason);
}

void NodeTracker::Up(const MacAddress& mac) {
  std::lock_guard lock(mu_);
  Advance(*Touch(mac, true), Phase::kUp, clock_());
}

std::optional<MacAddress> NodeTracker::MacFor(std::string_view ip) const {
  std::lock_guard lock(mu_);
  const MacAddress* mac = by_ip_.Peek(std::string(ip));
  if (!mac) return std::nullopt;
  return *mac;
}

std::string NodeTracker::Name(std::string_view ip) const {
  std::optional<MacAddress> mac = MacFor(ip);
  return mac ? fmt::format("{} ({})", FormatMac(*mac), ip) : std::string(ip);
}

std::vector<NodeStatus> NodeTracker::Snapshot() const {
  std::lock_guard lock(mu_);
  const int64_t now = clock_();
  const int64_t forget = options_.forget_after.count();
  nodes_.EraseIf(
      [&](const MacAddress&, const Node& n) { return now - n.status.last_active_ms > forget; });
  std::vector<NodeStatus> out;
  out.reserve(nodes_.size());
  for (const auto& [mac, node] : nodes_) {
    NodeStatus s = node.status;
    s.stalled = s.phase != Phase::kUp && s.phase != Phase::kFailed &&
                now - s.last_active_ms > options_.stall_after.count();
    out.push_back(std::move(s));
  }
  return out;
}

std::string NodesJson(const std::vector<NodeStatus>& nodes, int64_t now_ms) {
  nlohmann::json list = nlohmann::json::array();
  for (const NodeStatus& s : nodes) {
    list.push_back({
        {"mac", FormatMac(s.mac)},
        {"ip", s.ip},
        {"firmware", s.firmware},
        {"phase", ToString(s.phase)},
        {"failure", s.failure},
        {"since", FormatUtc(s.phase_since_ms)},
        {"seconds_in_phase", std::max<int64_t>(0, now_ms - s.phase_since_ms) / 1000},
        {"idle_seconds", std::max<int64_t>(0, now_ms - s.last_active_ms) / 1000},
        {"bytes", s.bytes},
        {"boots", s.boots},
        {"relayed", s.relayed},
        {"stalled", s.stalled},
    });
  }
  return nlohmann::json{{"nodes", std::move(list)}}.dump(1) + "\n";
}

}  // namespace isoboot::serve
