#pragma once
/// Per-key lanes: items with the same ordering key run one at a time, in the order they were
/// pushed; items with different keys run in parallel. Sharded by key hash so that threads working
/// on different keys rarely meet on a lock. Memory: one entry per key with work, freed when done.
///
///   push(k, a) → a          (no lane for k: the caller runs a now)
///   push(k, b) → nullopt    (b waits behind a)
///   next(k)    → b          (the runner of k finished a: run b)
///   next(k)    → nullopt    (lane k is empty: removed)
#include <array>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sendq::delivery {

template <class T>
class key_lanes {
 public:
  /// Adds `item` to `key`'s lane. Returns it back when the lane was idle: the caller must run it
  /// and then call next(key) until that returns nullopt.
  std::optional<T> push(const std::string& key, T item) {
    auto& s = shard_of(key);
    std::lock_guard lock(s.mutex);
    auto [it, created] = s.lanes.try_emplace(key);
    if (created) return item;
    it->second.items.push_back(std::move(item));
    ++s.waiting;
    return std::nullopt;
  }

  /// The next item of `key`'s lane, or nullopt (and the lane is removed) when none waits.
  std::optional<T> next(const std::string& key) {
    auto& s = shard_of(key);
    std::lock_guard lock(s.mutex);
    auto it = s.lanes.find(key);
    if (it == s.lanes.end()) return std::nullopt;
    auto& lane = it->second;
    if (lane.head == lane.items.size()) {
      s.lanes.erase(it);
      return std::nullopt;
    }
    T item = std::move(lane.items[lane.head++]);
    if (lane.head == lane.items.size()) {
      lane.items.clear();
      lane.head = 0;
    } else if (lane.head >= 64 && lane.head * 2 >= lane.items.size()) {
      // A lane that never empties (a hot key always has one waiting) would keep every item it
      // ever held as a moved-from slot: drop the taken half once it is the larger part.
      lane.items.erase(lane.items.begin(), lane.items.begin() + static_cast<std::ptrdiff_t>(lane.head));
      lane.head = 0;
    }
    --s.waiting;
    return item;
  }

  /// Items waiting behind a running one (approximate while other threads push).
  std::size_t waiting() const {
    std::size_t n = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s.mutex);
      n += s.waiting;
    }
    return n;
  }

  /// Slots `key`'s lane holds, taken ones included (0 without a lane): what its memory grows with.
  std::size_t slots(const std::string& key) const {
    const auto& s = shards_[std::hash<std::string>{}(key) % shards_.size()];
    std::lock_guard lock(s.mutex);
    const auto it = s.lanes.find(key);
    return it == s.lanes.end() ? 0 : it->second.items.size();
  }

  /// Keys with a running item.
  std::size_t active_keys() const {
    std::size_t n = 0;
    for (const auto& s : shards_) {
      std::lock_guard lock(s.mutex);
      n += s.lanes.size();
    }
    return n;
  }

 private:
  // Items waiting behind the running one, oldest at `head`. Most lanes never have any: unlike a
  // std::deque (~600 bytes as soon as it exists), an empty vector allocates nothing.
  struct lane {
    std::vector<T> items;
    std::size_t head = 0;
  };
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, lane> lanes;
    std::size_t waiting = 0;
  };
  shard& shard_of(const std::string& key) { return shards_[std::hash<std::string>{}(key) % shards_.size()]; }
  std::array<shard, 16> shards_;
};

}  // namespace sendq::delivery
