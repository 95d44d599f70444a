// The fleet runner and the progress board with a fake per-host action: no
// BMC, no network.

#include "bmc/fleet.h"

#include <stdio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::bmc {
namespace {

using nlohmann::json;

std::vector<std::string> Hosts(int n) {
  std::vector<std::string> hosts;
  for (int i = 0; i < n; ++i)
    hosts.push_back("bmc" + std::to_string(i));
  return hosts;
}

// Counts the calls per host, and the most actions that ran at once.
struct Recorder {
  std::mutex mu;
  std::map<std::string, int> calls;
  std::atomic<int> running{0};
  std::atomic<int> most{0};

  void Enter(const std::string& host) {
    {
      std::lock_guard lock(mu);
      ++calls[host];
    }
    int now = ++running;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
  }
  void Leave() { --running; }
};

TEST(Fleet, EveryHostRunsOnceAndResultsKeepHostOrder) {
  auto hosts = Hosts(23);
  Recorder rec;
  FleetOptions o;
  o.parallel = 4;
  auto results = RunFleet(
      hosts,
      [&](const std::string& host, const ProgressFn& progress) {
        rec.Enter(host);
        progress("working");
        // Later hosts finish sooner: completion order differs from host order.
        int n = std::stoi(host.substr(3));
        std::this_thread::sleep_for(std::chrono::milliseconds(23 - n));
        rec.Leave();
        return json{{"n", n}};
      },
      o);
  ASSERT_EQ(results.size(), hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    EXPECT_EQ(results[i].host, hosts[i]);
    EXPECT_TRUE(results[i].ok);
    EXPECT_EQ(results[i].fields["n"], static_cast<int>(i));
    EXPECT_EQ(rec.calls[hosts[i]], 1) << hosts[i];
  }
  EXPECT_EQ(rec.calls.size(), hosts.size());
  EXPECT_LE(rec.most.load(), 4);
  EXPECT_GE(rec.most.load(), 1);
  EXPECT_EQ(ExitCode(results), 0);
}

TEST(Fleet, ParallelZeroStillRunsEveryHost) {
  auto hosts = Hosts(3);
  Recorder rec;
  FleetOptions o;
  o.parallel = 0;
  auto results = RunFleet(
      hosts,
      [&](const std::string& host, const ProgressFn&) {
        rec.Enter(host);
        rec.Leave();
        return json::object();
      },
      o);
  EXPECT_EQ(rec.calls.size(), 3u);
  EXPECT_EQ(rec.most.load(), 1);
  EXPECT_TRUE(std::all_of(results.begin(), results.end(), [](auto& r) { return r.ok; }));
}

TEST(Fleet, FailingHostsDoNotStopTheOthers) {
  auto hosts = Hosts(6);
  Recorder rec;
  FleetOptions o;
  o.parallel = 2;
  auto results = RunFleet(
      hosts,
      [&](const std::string& host, const ProgressFn&) -> json {
        rec.Enter(host);
        rec.Leave();
        if (host == "bmc1") throw BmcError(Failure::kNotMounted, "bmc1: did not mount");
        if (host == "bmc4") throw std::runtime_error("bmc4: bug");
        return json{{"vendor", "fake"}};
      },
      o);
  EXPECT_EQ(rec.calls.size(), 6u);
  for (size_t i = 0; i < hosts.size(); ++i) {
    EXPECT_EQ(results[i].ok, i != 1 && i != 4) << i;
  }
  EXPECT_EQ(results[1].failure, Failure::kNotMounted);
  EXPECT_EQ(results[1].error, "bmc1: did not mount");
  EXPECT_EQ(results[4].failure, Failure::kInternal);
  EXPECT_EQ(results[4].error, "bmc4: bug");
  EXPECT_EQ(ExitCode(results), static_cast<int>(Failure::kSomeHostsFailed));
}

TEST(Fleet, OneHostExitsWithItsFailure) {
  auto results = RunFleet({"only"},
                          [](const std::string&, const ProgressFn&) -> json {
                            throw BmcError(Failure::kPower, "power");
                          },
                          {});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(ExitCode(results), static_cast<int>(Failure::kPower));
}

TEST(Fleet, StopRequestStopsTheHostsNotStarted) {
  auto hosts = Hosts(8);
  Recorder rec;
  std::stop_source stop;
  FleetOptions o;
  o.parallel = 1;  // one at a time: bmc0..bmc2 run, bmc2 sees the stop
  o.stop = stop.get_token();
  auto results = RunFleet(
      hosts,
      [&](const std::string& host, const ProgressFn&) -> json {
        rec.Enter(host);
        rec.Leave();
        if (host == "bmc2") {
          stop.request_stop();  // as a SIGTERM would, mid-action
          throw Interrupted();
        }
        return json::object();
      },
      o);
  EXPECT_EQ(rec.calls.size(), 3u);
  EXPECT_TRUE(results[0].ok);
  EXPECT_TRUE(results[1].ok);
  for (size_t i = 2; i < hosts.size(); ++i) {
    EXPECT_EQ(results[i].host, hosts[i]);
    EXPECT_FALSE(results[i].ok) << i;
    EXPECT_EQ(results[i].failure, Failure::kInternal) << i;
    EXPECT_EQ(results[i].error, "interrupted") << i;
  }
  EXPECT_EQ(ExitCode(results), static_cast<int>(Failure::kSomeHostsFailed));
}

TEST(Fleet, StopBeforeTheStartRunsNothing) {
  std::stop_source stop;
  stop.request_stop();
  FleetOptions o;
  o.stop = stop.get_token();
  std::atomic<int> calls{0};
  auto results = RunFleet(
      {"a"},
      [&](const std::string&, const ProgressFn&) {
        ++calls;
        return json::object();
      },
      o);
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(ExitCode(results), static_cast<int>(Failure::kInternal));
}

TEST(Fleet, ProgressEndsWithDoneOrFailed) {
  auto hosts = Hosts(4);
  std::mutex mu;
  std::map<size_t, std::vector<std::string>> states;
  FleetOptions o;
  o.parallel = 3;
  o.progress = [&](size_t host, const std::string& state) {
    std::lock_guard lock(mu);
    states[host].push_back(state);
  };
  RunFleet(
      hosts,
      [](const std::string& host, const ProgressFn& progress) -> json {
        progress("inserting");
        if (host == "bmc3") throw BmcError(Failure::kInsert, "refused");
        return json::object();
      },
      o);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(states[i], (std::vector<std::string>{"inserting", "done"})) << i;
  }
  EXPECT_EQ(states[3], (std::vector<std::string>{"inserting", "failed: refused"}));
}

