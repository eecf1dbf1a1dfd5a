#pragma once
/// Remembers the ids of requests that ended in this process for a while, so that a redelivered or
/// replayed request is not sent again. Bounded: at most `max_ids`, each for at most `window`.
/// Thread-safe.
///
/// Ids are kept as 128-bit SipHash-2-4 digests under a key drawn at random per process, not as
/// strings: 56–88 bytes an id instead of ~160 (200,000 ids: at most ~13 MB instead of ~32 MB of
/// the worker's RSS). Two different ids compare equal with probability ~2^-128, and as the key is
/// secret a producer cannot craft ids that do.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string_view>
#include <vector>

namespace sendq::delivery {

class duplicate_guard {
 public:
  using clock = std::chrono::steady_clock;
  duplicate_guard(std::chrono::milliseconds window, std::size_t max_ids);

  /// False when the guard is off (no ids, or a window of 0): it then remembers nothing.
  bool enabled() const noexcept { return max_ids_ > 0 && window_.count() > 0; }
  /// True when `id` ended within the window.
  bool seen(std::string_view id, clock::time_point now);
  /// True when either `id` or `other` ended within the window: two lookups under one lock.
  bool seen(std::string_view id, std::string_view other, clock::time_point now);
  /// Records that `id` ended now.
  void remember(std::string_view id, clock::time_point now);
  std::size_t size() const;
  /// Slots of the table behind it (a power of two, at least twice size()).
  std::size_t table_slots() const;

  struct digest {
    std::uint64_t lo = 0, hi = 0;
    bool operator==(const digest&) const = default;
  };
  /// SipHash-2-4 with 128-bit output (the reference's siphash128) of `data` under `key`.
  static digest siphash128(std::string_view data, const std::array<std::uint64_t, 2>& key);

  /// What the guard keeps of `id` (never all-zero). A caller that asks about the same id more
  /// than once (the worker: at admission, then when the request ends) works it out once and
  /// passes it to the overloads below, which do the same as those taking the id.
  digest digest_of(std::string_view id) const;
  bool seen(const digest& id, const digest& other, clock::time_point now);
  void remember(const digest& id, clock::time_point now);

 private:
  bool contains(const digest& d) const;
  bool insert(const digest& d);  // false when already there
  void erase(const digest& d);
  void grow();
  void expire(clock::time_point now);
  static constexpr std::size_t min_slots = 1024;
  static constexpr std::size_t presized_ids = 500'000;  ///< the table for up to this many is made at once (16 MB)
  std::chrono::milliseconds window_;
  std::size_t max_ids_;
  std::array<std::uint64_t, 2> key_;
  mutable std::mutex mutex_;
  // The digests in an open-addressing table (linear probing, at most half full; the all-zero
  // digest marks a free slot): a lookup reads one or two cache lines, and remembering or
  // forgetting an id allocates nothing, where a node-based set allocated and freed a node per id
  // and chased a pointer per lookup.
  std::vector<digest> slots_;
  std::size_t count_ = 0;
  std::deque<std::pair<clock::time_point, digest>> order_;  // oldest first
};

}  // namespace sendq::delivery
