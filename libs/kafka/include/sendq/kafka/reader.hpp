#pragma once
/// Reads ranges of a topic without a consumer group (assign + seek): by offset, by time
/// (offsets_for_times), up to the high watermark or following new records. For tools (sendqctl),
/// not for the worker. Every call may block: call it from a thread that may (never an I/O thread).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sendq/kafka/message.hpp"

namespace sendq::log {
class logger;
}

namespace sendq::kafka {

struct reader_options {
  std::string brokers;
  std::map<std::string, std::string> librdkafka;  ///< passthrough settings (override ours)
};

/// Offsets [begin, end) of one partition; end = -1 follows the partition without end.
struct partition_range {
  std::int32_t partition = 0;
  std::int64_t begin = 0;
  std::int64_t end = -1;
};

class reader {
 public:
  /// Throws std::runtime_error naming the setting when librdkafka refuses the configuration.
  reader(const reader_options& opts, log::logger& log);
  ~reader();
  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;

  /// Partition ids of `topic`; throws std::runtime_error when the topic does not exist.
  std::vector<std::int32_t> partitions(const std::string& topic, std::chrono::milliseconds timeout);
  /// [low, high) watermarks of a partition (queried from the broker).
  std::pair<std::int64_t, std::int64_t> watermarks(const std::string& topic, std::int32_t partition,
                                                   std::chrono::milliseconds timeout);
  /// The watermarks of each of `partitions`, in their order.
  std::vector<std::pair<std::int64_t, std::int64_t>> watermarks(const std::string& topic,
                                                                const std::vector<std::int32_t>& partitions,
                                                                std::chrono::milliseconds timeout);
  /// The first offset whose timestamp is >= `epoch_ms` in each partition (the high watermark
  /// where every record is older), or -1 where the broker cannot look up times (librdkafka's mock
  /// cluster): callers then scan and filter by message timestamp. Replaces any assignment.
  /// `known`, when given, holds each partition's watermarks (as watermarks() returns them, in the
  /// order of `partitions`): a caller that needs them anyway spares a query per partition.
  std::vector<std::int64_t> offsets_for_time(const std::string& topic, const std::vector<std::int32_t>& partitions,
                                             std::int64_t epoch_ms, std::chrono::milliseconds timeout,
                                             const std::vector<std::pair<std::int64_t, std::int64_t>>* known = nullptr);
  /// Starts reading `ranges` of `topic` (replaces any previous assignment). Empty ranges are skipped.
  void assign(const std::string& topic, const std::vector<partition_range>& ranges);
  /// Up to `max` messages, waiting up to `timeout` for the first. Records at or past a
  /// partition's end are dropped and that partition is released.
  std::vector<message> read(std::size_t max, std::chrono::milliseconds timeout);
  /// True when every bounded partition reached its end (and none follows without end).
  bool done() const;
  /// Whether `partition`, of a bounded range, is still being read: false once it reached its end,
  /// or ended short of it (records deleted by retention), or was never assigned.
  bool reading(std::int32_t partition) const;
  /// Where records were deleted (retention) before they were read, one line each: a bounded
  /// partition then ends there, short of its range; a followed one goes on from its oldest record
  /// left. Empty when nothing was skipped.
  const std::vector<std::string>& gaps() const;

  /// A header's value of `m` (the last one named `name`), or nullopt.
  static std::optional<std::string_view> header(const message& m, std::string_view name);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sendq::kafka
