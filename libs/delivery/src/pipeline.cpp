#include "sendq/delivery/pipeline.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <random>
#include <semaphore>
#include <thread>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

#include "sendq/core/request_decoder.hpp"
#include "sendq/core/result_encoder.hpp"
#include "sendq/delivery/offset_tracker.hpp"
#include "sendq/delivery/outcome.hpp"
#include "sendq/http/client.hpp"
#include "sendq/kafka/consumer.hpp"
#include "sendq/kafka/producer.hpp"
#include "sendq/log/logger.hpp"
#include "sendq/metrics/worker_metrics.hpp"

namespace sendq::delivery {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using core::delivery_status;
using core::error_kind;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One configured (provider, account) with everything needed to call it.
struct route {
  std::unique_ptr<providers::provider> provider;
  const providers::account* account = nullptr;
  http::endpoint endpoint;
};

// A consumed record from consumption until its result (and DLQ record) is acknowledged.
struct record {
  kafka::message msg;
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::uint64_t generation = 0;
  std::atomic<int> pending_acks{0};
};

}  // namespace

struct pipeline::impl : kafka::rebalance_listener {
  const config::config& cfg;
  std::string brokers;
  log::logger& log;
  metrics::worker_metrics& metrics;
  net::any_io_executor executor;
  http::client& http;

