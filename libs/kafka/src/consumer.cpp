#include "sendq/kafka/consumer.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <utility>

#include <simdjson.h>

#include "rdkafka_handles.hpp"
#include "sendq/log/logger.hpp"

namespace sendq::kafka {
namespace {

std::vector<partition_offset> to_vector(const rd_kafka_topic_partition_list_t* l) {
  std::vector<partition_offset> out;
  for (int i = 0; l && i < l->cnt; ++i) {
    out.push_back({l->elems[i].topic, l->elems[i].partition, l->elems[i].offset});
  }
  return out;
}

detail::partition_list make_list(const std::vector<partition_offset>& parts) {
  detail::partition_list l(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
  for (const auto& p : parts) {
    rd_kafka_topic_partition_list_add(l.get(), p.topic.c_str(), p.partition)->offset = p.offset;
  }
  return l;
}

}  // namespace

struct consumer::impl {
  log::logger& log;
  rebalance_listener& listener;
  detail::kafka_handle rk;
  std::atomic<std::size_t> assigned{0};
  bool closed = false;
  // Restarting a fetcher that stopped on a full queue (see restart_stopped_fetch). Poll thread only.
  struct queue_deleter {
    void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  };
  std::unique_ptr<rd_kafka_queue_t, queue_deleter> queue;  // the consumer queue; before rk goes
  double queued_min_messages = 0;
  double queued_max_bytes = 0;
  double average_bytes = 512;  // of the payloads polled lately
  bool maybe_stopped = false;
  std::size_t fetch_restarts = 0;
  std::set<std::pair<std::string, std::int32_t>> paused;  // by pause(), until resume()
  std::vector<message>* polled = nullptr;  // the batch poll() is collecting, while it runs
  std::string fatal;                       // librdkafka's fatal error, once raised (poll thread only)

  impl(log::logger& l, rebalance_listener& r) : log(l), listener(r) {}

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    const auto list = to_vector(parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->log.info("kafka", "partitions assigned", {{"count", std::to_string(list.size())}});
      if (const auto e = rd_kafka_assign(rk, parts)) {
        // Nothing is fetched then (a cooperative assignor, which the configuration refuses): say
        // so, and own nothing.
        self->log.error("kafka", "taking the assigned partitions failed: nothing is consumed",
                        {{"error", rd_kafka_err2str(e)}});
        self->assigned = 0;
        self->paused.clear();
        self->listener.on_assigned({});
        return;
      }
      // A fresh assignment starts unpaused, as the listener expects. librdkafka keeps a pause the
      // application made on a partition object across a revoke and re-assignment (only its own
      // rebalance pause is reset), so a partition paused when a rebalance came would never be
      // fetched again.
      rd_kafka_resume_partitions(rk, parts);
      self->assigned = static_cast<std::size_t>(parts->cnt);
      self->paused.clear();
      self->maybe_stopped = false;
      self->listener.on_assigned(list);
    } else {
      self->log.info("kafka", "partitions revoked", {{"count", std::to_string(list.size())}});
      // Messages of these partitions that poll() took before this callback ran must not be
      // returned: the partitions' next owner reads them again from the committed offset, and
      // this worker may get them back too, after a re-read from lower offsets has begun.
      if (self->polled) {
        std::erase_if(*self->polled, [&](const message& m) { return in_partitions(m, list); });
      }
      self->listener.on_revoked(list);
      rd_kafka_assign(rk, nullptr);
      self->assigned = 0;
      self->paused.clear();
      self->maybe_stopped = false;
    }
  }

  std::function<void(const std::vector<partition_lag>&)> on_lag;
  std::function<void(const std::vector<partition_offset>&)> on_commit_failed;

