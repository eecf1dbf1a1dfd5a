#pragma once
/// Which offsets of each partition may be committed: up to (not including) the lowest offset
/// that has no acknowledged result yet. Memory is bounded by the number of records in flight.
/// Thread-safe (the Kafka thread tracks and commits; producer callbacks mark records done).
#include <chrono>
#include <cstdint>
#include <optional>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "sendq/kafka/message.hpp"

namespace sendq::delivery {

class offset_tracker {
 public:
  /// Starts tracking `offset`; returns the partition's generation, to pass to done().
  std::uint64_t track(const std::string& topic, std::int32_t partition, std::int64_t offset);
  /// Whether `generation` (from track()) is still the partition's: false once it was revoked.
  bool current(const std::string& topic, std::int32_t partition, std::uint64_t generation) const;
  /// Marks `offset` finished. Ignored when the partition was forgotten since track() (revoked).
  void done(const std::string& topic, std::int32_t partition, std::int64_t offset, std::uint64_t generation);
  /// Positions that advanced since the last call (offset = next to read), for commit. With
  /// `all`, every tracked partition's position (the final commit at shutdown: the result of the
  /// last asynchronous commit may never have been seen). Never below a position handed out
  /// before: everything under that was finished, so an offset tracked again below it (a record
  /// fetched before a rebalance) is a second read, and going back would re-send what came after.
  std::vector<kafka::partition_offset> take_committable(bool all = false);
  /// The commit of these positions failed: take_committable() hands them out again, for the
  /// partitions still tracked (a partition revoked since is committed by its next owner).
  void commit_failed(const std::vector<kafka::partition_offset>& positions);
  /// Every finished position of `partitions`, handed out already or not (an asynchronous commit
  /// of it may still be in flight, and fail in the rebalance with its report not yet seen), as
  /// take_committable(true) gives them, then forgets them (on revocation: the caller commits
  /// these synchronously).
  std::vector<kafka::partition_offset> release(const std::vector<kafka::partition_offset>& partitions);
  /// Records tracked and not yet finished.
  std::size_t pending() const;
  /// When the oldest unfinished record was tracked (for the "oldest request age" metric).
  std::optional<std::chrono::steady_clock::time_point> oldest_unfinished() const;

 private:
  struct entry {
    std::int64_t offset;
    bool done;
    std::chrono::steady_clock::time_point tracked_at;
  };
  struct partition_state {
    std::string topic;
    std::int32_t partition = 0;
    std::uint64_t generation = 0;
    std::deque<entry> entries;      // in consumption (offset) order
    std::int64_t committable = -1;  // next offset to read, once the head entries are done
    std::int64_t committed = -1;    // last value handed out by take_committable (lowered again when its commit failed)
    std::int64_t finished_to = -1;  // highest position reached: everything below it finished
  };
  using key = std::pair<std::string, std::int32_t>;
  mutable std::mutex mutex_;
  std::map<key, partition_state> partitions_;
  std::uint64_t next_generation_ = 1;
  std::size_t pending_ = 0;
};

}  // namespace sendq::delivery
