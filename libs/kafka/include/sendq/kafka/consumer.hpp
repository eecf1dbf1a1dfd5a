#pragma once
/// High-level consumer in a consumer group with manual offset commits. Every call may block:
/// only the dedicated Kafka thread calls it (never an I/O thread).
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sendq/kafka/message.hpp"

namespace sendq::log {
class logger;
}

namespace sendq::kafka {

/// Consumer lag of one partition, from librdkafka's statistics.
struct partition_lag {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t lag = 0;  ///< messages between the committed offset and the high watermark
};

/// The assigned partitions' lag from librdkafka's statistics JSON
/// (topics.<t>.partitions.<p>.consumer_lag): partitions not fetched by this consumer
/// (fetch_state "none"), librdkafka's internal partition -1 and unknown lags (-1) are left out.
/// Empty when the JSON is not statistics.
std::vector<partition_lag> consumer_lags_from_statistics(std::string_view json);

struct consumer_options {
  std::string brokers;
  std::string group_id;
  std::vector<std::string> topics;
  std::map<std::string, std::string> librdkafka;  ///< passthrough settings (override ours)
  /// Called on the Kafka thread every statistics interval (5 s) with the assigned partitions' lag.
  std::function<void(const std::vector<partition_lag>&)> on_lag;
  /// Called on the Kafka thread (during poll() or close()) with the positions of a commit the
  /// broker refused, so that they can be committed again. Asynchronous commits report only here.
  std::function<void(const std::vector<partition_offset>&)> on_commit_failed;
};

/// Called on the Kafka thread during poll() when the group assigns or revokes partitions.
struct rebalance_listener {
  virtual ~rebalance_listener() = default;
  virtual void on_assigned(const std::vector<partition_offset>& partitions) = 0;
  /// Before the partitions go: the listener commits what is finished (commit_sync is allowed).
  virtual void on_revoked(const std::vector<partition_offset>& partitions) = 0;
};

class consumer {
 public:
  /// Throws std::runtime_error naming the setting when librdkafka refuses the configuration.
  consumer(const consumer_options& opts, log::logger& log, rebalance_listener& listener);
  ~consumer();
  consumer(const consumer&) = delete;
  consumer& operator=(const consumer&) = delete;

  /// Waits up to `timeout` for the first message, then takes what is ready, up to `max`.
  /// Consumer errors (not partition EOF) are logged and skipped; a fatal one is kept too
  /// (fatal_error()). Never returns a message of a
  /// partition revoked during the call (it was taken before the revocation).
  std::vector<message> poll(std::size_t max, std::chrono::milliseconds timeout);
  /// Commits positions (next offset to read). `sync` waits for the broker's answer.
  bool commit(const std::vector<partition_offset>& offsets, bool sync);
  /// Stops fetching these partitions (or the whole assignment when `partitions` is empty) until
  /// resume(); messages already fetched are dropped by librdkafka and fetched again later.
  void pause(const std::vector<partition_offset>& partitions);
  void resume(const std::vector<partition_offset>& partitions);
  /// Moves the fetch position of each partition to its `offset` (used with pause()). "" when
  /// every one moved, else the first error (the call's own, or a partition's): a caller that
  /// relies on the seek must not go on as if it had.
  [[nodiscard]] std::string seek(const std::vector<partition_offset>& partitions);
  /// The current assignment (offsets unset).
  std::vector<partition_offset> assignment() const;
  /// Leaves the group (revocation runs the listener first).
  void close();
  /// Number of partitions currently assigned.
  std::size_t assigned_count() const;
  /// Partitions `topic` has, as the cluster's metadata says (waits up to `timeout`), or nullopt
  /// when it cannot be told (no answer, an error for the topic). For the worker's own, subscribed
  /// topics; like any metadata request, one for an unknown topic may make a cluster that
  /// auto-creates topics (the embedded one does) create it.
  std::optional<std::size_t> partition_count(const std::string& topic, std::chrono::milliseconds timeout) const;
  /// How often poll() restarted a fetcher that had stopped on a full queue (see consumer.cpp).
  std::size_t fetch_restarts() const;
  /// librdkafka's fatal error ("NAME: reason") once poll() has seen one, else "". The consumer
  /// fetches nothing more then: its owner must stop.
  const std::string& fatal_error() const;

 private:
  void restart_stopped_fetch();
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sendq::kafka
