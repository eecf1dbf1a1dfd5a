#include "sendq/gateway/kafka_sink.hpp"

namespace sendq::gateway {

kafka_sink::kafka_sink(const kafka::producer_options& opts, log::logger& log) {
  // The opaque of each record is a heap-allocated callback, released by its report.
  producer_ = std::make_unique<kafka::producer>(opts, log, [](void* opaque, const std::string& error) {
    std::unique_ptr<ack_callback> cb(static_cast<ack_callback*>(opaque));
    (*cb)(error);
  });
  reports_ = std::thread([this] {
    while (!stopping_.load()) producer_->poll(std::chrono::milliseconds(50));
  });
}

kafka_sink::~kafka_sink() { stop(std::chrono::milliseconds(5000)); }

std::string kafka_sink::produce(std::string_view topic, std::string_view key, std::string_view value,
                                ack_callback on_ack) {
  auto cb = std::make_unique<ack_callback>(std::move(on_ack));
  auto err = producer_->produce(topic, key, value, {}, cb.get());
  if (err.empty()) cb.release();  // owned by the delivery report now
  return err;
}

void kafka_sink::stop(std::chrono::milliseconds timeout) {
  if (!reports_.joinable()) return;
  producer_->flush(timeout);  // serves the remaining reports on this thread too
  stopping_ = true;
  reports_.join();
}

}  // namespace sendq::gateway
