#pragma once
// One action over many BMCs (`isoboot bmc ... --bmc-file`): RunFleet drives
// the hosts in parallel and collects one result per host; ProgressBoard shows
// one line per host while it runs. The runner knows nothing of Redfish: the
// action is a function (BmcClient in the CLI, a fake in tests).
//
// Threading: RunFleet calls the action on threads of its own and returns
// after joining them. ProgressBoard::Set and Refresh may be called from any
// thread.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/mac.h"
#include "base/result.h"
#include "bmc/client.h"
#include "bmc/errors.h"

namespace isoboot::bmc {

// One line of a --bmc-file: "HOST [MAC [KERNEL-ARGS...]]", '#' starting a
// comment. A host with a MAC boots its own node image with `--serve`
// (docs/bmc.md), with those arguments.
struct FleetHost {
  std::string host;
  std::optional<MacAddress> mac;
  std::string kernel_args;
};

// The hosts of a --bmc-file's text; errors name the line.
Result<std::vector<FleetHost>> ParseHostFile(std::string_view text);

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

// What one host has pulled from isoboot's own HTTP server.
struct PullCounters {
  uint64_t bytes = 0;     // response body bytes sent to it
  uint64_t requests = 0;  // responses finished (a BMC reads the image in Range requests)
};

// A host's counters, when known.
using PullCountersFn = std::function<std::optional<PullCounters>(const std::string& host)>;

// The rate and the silences of one host's pull, computed from samples of
// its counters (nothing else: a rate needs two samples a second apart).
// Pure: the time comes in with each sample.
class PullMeter {
 public:
  using Clock = std::chrono::steady_clock;
  // The rate is over about this long.
  static constexpr std::chrono::seconds kWindow{5};
  // No new byte for this long: the pull went quiet.
  static constexpr std::chrono::seconds kQuietAfter{30};

  void Add(Clock::time_point now, const PullCounters& counters);
  // Bytes per second over the last kWindow; nullopt before a second of samples.
  std::optional<double> Rate() const;
  // How long no byte has come (since the first sample, when none ever came),
  // once that is kQuietAfter or more.
  std::optional<std::chrono::seconds> Quiet() const;
  // "32 MiB pulled in 17 requests, 3.2 MiB/s", "... quiet for 42 s"; "" before the first sample.
  std::string Describe() const;

 private:
  struct Sample {
    Clock::time_point at;
    uint64_t bytes;
  };
  std::deque<Sample> window_;  // oldest first; the first is at or before now - kWindow
  PullCounters last_;
  Clock::time_point last_byte_at_;
};

// One line per host, "HOST: STATE": redrawn in place (ANSI cursor moves) on a
// terminal, else appended whenever a host's state changes, and at most every
// kAppendEvery when only its pull counters changed.
class ProgressBoard {
 public:
  static constexpr std::chrono::seconds kAppendEvery{10};
  struct Options {
    std::FILE* out = stderr;  // must outlive the board
    bool redraw = false;      // a terminal: rewrite all lines in place
    bool quiet = false;       // print nothing
    // When set, lines show what each host pulled, its rate and its silences.
    PullCountersFn pulled;
    // The time of the pull samples; empty: steady_clock::now.
    std::function<PullMeter::Clock::time_point()> now;
  };
  ProgressBoard(std::vector<std::string> hosts, Options options);
  ProgressBoard(const ProgressBoard&) = delete;
  ProgressBoard& operator=(const ProgressBoard&) = delete;

  // `host` indexes the hosts given to the constructor.
  void Set(size_t host, const std::string& state);
  // Samples the pull counters again and shows what changed; call it every
  // second or so while hosts pull, whatever their states do.
  void Refresh();

 private:
  // REQUIRES: mu_ held.
  void Show(size_t host, bool state_changed);

  const std::vector<std::string> hosts_;
  const Options options_;
  std::mutex mu_;
  std::vector<std::string> states_;  // guarded by mu_
  std::vector<std::string> lines_;   // guarded by mu_
  std::vector<PullMeter> meters_;    // guarded by mu_
  // When each host's line was last appended (not at all: nullopt).
  std::vector<std::optional<PullMeter::Clock::time_point>> printed_;  // guarded by mu_
};

}  // namespace isoboot::bmc