  static void on_commit(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;  // nothing to commit
    std::vector<partition_offset> failed;
    rd_kafka_resp_err_t first = err;
    for (int i = 0; offsets && i < offsets->cnt; ++i) {
      const auto& p = offsets->elems[i];
      if ((err || p.err) && p.offset >= 0) failed.push_back({p.topic, p.partition, p.offset});
      if (!first) first = p.err;
    }
    if (failed.empty()) return;
    self->log.warn("kafka", "commit failed; committed again at the next commit",
                   {{"error", rd_kafka_err2str(first)}, {"partitions", std::to_string(failed.size())}});
    if (self->on_commit_failed) self->on_commit_failed(failed);
  }

  static int on_stats(rd_kafka_t*, char* json, size_t len, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (self->on_lag) self->on_lag(consumer_lags_from_statistics(std::string_view(json, len)));
    return 0;  // librdkafka frees the JSON
  }

  static void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    auto* self = static_cast<impl*>(rd_kafka_opaque(rk));
    // librdkafka's syslog levels: <=3 error, 4 warning, else info/debug.
    const auto l = level <= 3 ? log::level::error : level == 4 ? log::level::warn : log::level::debug;
    if (self && self->log.enabled(l)) self->log.write(l, "librdkafka", buf, {{"facility", fac}});
  }
};

consumer::consumer(const consumer_options& opts, log::logger& log, rebalance_listener& listener)
    : impl_(std::make_unique<impl>(log, listener)) {
  detail::conf_handle conf(rd_kafka_conf_new());
  detail::set(conf.get(), "bootstrap.servers", opts.brokers);
  detail::set(conf.get(), "group.id", opts.group_id);
  // At-least-once: offsets are committed by sendq only after the result is acknowledged.
  detail::set(conf.get(), "enable.auto.commit", "false");
  detail::set(conf.get(), "enable.auto.offset.store", "false");
  detail::set(conf.get(), "auto.offset.reset", "earliest");
  detail::set(conf.get(), "enable.partition.eof", "false");
  detail::set(conf.get(), "fetch.wait.max.ms", "20");
  // Prefetch is bounded by the worker's max_in_flight anyway: 64 MB (the default) of queued
  // messages only adds to the RSS when a large backlog waits. 4 MB is ~8,500 typical requests.
  // librdkafka 2.0.2 stops fetching when the queue reaches this (or queued.min.messages) and may
  // not look again for a second: poll() restarts it (restart_stopped_fetch). 8 MB took the peak
  // RSS at 10,000 in flight over a 1,000,000 backlog (256 partitions) to 101 MB, 4 MB to 89; in
  // four alternated drains the 4 MB worker was as fast (e2e-2026-12-07-queue-4mib.md).
  detail::set(conf.get(), "queued.max.messages.kbytes", "4096");
  // One fetch response is one buffer, up to fetch.max.bytes (50 MB by default) or 1 MB per
  // partition: with 64 partitions of backlog that alone was ~40 MB of the worker's peak RSS.
  // 4 MB (~8,000 typical requests) per fetch, 256 KB per partition, keep the pipeline fed.
  detail::set(conf.get(), "fetch.max.bytes", "4194304");
  detail::set(conf.get(), "max.partition.fetch.bytes", "262144");
  detail::set(conf.get(), "queued.min.messages", "20000");
  // A dead worker's partitions move on within 10 s (the default 45 s stalls a restart).
  detail::set(conf.get(), "session.timeout.ms", "10000");
  detail::set(conf.get(), "heartbeat.interval.ms", "1000");
  detail::set(conf.get(), "log.connection.close", "false");
  detail::set_all(conf.get(), opts.librdkafka);
  if (opts.on_lag) {
    // After the passthrough settings, which the gateway and tools share: a 0 there would leave
    // sendq_consumer_lag unreported. Another interval is kept (it only changes how fresh it is).
    const auto it = opts.librdkafka.find("statistics.interval.ms");
    if (it == opts.librdkafka.end() || it->second == "0") detail::set(conf.get(), "statistics.interval.ms", "5000");
    impl_->on_lag = opts.on_lag;
  }
  // librdkafka refuses a consumer whose fetch.max.bytes is below message.max.bytes: a larger
  // message.max.bytes (for larger requests) raises the fetch with it, unless that is set too.
  if (!opts.librdkafka.contains("fetch.max.bytes")) {
    char v[32];
    std::size_t n = sizeof v;
    if (rd_kafka_conf_get(conf.get(), "message.max.bytes", v, &n) == RD_KAFKA_CONF_OK && std::strtoll(v, nullptr, 10) > 4194304) {
      detail::set(conf.get(), "fetch.max.bytes", v);
    }
  }
  impl_->on_commit_failed = opts.on_commit_failed;
  rd_kafka_conf_set_opaque(conf.get(), impl_.get());
  rd_kafka_conf_set_offset_commit_cb(conf.get(), &impl::on_commit);
  rd_kafka_conf_set_stats_cb(conf.get(), &impl::on_stats);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &impl::on_rebalance);
  rd_kafka_conf_set_log_cb(conf.get(), &impl::on_log);
  char err[512];
  impl_->rk.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err));
  if (!impl_->rk) throw std::runtime_error(detail::creation_error("kafka consumer", err, opts.librdkafka));
  conf.release();  // owned by rk now
  rd_kafka_poll_set_consumer(impl_->rk.get());
  impl_->queue.reset(rd_kafka_queue_get_consumer(impl_->rk.get()));
  const auto setting = [&](const char* name) {
    char v[64];
    size_t n = sizeof v;
    return rd_kafka_conf_get(rd_kafka_conf(impl_->rk.get()), name, v, &n) == RD_KAFKA_CONF_OK ? std::atof(v) : 0.0;
  };
  impl_->queued_min_messages = setting("queued.min.messages");
  impl_->queued_max_bytes = setting("queued.max.messages.kbytes") * 1024;

  detail::partition_list topics(rd_kafka_topic_partition_list_new(static_cast<int>(opts.topics.size())));
  for (const auto& t : opts.topics) rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto e = rd_kafka_subscribe(impl_->rk.get(), topics.get()); e) {
    throw std::runtime_error(std::string("kafka consumer: subscribe failed: ") + rd_kafka_err2str(e));
  }
}

