#pragma once
/// Where the gateway's records go: Kafka in production, a fake in tests.
#include <functional>
#include <string>
#include <string_view>

namespace sendq::gateway {

/// Called exactly once per queued record, from any thread: "" when the broker acknowledged it,
/// else the reason it was not written.
using ack_callback = std::function<void(const std::string& error)>;

class record_sink {
 public:
  virtual ~record_sink() = default;
  /// Queues a record without blocking. Returns "" (and calls `on_ack` later) or the reason it
  /// could not be queued (then `on_ack` is never called).
  virtual std::string produce(std::string_view topic, std::string_view key, std::string_view value,
                              ack_callback on_ack) = 0;
};

}  // namespace sendq::gateway
