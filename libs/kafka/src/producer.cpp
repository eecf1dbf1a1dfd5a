#include "sendq/kafka/producer.hpp"

#include <mutex>
#include <shared_mutex>

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

  impl(log::logger& l, delivery_callback cb) : log(l), on_delivery(std::move(cb)) {}
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
    self->on_delivery(m->_private, m->err ? std::string(rd_kafka_err2str(m->err)) : std::string());
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
                              const header_list& headers, void* opaque, std::int32_t partition) {
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
      RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
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

}  // namespace sendq::kafka
