#pragma once
/// The delivery pipeline: consume → decode → route → send → classify → produce the result →
/// commit. Threads:
///
///   kafka thread ──poll──▶ (slot acquired) ──post──▶ io threads: deliver() coroutine
///        ▲   │ commit every commit_interval                    │ produce result (+ DLQ)
///        │   ▼                                                  ▼
///   offset_tracker ◀──────── done(offset) ◀─── producer thread: delivery reports
///
/// A slot (one of max_in_flight) is held from consumption until the result is acknowledged by
/// the broker; only then is the offset marked done, so commits never pass an unfinished record.
///
/// Each I/O thread is a shard: its own io_context and HTTP client (connection pool). All the
/// requests of one ordering key run on the shard the key hashes to, so a delivery never hops
/// between threads, and connections need no strand.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "sendq/config/config.hpp"

namespace sendq::log {
class logger;
}
namespace sendq::metrics {
struct worker_metrics;
}
namespace sendq::http {
class client;
}

namespace sendq::delivery {

/// One I/O thread's executor and the HTTP client whose connections live on it.
struct io_shard {
  boost::asio::any_io_executor executor;
  http::client* http = nullptr;
};

class pipeline {
 public:
  /// `brokers` is the resolved bootstrap list (the embedded cluster's when config has none).
  /// `shards` (at least one) run the deliveries; a key always goes to the same one.
  pipeline(const config::config& cfg, std::string brokers, log::logger& log, metrics::worker_metrics& metrics,
           std::vector<io_shard> shards);
  ~pipeline();
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  /// Called once, from any thread, when the pipeline cannot go on: a result, DLQ record or parked
  /// request that Kafka refused for good (a fatal error of the idempotent producer, or no
  /// acknowledgement within message.timeout.ms). The caller should stop() and exit non-zero:
  /// unfinished offsets stay uncommitted, and their records are redelivered after a restart.
  using failure_handler = std::function<void(const std::string& reason)>;

  /// Starts the Kafka and producer threads. Throws on a Kafka configuration error.
  void start(failure_handler on_failure = {});
  /// Stops taking new records, waits up to shutdown_grace_ms for in-flight ones, produces their
  /// results, commits what is finished, and leaves the group. Idempotent.
  void stop();
  /// Cuts stop()'s wait for in-flight requests short (an operator's second SIGTERM): stop() then
  /// commits what finished and leaves; the rest is redelivered after a restart. Any thread.
  void hurry();
  /// Replaces the provider accounts and rate limits (SIGHUP) without stopping: deliveries in
  /// flight finish with the accounts they started with; circuit breakers of kept accounts keep
  /// their state. Throws (and changes nothing) when `next` is unusable. Worker settings and
  /// Kafka settings need a restart.
  void reload(const config::config& next);
  /// Requests consumed and not finished (after stop(): those given up at the grace period).
  long unfinished() const;
  /// Route gates the I/O threads keep (one per configured route and thread used; tests). Waits
  /// for each I/O thread: call it from another thread, while they run.
  std::size_t route_gates() const;
  /// "" or why the pipeline failed (see failure_handler).
  std::string failure() const;
  /// "" when ready (assigned partitions, not stopping), else the reason. Any thread.
  std::string readiness() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sendq::delivery
