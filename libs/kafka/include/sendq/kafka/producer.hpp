#pragma once
/// Idempotent producer (enable.idempotence=true, acks=all). produce() never blocks and may be
/// called from any thread; delivery reports are served by poll() on a thread of the caller's.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sendq::log {
class logger;
}

namespace sendq::kafka {

struct producer_options {
  std::string brokers;
  std::map<std::string, std::string> librdkafka;  ///< passthrough settings (override ours)
  /// Follow whether any broker is reachable (unreachable()): librdkafka's statistics every this
  /// many milliseconds; 0 = not followed.
  int reachability_interval_ms = 0;
  /// Called once, on a librdkafka thread, with "NAME: reason" when the producer hits a fatal
  /// error (an idempotent producer's broken sequence, say): every produce() fails from then on,
  /// so the owner should stop. Unset: the error is only logged.
  std::function<void(const std::string&)> on_fatal;
};

/// Brokers librdkafka's statistics JSON shows connected (state "UP"), bootstrap entries included;
/// -1 when the document is not such statistics.
int brokers_up_from_statistics(std::string_view json);

using header_list = std::vector<std::pair<std::string, std::string>>;

/// produce()'s partition when the key chooses it (librdkafka's partitioner: CRC32 of the key).
inline constexpr std::int32_t any_partition = -1;

/// Delivery report: `opaque` as given to produce(); `error` empty when the broker acknowledged.
using delivery_callback = std::function<void(void* opaque, const std::string& error)>;

/// True when `error` (from produce() or a delivery report) says the record is over
/// message.max.bytes, the producer's or the broker's: sending the same record again cannot help.
bool is_message_too_large(std::string_view error) noexcept;

/// True when `error` (from produce()) says the producer's local queue is full: poll() and try again.
bool is_queue_full(std::string_view error) noexcept;

class producer {
 public:
  producer(const producer_options& opts, log::logger& log, delivery_callback on_delivery);
  ~producer();
  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;

  /// Queues a record (bytes are copied) for `partition`, or the key's (any_partition). Returns ""
  /// or the reason it could not be queued (for example the local queue is full: try again after
  /// poll()). `timestamp_ms` (epoch ms) is the record's timestamp; 0: the time of this call.
  std::string produce(std::string_view topic, std::string_view key, std::string_view value,
                      const header_list& headers, void* opaque, std::int32_t partition = any_partition,
                      std::int64_t timestamp_ms = 0);
  /// Serves delivery reports for up to `timeout`.
  void poll(std::chrono::milliseconds timeout);
  /// Waits until every queued record is acknowledged or `timeout` passes; returns what is left.
  int flush(std::chrono::milliseconds timeout);
  /// Records queued or in flight to the broker (producer queue depth).
  int queue_length() const;
  /// With producer_options::reachability_interval_ms: "" while Kafka is reachable, else why not
  /// ("no Kafka broker reachable for 12 s: ..."). From librdkafka's report that all brokers are
  /// down until a broker is connected again or a record is acknowledged. Any thread.
  std::string unreachable() const;
  /// Raises a fatal error as librdkafka would (an idempotent producer's broken sequence), for
  /// tests and drills: on_fatal is called, and every produce() fails from then on.
  void inject_fatal_error(const std::string& reason);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sendq::kafka
