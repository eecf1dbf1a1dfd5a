#include "sendq/delivery/offset_tracker.hpp"

#include <algorithm>

namespace sendq::delivery {

std::uint64_t offset_tracker::track(const std::string& topic, std::int32_t partition, std::int64_t offset) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = partitions_.try_emplace(key{topic, partition});
  auto& p = it->second;
  if (inserted) {
    p.topic = topic;
    p.partition = partition;
    p.generation = next_generation_++;
  }
  const entry e{offset, false, std::chrono::steady_clock::now()};
  if (p.entries.empty() || p.entries.back().offset < offset) {
    p.entries.push_back(e);
  } else {
    // Out of order (a record fetched before a rebalance, a seek back): keep the entries sorted, so
    // that the head stays the lowest unfinished offset and done()'s binary search finds them.
    p.entries.insert(std::upper_bound(p.entries.begin(), p.entries.end(), offset,
                                      [](std::int64_t o, const entry& a) { return o < a.offset; }),
                     e);
  }
  // Never commit past an unfinished offset, even one that comes after its successors finished.
  // A position handed out already is not taken back by any commit: take_committable() waits
  // until the partition is past it again, and the final and the revocation commits keep it.
  if (p.committable > offset) p.committable = offset;
  ++pending_;
  return p.generation;
}

bool offset_tracker::current(const std::string& topic, std::int32_t partition, std::uint64_t generation) const {
  std::lock_guard lock(mutex_);
  const auto it = partitions_.find({topic, partition});
  return it != partitions_.end() && it->second.generation == generation;
}

void offset_tracker::done(const std::string& topic, std::int32_t partition, std::int64_t offset,
                          std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  auto it = partitions_.find(key{topic, partition});
  if (it == partitions_.end() || it->second.generation != generation) return;  // revoked meanwhile
  auto& p = it->second;
  // Entries are sorted (see track()), so binary search finds the entry; an offset tracked twice
  // has an entry per copy.
  auto e = std::lower_bound(p.entries.begin(), p.entries.end(), offset,
                            [](const entry& a, std::int64_t o) { return a.offset < o; });
  while (e != p.entries.end() && e->offset == offset && e->done) ++e;
  if (e == p.entries.end() || e->offset != offset) return;
  e->done = true;
  --pending_;
  while (!p.entries.empty() && p.entries.front().done) {
    p.committable = p.entries.front().offset + 1;
    p.entries.pop_front();
  }
  p.finished_to = std::max(p.finished_to, p.committable);
}

std::vector<kafka::partition_offset> offset_tracker::take_committable(bool all) {
  std::lock_guard lock(mutex_);
  std::vector<kafka::partition_offset> out;
  for (auto& [k, p] : partitions_) {
    if (p.committable > p.committed) {
      out.push_back({p.topic, p.partition, p.committable});
      p.committed = p.committable;
    } else if (all && p.committable >= 0) {
      out.push_back({p.topic, p.partition, std::max(p.committable, p.finished_to)});
    }
  }
  return out;
}

void offset_tracker::commit_failed(const std::vector<kafka::partition_offset>& positions) {
  std::lock_guard lock(mutex_);
  for (const auto& po : positions) {
    auto it = partitions_.find(key{po.topic, po.partition});
    // Gone: revoked, and maybe re-assigned since (a new generation, whose positions are its own).
    if (it == partitions_.end()) continue;
    auto& p = it->second;
    // A partition that goes idle would never be committed again otherwise.
    if (p.committed >= po.offset) p.committed = po.offset - 1;
  }
}

std::vector<kafka::partition_offset> offset_tracker::release(const std::vector<kafka::partition_offset>& partitions) {
  std::lock_guard lock(mutex_);
  std::vector<kafka::partition_offset> out;
  for (const auto& po : partitions) {
    auto it = partitions_.find(key{po.topic, po.partition});
    if (it == partitions_.end()) continue;
    auto& p = it->second;
    if (p.committable >= 0) out.push_back({p.topic, p.partition, std::max(p.committable, p.finished_to)});
    for (const auto& e : p.entries) {
      if (!e.done) --pending_;
    }
    partitions_.erase(it);
  }
  return out;
}

std::size_t offset_tracker::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

}  // namespace sendq::delivery

namespace sendq::delivery {

std::optional<std::chrono::steady_clock::time_point> offset_tracker::oldest_unfinished() const {
  std::lock_guard lock(mutex_);
  std::optional<std::chrono::steady_clock::time_point> oldest;
  for (const auto& [k, p] : partitions_) {
    // Finished heads are popped, so each partition's front is its oldest unfinished record.
    if (!p.entries.empty() && (!oldest || p.entries.front().tracked_at < *oldest)) oldest = p.entries.front().tracked_at;
  }
  return oldest;
}

}  // namespace sendq::delivery
