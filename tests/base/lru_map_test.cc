#include "base/lru_map.h"

#include <string>

#include <gtest/gtest.h>

namespace isoboot {
namespace {

TEST(LruMapTest, ForgetsTheLeastRecentlyUsedWhenFull) {
  LruMap<int, std::string> m(2);
  m.Put(1, "a");
  m.Put(2, "b");
  ASSERT_NE(m.Find(1), nullptr);  // 2 is now the least recently used
  m.Put(3, "c");
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.Peek(2), nullptr);
  EXPECT_EQ(*m.Peek(1), "a");
  EXPECT_EQ(*m.Peek(3), "c");
  EXPECT_EQ(m.evicted(), 1u);
}

TEST(LruMapTest, PeekDoesNotRefresh) {
  LruMap<int, int> m(2);
  m.Put(1, 10);
  m.Put(2, 20);
  EXPECT_EQ(*m.Peek(1), 10);
  m.Put(3, 30);
  EXPECT_EQ(m.Peek(1), nullptr);
  EXPECT_NE(m.Peek(2), nullptr);
}

TEST(LruMapTest, PutReplacesAndRefreshes) {
  LruMap<int, int> m(2);
  m.Put(1, 10);
  m.Put(2, 20);
  m.Put(1, 11);
  m.Put(3, 30);
  EXPECT_EQ(*m.Peek(1), 11);
  EXPECT_EQ(m.Peek(2), nullptr);
  EXPECT_EQ(m.evicted(), 1u);
}

TEST(LruMapTest, StaysWithinCapacityUnderAFloodOfKeys) {
  LruMap<int, int> m(100);
  for (int i = 0; i < 100000; ++i)
    m.Put(i, i);
  EXPECT_EQ(m.size(), 100u);
  EXPECT_EQ(m.evicted(), 100000u - 100u);
  int expected = 99999;  // most recently used first
  for (const auto& [k, v] : m) {
    EXPECT_EQ(k, expected);
    --expected;
  }
}

TEST(LruMapTest, EraseAndEraseIf) {
  LruMap<int, int> m(10);
  for (int i = 0; i < 6; ++i)
    m.Put(i, i * 10);
  EXPECT_TRUE(m.Erase(0));
  EXPECT_FALSE(m.Erase(0));
  m.EraseIf([](int k, int) { return k % 2 == 1; });
  EXPECT_EQ(m.size(), 2u);
  EXPECT_NE(m.Peek(2), nullptr);
  EXPECT_NE(m.Peek(4), nullptr);
  m.Clear();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.Find(2), nullptr);
}

TEST(LruMapTest, ZeroCapacityHoldsOne) {
  LruMap<int, int> m(0);
  m.Put(1, 1);
  m.Put(2, 2);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_NE(m.Peek(2), nullptr);
}

}  // namespace
}  // namespace isoboot
