#include "linux/cpu_pin.h"

#include <pthread.h>
#include <sched.h>

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace isoboot::sys {
namespace {

using Change = PinPolicy::Change;

// Feeds `frames` `times` times; returns the changes seen, in order.
std::vector<Change> Feed(PinPolicy& p, size_t frames, int times) {
  std::vector<Change> seen;
  for (int i = 0; i < times; ++i) {
    if (Change c = p.Observe(frames); c != Change::kNone) seen.push_back(c);
  }
  return seen;
}

TEST(PinPolicy, StartsPinnedAndStaysPinnedWhileBatchesAreShallow) {
  PinPolicy p(64);
  EXPECT_TRUE(p.pinned());
  EXPECT_TRUE(Feed(p, 1, 1000).empty());  // a lock-step client
  EXPECT_TRUE(Feed(p, 8, 1000).empty());  // a window of 8 is not "behind"
  EXPECT_TRUE(p.pinned());
}

TEST(PinPolicy, DeepBatchesUnpinOnceAndShallowOnesPinAgain) {
  PinPolicy p(64);
  auto unpin = Feed(p, 64, 100);
  ASSERT_EQ(unpin, std::vector<Change>{Change::kUnpin});
  EXPECT_FALSE(p.pinned());
  // Not on the first deep batch: one burst does not move the worker.
  PinPolicy burst(64);
  EXPECT_EQ(burst.Observe(64), Change::kNone);
  auto pin = Feed(p, 1, 100);
  ASSERT_EQ(pin, std::vector<Change>{Change::kPin});
  EXPECT_TRUE(p.pinned());
}

TEST(PinPolicy, NoFlappingInsideTheBand) {
  PinPolicy p(64);
  ASSERT_EQ(Feed(p, 64, 100), std::vector<Change>{Change::kUnpin});
  // Depth settles between the thresholds (4 < 10 < 16): no change either way.
  EXPECT_TRUE(Feed(p, 10, 1000).empty());
  EXPECT_FALSE(p.pinned());
  // Alternating deep and empty-ish batches average out inside the band too.
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(p.Observe(i % 2 ? 20 : 2), Change::kNone) << i;
  }
}

TEST(PinPolicy, TimeoutsAreIgnored) {
  PinPolicy p(64);
  Feed(p, 64, 100);
  EXPECT_TRUE(Feed(p, 0, 1000).empty());  // idle: the last depth stands
  EXPECT_FALSE(p.pinned());
}

cpu_set_t Affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(pthread_getaffinity_np(pthread_self(), sizeof set, &set), 0);
  return set;
}

TEST(AdaptivePin, PinsTheThreadAndRestoresItsAffinityWhenBehind) {
  std::thread t([] {
    cpu_set_t before = Affinity();
    int cpu = -1;
    for (int c = 0; c < CPU_SETSIZE && cpu < 0; ++c)
      if (CPU_ISSET(c, &before)) cpu = c;
    ASSERT_GE(cpu, 0);
    AdaptivePin pin(cpu, 64);
    cpu_set_t pinned = Affinity();
    EXPECT_EQ(CPU_COUNT(&pinned), 1);
    EXPECT_TRUE(CPU_ISSET(cpu, &pinned));
    for (int i = 0; i < 100; ++i)
      pin.Observe(64);
    cpu_set_t freed = Affinity();
    EXPECT_TRUE(CPU_EQUAL(&freed, &before));
    for (int i = 0; i < 100; ++i)
      pin.Observe(1);
    cpu_set_t again = Affinity();
    EXPECT_EQ(CPU_COUNT(&again), 1);
    EXPECT_TRUE(CPU_ISSET(cpu, &again));
  });
  t.join();
}

TEST(AdaptivePin, NegativeCpuLeavesTheThreadAlone) {
  std::thread t([] {
    cpu_set_t before = Affinity();
    AdaptivePin pin(-1, 64);
    for (int i = 0; i < 100; ++i)
      pin.Observe(64);
    cpu_set_t after = Affinity();
    EXPECT_TRUE(CPU_EQUAL(&after, &before));
  });
  t.join();
}

// CPU 1 is outside the thread's set whether or not the machine has it.
TEST(AdaptivePin, NeverLeavesTheCpusTheThreadWasGiven) {
  std::thread t([] {
    cpu_set_t only0;
    CPU_ZERO(&only0);
    CPU_SET(0, &only0);
    ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof only0, &only0), 0);
    EXPECT_EQ(AllowedCpus(), std::vector<int>{0});
    AdaptivePin pin(1, 64);  // as taskset -c 0 with a worker for CPU 1
    for (int i = 0; i < 100; ++i)
      pin.Observe(1);
    cpu_set_t after = Affinity();
    EXPECT_TRUE(CPU_EQUAL(&after, &only0));
  });
  t.join();
}

}  // namespace
}  // namespace isoboot::sys
