#include "bmc/fleet.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include <fmt/format.h>

#include "base/strings.h"

namespace isoboot::bmc {

Result<std::vector<FleetHost>> ParseHostFile(std::string_view text) {
  std::vector<FleetHost> hosts;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    line = Trim(line.substr(0, line.find('#')), " \t\r");
    if (line.empty()) continue;
    FleetHost h;
    size_t end = line.find_first_of(" \t");
    h.host = std::string(line.substr(0, end));
    line = end == std::string_view::npos ? std::string_view() : Trim(line.substr(end), " \t");
    if (!line.empty()) {
      end = line.find_first_of(" \t");
      std::string_view mac = line.substr(0, end);
      h.mac = ParseMac(mac);
      if (!h.mac) {
        return MakeError(fmt::format("line {}: {} is not a MAC address (HOST [MAC [KERNEL-ARGS]])",
                                     number, mac));
      }
      line = end == std::string_view::npos ? std::string_view() : Trim(line.substr(end), " \t");
      h.kernel_args = std::string(line);
    }
    hosts.push_back(std::move(h));
  }
  return hosts;
}
namespace {

using nlohmann::json;

std::string Bytes(uint64_t n) {
  if (n < (1u << 20)) return fmt::format("{} bytes", n);
  if (n < (10u << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  return fmt::format("{} MiB", n >> 20);
}

HostResult RunHost(const std::string& host, size_t index, const HostAction& action,
                   const FleetOptions& o) {
  auto report = [&](const std::string& state) {
    if (o.progress) o.progress(index, state);
  };
  HostResult r;
  r.host = host;
  try {
    if (o.stop.stop_requested()) throw Interrupted();
    r.fields = action(host, report);
    if (!r.fields.is_object()) r.fields = json::object();
    r.ok = true;
    report("done");
  } catch (const BmcError& e) {
    r.failure = e.failure();
    r.error = e.what();
  } catch (const std::exception& e) {
    r.failure = Failure::kInternal;
    r.error = e.what();
  }
  if (!r.ok) report("failed: " + r.error);
  return r;
}

}  // namespace

std::vector<HostResult> RunFleet(const std::vector<std::string>& hosts, const HostAction& action,
                                 const FleetOptions& options) {
  std::vector<HostResult> results(hosts.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < hosts.size();) {
      results[i] = RunHost(hosts[i], i, action, options);
    }
  };
  {
    size_t n = std::min(hosts.size(), std::max<size_t>(1, options.parallel));
    std::vector<std::jthread> workers;
    for (size_t w = 0; w < n; ++w)
      workers.emplace_back(work);
  }  // joins the workers
  return results;
}

int ExitCode(const std::vector<HostResult>& results) {
  for (const auto& r : results) {
    if (r.ok) continue;
    return results.size() == 1 ? static_cast<int>(r.failure)
                               : static_cast<int>(Failure::kSomeHostsFailed);
  }
  return 0;
}

json ResultJson(const HostResult& r, std::string_view action) {
  json j = r.fields;
  j["host"] = r.host;
  j["action"] = action;
  j["ok"] = r.ok;
  j["exit_code"] = r.ok ? 0 : static_cast<int>(r.failure);
  if (!r.ok) {
    j["error"] = r.error;
    j["failure"] = std::string(FailureName(r.failure));
  }
  return j;
}

void PullMeter::Add(Clock::time_point now, const PullCounters& c) {
  if (window_.empty() || c.bytes < last_.bytes) {
    // The first sample, or the server forgot this client: start over.
    window_.clear();
    last_byte_at_ = now;
  } else if (c.bytes > last_.bytes) {
    last_byte_at_ = now;
  }
  last_ = c;
  window_.push_back({now, c.bytes});
  // Keep one sample at or before the window's start, so the rate spans it.
  while (window_.size() > 2 && window_[1].at <= now - kWindow)
    window_.pop_front();
}

std::optional<double> PullMeter::Rate() const {
  if (window_.size() < 2) return std::nullopt;
  std::chrono::duration<double> span = window_.back().at - window_.front().at;
  if (span < std::chrono::seconds(1)) return std::nullopt;
  return static_cast<double>(window_.back().bytes - window_.front().bytes) / span.count();
}

std::optional<std::chrono::seconds> PullMeter::Quiet() const {
  if (window_.empty()) return std::nullopt;
  auto quiet = std::chrono::duration_cast<std::chrono::seconds>(window_.back().at - last_byte_at_);
  if (quiet < kQuietAfter) return std::nullopt;
  return quiet;
}

std::string PullMeter::Describe() const {
  if (window_.empty()) return "";
  std::string text = fmt::format("{} pulled in {} request{}", Bytes(last_.bytes), last_.requests,
                                 last_.requests == 1 ? "" : "s");
  if (auto quiet = Quiet()) return text + fmt::format(", quiet for {} s", quiet->count());
  if (auto rate = Rate()) {
    text += *rate < (1 << 20) ? fmt::format(", {:.0f} KiB/s", *rate / 1024)
                              : fmt::format(", {:.1f} MiB/s", *rate / (1 << 20));
  }
  return text;
}

ProgressBoard::ProgressBoard(std::vector<std::string> hosts, Options options)
    : hosts_(std::move(hosts)),
      options_(std::move(options)),
      states_(hosts_.size(), "waiting"),
      lines_(hosts_.size(), "waiting"),
      meters_(hosts_.size()),
      printed_(hosts_.size()) {
  if (options_.redraw && !options_.quiet) {
    for (const auto& h : hosts_)
      fmt::print(options_.out, "{}: waiting\n", h);
  }
}

void ProgressBoard::Set(size_t host, const std::string& state) {
  std::lock_guard lock(mu_);
  bool changed = states_[host] != state;
  states_[host] = state;
  Show(host, changed);
}

void ProgressBoard::Refresh() {
  if (!options_.pulled) return;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < hosts_.size(); ++i)
    Show(i, false);
}

void ProgressBoard::Show(size_t host, bool state_changed) {
  auto now = options_.now ? options_.now() : PullMeter::Clock::now();
  std::string text = states_[host];
  if (options_.pulled) {
    if (auto counters = options_.pulled(hosts_[host])) {
      meters_[host].Add(now, *counters);
      text += " (" + meters_[host].Describe() + ")";
    }
  }
  if (lines_[host] == text) return;
  // A log, not a screen: a line per state, and the counters now and then
  // for a host with a line (lines_ then holds what was printed last).
  bool append = !options_.redraw && !options_.quiet;
  if (append && !state_changed && (!printed_[host] || now - *printed_[host] < kAppendEvery)) {
    return;
  }
  lines_[host] = text;
  if (options_.quiet) return;
  if (append) {
    printed_[host] = now;
    fmt::print(options_.out, "{}: {}\n", hosts_[host], text);
    return;
  }
  fmt::print(options_.out, "\x1b[{}A", hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i)
    fmt::print(options_.out, "\x1b[2K{}: {}\n", hosts_[i], lines_[i]);
}

}  // namespace isoboot::bmc