TEST(Fleet, ResultJson) {
  HostResult ok;
  ok.host = "h1";
  ok.ok = true;
  ok.fields = {{"vendor", "AMI MegaRAC"}, {"bytes_pulled", 4096}};
  EXPECT_EQ(ResultJson(ok, "boot"), json::parse(R"({"host": "h1", "action": "boot", "ok": true,
      "exit_code": 0, "vendor": "AMI MegaRAC", "bytes_pulled": 4096})"));
  HostResult bad;
  bad.host = "h2";
  bad.failure = Failure::kNoVirtualMedia;
  bad.error = "h2: no virtual media";
  EXPECT_EQ(ResultJson(bad, "insert"), json::parse(R"({"host": "h2", "action": "insert",
      "ok": false, "exit_code": 5, "error": "h2: no virtual media",
      "failure": "no-virtual-media"})"));
}

// What a board wrote, through open_memstream.
class Capture {
 public:
  Capture() : f_(open_memstream(&buf_, &size_)) {}
  ~Capture() {
    std::fclose(f_);
    std::free(buf_);
  }
  std::FILE* file() { return f_; }
  std::string text() {
    std::fflush(f_);
    return std::string(buf_, size_);
  }

 private:
  char* buf_ = nullptr;
  size_t size_ = 0;
  std::FILE* f_;
};

ProgressBoard::Options To(std::FILE* out, bool redraw = false, bool quiet = false) {
  ProgressBoard::Options o;
  o.out = out;
  o.redraw = redraw;
  o.quiet = quiet;
  return o;
}

TEST(ProgressBoard, AppendsChangedLines) {
  Capture out;
  ProgressBoard board({"a", "b"}, To(out.file()));
  board.Set(1, "inserting");
  board.Set(1, "inserting");  // unchanged: not repeated
  board.Set(0, "done");
  EXPECT_EQ(out.text(), "b: inserting\na: done\n");
}

TEST(ProgressBoard, ShowsBytesPulled) {
  Capture out;
  ProgressBoard::Options o = To(out.file());
  o.pulled = [](const std::string& host) {
    return std::optional<uint64_t>(host == "a" ? 2048 : 32u << 20);
  };
  ProgressBoard board({"a", "b"}, o);
  board.Set(0, "serving");
  board.Set(1, "serving");
  EXPECT_EQ(out.text(), "a: serving (2048 bytes pulled)\nb: serving (32 MiB pulled)\n");
}

TEST(ProgressBoard, RedrawsAllLinesOnATerminal) {
  Capture out;
  ProgressBoard board({"a", "b"}, To(out.file(), /*redraw=*/true));
  board.Set(1, "mounted");
  EXPECT_EQ(out.text(), "a: waiting\nb: waiting\n\x1b[2A\x1b[2Ka: waiting\n\x1b[2Kb: mounted\n");
}

TEST(ProgressBoard, QuietPrintsNothing) {
  Capture out;
  ProgressBoard board({"a"}, To(out.file(), /*redraw=*/true, /*quiet=*/true));
  board.Set(0, "done");
  EXPECT_EQ(out.text(), "");
}

}  // namespace
}  // namespace isoboot::bmc
