#pragma once
// One action over many BMCs (`isoboot bmc ... --bmc-file`): RunFleet drives
// the hosts in parallel and collects one result per host; ProgressBoard shows
// one line per host while it runs. The runner knows nothing of Redfish: the
// action is a function (BmcClient in the CLI, a fake in tests).
//
// Threading: RunFleet calls the action on threads of its own and returns
// after joining them. ProgressBoard::Set may be called from any thread.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bmc/client.h"
#include "bmc/errors.h"

namespace isoboot::bmc {

// One host's work, on a worker thread. Returns what the host's result should
// carry (e.g. {"vendor": ...}); throws BmcError (or any exception) to fail
// this host alone. `progress` reports short states ("inserting", ...).
using HostAction =
    std::function<nlohmann::json(const std::string& host, const ProgressFn& progress)>;

struct HostResult {
  std::string host;
  bool ok = false;
  Failure failure = Failure::kInternal;              // when !ok
  std::string error;                                 // when !ok: one line
  nlohmann::json fields = nlohmann::json::object();  // the action's return value
};

struct FleetOptions {
  size_t parallel = 16;  // hosts driven at once; 0 counts as 1
  // Once stop is requested no further host starts: those fail with
  // Interrupted() without running. A running action sees the stop through
  // its own token (ClientOptions::stop).
  std::stop_token stop;
  // Each host's states by index into `hosts`: the action's, then "done" or
  // "failed: <error>". Called from the worker threads.
  std::function<void(size_t host, const std::string& state)> progress;
};

// Runs `action` once for every entry of `hosts`; the results are in the order
// of `hosts`, whatever order the hosts finished in.
std::vector<HostResult> RunFleet(const std::vector<std::string>& hosts, const HostAction& action,
                                 const FleetOptions& options);

// The command's exit code (docs/bmc.md): 0 when every host succeeded, else
// the failure of a single host, or kSomeHostsFailed for several hosts.
int ExitCode(const std::vector<HostResult>& results);

// A result as --json prints it: host, action, ok, exit_code, the action's
// fields, and error and failure (its name) for a failed host.
nlohmann::json ResultJson(const HostResult& result, std::string_view action);

// Bytes `host` has pulled from isoboot's own HTTP server, when known.
using PulledBytesFn = std::function<std::optional<uint64_t>(const std::string& host)>;

// One line per host, "HOST: STATE": redrawn in place (ANSI cursor moves) on a
// terminal, else appended whenever a host's line changes.
class ProgressBoard {
 public:
  struct Options {
    std::FILE* out = stderr;  // must outlive the board
    bool redraw = false;      // a terminal: rewrite all lines in place
    bool quiet = false;       // print nothing
    PulledBytesFn pulled;     // when set, lines show the bytes each host pulled
  };
  ProgressBoard(std::vector<std::string> hosts, Options options);
  ProgressBoard(const ProgressBoard&) = delete;
  ProgressBoard& operator=(const ProgressBoard&) = delete;

  // `host` indexes the hosts given to the constructor.
  void Set(size_t host, const std::string& state);

 private:
  const std::vector<std::string> hosts_;
  const Options options_;
  std::mutex mu_;
  std::vector<std::string> lines_;  // guarded by mu_
};

}  // namespace isoboot::bmc
