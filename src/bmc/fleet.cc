#include "bmc/fleet.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include <fmt/format.h>

namespace isoboot::bmc {
namespace {

using nlohmann::json;

std::string Bytes(uint64_t n) {
  return n < (16u << 20) ? fmt::format("{} bytes", n) : fmt::format("{} MiB", n >> 20);
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

ProgressBoard::ProgressBoard(std::vector<std::string> hosts, Options options)
    : hosts_(std::move(hosts)), options_(std::move(options)), lines_(hosts_.size(), "waiting") {
  if (options_.redraw && !options_.quiet) {
    for (const auto& h : hosts_)
      fmt::print(options_.out, "{}: waiting\n", h);
  }
}

void ProgressBoard::Set(size_t host, const std::string& state) {
  std::string text = state;
  if (options_.pulled) {
    if (auto bytes = options_.pulled(hosts_[host])) {
      text += fmt::format(" ({} pulled)", Bytes(*bytes));
    }
  }
  std::lock_guard lock(mu_);
  if (lines_[host] == text) return;
  lines_[host] = text;
  if (options_.quiet) return;
  if (!options_.redraw) {
    fmt::print(options_.out, "{}: {}\n", hosts_[host], text);
    return;
  }
  fmt::print(options_.out, "\x1b[{}A", hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i)
    fmt::print(options_.out, "\x1b[2K{}: {}\n", hosts_[i], lines_[i]);
}

}  // namespace isoboot::bmc
