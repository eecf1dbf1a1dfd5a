#pragma once
/// redrive's order: the records of several partitions in the order they were written (their
/// timestamps), as far as memory allows. A template over the message type, so that it is tested
/// without Kafka.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sendq::ctl::detail {

/// Where a DLQ record's request was read from (its sendq-origin-* or sendq-source-* headers): one
/// key's requests come from one partition, so that offset orders records written in the same
/// millisecond.
struct record_source {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};

/// Merges the records of several partitions, each read in offset order, into timestamp order
/// (ties: by their source's offset when they come from the same source partition, else by
/// partition and offset). A record is released once every partition still being read has one
/// buffered, so that none can come before it; done() says a partition has no more to come (the
/// reader's own account: reader::reading). Past about `max_bytes`
/// buffered (a partition far behind the others), the earliest buffered record is released anyway,
/// and overflowed() says the order may be broken there.
template <class Message>
class timestamp_merge {
 public:
  /// `partitions`: those being read (leave out those with nothing to read).
  timestamp_merge(const std::vector<std::int32_t>& partitions, std::size_t max_bytes) : max_bytes_(max_bytes) {
    for (const auto p : partitions) parts_[p];
  }

  void add(Message m, record_source source = {}) {
    auto& part = parts_[m.partition()];
    entry e{std::move(m), std::move(source)};
    bytes_ += size_of(e);
    part.buffered.push_back(std::move(e));
  }

  /// `partition` has nothing more to come (at its range's end, or short of it).
  void done(std::int32_t partition) {
    if (auto it = parts_.find(partition); it != parts_.end()) it->second.done = true;
  }

  /// The next record in timestamp order, or nullopt until one is known to be next.
  std::optional<Message> next() {
    partition* first = nullptr;
    bool waiting = false;  // a partition that may still bring an earlier record
    for (auto& [p, part] : parts_) {
      if (part.buffered.empty()) {
        waiting = waiting || !part.done;
      } else if (!first || earlier(part.buffered.front(), first->buffered.front())) {
        first = &part;
      }
    }
    if (!first || (waiting && bytes_ <= max_bytes_)) return std::nullopt;
    overflowed_ = overflowed_ || waiting;
    entry e = std::move(first->buffered.front());
    first->buffered.pop_front();
    bytes_ -= size_of(e);
    return std::move(e.m);
  }

  bool overflowed() const { return overflowed_; }
  /// The earliest timestamp of a record still held, if any.
  std::optional<std::int64_t> earliest_held_ms() const {
    std::optional<std::int64_t> out;
    for (const auto& [p, part] : parts_) {
      for (const auto& e : part.buffered) {
        if (!out || e.m.timestamp_ms() < *out) out = e.m.timestamp_ms();
      }
    }
    return out;
  }

 private:
  struct entry {
    Message m;
    record_source source;
  };
  struct partition {
    bool done = false;
    std::deque<entry> buffered;
  };

  // Approximate: the headers and librdkafka's own buffers are not counted.
  static std::size_t size_of(const entry& e) {
    return e.m.payload().size() + e.m.key().size() + e.source.topic.size() + 128;
  }
  static bool earlier(const entry& a, const entry& b) {
    if (a.m.timestamp_ms() != b.m.timestamp_ms()) return a.m.timestamp_ms() < b.m.timestamp_ms();
    if (a.source.offset >= 0 && b.source.offset >= 0 && a.source.partition == b.source.partition &&
        a.source.topic == b.source.topic) {
      return a.source.offset < b.source.offset;
    }
    if (a.m.partition() != b.m.partition()) return a.m.partition() < b.m.partition();
    return a.m.offset() < b.m.offset();
  }

  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  bool overflowed_ = false;
  std::map<std::int32_t, partition> parts_;
};

}  // namespace sendq::ctl::detail