  std::unordered_map<std::string, route> routes;  // "provider\naccount"
  offset_tracker tracker;
  std::counting_semaphore<> slots;
  std::atomic<long> in_flight{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::unique_ptr<kafka::consumer> consumer;
  std::unique_ptr<kafka::producer> producer;
  std::thread kafka_thread;
  std::thread producer_thread;
  std::atomic<bool> producer_run{true};
  std::mutex drain_mutex;
  std::condition_variable drained;

  impl(const config::config& c, std::string b, log::logger& l, metrics::worker_metrics& m, net::any_io_executor ex,
       http::client& h)
      : cfg(c), brokers(std::move(b)), log(l), metrics(m), executor(ex), http(h), slots(c.worker.max_in_flight) {
    for (const auto& a : cfg.accounts) {
      route r;
      r.provider = providers::make_provider(a.provider);
      r.account = &a;
      std::string err;
      auto ep = http::endpoint::parse(a.base_url, &err);
      if (!ep) throw config::config_error("providers." + a.provider + "." + a.name + ".base_url: " + err);
      r.endpoint = *ep;
      routes.emplace(a.provider + "\n" + a.name, std::move(r));
    }
  }

  // ---- rebalance_listener (Kafka thread) ----
  void on_assigned(const std::vector<kafka::partition_offset>& p) override {
    metrics.assigned_partitions.Set(static_cast<double>(p.size()));
  }
  void on_revoked(const std::vector<kafka::partition_offset>& p) override {
    // Commit what is finished for these partitions; unfinished records are redelivered to the
    // next owner (at-least-once), and their late completions are ignored by the tracker.
    auto finished = tracker.release(p);
    if (!finished.empty()) consumer->commit(finished, true);
    metrics.assigned_partitions.Set(0);
  }

  // ---- Kafka thread ----
  void consume_loop() {
    auto last_commit = std::chrono::steady_clock::now();
    const auto commit_every = std::chrono::milliseconds(cfg.worker.commit_interval_ms);
    auto maybe_commit = [&](bool force) {
      const auto now = std::chrono::steady_clock::now();
      if (!force && now - last_commit < commit_every) return;
      last_commit = now;
      consumer->commit(tracker.take_committable(), false);
    };
    while (!stopping.load()) {
      auto batch = consumer->poll(256, 100ms);
      for (auto& m : batch) {
        // Bounded memory: wait for a free slot (results being acknowledged free them).
        while (!slots.try_acquire_for(50ms)) {
          maybe_commit(false);
          if (stopping.load()) break;
        }
        if (stopping.load()) break;  // not tracked: redelivered after restart
        metrics.requests_consumed.Increment();
        auto rec = std::make_shared<record>();
        rec->topic = std::string(m.topic());
        rec->partition = m.partition();
        rec->offset = m.offset();
        rec->generation = tracker.track(rec->topic, rec->partition, rec->offset);
        rec->msg = std::move(m);
        in_flight.fetch_add(1);
        metrics.in_flight.Increment();
        net::co_spawn(executor, deliver(rec), net::detached);
      }
      maybe_commit(false);
      metrics.producer_queue_length.Set(producer->queue_length());
    }
    // Drain: in-flight records may finish within the grace period.
    {
      std::unique_lock lock(drain_mutex);
      const auto grace = std::chrono::milliseconds(cfg.worker.shutdown_grace_ms);
      if (!drained.wait_for(lock, grace, [&] { return in_flight.load() == 0; })) {
        log.warn("pipeline", "grace period over with requests unfinished; they will be redelivered",
                 {{"in_flight", std::to_string(in_flight.load())}});
      }
    }
    consumer->commit(tracker.take_committable(), true);
    consumer->close();
  }

  // ---- Producer thread ----
  void producer_loop() {
    while (producer_run.load()) producer->poll(100ms);
  }

  // Delivery report for a result or DLQ record of `rec` (producer thread).
  void on_delivery(void* opaque, const std::string& error) {
    auto* holder = static_cast<std::shared_ptr<record>*>(opaque);
    std::shared_ptr<record> rec = std::move(*holder);
    delete holder;
    if (!error.empty()) {
      // The idempotent producer already retried for message.timeout.ms: Kafka is unreachable.
      // Leave the offset uncommitted so the record is processed again after a restart.
      log.error("pipeline", "result not acknowledged by Kafka; offset stays uncommitted",
                {{"error", error}, {"partition", std::to_string(rec->partition)}, {"offset", std::to_string(rec->offset)}});
      return;
    }
    if (rec->pending_acks.fetch_sub(1) == 1) finish(*rec);
  }

  void finish(record& rec) {
    tracker.done(rec.topic, rec.partition, rec.offset, rec.generation);
    metrics.in_flight.Decrement();
    slots.release();
    if (in_flight.fetch_sub(1) == 1) {
      std::lock_guard lock(drain_mutex);
      drained.notify_all();
    }
  }

  // ---- I/O threads ----
  net::awaitable<void> deliver(std::shared_ptr<record> rec) {
    thread_local core::request_decoder decoder(static_cast<std::size_t>(cfg.worker.max_request_bytes));
    core::send_request req;
    core::delivery_result res;
    res.source = {rec->topic, rec->partition, rec->offset};
    const std::string_view bytes = rec->msg.payload();

    auto finish_with = [&](delivery_status s, std::optional<core::failure> f) {
      res.status = s;
      res.error = std::move(f);
    };

    if (auto err = decoder.decode(bytes, req)) {
      finish_with(delivery_status::rejected, std::move(err));
    } else {
      if (!req.created_at_ms && rec->msg.timestamp_ms() > 0) req.created_at_ms = rec->msg.timestamp_ms();
      auto it = routes.find(req.provider + "\n" + req.account);
      if (it == routes.end()) {
        const bool provider_known = std::any_of(cfg.accounts.begin(), cfg.accounts.end(),
                                                [&](const auto& a) { return a.provider == req.provider; });
        if (!provider_known) {
          finish_with(delivery_status::rejected,
                      core::failure{error_kind::unknown_provider,
                                    "provider: '" + req.provider + "' is not configured on this worker"});
        } else {
          finish_with(delivery_status::rejected,
                      core::failure{error_kind::unknown_account, "account: '" + req.account +
                                                                     "' is not configured for provider " + req.provider});
        }
      } else {
        co_await send_with_retries(it->second, req, res);
      }
    }
    fill_identity(req, res, rec);
    publish(rec, res);
  }

  net::awaitable<void> send_with_retries(const route& r, const core::send_request& req, core::delivery_result& res) {
    auto built = r.provider->build(req, *r.account);
    if (auto* f = std::get_if<core::failure>(&built)) {
      res.status = delivery_status::rejected;
      res.error = *f;
      co_return;
    }
    const auto& call = std::get<providers::http_call>(built);
    const int max_attempts = req.max_attempts.value_or(cfg.worker.max_attempts);
    const std::string provider(r.provider->name());
    auto& duration = metrics.request_duration_for(provider);
    thread_local std::minstd_rand rng{std::random_device{}()};
    std::string last_error;

    for (int attempt = 1;; ++attempt) {
      if (req.deadline_ms && now_ms() >= *req.deadline_ms) {
        res.status = delivery_status::expired;
        res.error = core::failure{error_kind::expired, "deadline: passed before delivery" +
                                                           (last_error.empty() ? std::string() : " (last: " + last_error + ")")};
        co_return;
      }
      http::request hr;
      hr.method = call.method;
      hr.target = r.endpoint.base_path + call.path_and_query;
      hr.content_type = call.content_type;
      hr.headers = call.headers;
      hr.body = call.body;
      hr.timeout = std::chrono::milliseconds(cfg.worker.request_timeout_ms);
      if (req.deadline_ms) {
        hr.timeout = std::min(hr.timeout, std::chrono::milliseconds(std::max<std::int64_t>(1, *req.deadline_ms - now_ms())));
      }
      auto result = co_await http.send(r.endpoint, std::move(hr));
      res.attempts = attempt;
      if (attempt > 1) metrics.retries.Add({{"provider", provider}}).Increment();

      providers::reply_outcome o;
      if (result.ok) {
        duration.Observe(std::chrono::duration<double>(result.elapsed).count());
        res.http_status = static_cast<int>(result.ok->status);
        std::optional<std::chrono::milliseconds> retry_after;
        if (result.ok->retry_after) retry_after = *result.ok->retry_after;
        o = r.provider->classify(result.ok->status, result.ok->content_type, result.ok->body, retry_after);
      } else {
        res.http_status.reset();
        o = classify_transport(result.kind, result.message);
      }
      metrics.attempts.Add({{"provider", provider}, {"outcome", std::string(to_string(o.cls))}}).Increment();
      if (!o.provider_code.empty()) res.provider_code = o.provider_code;

      if (o.cls == providers::outcome_class::delivered) {
        res.status = delivery_status::delivered;
        // Providers without an id of their own (gps) know the message by our id (IdentityID).
        res.provider_message_id = o.provider_message_id.empty() ? req.id : o.provider_message_id;
        res.error.reset();
        co_return;
      }
      last_error = o.message;
      if (!should_retry(o, *r.provider, *r.account)) {
        res.status = delivery_status::failed;
        if (o.cls == providers::outcome_class::ambiguous) {
          res.error = core::failure{error_kind::ambiguous, o.message + " (may have been delivered; " + provider +
                                                               " does not deduplicate, so it is not retried)"};
        } else {
          res.error = core::failure{o.kind, o.message};
        }
        co_return;
      }
      if (attempt >= max_attempts) {
        res.status = delivery_status::failed;
        res.error = core::failure{error_kind::retries_exhausted,
                                  std::to_string(attempt) + " attempts failed; last: " + o.message};
        co_return;
      }
      // Exponential back-off with full jitter, at least what the provider asked for.
      const auto base = std::min<std::int64_t>(cfg.worker.max_retry_backoff_ms,
                                               static_cast<std::int64_t>(cfg.worker.retry_backoff_ms) << std::min(attempt - 1, 20));
      auto wait = std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(base / 2, std::max<std::int64_t>(base, 1))(rng));
      if (o.retry_after) wait = std::max(wait, *o.retry_after);
      net::steady_timer timer(co_await net::this_coro::executor);
      timer.expires_after(wait);
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
  }

  void fill_identity(const core::send_request& req, core::delivery_result& res, const std::shared_ptr<record>& rec) {
    // Undecodable records have no usable id: name them by their position so they can be found.
    res.id = req.id.empty() ? rec->topic + ":" + std::to_string(rec->partition) + ":" + std::to_string(rec->offset) : req.id;
    res.provider = req.provider;
    res.account = req.account;
    res.type = res.status == delivery_status::rejected && req.provider.empty() ? "" : std::string(core::to_string(req.type));
    res.to = req.to;
    res.created_at_ms = req.created_at_ms;
    res.completed_at_ms = now_ms();
    if (res.created_at_ms) res.latency_ms = std::max<std::int64_t>(0, res.completed_at_ms - *res.created_at_ms);
  }

  void publish(const std::shared_ptr<record>& rec, const core::delivery_result& res) {
    thread_local std::string json;
    json.clear();
    core::encode_result(res, json);
    const bool to_dlq = res.status != delivery_status::delivered;
    rec->pending_acks.store(to_dlq ? 2 : 1);

    // Metric labels must stay bounded: names that are not configured are reported as "unknown".
    const bool routed = routes.count(res.provider + "\n" + res.account) != 0;
    const std::string_view provider_label = routed ? std::string_view(res.provider) : "unknown";
    const std::string_view account_label = routed ? std::string_view(res.account) : "unknown";
    const std::string_view kind = res.error ? core::to_string(res.error->kind) : "";
    metrics.count_delivery(provider_label, account_label, core::to_string(res.status), kind);
    if (res.latency_ms) metrics.end_to_end_for(provider_label).Observe(static_cast<double>(*res.latency_ms) / 1000.0);
    if (res.status == delivery_status::delivered) {
      log.debug("pipeline", "delivered", {{"id", res.id}, {"provider", res.provider}});
    } else {
      log.info("pipeline", "request ended without delivery",
               {{"id", res.id}, {"status", core::to_string(res.status)}, {"kind", kind},
                {"error", res.error ? std::string_view(res.error->message) : ""}});
    }

    produce_or_retry(cfg.kafka.results_topic, res.id, json, {}, rec);
    if (to_dlq) {
      metrics.dlq_records.Add({{"error_kind", std::string(kind)}}).Increment();
      kafka::header_list headers{
          {"sendq-status", std::string(core::to_string(res.status))},
          {"sendq-error-kind", std::string(kind)},
          {"sendq-error-message", res.error ? res.error->message : ""},
          {"sendq-source-topic", rec->topic},
          {"sendq-source-partition", std::to_string(rec->partition)},
          {"sendq-source-offset", std::to_string(rec->offset)},
      };
      produce_or_retry(cfg.kafka.dlq_topic, res.id, rec->msg.payload(), headers, rec);
    }
  }

  void produce_or_retry(const std::string& topic, std::string_view key, std::string_view value,
                        const kafka::header_list& headers, const std::shared_ptr<record>& rec) {
    auto* holder = new std::shared_ptr<record>(rec);  // released in on_delivery
    for (int i = 0;; ++i) {
      auto err = producer->produce(topic, key, value, headers, holder);
      if (err.empty()) return;
      // Only a full local queue is expected here; it drains as the producer thread polls.
      if (i % 100 == 0) log.warn("pipeline", "producer queue full; waiting", {{"error", err}});
      std::this_thread::sleep_for(5ms);
    }
  }
};

pipeline::pipeline(const config::config& cfg, std::string brokers, log::logger& log, metrics::worker_metrics& metrics,
                   boost::asio::any_io_executor executor, http::client& http)
    : impl_(std::make_unique<impl>(cfg, std::move(brokers), log, metrics, executor, http)) {}

pipeline::~pipeline() { stop(); }

void pipeline::start() {
  auto& d = *impl_;
  d.producer = std::make_unique<kafka::producer>(
      kafka::producer_options{d.brokers, d.cfg.kafka.librdkafka}, d.log,
      [&d](void* opaque, const std::string& err) { d.on_delivery(opaque, err); });
  d.consumer = std::make_unique<kafka::consumer>(
      kafka::consumer_options{d.brokers, d.cfg.kafka.group_id, {d.cfg.kafka.requests_topic}, d.cfg.kafka.librdkafka},
      d.log, d);
  d.producer_thread = std::thread([&d] { d.producer_loop(); });
  d.kafka_thread = std::thread([&d] { d.consume_loop(); });
}

void pipeline::stop() {
  auto& d = *impl_;
  if (d.stopped.exchange(true)) return;
  d.stopping = true;
  if (d.kafka_thread.joinable()) d.kafka_thread.join();
  if (d.producer) {
    if (int left = d.producer->flush(10s); left > 0) {
      d.log.error("pipeline", "records not acknowledged at shutdown", {{"count", std::to_string(left)}});
    }
  }
  d.producer_run = false;
  if (d.producer_thread.joinable()) d.producer_thread.join();
}

std::string pipeline::readiness() const {
  if (impl_->stopping.load()) return "stopping";
  if (!impl_->consumer || impl_->consumer->assigned_count() == 0) return "no partitions assigned yet";
  return {};
}

}  // namespace sendq::delivery
