#include "sendq/kafka/producer.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>

#include <simdjson.h>

#include "rdkafka_handles.hpp"
#include "sendq/log/logger.hpp"

namespace sendq::kafka {

static_assert(any_partition == RD_KAFKA_PARTITION_UA);

struct producer::impl {
  log::logger& log;
  delivery_callback on_delivery;
  detail::kafka_handle rk;
  // Topic handles, made once per name. Producing by name instead makes librdkafka take its
  // handle-wide write lock and search its topic list on every record. A handful of topics
  // (results, DLQ, retry), so a vector searched under a shared lock.
  std::shared_mutex topics_mu;
  std::vector<std::pair<std::string, rd_kafka_topic_t*>> topics;

  // Reachability (producer_options::reachability_interval_ms): when librdkafka said all brokers
  // were down (steady-clock ms; 0 = reachable), and its words.
  bool follow_reachability = false;
  std::function<void(const std::string&)> on_fatal;  // producer_options::on_fatal
  std::atomic<bool> fatal_seen{false};
  std::atomic<std::int64_t> down_since_ms{0};
  mutable std::mutex down_mu;
  std::string down_reason;

  impl(log::logger& l, delivery_callback cb) : log(l), on_delivery(std::move(cb)) {}

  static std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  void reachable_again(const char* how) {
    if (down_since_ms.exchange(0) != 0) log.info("kafka", "a Kafka broker is reachable again", {{"seen_by", how}});
  }
  ~impl() {
    for (auto& [name, rkt] : topics) rd_kafka_topic_destroy(rkt);  // before the handle they belong to
  }

  rd_kafka_topic_t* topic(std::string_view name) {
    {
      std::shared_lock lock(topics_mu);
      for (auto& [n, rkt] : topics) {
        if (n == name) return rkt;
      }
    }
    std::unique_lock lock(topics_mu);
    for (auto& [n, rkt] : topics) {
      if (n == name) return rkt;
    }
    const std::string n(name);
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk.get(), n.c_str(), nullptr);
    if (rkt) topics.emplace_back(n, rkt);
    return rkt;  // null only on an invalid name: produce() reports it
  }

  static void on_report(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (self->follow_reachability && !m->err) self->reachable_again("an acknowledged record");
    self->on_delivery(m->_private, m->err ? std::string(rd_kafka_err2str(m->err)) : std::string());
  }

