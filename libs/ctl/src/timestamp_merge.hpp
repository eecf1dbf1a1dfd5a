#pragma once
/// redrive's order: the records of several partitions in the order they were written (their
/// timestamps), as far as memory allows. A template over the message type, so that it is tested
/// without Kafka.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>

namespace sendq::ctl::detail {

/// Merges the records of several partitions, each read in offset order, into timestamp order
/// (ties: partition, then offset). A record is released once every partition still being read
/// has one buffered, so that none can come before it; a partition is done at its range's end, or
/// when finish() says the read ended. Past `max_bytes` buffered (a partition far behind the
/// others, or one that ends short of its range), the earliest buffered record is released anyway,
/// and overflowed() says the order may be broken there.
template <class Message>
class timestamp_merge {
 public:
  /// `ends`: each partition's end offset (exclusive); leave out partitions with nothing to read.
  timestamp_merge(const std::map<std::int32_t, std::int64_t>& ends, std::size_t max_bytes) : max_bytes_(max_bytes) {
    for (const auto& [p, end] : ends) parts_[p].end = end;
  }

  void add(Message m) {
    auto& part = parts_[m.partition()];
    if (m.offset() + 1 >= part.end) part.done = true;
    bytes_ += size_of(m);
    part.buffered.push_back(std::move(m));
  }

  /// The read ended: no partition has more to come.
  void finish() {
    for (auto& [p, part] : parts_) part.done = true;
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
    Message m = std::move(first->buffered.front());
    first->buffered.pop_front();
    bytes_ -= size_of(m);
    return m;
  }

  bool overflowed() const { return overflowed_; }
  std::size_t buffered_bytes() const { return bytes_; }

 private:
  struct partition {
    std::int64_t end = 0;
    bool done = false;
    std::deque<Message> buffered;
  };

  static std::size_t size_of(const Message& m) { return m.payload().size() + m.key().size() + 128; }
  static bool earlier(const Message& a, const Message& b) {
    if (a.timestamp_ms() != b.timestamp_ms()) return a.timestamp_ms() < b.timestamp_ms();
    if (a.partition() != b.partition()) return a.partition() < b.partition();
    return a.offset() < b.offset();
  }

  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  bool overflowed_ = false;
  std::map<std::int32_t, partition> parts_;
};

}  // namespace sendq::ctl::detail
