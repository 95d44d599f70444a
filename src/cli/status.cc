// `isoboot status [--server URL] [--json]`: where every node of a running
// `isoboot serve` is in its boot, read from its /status.json (the status
// page's data), as a table or as the JSON itself. Compiled with the bmc
// layer, whose HTTP client it uses.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "bmc/http_client.h"
#include "cli/command.h"

namespace isoboot::cli {
namespace {

struct StatusArgs {
  std::string server = "http://127.0.0.1:8080";
  bool json = false;
  long timeout_ms = 10'000;
};

int RunStatus(const StatusArgs& a) {
  std::string base = a.server;
  while (base.ends_with('/'))
    base.pop_back();
  bmc::HttpOptions ho;
  ho.timeout_ms = a.timeout_ms;
  ho.connect_timeout_ms = a.timeout_ms;
  bmc::HttpClient http(ho);
  bmc::HttpRequest req;
  req.method = "GET";
  req.url = base + "/status.json";
  bmc::HttpResponse r = OrThrow(http.Send(req), req.url);
  if (r.status != 200) {
    throw std::runtime_error(fmt::format("{}: HTTP {} (is it isoboot serve?)", req.url, r.status));
  }
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("nodes") || !j["nodes"].is_array()) {
    throw std::runtime_error(fmt::format("{}: not isoboot's status JSON", req.url));
  }
  if (a.json) {
    std::fputs(r.body.c_str(), stdout);
    return 0;
  }
  if (j["nodes"].empty()) {
    std::puts("no nodes seen yet");
    return 0;
  }
  fmt::print("{:<17}  {:<15}  {:<10}  {:<7}  {:>8}  {:>10}  {}\n", "MAC", "ADDRESS", "FIRMWARE",
             "PHASE", "SINCE", "BYTES", "");
  for (const auto& n : j["nodes"]) {
    std::string phase = n.value("phase", "?");
    std::string failure = n.value("failure", "");
    std::string mark = n.value("stalled", false)
                           ? fmt::format("STALLED (nothing for {} s)", n.value("idle_seconds", 0))
                           : "";
    if (!failure.empty()) mark = failure;
    fmt::print("{:<17}  {:<15}  {:<10}  {:<7}  {:>6} s  {:>10}  {}\n", n.value("mac", "?"),
               n.value("ip", ""), n.value("firmware", ""), phase, n.value("seconds_in_phase", 0),
               FormatSize(n.value("bytes", uint64_t{0})), mark);
  }
  return 0;
}

}  // namespace

void AddStatusCommand(CLI::App& app, Run& run) {
  auto a = std::make_shared<StatusArgs>();
  auto* status = app.add_subcommand(
      "status",
      "Show where every node of a running isoboot serve is in its boot (its status page as a "
      "table)");
  status->add_option("--server", a->server, "isoboot serve's HTTP base URL")->capture_default_str();
  status->add_flag("--json", a->json, "print the status JSON as served (/status.json)");
  status->callback([&run, a] { run = [a] { return RunStatus(*a); }; });
}

}  // namespace isoboot::cli