  // Set only when reachability is followed or on_fatal is: librdkafka then hands its errors here
  // instead of logging them, so they are logged here as it would.
  static void on_error(rd_kafka_t* handle, int err, const char* reason, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      {
        std::lock_guard lock(self->down_mu);
        self->down_reason = reason;
      }
      std::int64_t expected = 0;
      self->down_since_ms.compare_exchange_strong(expected, steady_ms());
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL && self->on_fatal && !self->fatal_seen.exchange(true)) {
      char cause_text[512] = {};
      const auto cause = rd_kafka_fatal_error(handle, cause_text, sizeof cause_text);
      self->on_fatal(std::string(rd_kafka_err2name(cause)) + ": " + (*cause_text ? cause_text : reason));
    }
    // A connection's failure is in librdkafka's own log lines already (log_cb).
    if (err != RD_KAFKA_RESP_ERR__TRANSPORT) {
      const auto level = err == RD_KAFKA_RESP_ERR__FATAL ? log::level::error : log::level::warn;
      self->log.write(level, "librdkafka", reason, {{"error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))}});
    }
  }

  static int on_stats(rd_kafka_t*, char* json, size_t len, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (brokers_up_from_statistics(std::string_view(json, len)) > 0) self->reachable_again("a connected broker");
    return 0;  // librdkafka frees the JSON
  }

  static void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    auto* self = static_cast<impl*>(rd_kafka_opaque(rk));
    const auto l = level <= 3 ? log::level::error : level == 4 ? log::level::warn : log::level::debug;
    if (self && self->log.enabled(l)) self->log.write(l, "librdkafka", buf, {{"facility", fac}});
  }
};

bool is_message_too_large(std::string_view error) noexcept {
  return error == rd_kafka_err2str(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) ||
         error == rd_kafka_err2str(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE);
}

bool is_queue_full(std::string_view error) noexcept { return error == rd_kafka_err2str(RD_KAFKA_RESP_ERR__QUEUE_FULL); }

producer::producer(const producer_options& opts, log::logger& log, delivery_callback on_delivery)
    : impl_(std::make_unique<impl>(log, std::move(on_delivery))) {
  detail::conf_handle conf(rd_kafka_conf_new());
  detail::set(conf.get(), "bootstrap.servers", opts.brokers);
  detail::set(conf.get(), "enable.idempotence", "true");  // implies acks=all, in-order, no dups
  detail::set(conf.get(), "acks", "all");
  detail::set(conf.get(), "linger.ms", "2");
  detail::set(conf.get(), "compression.type", "lz4");
  detail::set(conf.get(), "queue.buffering.max.messages", "1000000");
  detail::set(conf.get(), "log.connection.close", "false");
  detail::set_all(conf.get(), opts.librdkafka);
  // After the passthrough settings: a statistics.interval.ms of 0 there (shared with the workers)
  // would leave an outage's unreadiness to be cleared only by an acknowledged record, which an
  // unready gateway is never sent.
  if (opts.reachability_interval_ms > 0) {
    detail::set(conf.get(), "statistics.interval.ms", std::to_string(opts.reachability_interval_ms));
    impl_->follow_reachability = true;
    rd_kafka_conf_set_stats_cb(conf.get(), &impl::on_stats);
  }
  impl_->on_fatal = opts.on_fatal;
  if (opts.reachability_interval_ms > 0 || opts.on_fatal) rd_kafka_conf_set_error_cb(conf.get(), &impl::on_error);
  rd_kafka_conf_set_opaque(conf.get(), impl_.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &impl::on_report);
  rd_kafka_conf_set_log_cb(conf.get(), &impl::on_log);
  char err[512];
  impl_->rk.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
  if (!impl_->rk) throw std::runtime_error(detail::creation_error("kafka producer", err, opts.librdkafka));
  conf.release();
}

producer::~producer() = default;

std::string producer::produce(std::string_view topic, std::string_view key, std::string_view value,
                              const header_list& headers, void* opaque, std::int32_t partition,
                              std::int64_t timestamp_ms) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& [k, v] : headers) {
      rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(), static_cast<ssize_t>(v.size()));
    }
  }
  rd_kafka_topic_t* rkt = impl_->topic(topic);
  if (!rkt) {
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    return std::string("invalid topic '") + std::string(topic) + "': " + rd_kafka_err2str(rd_kafka_last_error());
  }
  const auto e = rd_kafka_producev(
      impl_->rk.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_HEADERS(hdrs),
      RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
  if (e) {
    if (hdrs) rd_kafka_headers_destroy(hdrs);  // not taken over on failure
    return rd_kafka_err2str(e);
  }
  return {};
}

void producer::poll(std::chrono::milliseconds timeout) { rd_kafka_poll(impl_->rk.get(), static_cast<int>(timeout.count())); }

int producer::flush(std::chrono::milliseconds timeout) {
  rd_kafka_flush(impl_->rk.get(), static_cast<int>(timeout.count()));
  return rd_kafka_outq_len(impl_->rk.get());
}

int producer::queue_length() const { return rd_kafka_outq_len(impl_->rk.get()); }

void producer::inject_fatal_error(const std::string& reason) {
  rd_kafka_test_fatal_error(impl_->rk.get(), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason.c_str());
}

std::string producer::unreachable() const {
  const auto since = impl_->down_since_ms.load();
  if (since == 0) return {};
  std::lock_guard lock(impl_->down_mu);
  return "no Kafka broker reachable for " + std::to_string((impl::steady_ms() - since) / 1000) + " s: " + impl_->down_reason;
}

int brokers_up_from_statistics(std::string_view json) {
  namespace od = simdjson::ondemand;
  const simdjson::padded_string padded(json);
  od::parser parser;
  od::document doc;
  od::object brokers;
  if (parser.iterate(padded).get(doc) || doc.find_field_unordered("brokers").get_object().get(brokers)) return -1;
  int up = 0;
  for (auto field : brokers) {
    od::object broker;
    std::string_view state;
    if (field.value().get_object().get(broker)) return -1;
    if (!broker.find_field_unordered("state").get_string().get(state) && state == "UP") ++up;
  }
  return up;
}

}  // namespace sendq::kafka