consumer::~consumer() {
  close();
  if (!impl_->fatal.empty() && impl_->rk) {
    // After a fatal error, rd_kafka_destroy() waits for ever for the group's leave (librdkafka
    // 2.0.2; seen with a fenced static member): destroy without closing the consumer again.
    impl_->queue.reset();
    rd_kafka_destroy_flags(impl_->rk.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
}

// librdkafka 2.0.2 stops fetching once the consumer queue holds queued.min.messages or
// queued.max.messages.kbytes, and looks again only when its broker thread wakes: on I/O, on an op
// for it, or after a second (librdkafka #2879; 2.3 added fetch.queue.backoff.ms). Neither the
// application popping messages nor resume() wakes it, so a consumer that empties the queue within
// the second waits for the rest of it: about 300 ms of every second in the benchmark's drain. A
// seek does wake it. So when the queue was near a limit and is empty now, every assigned
// partition that has a position and is not paused here is sought to that position (the offset
// after its last polled message): nothing is skipped or read twice, and fetching starts again at
// once. Near = half a limit, with the bytes limit counted in messages of the recent average size.
void consumer::restart_stopped_fetch() {
  auto& i = *impl_;
  const auto queued = static_cast<double>(rd_kafka_queue_length(i.queue.get()));
  const double limit = std::min(i.queued_min_messages, i.queued_max_bytes / std::max(i.average_bytes, 1.0));
  if (queued >= limit / 2) {
    i.maybe_stopped = true;
    return;
  }
  if (queued > 0 || !i.maybe_stopped) return;
  i.maybe_stopped = false;
  auto parts = make_list(assignment());
  rd_kafka_position(i.rk.get(), parts.get());
  detail::partition_list at(rd_kafka_topic_partition_list_new(parts->cnt));
  for (int k = 0; k < parts->cnt; ++k) {
    const auto& p = parts->elems[k];
    if (p.offset < 0 || i.paused.count({p.topic, p.partition})) continue;  // no position yet / paused here
    rd_kafka_topic_partition_list_add(at.get(), p.topic, p.partition)->offset = p.offset;
  }
  if (at->cnt == 0) return;
  if (rd_kafka_error_t* e = rd_kafka_seek_partitions(i.rk.get(), at.get(), 0)) {  // 0: asynchronous
    i.log.warn("kafka", "restarting the fetch failed", {{"error", rd_kafka_error_string(e)}});
    rd_kafka_error_destroy(e);
    return;
  }
  ++i.fetch_restarts;
}

std::size_t consumer::fetch_restarts() const { return impl_->fetch_restarts; }

const std::string& consumer::fatal_error() const { return impl_->fatal; }

std::vector<message> consumer::poll(std::size_t max, std::chrono::milliseconds timeout) {
  restart_stopped_fetch();
  std::vector<message> out;
  impl_->polled = &out;  // a revocation during the loop drops what it took of those partitions
  struct unset {
    impl& i;
    ~unset() { i.polled = nullptr; }
  } guard{*impl_};
  auto wait = static_cast<int>(timeout.count());
  while (out.size() < max) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(impl_->rk.get(), wait);
    wait = 0;
    if (!m) break;
    if (m->err) {
      if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        // The consumer cannot go on (a static member fenced by another with its
        // group.instance.id, say): nothing more will be fetched. The underlying error says why.
        char reason[512] = "";
        const auto cause = rd_kafka_fatal_error(impl_->rk.get(), reason, sizeof reason);
        if (impl_->fatal.empty()) {
          impl_->fatal = std::string(rd_kafka_err2name(cause)) + ": " + (*reason ? reason : rd_kafka_message_errstr(m));
          impl_->log.error("kafka", "fatal consumer error", {{"error", impl_->fatal}});
        }
      } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        impl_->log.warn("kafka", "consumer error", {{"error", rd_kafka_message_errstr(m)}});
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    impl_->average_bytes += (static_cast<double>(m->len) - impl_->average_bytes) / 1024;
    out.emplace_back(m);
  }
  return out;
}

bool consumer::commit(const std::vector<partition_offset>& offsets, bool sync) {
  if (offsets.empty()) return true;
  detail::partition_list l(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& o : offsets) {
    rd_kafka_topic_partition_list_add(l.get(), o.topic.c_str(), o.partition)->offset = o.offset;
  }
  const auto e = rd_kafka_commit(impl_->rk.get(), l.get(), sync ? 0 : 1);
  if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    impl_->log.warn("kafka", "commit failed", {{"error", rd_kafka_err2str(e)}});
    return false;
  }
  return true;
}


