#pragma once
// A map with a fixed capacity that forgets its least recently used entry
// when full: for state keyed by what the network chooses (a client's MAC or
// IP address), so a flood of new keys costs a bounded amount of memory and
// pushes out only entries nobody used for the longest time.
//
// Not thread-safe: guard it like a std::map.

#include <cstddef>
#include <list>
#include <map>
#include <utility>

namespace isoboot {

template <typename Key, typename Value>
class LruMap {
 public:
  explicit LruMap(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // The value for `key`, now the most recently used; nullptr when absent.
  Value* Find(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }
  // As Find, without making `key` recently used.
  const Value* Peek(const Key& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }
  // Sets `key` to `value` (most recently used), forgetting the least
  // recently used entry when a new key finds the map full.
  Value& Put(const Key& key, Value value) {
    if (Value* v = Find(key)) {
      *v = std::move(value);
      return *v;
    }
    if (order_.size() == capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
      ++evicted_;
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    return order_.front().second;
  }
  bool Erase(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }
  // Drops every entry for which `pred(key, value)` is true.
  template <typename Pred>
  void EraseIf(Pred pred) {
    for (auto it = order_.begin(); it != order_.end();) {
      if (pred(it->first, it->second)) {
        index_.erase(it->first);
        it = order_.erase(it);
      } else {
        ++it;
      }
    }
  }
  void Clear() {
    order_.clear();
    index_.clear();
  }

  size_t size() const { return order_.size(); }
  size_t capacity() const { return capacity_; }
  // Entries forgotten to make room, since construction.
  size_t evicted() const { return evicted_; }
  // Most recently used first.
  auto begin() const { return order_.cbegin(); }
  auto end() const { return order_.cend(); }

 private:
  using Entry = std::pair<Key, Value>;
  size_t capacity_;
  size_t evicted_ = 0;
  std::list<Entry> order_;  // most recently used first
  std::map<Key, typename std::list<Entry>::iterator> index_;
};

}  // namespace isoboot
