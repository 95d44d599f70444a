#pragma once
// What `isoboot serve` answers at /status (and /), /status.json and
// /metrics: the nodes of a NodeTracker as a self-updating HTML page, as
// JSON, and with the servers' counters in the Prometheus text format
// (version 0.0.4). Pure text making: the daemon gathers the numbers.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve/node_tracker.h"

namespace isoboot::serve {

// The page: every node's row rendered on the server (it reads without
// JavaScript), then refreshed from /status.json every `refresh_ms` by a
// small inline script. No external assets. `title` is e.g. the image path.
std::string StatusHtml(const std::vector<NodeStatus>& nodes, int64_t now_ms, std::string_view title,
                       unsigned refresh_ms = 2000);

// Prometheus text exposition format 0.0.4, one metric family at a time:
//   MetricsText m;
//   m.Family("isoboot_tftp_requests_total", "counter", "TFTP read requests.");
//   m.Sample({}, 12);
//   m.Sample({{"reason", "busy"}}, 3);   // labels escaped here
class MetricsText {
 public:
  using Labels = std::vector<std::pair<std::string_view, std::string_view>>;
  // `type`: counter, gauge or info (written as gauge, value 1 by convention).
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(const Labels& labels, double value);
  void Sample(const Labels& labels, uint64_t value);
  const std::string& text() const { return text_; }

 private:
  void Name(const Labels& labels);
  std::string text_;
  std::string family_;
};

// The per-node part of /metrics: phase (one series per node, value = phase
// index, and a 0/1 series per phase name), bytes, stalled, and node counts
// per phase.
void NodeMetrics(MetricsText& m, const std::vector<NodeStatus>& nodes);

}  // namespace isoboot::serve
