#include "serve/supervisor.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::serve {
namespace {

using std::chrono::milliseconds;

// A server that runs until Stop(), or fails when told to.
class FakeServer {
 public:
  void Run() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return stopped_ || fail_; });
    if (fail_ && !stopped_) throw std::runtime_error("socket went away");
  }
  void Stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  void Fail() {
    std::lock_guard lock(mu_);
    fail_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false, fail_ = false;
};

void StartFake(Supervisor& s, const std::string& name, FakeServer& f,
               std::vector<std::string>* stop_order = nullptr) {
  s.Start(
      name, [&f] { f.Run(); },
      [&f, stop_order, name] {
        if (stop_order) stop_order->push_back(name);
        f.Stop();
      });
}

// Waits (bounded) until WaitFor reports an end.
bool WaitForEnd(Supervisor& s, std::stop_token stop) {
  for (int i = 0; i < 500; ++i) {
    if (!s.WaitFor(stop, milliseconds(10))) return true;
  }
  return false;
}

TEST(Supervisor, StopRequestStopsEveryServerInReverseOrder) {
  FakeServer a, b, c;
  std::vector<std::string> order;
  Supervisor s;
  StartFake(s, "a", a, &order);
  StartFake(s, "b", b, &order);
  StartFake(s, "c", c, &order);
  std::stop_source stop;
  EXPECT_TRUE(s.WaitFor(stop.get_token(), milliseconds(1)));  // nothing ended
  stop.request_stop();
  EXPECT_FALSE(s.WaitFor(stop.get_token(), milliseconds(1000)));
  s.StopAll();
  EXPECT_FALSE(s.failure());
  EXPECT_EQ(order, (std::vector<std::string>{"c", "b", "a"}));
}

TEST(Supervisor, AThrowingServerIsAFailureNamedAfterIt) {
  FakeServer a, b;
  Supervisor s;
  StartFake(s, "http", a);
  StartFake(s, "aoe", b);
  std::stop_source never;
  b.Fail();
  ASSERT_TRUE(WaitForEnd(s, never.get_token()));
  EXPECT_EQ(s.failure(), "aoe: socket went away");
  s.StopAll();  // stops and joins the healthy one too
  EXPECT_EQ(s.failure(), "aoe: socket went away");
}

TEST(Supervisor, AServerReturningByItselfIsAFailure) {
  Supervisor s;
  s.Start(
      "tftp", [] {}, [] {});
  std::stop_source never;
  ASSERT_TRUE(WaitForEnd(s, never.get_token()));
  EXPECT_EQ(s.failure(), "tftp: stopped by itself");
}

TEST(Supervisor, ServersEndingDuringStopAllAreNoFailure) {
  Supervisor s;
  std::atomic<bool> stop{false};
  s.Start(
      "dhcp",
      [&stop] {
        while (!stop)
          std::this_thread::yield();
        throw std::runtime_error("interrupted");  // as it stops: not a failure
      },
      [&stop] { stop = true; });
  s.StopAll();
  EXPECT_FALSE(s.failure());
}

}  // namespace
}  // namespace isoboot::serve
