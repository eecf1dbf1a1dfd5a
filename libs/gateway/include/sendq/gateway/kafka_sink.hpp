#pragma once
/// record_sink on the idempotent Kafka producer (acks=all), with its own delivery-report thread.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "sendq/gateway/record_sink.hpp"
#include "sendq/kafka/producer.hpp"

namespace sendq::gateway {

class kafka_sink final : public record_sink {
 public:
  /// Starts the report thread. Throws std::runtime_error when librdkafka refuses the settings.
  kafka_sink(const kafka::producer_options& opts, log::logger& log);
  ~kafka_sink() override;

  std::string produce(std::string_view topic, std::string_view key, std::string_view value,
                      ack_callback on_ack) override;
  /// Waits up to `timeout` for every queued record, then stops the report thread.
  void stop(std::chrono::milliseconds timeout);
  /// "" while a Kafka broker is reachable, else why not (with producer_options::
  /// reachability_interval_ms set; see kafka::producer::unreachable). Any thread.
  std::string unreachable() const { return producer_->unreachable(); }

 private:
  std::unique_ptr<kafka::producer> producer_;
  std::atomic<bool> stopping_{false};
  std::thread reports_;  // serves delivery reports (librdkafka poll may block: never an I/O thread)
};

}  // namespace sendq::gateway
