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
    return host == "a" ? PullCounters{2048, 1} : PullCounters{32u << 20, 17};
  };
  ProgressBoard board({"a", "b"}, o);
  board.Set(0, "serving");
  board.Set(1, "serving");
  EXPECT_EQ(out.text(),
            "a: serving (2048 bytes pulled in 1 request)\n"
            "b: serving (32 MiB pulled in 17 requests)\n");
}

using Clock = PullMeter::Clock;
using std::chrono::seconds;

TEST(PullMeter, RateIsOverTheLastSamples) {
  PullMeter m;
  Clock::time_point t0{};
  m.Add(t0, {0, 0});
  EXPECT_EQ(m.Rate(), std::nullopt);  // one sample: no rate
  m.Add(t0 + std::chrono::milliseconds(500), {1 << 20, 1});
  EXPECT_EQ(m.Rate(), std::nullopt);  // under a second of samples
  for (int s = 1; s <= 10; ++s)
    m.Add(t0 + seconds(s), {uint64_t(s) << 21, uint64_t(s)});  // 2 MiB/s
  ASSERT_TRUE(m.Rate());
  EXPECT_DOUBLE_EQ(*m.Rate(), 2.0 * (1 << 20));
  EXPECT_EQ(m.Describe(), "20 MiB pulled in 10 requests, 2.0 MiB/s");
  // It slows to 1 MiB/s: after one window the rate shows only that.
  for (int s = 11; s <= 15; ++s)
    m.Add(t0 + seconds(s), {(20u << 20) + (uint64_t(s - 10) << 20), uint64_t(s)});
  EXPECT_DOUBLE_EQ(*m.Rate(), 1.0 * (1 << 20));
  m.Add(t0 + seconds(20), {(25u << 20) + 512 * 1024, 16});
  EXPECT_EQ(m.Describe(), "25 MiB pulled in 16 requests, 102 KiB/s");  // 512 KiB in 5 s
  EXPECT_EQ(m.Quiet(), std::nullopt);
}

TEST(PullMeter, QuietAfterThirtySecondsWithoutAByte) {
  PullMeter m;
  Clock::time_point t0{};
  EXPECT_EQ(m.Describe(), "");
  m.Add(t0, {4096, 2});
  m.Add(t0 + seconds(29), {4096, 2});
  EXPECT_EQ(m.Quiet(), std::nullopt);
  m.Add(t0 + seconds(42), {4096, 3});  // a request, but no byte
  ASSERT_TRUE(m.Quiet());
  EXPECT_EQ(*m.Quiet(), seconds(42));
  EXPECT_EQ(m.Describe(), "4096 bytes pulled in 3 requests, quiet for 42 s");
  m.Add(t0 + seconds(43), {8192, 4});  // bytes again
  EXPECT_EQ(m.Quiet(), std::nullopt);
  EXPECT_EQ(m.Describe(), "8192 bytes pulled in 4 requests, 0 KiB/s");
}

TEST(PullMeter, NothingEverPulledGoesQuietToo) {
  PullMeter m;
  Clock::time_point t0{};
  m.Add(t0, {0, 0});
  m.Add(t0 + seconds(31), {0, 0});
  EXPECT_EQ(m.Describe(), "0 bytes pulled in 0 requests, quiet for 31 s");
}

TEST(PullMeter, CountersThatGoBackStartOver) {
  PullMeter m;
  Clock::time_point t0{};
  m.Add(t0, {1 << 20, 1});
  m.Add(t0 + seconds(2), {2 << 20, 2});
  m.Add(t0 + seconds(3), {0, 0});  // the server forgot the client
  EXPECT_EQ(m.Rate(), std::nullopt);
  m.Add(t0 + seconds(4), {1 << 20, 1});
  EXPECT_DOUBLE_EQ(*m.Rate(), 1.0 * (1 << 20));
}

// A log gets a line per state at once; counters alone add one every 10 s.
TEST(ProgressBoard, RefreshShowsThePullWhileTheStateStands) {
  Capture out;
  Clock::time_point now{};
  PullCounters pulled;
  ProgressBoard::Options o = To(out.file());
  o.pulled = [&](const std::string&) { return pulled; };
  o.now = [&] { return now; };
  ProgressBoard board({"a", "b"}, o);
  board.Refresh();  // no line yet for anyone: nothing to update
  board.Set(0, "serving");
  for (int s = 1; s <= 40; ++s) {
    now = Clock::time_point{} + seconds(s);
    if (s <= 10) pulled = {uint64_t(s) << 20, uint64_t(s)};
    board.Refresh();
  }
  EXPECT_EQ(out.text(),
            "a: serving (0 bytes pulled in 0 requests)\n"
            "a: serving (10 MiB pulled in 10 requests, 1.0 MiB/s)\n"  // at 10 s
            "a: serving (10 MiB pulled in 10 requests, 0 KiB/s)\n"    // at 20 s
            "a: serving (10 MiB pulled in 10 requests, quiet for 30 s)\n");
}

TEST(ProgressBoard, RedrawShowsEveryRefresh) {
  Capture out;
  Clock::time_point now{};
  ProgressBoard::Options o = To(out.file(), /*redraw=*/true);
  o.pulled = [&](const std::string&) { return PullCounters{1 << 20, 1}; };
  o.now = [&] { return now; };
  ProgressBoard board({"a"}, o);
  board.Set(0, "serving");
  now += seconds(31);
  board.Refresh();
  EXPECT_EQ(out.text(),
            "a: waiting\n"
            "\x1b[1A\x1b[2Ka: serving (1.0 MiB pulled in 1 request)\n"
            "\x1b[1A\x1b[2Ka: serving (1.0 MiB pulled in 1 request, quiet for 31 s)\n");
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

TEST(ParseHostFile, HostsMacsAndArguments) {
  auto hosts = ParseHostFile(
      "# the rack\n"
      "ilo-a.example:8443\n"
      "  10.0.0.12  52:54:00:00:00:0c  hostname=n12 ip=dhcp # with a comment\r\n"
      "10.0.0.13 52-54-00-00-00-0d\n"
      "\n");
  ASSERT_TRUE(hosts) << hosts.error().message;
  ASSERT_EQ(hosts->size(), 3u);
  EXPECT_EQ((*hosts)[0].host, "ilo-a.example:8443");
  EXPECT_FALSE((*hosts)[0].mac.has_value());
  EXPECT_EQ((*hosts)[1].host, "10.0.0.12");
  ASSERT_TRUE((*hosts)[1].mac.has_value());
  EXPECT_EQ(FormatMac(*(*hosts)[1].mac), "52:54:00:00:00:0c");
  EXPECT_EQ((*hosts)[1].kernel_args, "hostname=n12 ip=dhcp");
  EXPECT_EQ((*hosts)[2].kernel_args, "");
  auto bad = ParseHostFile("a\nb not-a-mac x=1\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("line 2: not-a-mac is not a MAC address"), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace isoboot::bmc