void consumer::pause(const std::vector<partition_offset>& partitions) {
  const auto parts = partitions.empty() ? assignment() : partitions;
  for (const auto& p : parts) impl_->paused.insert({p.topic, p.partition});
  auto l = make_list(parts);
  if (l->cnt > 0) rd_kafka_pause_partitions(impl_->rk.get(), l.get());
}

void consumer::resume(const std::vector<partition_offset>& partitions) {
  const auto parts = partitions.empty() ? assignment() : partitions;
  for (const auto& p : parts) impl_->paused.erase({p.topic, p.partition});
  auto l = make_list(parts);
  if (l->cnt > 0) rd_kafka_resume_partitions(impl_->rk.get(), l.get());
}

std::string consumer::seek(const std::vector<partition_offset>& partitions) {
  if (partitions.empty()) return "";
  // A wait for the seek that ends without its answer (seen once in CI, 1.3 s into a 5 s wait on
  // a loaded VM) leaves the seek queued or done: seeking to the same offsets again is harmless,
  // so a timed-out wait is tried again before the caller is told (the worker stops on it).
  std::string error;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto l = make_list(partitions);
    bool timed_out = false;
    error.clear();
    if (rd_kafka_error_t* e = rd_kafka_seek_partitions(impl_->rk.get(), l.get(), 5000)) {
      timed_out = rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT;
      error = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
    } else {
      // The call can succeed while a partition's own seek failed (__STATE, __TIMED_OUT, ...).
      for (int i = 0; i < l->cnt && error.empty(); ++i) {
        if (const auto err = l->elems[i].err; err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          timed_out = err == RD_KAFKA_RESP_ERR__TIMED_OUT;
          error = std::string(l->elems[i].topic) + "/" + std::to_string(l->elems[i].partition) + ": " + rd_kafka_err2str(err);
        }
      }
    }
    if (error.empty() || !timed_out) return error;
    impl_->log.warn("kafka", "seek not confirmed in time; seeking again", {{"error", error}, {"attempt", std::to_string(attempt)}});
  }
  return error;
}

