#pragma once
// A blocking produce loop for the tools: rate limit, retry when librdkafka's queue is full,
// count acknowledgements. Runs on the tool's main thread (blocking is fine in a CLI).
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "sendq/ctl/common.hpp"
#include "sendq/kafka/producer.hpp"
#include "sendq/log/logger.hpp"

namespace sendq::ctl::detail {

/// produce()'s answer when a signal came while it waited for room in a full queue.
inline constexpr std::string_view interrupted_error = "interrupted";
/// produce()'s answer when the queue was full and no record was acknowledged for 60 s.
inline constexpr std::string_view stalled_error =
    "Kafka took no record for 60 s (the producer's queue stayed full: broker down, no authorization?)";

class sink {
 public:
  /// `due_timestamps` (with a rate): each record's Kafka timestamp is the time it was due under
  /// the rate (schedule), not the time it was produced.
  sink(const kafka::producer_options& opts, double rate, log::logger& log, bool due_timestamps = false)
      : limiter_(rate),
        schedule_(due_timestamps && rate > 0 ? std::optional<schedule>(std::in_place, rate) : std::nullopt),
        producer_(opts, log, [this](void*, const std::string& error) {
          if (error.empty()) {
            ++acked_;
            full_since_.reset();
          } else {
            ++failed_;
            if (first_error_.empty()) first_error_ = error;
          }
        }) {}

  /// Queues one record; returns "" or why librdkafka refused it (e.g. over message.max.bytes,
  /// unknown topic). Only a full local queue is waited out: any other refusal would repeat forever.
  std::string produce(const std::string& topic, std::string_view key, std::string_view value,
                      const kafka::header_list& headers) {
    std::int64_t timestamp_ms = 0;  // now
    if (schedule_) {
      const auto due = schedule_->next();
      if (!due) return std::string(interrupted_error);
      timestamp_ms = *due;
    } else if (!limiter_.acquire()) {
      return std::string(interrupted_error);  // a signal came while it waited
    }
    for (;;) {
      auto err = producer_.produce(topic, key, value, headers, nullptr, kafka::any_partition, timestamp_ms);
      if (err.empty()) break;
      if (!kafka::is_queue_full(err)) return err;
      if (interrupted()) return std::string(interrupted_error);  // not waiting on a Kafka that is away
      producer_.poll(std::chrono::milliseconds(50));  // queue full: let acks drain
      // The tools' 60 s rule for a stalled read holds for writing too: 60 s from the queue's
      // first filling without an acknowledgement since. Records failing by message.timeout.ms
      // also make room, so only an acknowledgement counts as progress.
      const auto now = std::chrono::steady_clock::now();
      if (!full_since_) full_since_ = now;
      if (now - *full_since_ > std::chrono::seconds(60)) return std::string(stalled_error);
    }
    ++sent_;
    producer_.poll(std::chrono::milliseconds(0));
    return {};
  }
  /// Waits for every acknowledgement (up to `timeout`); true when all were acknowledged.
  bool finish(std::chrono::milliseconds timeout) {
    producer_.flush(timeout);
    return failed_.load() == 0 && acked_.load() == sent_;
  }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t acked() const { return acked_.load(); }
  std::uint64_t failed() const { return failed_.load() + (sent_ - acked_.load() - failed_.load()); }
  const std::string& first_error() const { return first_error_; }

 private:
  rate_limiter limiter_;
  std::optional<schedule> schedule_;
  std::uint64_t sent_ = 0;
  std::atomic<std::uint64_t> acked_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::string first_error_;  // written only inside poll/flush on this thread
  // When the queue was first found full with no acknowledgement since (cleared by one, inside
  // poll/flush on this thread).
  std::optional<std::chrono::steady_clock::time_point> full_since_;
  kafka::producer producer_;
};

}  // namespace sendq::ctl::detail
