#pragma once
/// Remembers the ids of requests that ended in this process for a while, so that a redelivered or
/// replayed request is not sent again. Bounded: at most `max_ids`, each for at most `window`.
/// Thread-safe.
#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace sendq::delivery {

class duplicate_guard {
 public:
  using clock = std::chrono::steady_clock;
  duplicate_guard(std::chrono::milliseconds window, std::size_t max_ids) : window_(window), max_ids_(max_ids) {}

  /// True when `id` ended within the window.
  bool seen(const std::string& id, clock::time_point now);
  /// Records that `id` ended now.
  void remember(const std::string& id, clock::time_point now);
  std::size_t size() const;

 private:
  void expire(clock::time_point now);
  std::chrono::milliseconds window_;
  std::size_t max_ids_;
  mutable std::mutex mutex_;
  std::unordered_set<std::string> ids_;
  std::deque<std::pair<clock::time_point, std::string>> order_;  // oldest first
};

}  // namespace sendq::delivery