std::vector<partition_offset> consumer::assignment() const {
  rd_kafka_topic_partition_list_t* l = nullptr;
  if (rd_kafka_assignment(impl_->rk.get(), &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l) return {};
  detail::partition_list owned(l);
  return to_vector(l);
}

void consumer::close() {
  if (impl_->closed || !impl_->rk) return;
  impl_->closed = true;
  if (!impl_->fatal.empty()) return;  // no longer a member: nothing to leave (see ~consumer)
  rd_kafka_consumer_close(impl_->rk.get());
}

std::size_t consumer::assigned_count() const { return impl_->assigned.load(); }

std::optional<std::size_t> consumer::partition_count(const std::string& topic, std::chrono::milliseconds timeout) const {
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> rkt(
      rd_kafka_topic_new(impl_->rk.get(), topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  if (!rkt) return std::nullopt;
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(impl_->rk.get(), 0, rkt.get(), &md, static_cast<int>(timeout.count())) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  std::optional<std::size_t> count;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0) {
    count = static_cast<std::size_t>(md->topics[0].partition_cnt);
  }
  rd_kafka_metadata_destroy(md);
  return count;
}

std::vector<partition_lag> consumer_lags_from_statistics(std::string_view json) {
  // On-Demand rather than a DOM: the statistics grow with the partitions (~0.6 MB at 256 per
  // topic), and a DOM parser allocates ~15 bytes per input byte (tape, strings, index) where
  // On-Demand needs ~7. Made per call: statistics come every 5 s, and a kept parser would hold
  // its buffers for good.
  namespace od = simdjson::ondemand;
  std::vector<partition_lag> lags;
  const simdjson::padded_string padded(json);
  od::parser parser;
  od::document doc;
  od::object topics;
  if (parser.iterate(padded).get(doc) || doc.find_field_unordered("topics").get_object().get(topics)) return lags;
  for (auto topic_field : topics) {
    std::string_view name;
    od::object topic;
    if (topic_field.unescaped_key().get(name)) return lags;
    const std::string topic_name(name);
    if (topic_field.value().get_object().get(topic)) return lags;
    od::object partitions;
    if (topic.find_field_unordered("partitions").get_object().get(partitions)) continue;
    for (auto partition_field : partitions) {
      od::object p;
      if (partition_field.value().get_object().get(p)) return lags;
      std::int64_t id = -1, lag = -1;
      std::string_view state;
      if (p.find_field_unordered("partition").get_int64().get(id) || id < 0) continue;  // the internal "-1"
      if (!p.find_field_unordered("fetch_state").get_string().get(state) && state == "none") continue;  // not ours
      if (p.find_field_unordered("consumer_lag").get_int64().get(lag) || lag < 0) continue;
      lags.push_back({topic_name, static_cast<std::int32_t>(id), lag});
    }
  }
  return lags;
}

}  // namespace sendq::kafka
