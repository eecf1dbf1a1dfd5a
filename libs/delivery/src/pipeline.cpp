#include "sendq/delivery/pipeline.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <random>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <thread>
#include <unordered_map>
#include <utility>

#include <pthread.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

#include "sendq/core/added_members.hpp"
#include "sendq/core/request_decoder.hpp"
#include "sendq/core/result_encoder.hpp"
#include "sendq/delivery/dead_letter.hpp"
#include "sendq/delivery/duplicate_guard.hpp"
#include "sendq/delivery/key_lanes.hpp"
#include "sendq/delivery/media_fetch.hpp"
#include "sendq/delivery/offset_tracker.hpp"
#include "sendq/delivery/outcome.hpp"
#include "sendq/delivery/parked_keys.hpp"
#include "sendq/delivery/pending_acks.hpp"
#include "sendq/http/client.hpp"
#include "sendq/kafka/consumer.hpp"
#include "sendq/kafka/producer.hpp"
#include "sendq/log/logger.hpp"
#include "sendq/metrics/worker_metrics.hpp"
#include "sendq/policy/circuit_breaker.hpp"
#include "sendq/policy/rate_limiter_registry.hpp"

namespace sendq::delivery {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using core::delivery_status;
using core::error_kind;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A route's metric series, looked up in their families once (on first use: series appear when
// they are first counted, as before) instead of building label maps for every delivery.
struct route_metrics {
  std::atomic<prometheus::Histogram*> request_duration{nullptr};
  std::atomic<prometheus::Histogram*> end_to_end{nullptr};
  std::atomic<prometheus::Histogram*> in_worker{nullptr};
  std::array<std::atomic<prometheus::Counter*>, 4> attempts{};  // by providers::outcome_class
  std::atomic<prometheus::Counter*> delivered{nullptr};          // deliveries{status="delivered"}
};

// `slot`'s metric, made by `make` the first time. Families return the same series for the same
// labels, so two threads racing here store the same pointer.
template <class Metric, class Make>
Metric& cached(std::atomic<Metric*>& slot, Make make) {
  Metric* m = slot.load(std::memory_order_acquire);
  if (!m) {
    m = &make();
    slot.store(m, std::memory_order_release);
  }
  return *m;
}

// True for the first caller, then at most once a minute: `last_ms` (steady clock, 0 = never)
// moves only for the caller that is due.
bool due_once_a_minute(std::atomic<std::int64_t>& last_ms) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t last = last_ms.load(std::memory_order_relaxed);
  return (last == 0 || now - last >= 60'000) && last_ms.compare_exchange_strong(last, now);
}

// One configured (provider, account) with everything needed to call it.
struct route {
  std::unique_ptr<providers::provider> provider;
  const providers::account* account = nullptr;
  http::endpoint endpoint;
  std::shared_ptr<policy::circuit_breaker> breaker;  // per account; kept across reloads
  std::shared_ptr<std::atomic<long>> held;           // records of this account in memory (bulkhead)
  prometheus::Gauge* circuit_gauge = nullptr;
  std::unique_ptr<route_metrics> series = std::make_unique<route_metrics>();
  // Success replies without the provider's message id: counted, and a warning at most once a
  // minute (kept across reloads), so that a provider release that drops the id does not write
  // a line per delivery.
  prometheus::Counter* without_id = nullptr;
  std::shared_ptr<std::atomic<std::int64_t>> without_id_warned_ms;  // steady clock; 0: never
};

// Why a 3xx reply ends the request (the HTTP client followed what the account allows). The
// Location is shown without its query, which may carry a sign or token.
std::string redirect_not_followed(const std::string& provider, const http::response& reply, const route& r) {
  std::string out = provider + " answered HTTP " + std::to_string(reply.status);
  if (reply.location.empty()) return out + " without a Location (redirects are not followed)";
  std::string_view location = reply.location;
  location = location.substr(0, location.find('#'));
  const auto query = location.find('?');
  out += " redirecting to " + std::string(location.substr(0, query)) + (query == std::string_view::npos ? "" : "?...");
  out += ": not followed (";
  const auto follow = r.account->follow_redirects;
  if (!http::is_followable_redirect(reply.status)) {
    out += "only 301, 302, 307 and 308 are followed";
  } else if (!http::same_origin_target(r.endpoint, r.endpoint.base_path + "/", reply.location)) {
    out += "another origin: only redirects to the same scheme, host and port are followed, as the request's "
           "headers carry credentials";
  } else if (follow == 0) {
    out += "the account's follow_redirects is 0";
  } else {
    out += "already followed the account's follow_redirects = " + std::to_string(follow);
  }
  return out + ")";
}

double gauge_value(policy::breaker_state s) {
  switch (s) {
    case policy::breaker_state::closed: return 0;
    case policy::breaker_state::half_open: return 1;
    case policy::breaker_state::open: return 2;
  }
  return 0;
}

// A consumed record from consumption until its result (and DLQ record) is acknowledged.
struct record : std::enable_shared_from_this<record> {
  // The consumed bytes (for its DLQ record), copied: holding librdkafka's message would pin the
  // whole fetch buffer it came in until every record of that fetch has ended.
  std::string payload;
  bool null_payload = false;  // a tombstone: its DLQ record has a null value too, not an empty one
  std::string_view value() const { return null_payload ? std::string_view() : std::string_view(payload); }
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::uint64_t generation = 0;
  std::chrono::steady_clock::time_point consumed_at;
  // Since when the worker holds the request, for worker.max_request_age_ms: its first consumption,
  // carried across parks on the retry topic (held_since_header), so that no wait repeats for ever.
  std::chrono::steady_clock::time_point held_since;
  // Its result and DLQ record (or retry record) until Kafka acknowledges them, and the duplicates
  // that end after it.
  pending_acks<std::shared_ptr<record>> acks;
  core::send_request req;             // decoded on the Kafka thread
  std::optional<core::failure> invalid;  // why it could not be decoded
  bool due_taken_early = false;       // a retry due implausibly far ahead, taken as due (admit)
  bool remember_id = true;            // false when parked on the retry topic (not ended yet)
  bool delivered = false;             // its result says delivered (set when published)
  // 0 until finish() ran (the duplicate guard has its id), then its impl::ended_count: when
  // lane_firsts may let go of it. Not the acks' count reaching zero, which comes before finish()
  // has told the guard.
  std::atomic<std::uint64_t> ended_seq{0};
  bool bulk = false;                  // from the bulk lane (replays, re-drives)
  std::shared_ptr<std::atomic<long>> account_held;  // its account's bulkhead counter, when counted
  // The duplicate guard's digests of its id and of its position (position_key), worked out at
  // admission on the Kafka thread when the guard is on and the record valid, and only read after.
  duplicate_guard::digest id_digest, position_digest;
  std::string result_id;              // key of its result and DLQ record, once published
  kafka::header_list dlq_headers;     // of its DLQ record, once published (to write it again)
  // Read back from a park: where the request was first read from (dead_letter.hpp's origin
  // headers), for its next park and its DLQ record. Empty otherwise.
  kafka::header_list origin;
  // Its original bytes have no created_at (the worker took the Kafka timestamp): a park adds it.
  bool created_at_added = false;
};

using record_ptr = std::shared_ptr<record>;

// How late after its not_before a parked request may be read back and still get the attempt it
// was parked for past worker.max_request_age_ms (the partition's pause, a poll, a busy moment).
constexpr std::int64_t park_read_back_grace_ms = 5000;

// Header of a parked record: since when (epoch ms) the worker has held its request, for
// worker.max_request_age_ms across parks.
constexpr std::string_view held_since_header = "sendq-held-since";
// Header of a parked record read from the bulk topic: back from the retry topic it is still bulk
// traffic (its share of slots and rate limits), not live traffic.
constexpr std::string_view bulk_header = "sendq-bulk";

// The steady time the header's epoch ms stands for, read at `consumed_at`; `consumed_at` itself
// when the header does not read as a time in the past (another producer's record, a clock step).
std::chrono::steady_clock::time_point held_since_of(std::string_view header, std::chrono::steady_clock::time_point consumed_at) {
  std::int64_t since = 0;
  const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), since);
  const std::int64_t now = now_ms();
  if (ec != std::errc() || end != header.data() + header.size() || since <= 0 || since > now) return consumed_at;
  // At most a year back: a bogus value must not overflow the time point.
  return consumed_at - std::chrono::milliseconds(std::min<std::int64_t>(now - since, 365LL * 86'400'000));
}

// Admits at most `capacity` deliveries of one route on one I/O thread at a time; the others wait
// here in FIFO order as bare records, their coroutine not started yet. Without it every in-flight
// record would be inside a coroutine in the HTTP client at once, with its built request, frames
// and a connection-pool waiter (~12 KB a record, measured), while only as many as there are
// connections can be sent. Its size is the route's share of connections on that thread, so it
// never holds back a request that a connection is free for. Used only on its I/O thread.
struct route_gate {
  explicit route_gate(std::size_t capacity) : free(capacity) {}
  std::size_t free;
  std::deque<record_ptr> waiting;
};

// A produced record of `rec`, handed to librdkafka and back in the delivery report.
struct produce_ticket {
  record_ptr rec;
  bool dlq_with_value = false;  // the DLQ record carrying the original bytes
  // A result's: its request's created_at (epoch ms) and the histogram that takes created_at ->
  // Kafka's acknowledgement of the result, when the result is on sendq.results for its readers.
  prometheus::Histogram* acked_latency = nullptr;
  std::int64_t created_at_ms = 0;
  // A parked copy's: the attempts made before it, and a bulkhead park's token (parked_keys).
  int park_attempts = -1;
  std::string park_token;
};

// How one delivery attempt sequence ended.
enum class attempt_end { final_result, parked };

struct partition_key {
  std::string topic;
  std::int32_t partition;
  bool operator<(const partition_key& o) const { return std::tie(topic, partition) < std::tie(o.topic, o.partition); }
};

}  // namespace

struct pipeline::impl : kafka::rebalance_listener {
  const config::config& cfg;
  std::string brokers;
  log::logger& log;
  metrics::worker_metrics& metrics;
  std::vector<io_shard> shards;
  // Per shard (same index): a gate per route ("provider\naccount"), touched only on that shard's thread.
  std::vector<std::unordered_map<std::string, std::unique_ptr<route_gate>>> gates;
  std::size_t gate_capacity = 1;
  std::size_t next_shard = 0;  // round robin for records without a key (Kafka thread only)

  // The accounts and their routes, replaced whole on reload (SIGHUP); a delivery keeps the
  // snapshot it started with, so in-flight work is never cut off.
  struct route_table {
    std::vector<providers::account> accounts;
    std::unordered_map<std::string, route> routes;  // "provider\naccount"

    // The route of a request's provider and account (valid while the caller holds the table), or
    // nullptr. The key is built in a buffer of the calling thread's: a lookup per record, on the
    // Kafka thread and again on an I/O thread, allocated a string each (provider names and
    // accounts outgrow the small-string buffer).
    const route* find(const core::send_request& req) const {
      thread_local std::string key;
      key.assign(req.provider).append(1, '\n').append(req.account);
      auto it = routes.find(key);
      return it == routes.end() ? nullptr : &it->second;
    }
  };
  std::shared_ptr<const route_table> table;
  mutable std::mutex table_mutex;
  std::shared_ptr<const route_table> current_table() const {
    std::lock_guard lock(table_mutex);
    return table;
  }
  policy::rate_limiter_registry limiters;
  policy::rate_limiter_registry bulk_limiters;  // each account's limits scaled to the bulk share
  // The accounts' limits as configured, and this worker's share of them (worker.rate_limit_scope
  // "group": its requests-topic partitions of all). The mutex orders reload() (signal thread)
  // and a rebalance (Kafka thread) installing limits.
  std::mutex limits_mutex;
  std::vector<policy::account_limits> configured_limits;
  std::size_t share_owned = 1, share_total = 1;
  // Kafka thread only: the requests topic's partitions of the last assignment and of all (0: not
  // known yet); an assignment not yet taken into the share, and when to ask the count again.
  std::size_t owned_request_partitions = 0;
  std::size_t known_request_partitions = 0;
  bool share_stale = false;
  std::chrono::steady_clock::time_point next_share_attempt{};
  std::atomic<long> bulk_in_flight{0};
  bool bulk_paused = false;  // Kafka thread only
  // Keys with requests parked by the bulkhead and not back yet (Kafka thread only): later
  // requests of such a key are parked behind them, so that the key's order holds.
  parked_keys parks;
  // Bulkhead parks whose copy the broker refused (producer thread), with their tokens: the Kafka
  // thread releases the token and delivers the request now, as when the producer refuses one.
  std::mutex unwritten_parks_mu;
  std::vector<std::pair<record_ptr, std::string>> unwritten_parks;
  // The retry topic's partitions this worker owns, sorted (Kafka thread only): a bulkhead park
  // goes to one of them, so that this worker reads it back and ends the park (see bulkhead_parks).
  std::vector<std::int32_t> own_retry_partitions;
  // Every partition assigned now (Kafka thread only): consumer lag is reported for these only.
  std::set<partition_key> assigned_now;
  offset_tracker tracker;
  // Per shard (same index): the lanes of the keys that run there, used by that shard's thread
  // (and waiting() by the Kafka thread). One shared set cost the Kafka thread and the I/O threads
  // a contended lock and cache misses on each other's map nodes per delivery.
  std::vector<std::unique_ptr<key_lanes<record_ptr>>> lanes;
  // Per shard (same index, that shard's thread only): records whose lane run is over and that
  // either ran while later requests of their key waited or were delivered. A later copy of one (a
  // re-send, or the same record read again after a rebalance) admitted before it ended follows it
  // instead of being sent again, whether it waited in the lane, however many requests of the key
  // came between, or found the lane idle (see lane_copy_ended; the duplicate guard learns an id
  // only when its record ends).
  // A record that ended stays until the shard has started every request admitted before it
  // ended (their admission did not find its id in the guard): until a batch of the Kafka
  // thread's, or a tick, admitted after it has run here (safe_upto).
  struct lane_firsts {
    std::unordered_map<std::string_view, record_ptr> by_id;  // the view is into the record's id
    std::deque<record_ptr> order;                             // oldest first, for sweep()
    std::size_t compacted = 0;                                // order's size after the last full pass
    std::uint64_t safe_upto = 0;                              // records with ended_seq up to it may go
  };
  std::vector<lane_firsts> firsts;
  // Records finished so far: each takes the next value as its ended_seq, after the guard has its
  // id. The Kafka thread reads it before the guard checks of a poll batch (start_pending).
  std::atomic<std::uint64_t> ended_count{0};
  duplicate_guard duplicates;
  core::request_decoder decoder;  // Kafka thread only
  // For the worker's own parks on sendq.retry: a park adds attempt, not_before (and created_at)
  // to the original, or is the worker's encoding with every member explicit, so one of a request
  // just under max_request_bytes is over it. Read with the limit of the producer that wrote it.
  core::request_decoder retry_decoder;  // Kafka thread only
  // sendq.bulk: max_request_bytes + 64 KiB, for a park of the worker's encoding that went to the DLQ
  // as such and was redriven;
  // anything larger is as much too large there as on sendq.requests.
  core::request_decoder bulk_decoder;  // Kafka thread only
  std::atomic<long> in_flight{0};
  std::atomic<std::uint64_t> jitter_state{0x9e3779b97f4a7c15ULL};

  // splitmix64 over an atomic counter: thread-safe jitter with no thread_local state, which a
  // coroutine resumed on another thread must not rely on.
  std::uint64_t jitter() {
    std::uint64_t z = jitter_state.fetch_add(0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Kafka thread only: backpressure and retry-topic pauses.
  bool paused_for_capacity = false;
  std::optional<std::chrono::steady_clock::time_point> last_capacity_pause;  // when last paused for capacity
  std::optional<std::chrono::steady_clock::time_point> full_since;  // at capacity, no slot freed since (not paused)
  std::deque<kafka::message> held;  // fetched while at capacity (one batch, and one a second while full); Kafka thread only
  std::map<partition_key, std::chrono::steady_clock::time_point> retry_paused;  // resume when due
  std::atomic<bool> stopping{false};
  std::atomic<bool> stopped{false};
  std::atomic<bool> hurried{false};  // hurry(): the drain does not wait for in-flight requests
  // Set once start() has made the consumer: readiness() runs on the metrics server's thread, which
  // serves /readyz before and while start() runs, so it must not look at `consumer` before this.
  std::atomic<bool> started{false};
  std::unique_ptr<kafka::consumer> consumer;
  std::unique_ptr<kafka::producer> producer;
  std::string producer_max_bytes;  // its message.max.bytes, named in error messages (set by start())
  std::thread kafka_thread;
  std::thread producer_thread;
  std::atomic<bool> producer_run{true};
  std::atomic<bool> unwritten_at_stop{false};  // produce_or_retry said so once
  // Set once by fail(): Kafka refused a record for good, so the pipeline stops.
  std::atomic<bool> failed{false};
  mutable std::mutex failure_mutex;
  std::string failure_reason;
  pipeline::failure_handler on_failure;
  std::mutex drain_mutex;
  std::condition_variable drained;
  std::mutex slot_mutex;
  std::condition_variable slot_freed;

  impl(const config::config& c, std::string b, log::logger& l, metrics::worker_metrics& m, std::vector<io_shard> s)
      : cfg(c), brokers(std::move(b)), log(l), metrics(m), shards(std::move(s)), limiters(c.limits),
        bulk_limiters(scaled(c.limits, c.worker.bulk_share_percent)), configured_limits(c.limits),
        duplicates(std::chrono::milliseconds(c.worker.dedupe_window_ms), static_cast<std::size_t>(c.worker.dedupe_max_ids)),
        decoder(static_cast<std::size_t>(c.worker.max_request_bytes)),
        retry_decoder(config::producer_max_bytes(c)),
        bulk_decoder(static_cast<std::size_t>(c.worker.max_request_bytes) + config::kafka_record_headroom_bytes) {
    if (shards.empty()) throw std::invalid_argument("pipeline: at least one I/O shard is needed");
    gates.resize(shards.size());
    pending.resize(shards.size());
    for (std::size_t i = 0; i < shards.size(); ++i) lanes.push_back(std::make_unique<key_lanes<record_ptr>>());
    firsts.resize(shards.size());
    last_post.resize(shards.size());
    // The HTTP client of each shard gets max_connections_per_host / shards (services/worker).
    gate_capacity = std::max<std::size_t>(1, static_cast<std::size_t>(cfg.worker.max_connections_per_host) / shards.size());
    table = build_table(cfg.accounts, nullptr);
    metrics.rate_limit_share.Set(1);
  }

  // `limits` as this worker applies them: `owned` of `total` parts, with rate_limit_scope "group".
  std::vector<policy::account_limits> my_share(std::vector<policy::account_limits> limits, std::size_t owned,
                                               std::size_t total) const {
    if (cfg.worker.rate_limit_scope != "group") return limits;
    for (auto& a : limits) a.limits = policy::share_of(std::move(a.limits), owned, total);
    return limits;
  }

  // Installs `configured` (validated by the registries, which throw without changing anything)
  // at the share `owned` of `total`, and remembers both. The caller holds limits_mutex.
  void install_limits(const std::vector<policy::account_limits>& configured, std::size_t owned, std::size_t total) {
    auto mine = my_share(configured, owned, total);
    limiters.replace(mine);
    bulk_limiters.replace(scaled(std::move(mine), cfg.worker.bulk_share_percent));
    configured_limits = configured;
    share_owned = owned;
    share_total = total;
  }

  // After an assignment (Kafka thread, before its records are admitted): with rate_limit_scope
  // "group", this worker's share of every account's limits becomes its share of the requests
  // topic's partitions, so that the group as a whole keeps to them. The partition count comes
  // from the cluster; when it cannot be had, the last one known serves (counts rarely change),
  // and with none known yet it is asked again every few seconds.
  void update_rate_limit_share() {
    if (cfg.worker.rate_limit_scope != "group") {
      share_stale = false;
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now < next_share_attempt) return;
    auto total = consumer->partition_count(cfg.kafka.requests_topic, 2s);
    if (!total && known_request_partitions == 0) {
      next_share_attempt = now + 5s;
      log.warn("pipeline", "could not tell how many partitions the requests topic has; each account's rate limits "
               "apply whole here until it can", {{"topic", cfg.kafka.requests_topic}});
      return;
    }
    share_stale = false;
    if (total) known_request_partitions = *total;
    const std::size_t all = known_request_partitions;
    const std::size_t owned = std::clamp<std::size_t>(owned_request_partitions, 1, all);
    std::lock_guard lock(limits_mutex);
    if (owned == share_owned && all == share_total) return;
    try {
      install_limits(configured_limits, owned, all);
    } catch (const std::exception& e) {  // the configured limits were valid, and a share of them is too
      log.error("pipeline", "installing the rate limits' share failed", {{"error", e.what()}});
      return;
    }
    metrics.rate_limit_share.Set(static_cast<double>(owned) / static_cast<double>(all));
    log.info("pipeline", "rate limits shared with the group by partitions",
             {{"partitions", std::to_string(owned_request_partitions)}, {"of", std::to_string(all)}});
  }

  std::size_t shard_index(const io_shard& shard) const { return static_cast<std::size_t>(&shard - shards.data()); }

  // Records admitted in this poll batch, per shard, not started yet (Kafka thread only): true =
  // one for its key's lane on that shard, false = an undecodable one (deliver).
  std::vector<std::vector<std::pair<record_ptr, bool>>> pending;

  // Hands each shard its admitted records in one post, instead of one cross-thread post (a lock
  // and an eventfd wake-up of the I/O thread) per record.
  // `ended_before`: ended_count read before the batch's guard checks (see lane_firsts). A shard
  // given no batch for a second gets a tick with it, so that its lane set does not keep ended
  // records (and their payloads) while its traffic has stopped.
  void start_pending(std::uint64_t ended_before) {
    const auto now = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < shards.size(); ++i) {
      if (pending[i].empty()) {
        if (now - last_post[i] < 1s) continue;
        last_post[i] = now;
        net::post(shards[i].executor, [this, i, ended_before] { let_go_of_ended(i, ended_before); });
        continue;
      }
      last_post[i] = now;
      net::post(shards[i].executor, [this, i, ended_before, batch = std::move(pending[i])]() mutable {
        auto& shard = shards[i];
        for (auto& [rec, lane] : batch) {
          if (!lane) {
            net::co_spawn(shard.executor, deliver(std::move(rec), shard), net::detached);
            continue;
          }
          // Posted in offset order, so each key's lane is filled in order. `r` keeps the key
          // alive through the call: `rec` is moved into it.
          const record* r = rec.get();
          if (auto first = lanes[i]->push(r->req.key, std::move(rec))) start_lane_unless_copy(std::move(*first), shard);
        }
        let_go_of_ended(i, ended_before);
      });
      pending[i] = {};
    }
  }
  std::vector<std::chrono::steady_clock::time_point> last_post;  // per shard, Kafka thread only

  // Shard `i`'s thread: every request admitted before `ended_before` records had ended has started.
  void let_go_of_ended(std::size_t i, std::uint64_t ended_before) {
    auto& f = firsts[i];
    f.safe_upto = std::max(f.safe_upto, ended_before);
    if (!f.order.empty()) sweep(f);
  }

  // Where the requests of `key` run: always the same shard, so that they never change threads.
  io_shard& shard_of(const std::string& key) { return shards[std::hash<std::string>{}(key) % shards.size()]; }

  // The bulk lane's limits: `percent` of each window (policy::share_of: a window left with less
  // than one request keeps one over a longer period, so the share holds for small limits too).
  static std::vector<policy::account_limits> scaled(std::vector<policy::account_limits> limits, int percent) {
    for (auto& a : limits) {
      a.limits = policy::share_of(std::move(a.limits), static_cast<std::size_t>(percent), 100);
      a.limits.per_recipient.reset();  // the main limiter applies per-recipient limits to both lanes
      a.limits.pacing.reset();
    }
    return limits;
  }

  // Builds routes for `accounts`, keeping the circuit breakers of accounts `old` already had.
  std::shared_ptr<const route_table> build_table(const std::vector<providers::account>& accounts,
                                                 const route_table* old) {
    auto t = std::make_shared<route_table>();
    t->accounts = accounts;
    for (const auto& a : t->accounts) {
      route r;
      r.provider = providers::make_provider(a.provider);
      r.account = &a;
      std::string err;
      auto ep = http::endpoint::parse(a.base_url, &err);
      if (!ep) throw config::config_error("providers." + a.provider + "." + a.name + ".base_url: " + err);
      r.endpoint = *ep;
      const std::string key = a.provider + "\n" + a.name;
      if (old && old->routes.count(key)) r.breaker = old->routes.at(key).breaker;
      if (!r.breaker) {
        // A probe is presumed lost only once its call could no longer be running (connect and
        // exchange bounds, and a margin): before that, another probe would join it.
        policy::circuit_breaker_config breaker;
        breaker.probe_timeout = std::max(
            breaker.probe_timeout,
            std::chrono::milliseconds(std::int64_t{cfg.worker.connect_timeout_ms} + cfg.worker.request_timeout_ms + 5000));
        r.breaker = std::make_shared<policy::circuit_breaker>(breaker);
      }
      r.held = old && old->routes.count(key) ? old->routes.at(key).held : std::make_shared<std::atomic<long>>(0);
      r.circuit_gauge = &metrics.circuit_state.Add({{"provider", a.provider}, {"account", a.name}});
      r.circuit_gauge->Set(gauge_value(r.breaker->state()));
      // Shown at 0 from the start, so that a rate() over it has a series before the first one.
      r.without_id = &metrics.without_provider_id.Add({{"provider", a.provider}, {"account", a.name}});
      r.without_id_warned_ms = old && old->routes.count(key) ? old->routes.at(key).without_id_warned_ms
                                                             : std::make_shared<std::atomic<std::int64_t>>(0);
      t->routes.emplace(key, std::move(r));
    }
    return t;
  }

  // ---- rebalance_listener (Kafka thread) ----
  void on_assigned(const std::vector<kafka::partition_offset>& p) override {
    metrics.assigned_partitions.Set(static_cast<double>(p.size()));
    own_retry_partitions.clear();
    owned_request_partitions = 0;
    for (const auto& a : p) {
      if (a.topic == cfg.kafka.retry_topic) own_retry_partitions.push_back(a.partition);
      if (a.topic == cfg.kafka.requests_topic) ++owned_request_partitions;
    }
    share_stale = true;  // taken up after the poll that brought this, before its records go in
    next_share_attempt = {};
    if (owned_request_partitions > 0 && own_retry_partitions.empty()) {
      log.warn("pipeline", "no partition of the retry topic is this worker's: a key's requests that the bulkhead "
               "parks go through it until the next rebalance (give it a few partitions per worker)",
               {{"topic", cfg.kafka.retry_topic}});
    }
    std::sort(own_retry_partitions.begin(), own_retry_partitions.end());
    // A fresh assignment starts unpaused; the loop pauses again if it is still at capacity.
    paused_for_capacity = false;
    bulk_paused = false;
    retry_paused.clear();
    assigned_now.clear();
    for (const auto& a : p) assigned_now.insert({a.topic, a.partition});
  }
  void on_revoked(const std::vector<kafka::partition_offset>& p) override {
    // Commit what is finished for these partitions, synchronously, every position: one whose
    // asynchronous commit is still in flight may fail in this rebalance. Unfinished records are
    // redelivered to the next owner (at-least-once); their late completions are ignored.
    auto finished = tracker.release(p);
    if (!finished.empty()) consumer->commit(finished, true);
    // Fetched but not admitted: the next owner reads them again. Admitted after a re-assignment,
    // they would be tracked ahead of the re-read from the committed offset.
    std::erase_if(held, [&](const kafka::message& m) { return kafka::in_partitions(m, p); });
    // Their lag is the next owner's to report: a series left here would stay at its last value
    // (statistics leave out partitions not fetched), and max() over the group would keep it. A
    // statistics report made before the revocation and served after it is left out by on_lag.
    for (const auto& part : p) {
      const prometheus::Labels labels{{"topic", part.topic}, {"partition", std::to_string(part.partition)}};
      if (metrics.consumer_lag.Has(labels)) metrics.consumer_lag.Remove(&metrics.consumer_lag.Add(labels));
    }
    metrics.assigned_partitions.Set(0);
    paused_for_capacity = false;
    bulk_paused = false;
    retry_paused.clear();
    assigned_now.clear();
    own_retry_partitions.clear();
    // Every partition goes at once (eager rebalancing), the retry topic's too: parked records are
    // read again from their committed offsets by whichever worker gets them, maybe not this one,
    // and would never end their parks here. The requests' partitions are re-read as well, so a
    // key's order across a rebalance was not kept by these counts anyway.
    parks.clear();
  }

  // ---- Kafka thread ----
  void consume_loop() {
    auto last_commit = std::chrono::steady_clock::now();
    const auto commit_every = std::chrono::milliseconds(cfg.worker.commit_interval_ms);
    const long capacity = cfg.worker.max_in_flight;
    const long bulk_capacity = std::max<long>(1, capacity * cfg.worker.bulk_share_percent / 100);
    while (!stopping.load()) {
      // The bulk lane gets a bounded share of the slots, so that live traffic comes first.
      if (!bulk_paused && bulk_in_flight.load() >= bulk_capacity) {
        pause_topic(cfg.kafka.bulk_topic);
        bulk_paused = true;
      } else if (bulk_paused && bulk_in_flight.load() <= bulk_capacity / 2) {
        if (!paused_for_capacity) resume_topic(cfg.kafka.bulk_topic);
        bulk_paused = false;
      }
      // Backpressure. At capacity, first wait for a slot without pausing: a pause makes
      // librdkafka drop what it prefetched and fetch it again on resume, a stall of a fetch round
      // trip every time the pipeline fills, which is all the time under a backlog. Only when no
      // slot frees for a while (a stalled provider) are the partitions paused, so that the loop
      // goes on polling (rebalances, max.poll.interval.ms). They resume at the first free slot:
      // waiting for half of them kept every other account waiting for the slowest calls. Each
      // pause drops the prefetched records (up to queued.max.messages.kbytes) and each resume
      // fetches them again, so within 30 s of a pause the next one comes after 5 s without a free
      // slot: slots that free every few seconds (most held by slow calls) are then refilled from
      // the prefetched records, without a pause and a fetch each time. The waits stay 1 s long,
      // so that the loop polls (rebalances, a group waiting for this member) meanwhile; a poll
      // at capacity takes one record into `held`.
      if (!paused_for_capacity && in_flight.load() >= capacity && !wait_for_slots(capacity, 1s)) {
        if (stopping.load()) break;  // the wait ends early then: nothing more is admitted, the drain below begins
        const auto now = std::chrono::steady_clock::now();
        if (!full_since) full_since = now - 1s;  // the second just waited
        const bool recent = last_capacity_pause && now - *last_capacity_pause < 30s;
        if (!recent || now - *full_since >= 5s) {
          consumer->pause({});
          paused_for_capacity = true;
          last_capacity_pause = now;
          full_since.reset();
          metrics.capacity_pauses.Increment();
        }
      } else if (paused_for_capacity && in_flight.load() < capacity) {
        resume_unpaused();
        paused_for_capacity = false;
      }
      if (in_flight.load() < capacity) full_since.reset();  // a slot is free: the next full spell starts afresh
      resume_due_retry_partitions();
      readmit_unwritten_parks();

      const long free = capacity - in_flight.load();
      auto batch = consumer->poll(static_cast<std::size_t>(std::clamp<long>(free, 1, 512)), 100ms);
      if (const auto& fatal = consumer->fatal_error(); !fatal.empty()) {
        // Nothing more would be read, and /readyz would go on saying ready: stop (exit 1), so
        // that systemd or Kubernetes starts a fresh consumer. What is in flight is redelivered.
        fail("the Kafka consumer hit a fatal error: " + fatal);
      }
      if (share_stale) update_rate_limit_share();
      const auto ended_before = ended_count.load(std::memory_order_acquire);  // before admit()'s guard checks
      for (auto& m : batch) held.push_back(std::move(m));
      while (!held.empty() && in_flight.load() < capacity) {
        auto m = std::move(held.front());
        held.pop_front();  // before admit(), which may drop other held messages of a partition
        admit(std::move(m));
      }
      start_pending(ended_before);

      const auto now = std::chrono::steady_clock::now();
      if (now - last_commit >= commit_every) {
        last_commit = now;
        consumer->commit(tracker.take_committable(), false);
        metrics.producer_queue_length.Set(producer->queue_length());
        std::size_t waiting = 0;
        for (const auto& l : lanes) waiting += l->waiting();
        metrics.queued.Set(static_cast<double>(waiting));
        const auto oldest = tracker.oldest_unfinished();
        metrics.oldest_request_age.Set(oldest ? std::chrono::duration<double>(now - *oldest).count() : 0.0);
      }
    }
    // Drain: in-flight records may finish within the grace period.
    {
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.worker.shutdown_grace_ms);
      // After a failure the unfinished results cannot be acknowledged: do not wait for them.
      const auto done = [&] { return in_flight.load() == 0 || failed.load() || hurried.load(); };
      for (;;) {
        // A bulkhead park the broker refuses now is not started again: it is read again after
        // the restart (not committed), and leaves the count so that the drain need not wait for it.
        abandon_unwritten_parks();
        std::unique_lock lock(drain_mutex);
        if (drained.wait_until(lock, std::min(until, std::chrono::steady_clock::now() + 100ms), done)) break;
        if (std::chrono::steady_clock::now() >= until) {
          log.warn("pipeline", "grace period over with requests unfinished; they will be redelivered",
                   {{"in_flight", std::to_string(in_flight.load())}});
          break;
        }
      }
    }
    // Every position, not only the advanced ones: the last asynchronous commit may have failed
    // with its report not yet seen.
    consumer->commit(tracker.take_committable(true), true);
    consumer->close();
  }

  // Bulkhead parks the broker refused for their size: delivered now, over their account's cap, as
  // bulkhead_parks() does when the producer refuses one (Kafka thread).
  std::vector<std::pair<record_ptr, std::string>> take_unwritten_parks() {
    std::lock_guard lock(unwritten_parks_mu);
    return std::exchange(unwritten_parks, {});
  }

  void readmit_unwritten_parks() {
    auto refused = take_unwritten_parks();
    if (refused.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [rec, token] : refused) {
      parks.release(token);
      if (!tracker.current(rec->topic, rec->partition, rec->generation)) {
        // Revoked while it was parked: its next owner reads it again. It only leaves the count.
        abandon(*rec);
        continue;
      }
      rec->remember_id = true;
      // Asked again, as at admission: a copy may have been delivered while this one was parked.
      if (seen_by_guard(*rec, now)) {
        skip_duplicate(*rec);
        continue;
      }
      const auto table = current_table();
      if (const auto* route = table->find(rec->req)) {
        route->held->fetch_add(1);
        rec->account_held = route->held;
      }
      auto& shard = shard_of(rec->req.key);
      pending[shard_index(shard)].push_back({std::move(rec), true});
    }
  }

  void abandon_unwritten_parks() {
    for (auto& [rec, token] : take_unwritten_parks()) abandon(*rec);
  }

  // At capacity, how many slots must free before the Kafka thread admits again. Waking it for
  // every freed slot made it poll, admit and hand over one or two records at a time under a
  // backlog (the pipeline is at capacity all the time then): a wake-up, a poll and a post to
  // each I/O thread per delivery or two. A refill of 1/16 of the slots keeps 15/16 in flight.
  static long refill_batch(long capacity) { return std::clamp<long>(capacity / 16, 1, 256); }

  // Waits for refill_batch slots to free, or for trickle_wait when fewer do (most slots held by
  // slow calls: what does free is refilled then, not a second later); true when at least one slot
  // is free. False when none freed within `limit`, or when stopping while full.
  static constexpr auto trickle_wait = 20ms;
  bool wait_for_slots(long capacity, std::chrono::milliseconds limit) {
    const long low_water = capacity - refill_batch(capacity);
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock lock(slot_mutex);
    while (in_flight.load() > low_water) {
      const auto waited = std::chrono::steady_clock::now() - start;
      if (waited >= trickle_wait && in_flight.load() < capacity) return true;
      // Short slices: stop() does not signal this condition.
      if (stopping.load() || waited >= limit) return in_flight.load() < capacity;
      slot_freed.wait_for(lock, trickle_wait);
    }
    return true;
  }

  // Bulkhead: once half of max_in_flight is used, an account may hold at most
  // account_max_in_flight records in memory, so that one slow or stalled provider account cannot
  // take every slot (and with them every partition). Beyond that its live requests wait on the
  // retry topic; their key's later requests are parked behind them, so that the key's order
  // holds. Returns true when `rec` was parked.
  bool bulkhead_parks(record& rec) {
    const auto& req = rec.req;
    const auto table = current_table();
    const auto* route = table->find(req);
    if (!route) return false;
    // Records back from the retry topic are admitted only below the cap (see admit()), and their
    // parks ended there.
    if (rec.topic != cfg.kafka.retry_topic &&
        (parks.holds(req.key) || (route->held->load() >= cfg.worker.account_max_in_flight &&
                                  in_flight.load() >= cfg.worker.max_in_flight / 2))) {
      // Over its cap while memory is getting short: this account waits, the others go on.
      // The park goes to one of this worker's own retry partitions: left to the key's partition,
      // it could belong to another worker of the group, which would deliver it and never end the
      // park here (the key's later requests would all go through the retry topic until the next
      // rebalance). parked_keys picks which one (the account's own, while there are enough), of
      // those not paused for a retry that is not due yet, when there are such.
      std::vector<std::int32_t> candidates;
      for (const auto p : own_retry_partitions) {
        if (!retry_paused.count({cfg.kafka.retry_topic, p})) candidates.push_back(p);
      }
      const auto where = parks.park(req.key, route->account->provider + "\n" + route->account->name,
                                    candidates.empty() ? own_retry_partitions : candidates);
      if (auto refused = park(rec, req.attempt, now_ms() + 200, true, {{std::string(parked_keys::header), where.token}},
                              where.partition.value_or(kafka::any_partition));
          refused.empty()) {
        return true;  // counted in sendq_bulkhead_parked_total once Kafka has it (on_delivery)
      }
      // Too large to park: delivered now, over its account's cap, rather than left without a
      // result (when requests of its key are parked ahead of it, it passes them).
      parks.release(where.token);
    }
    route->held->fetch_add(1);
    rec.account_held = route->held;
    return false;
  }

  // Resumes the assignment except partitions parked until a retry is due (and the bulk lane
  // while it is over its share).
  void resume_unpaused() {
    auto parts = consumer->assignment();
    std::erase_if(parts, [&](const auto& p) {
      return retry_paused.count({p.topic, p.partition}) != 0 || (bulk_paused && p.topic == cfg.kafka.bulk_topic);
    });
    if (!parts.empty()) consumer->resume(parts);
  }

  void pause_topic(const std::string& topic) {
    auto parts = consumer->assignment();
    std::erase_if(parts, [&](const auto& p) { return p.topic != topic; });
    if (!parts.empty()) consumer->pause(parts);
  }

  void resume_topic(const std::string& topic) {
    auto parts = consumer->assignment();
    std::erase_if(parts, [&](const auto& p) { return p.topic != topic || retry_paused.count({p.topic, p.partition}); });
    if (!parts.empty()) consumer->resume(parts);
  }

  // Pauses one retry partition at `offset` until `until`: messages of it fetched already (in this
  // batch or held) are dropped, and fetched again from `offset` when it resumes, in order.
  void hold_retry_partition(const std::string& topic, std::int32_t partition, std::int64_t offset,
                            std::chrono::steady_clock::time_point until) {
    consumer->pause({{topic, partition, 0}});
    const auto err = consumer->seek({{topic, partition, offset}});
    // Nothing of the partition at or after `offset` is admitted until it is due: tracked, a later
    // record would let the commit pass the one held here.
    retry_paused[{topic, partition}] = err.empty() ? until : std::chrono::steady_clock::time_point::max();
    std::erase_if(held, [&](const kafka::message& m) { return m.partition() == partition && m.topic() == topic; });
    if (!err.empty()) {
      // Resumed from where the fetcher stood, the record at `offset` would be skipped: never
      // tracked, committed past, without a result. The partition stays paused (never due) and the
      // worker stops; the record is read again after a restart.
      fail("seeking " + topic + "/" + std::to_string(partition) + " back to offset " + std::to_string(offset) +
           " to hold a retry failed: " + err);
    }
  }

  void resume_due_retry_partitions() {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = retry_paused.begin(); it != retry_paused.end();) {
      if (it->second <= now) {
        if (!paused_for_capacity) consumer->resume({{it->first.topic, it->first.partition, 0}});
        it = retry_paused.erase(it);
      } else {
        ++it;
      }
    }
  }

  // What a park's headers (park()) say of a record read back from the retry topic: since when the
  // worker holds its request, the members it added (taken out again: the payload kept, for a DLQ
  // record or the next park, is the original), and where the request was first read from.
  void take_park_headers(record& rec, const kafka::message& m) {
    if (const auto since = m.header(held_since_header)) rec.held_since = held_since_of(*since, rec.consumed_at);
    if (const auto added = m.header(added_members_header)) {
      std::string members;
      if (core::remove_added_members(rec.payload, *added, &members)) {
        rec.created_at_added = members.find("\"created_at\":") != std::string::npos;
        rec.req.retry_members_read = false;  // they were the park's, not the original's
      }
    }
    for (const auto name : {origin_topic_header, origin_partition_header, origin_offset_header}) {
      if (const auto v = m.header(name)) rec.origin.emplace_back(std::string(name), std::string(*v));
    }
  }

  // Takes one consumed message into the pipeline (Kafka thread, in offset order per partition).
  void admit(kafka::message m) {
    const std::string topic(m.topic());
    const partition_key pk{topic, m.partition()};
    if (retry_paused.count(pk)) return;  // fetched before the pause: it is fetched again when due

    auto rec = std::make_shared<record>();
    const bool from_retry_topic = topic == cfg.kafka.retry_topic;
    auto& by = from_retry_topic ? retry_decoder : topic == cfg.kafka.bulk_topic ? bulk_decoder : decoder;
    rec->invalid = by.decode(m.payload(), rec->req);
    // attempt and not_before mean something on sendq.retry only. Elsewhere (a client's request, a
    // redriven dead letter that had waited there) the request starts afresh.
    if (!from_retry_topic) {
      rec->req.attempt = 0;
      rec->req.not_before_ms.reset();
    }
    // The retry topic holds requests until `not_before`: pause its partition and come back then,
    // rather than polling in a loop.
    if (const auto now = now_ms();
        !rec->invalid && from_retry_topic && rec->req.not_before_ms && *rec->req.not_before_ms > now) {
      // No park of this worker's is due further ahead than the age limit (a later attempt ends the
      // request instead). One that is, after a step back of the clock or from another producer,
      // would hold its partition, and every retry behind it, that long: it is taken as due now.
      const std::int64_t ahead = *rec->req.not_before_ms - now;
      if (ahead <= std::int64_t{cfg.worker.max_request_age_ms} + park_read_back_grace_ms) {
        hold_retry_partition(topic, m.partition(), m.offset(), std::chrono::steady_clock::now() + std::chrono::milliseconds(ahead));
        log.debug("pipeline", "retry not due yet; partition paused", {{"id", rec->req.id}, {"wait_ms", std::to_string(ahead)}});
        return;
      }
      log.warn("pipeline", "a retry is due further ahead than worker.max_request_age_ms allows any park to be (a step of "
               "the clock, or another producer): taken as due now",
               {{"id", rec->req.id}, {"not_before", std::to_string(*rec->req.not_before_ms)}, {"ahead_ms", std::to_string(ahead)}});
      rec->due_taken_early = true;  // not a park's read-back: the age limits apply
    }

    if (!rec->invalid && from_retry_topic) {
      const auto table = current_table();
      if (const auto* r = table->find(rec->req);
          r && r->held->load() >= cfg.worker.account_max_in_flight && in_flight.load() >= cfg.worker.max_in_flight / 2) {
        // Its account is at its cap: the partition waits (in order) rather than re-parking.
        hold_retry_partition(topic, m.partition(), m.offset(), std::chrono::steady_clock::now() + 200ms);
        return;
      }
    }

    metrics.requests_consumed.Increment();
    rec->topic = topic;
    rec->partition = m.partition();
    rec->offset = m.offset();
    rec->consumed_at = std::chrono::steady_clock::now();
    rec->held_since = rec->consumed_at;
    rec->generation = tracker.track(rec->topic, rec->partition, rec->offset);
    rec->payload.assign(m.payload());
    rec->null_payload = m.payload().data() == nullptr;
    if (from_retry_topic) take_park_headers(*rec, m);
    rec->bulk = topic == cfg.kafka.bulk_topic || (from_retry_topic && m.header(bulk_header).has_value());
    if (rec->bulk) bulk_in_flight.fetch_add(1);
    in_flight.fetch_add(1);
    metrics.in_flight.Increment();

    // A request without created_at (or with one that could not be read) was created when it
    // was produced: its result says so, rejected or not.
    if (!rec->req.created_at_ms) {
      if (const auto ts = m.timestamp_ms(); ts > 0) {
        rec->req.created_at_ms = ts;
        rec->created_at_added = true;
      }
    }
    // A bulkhead park ends here, however its record ends (sent, skipped as a duplicate, its route
    // removed by a reload): only then do the key's new requests stop queueing behind it.
    if (from_retry_topic) {
      if (const auto token = m.header(parked_keys::header)) parks.release(*token);
    }
    if (!rec->invalid) {
      if (duplicates.enabled()) {
        rec->id_digest = duplicates.digest_of(rec->req.id);
        rec->position_digest = duplicates.digest_of(position_key(*rec));
      }
      if (seen_by_guard(*rec, rec->consumed_at)) {
        // Delivered in this process (a replay, a re-send), or this very record ended already (a
        // redelivery after a rebalance): its result exists; don't send again.
        skip_duplicate(*rec);
        return;
      }
      if (bulkhead_parks(*rec)) return;
      auto& shard = shard_of(rec->req.key);
      pending[shard_index(shard)].push_back({std::move(rec), true});
    } else {
      auto& shard = shards[next_shard++ % shards.size()];
      pending[shard_index(shard)].push_back({rec, false});
    }
  }

  // ---- Producer thread ----
  void producer_loop() {
    while (producer_run.load()) producer->poll(100ms);
  }

  // Delivery report for a result or DLQ record of `rec` (producer thread).
  void on_delivery(void* opaque, const std::string& error) {
    std::unique_ptr<produce_ticket> ticket(static_cast<produce_ticket*>(opaque));
    record_ptr rec = std::move(ticket->rec);
    if (!error.empty()) {
      if (ticket->dlq_with_value && kafka::is_message_too_large(error)) {
        // The broker refused the original bytes (its message.max.bytes): trying again cannot
        // help. Write the DLQ record without them, from an I/O thread (produce may wait).
        net::post(shards.front().executor, [this, rec, error] { produce_dlq_without_value(rec, error); });
        return;
      }
      if (ticket->park_attempts >= 0 && kafka::is_message_too_large(error)) {
        // The retry topic's broker limit is below the producer's: the parked copy (larger than
        // its request) can never be written, and read again after a restart it would be refused
        // again. As when the producer refuses it: a bulkhead park (a token) is delivered now, a
        // back-off park ends failed/too_large, with its result.
        log.error("pipeline", "parked copy refused by the broker for its size",
                  {{"id", rec->req.id}, {"topic", cfg.kafka.retry_topic}, {"error", error}});
        if (!ticket->park_token.empty()) {
          std::lock_guard lock(unwritten_parks_mu);
          unwritten_parks.emplace_back(std::move(rec), std::move(ticket->park_token));
          return;
        }
        net::post(shards.front().executor, [this, rec, error, attempts = ticket->park_attempts] {
          end_unwritable_park(rec, error, attempts);
        });
        return;
      }
      // The idempotent producer retried for message.timeout.ms, or its error is fatal: Kafka will
      // not take this record. Its slot would be held, and its partition's commits stopped, for
      // ever; stop instead, leaving the offset uncommitted so that the record is redelivered.
      if (failed.load()) return;  // said once: the others are counted at exit
      log.error("pipeline", "record not acknowledged by Kafka; offset stays uncommitted",
                {{"error", error}, {"partition", std::to_string(rec->partition)}, {"offset", std::to_string(rec->offset)}});
      fail("Kafka did not acknowledge a result, DLQ or retry record: " + error);
      return;
    }
    // A bulkhead park counts once written: one the broker refuses is delivered instead (above).
    if (!ticket->park_token.empty()) metrics.bulkhead_parked.Increment();
    if (ticket->acked_latency) {
      // In doubles: a producer's created_at may be any non-negative integer (x 1000 could overflow).
      const double now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
      ticket->acked_latency->Observe(std::max(0.0, now_s - static_cast<double>(ticket->created_at_ms) / 1e3));
    }
    if (rec->acks.acknowledge()) finish(*rec);
  }

  // What the duplicate guard remembers of a request that ended without being delivered: its id
  // at its position. A redelivery of the same record is not sent again, but a new record with
  // that id (the producer re-sending it, `sendqctl redrive` or `replay` after the cause was fixed)
  // is: only a delivered id blocks every later record that carries it.
  static std::string_view position_key(const record& rec) {
    thread_local std::string key;
    key.assign(rec.req.id).append(1, '\0').append(rec.topic).append(1, '\0');
    char digits[24];  // an int64 takes at most 20
    key.append(digits, std::to_chars(digits, digits + sizeof digits, rec.partition).ptr).append(1, ':');
    key.append(digits, std::to_chars(digits, digits + sizeof digits, rec.offset).ptr);
    return key;
  }

  // Whether the guard has `rec`'s id or position, by the digests admit() worked out (a valid
  // record's, with the guard on).
  bool seen_by_guard(const record& rec, std::chrono::steady_clock::time_point now) {
    return duplicates.enabled() && !rec.invalid && duplicates.seen(rec.id_digest, rec.position_digest, now);
  }

  // Ends `rec` without sending it or publishing a result: one exists for its id already.
  void skip_duplicate(record& rec) {
    metrics.duplicates.Increment();
    log.info("pipeline", "duplicate request not sent again", {{"id", rec.req.id}});
    finish(rec);
  }

  // Takes `rec` out of the in-flight count without ending it: no result, its offset not marked
  // done (so not committed: it is read again). For a record that cannot end here any more (its
  // partition revoked, or the worker stopping) and that nothing follows.
  void abandon(record& rec) { leave_count(rec); }

  void finish(record& rec) {
    if (rec.remember_id && !rec.invalid && !rec.req.id.empty() && duplicates.enabled()) {
      duplicates.remember(rec.delivered ? rec.id_digest : rec.position_digest, std::chrono::steady_clock::now());
    }
    // After the guard has it (lane_firsts).
    rec.ended_seq.store(ended_count.fetch_add(1, std::memory_order_acq_rel) + 1, std::memory_order_release);
    tracker.done(rec.topic, rec.partition, rec.offset, rec.generation);
    leave_count(rec);
    // Duplicates that waited for its acknowledgement (run_lane) end after it. The count above
    // included them, so the drain cannot be signalled while they are held.
    for (auto& dup : rec.acks.take_followers()) skip_duplicate(*dup);
  }

  // `rec` leaves the in-flight counts (its account's, the bulk lane's, the worker's), waking the
  // Kafka thread when enough slots are free and the drain when none is held.
  void leave_count(record& rec) {
    if (rec.bulk) bulk_in_flight.fetch_sub(1);
    if (rec.account_held) rec.account_held->fetch_sub(1);
    metrics.in_flight.Decrement();
    const long before = in_flight.fetch_sub(1);
    const long capacity = cfg.worker.max_in_flight;
    if (before == capacity - refill_batch(capacity) + 1) {
      // The Kafka thread may be waiting for these slots (wait_for_slots). While it waits
      // in_flight only falls, so it crosses this mark once.
      std::lock_guard lock(slot_mutex);
      slot_freed.notify_one();
    }
    if (before == 1) {
      std::lock_guard lock(drain_mutex);
      drained.notify_all();
    }
  }

  // ---- I/O threads ----
  // The requests of one ordering key run one after the other: start_lane starts the head of the
  // key's lane, and each run_lane starts the next one when it is done.
  // The gate of `req`'s route, or nullptr when the route is not configured: such requests are
  // rejected without any I/O, and a gate for every distinct bad name would be kept for ever.
  route_gate* gate_of(io_shard& shard, const core::send_request& req) {
    auto& map = gates[shard_index(shard)];
    std::string route_key;
    route_key.reserve(req.provider.size() + 1 + req.account.size());
    route_key.append(req.provider).append(1, '\n').append(req.account);
    auto it = map.find(route_key);
    if (it == map.end()) {
      if (!current_table()->routes.count(route_key)) return nullptr;
      it = map.emplace(std::move(route_key), std::make_unique<route_gate>(gate_capacity)).first;
    }
    return it->second.get();
  }

  // Starts a request that found its key's lane idle, unless it is a copy of one that ran there
  // (lane_copy_ended): then the next of the key, if any came meanwhile. The duplicate guard is not
  // asked again: a first that ended after this request's admission is still in firsts (safe_upto).
  void start_lane_unless_copy(record_ptr rec, io_shard& shard) {
    if (!lane_copy_ended(shard, rec, false)) {
      start_lane(std::move(rec), shard);
      return;
    }
    auto& lane = *lanes[shard_index(shard)];
    auto next = lane.next(rec->req.key);
    while (next && lane_copy_ended(shard, *next)) next = lane.next(rec->req.key);
    if (next) start_lane(std::move(*next), shard);
  }

  // Starts the delivery of `rec`, the head of its key's lane, when its route's gate has room;
  // otherwise it waits at the gate (I/O thread of `shard`).
  void start_lane(record_ptr rec, io_shard& shard) {
    auto* gate = gate_of(shard, rec->req);
    if (gate && gate->free == 0) {
      gate->waiting.push_back(std::move(rec));
      return;
    }
    if (gate) --gate->free;
    net::co_spawn(shard.executor, run_lane(std::move(rec), shard, gate), net::detached);
  }

  // Route gates on all I/O threads (pipeline::route_gates).
  std::size_t route_gates() {
    std::size_t total = 0;
    for (std::size_t i = 0; i < shards.size(); ++i) {
      std::promise<std::size_t> count;
      net::post(shards[i].executor, [&, i] { count.set_value(gates[i].size()); });
      total += count.get_future().get();
    }
    return total;
  }

  // Delivers `rec` holding a place in `gate`, passes the place on, then starts the next request
  // of the key (in order: the lane stays busy until next() finds it empty). Both are posted, not
  // started in place: co_spawn runs a coroutine inline up to its first suspension, and requests
  // that end without any I/O (rejections) would otherwise nest one call deeper each.
  // `gate` is nullptr for a route that is not configured (see gate_of).
  net::awaitable<void> run_lane(record_ptr rec, io_shard& shard, route_gate* gate) {
    const record_ptr held = rec;  // keeps the key for next() below: cheaper than copying it
    const std::string& key = held->req.key;
    co_await deliver(std::move(rec), shard);
    if (gate && gate->waiting.empty()) {
      ++gate->free;
    } else if (gate) {
      net::post(shard.executor, [this, waiting = std::move(gate->waiting.front()), &shard, gate]() mutable {
        net::co_spawn(shard.executor, run_lane(std::move(waiting), shard, gate), net::detached);
      });
      gate->waiting.pop_front();
    }
    auto& lane = *lanes[shard_index(shard)];
    auto next = lane.next(key);
    // Kept until it ends, and every request admitted before then has started, for a copy the
    // duplicate guard could not tell at admission: one among the requests of its key that waited,
    // or one that finds the lane idle (a delivered request's re-send; the copy of one that was not
    // delivered is sent, as the guard lets it be).
    if ((next || held->delivered) && !held->invalid && !held->req.id.empty() && duplicates.enabled()) {
      remember_lane_first(shard, held);
    }
    if (auto& f = firsts[shard_index(shard)]; !f.order.empty()) sweep(f);  // a branch when none are kept
    while (next && lane_copy_ended(shard, *next)) next = lane.next(key);
    if (next) {
      net::post(shard.executor, [this, next = std::move(*next), &shard]() mutable { start_lane(std::move(next), shard); });
    }
  }

  // Keeps `rec` (its lane run is over; see firsts) until it ends, for lane_copy_ended. run_lane
  // sweeps the ended ones out as deliveries go on: the set holds about what was delivered within
  // one acknowledgement's time.
  void remember_lane_first(io_shard& shard, const record_ptr& rec) {
    auto& f = firsts[shard_index(shard)];
    if (auto [it, added] = f.by_id.try_emplace(rec->req.id, rec); !added) {
      f.by_id.erase(it);  // the newer copy stands for the id (and the key must view its id)
      f.by_id.emplace(rec->req.id, rec);
    }
    f.order.push_back(rec);
  }

  // Lets go of the records that ended (up to safe_upto): from the front, and (when the set has
  // doubled since the last full pass) everywhere, so that one record waiting long for its
  // acknowledgement does not hold every later one. Amortized constant time a record.
  static void sweep(lane_firsts& f) {
    const auto drop = [&f](const record_ptr& r) {
      const auto ended = r->ended_seq.load(std::memory_order_acquire);
      if (ended == 0 || ended > f.safe_upto) return false;
      if (auto it = f.by_id.find(r->req.id); it != f.by_id.end() && it->second == r) f.by_id.erase(it);
      return true;
    };
    while (!f.order.empty() && drop(f.order.front())) f.order.pop_front();
    if (f.order.size() > 2 * f.compacted + 64) {
      std::erase_if(f.order, drop);
      f.compacted = f.order.size();
    }
  }

  // A request about to start in its key's lane: true when a copy of it that ran earlier in the
  // lane ended it (or will, as its follower), so it is not sent. `ask_guard`: also true when the
  // duplicate guard has the id (a copy that ended and was swept from firsts while this one
  // waited in the lane). A copy is the same id after a delivered request, or the same record read
  // again (rebalance) whatever its result.
  // It ends once the first's result is acknowledged, not before: after a rebalance it may be the
  // same record read again in a new generation, whose offset alone would let the commit pass.
  bool lane_copy_ended(io_shard& shard, const record_ptr& rec, bool ask_guard = true) {
    if (rec->invalid || rec->req.id.empty() || !duplicates.enabled()) return false;
    auto& f = firsts[shard_index(shard)];
    if (auto it = f.by_id.find(rec->req.id); it != f.by_id.end() && it->second != rec) {
      record& first = *it->second;
      const bool same_record = first.topic == rec->topic && first.partition == rec->partition && first.offset == rec->offset;
      if (first.delivered || same_record) {
        switch (first.acks.follow(rec)) {
          case pending_acks<record_ptr>::follow_result::waiting: break;
          case pending_acks<record_ptr>::follow_result::ended_before: skip_duplicate(*rec); break;
          case pending_acks<record_ptr>::follow_result::last: finish(first); break;
        }
        return true;
      }
    }
    // A copy that ended and was swept already: the guard has it now.
    if (ask_guard && seen_by_guard(*rec, std::chrono::steady_clock::now())) {
      skip_duplicate(*rec);
      return true;
    }
    return false;
  }

  net::awaitable<void> deliver(record_ptr rec, io_shard& shard) {
    core::delivery_result res;
    res.source = {rec->topic, rec->partition, rec->offset};
    const auto& req = rec->req;
    std::shared_ptr<const route_table> routes;  // holds `routed` until the result is published
    const route* routed = nullptr;
    if (rec->invalid) {
      res.status = delivery_status::rejected;
      res.error = std::move(rec->invalid);
      // When the decoder had read a configured provider and account before it stopped (a bad
      // body, say), the metrics are labelled with them, as the result is.
      if (!req.provider.empty()) {
        routes = current_table();
        routed = routes->find(req);
      }
    } else {
      routes = current_table();
      routed = routes->find(req);
      if (!routed) {
        const bool provider_known = std::any_of(routes->accounts.begin(), routes->accounts.end(),
                                                [&](const auto& a) { return a.provider == req.provider; });
        res.status = delivery_status::rejected;
        res.error = provider_known
                        ? core::failure{error_kind::unknown_account,
                                        "account: '" + req.account + "' is not configured for provider " + req.provider}
                        : core::failure{error_kind::unknown_provider,
                                        "provider: '" + req.provider + "' is not configured on this worker"};
      } else {
        // Not `cond ? co_await ... : nullopt`: GCC 12 destroys that temporary too early (ASan:
        // heap-use-after-free of the failure's message in integration_media_fetch).
        std::optional<std::pair<delivery_status, core::failure>> fetch_failed;
        if (needs_media_inline(*routed, req)) fetch_failed = co_await inline_media(*routed, *rec, *shard.http);
        if (fetch_failed) {
          res.status = fetch_failed->first;
          res.error = std::move(fetch_failed->second);
        } else if (co_await send_with_retries(*routed, *rec, res, *shard.http) == attempt_end::parked) {
          co_return;
        }
      }
    }
    fill_identity(req, res, rec);
    publish(rec, res, routed);
  }

  // Ends `res` as expired when `req`'s deadline is at or before `at` (epoch ms): a request is
  // never sent past its deadline (CONTRACT.md). True when it did. Callers test req.deadline_ms
  // first: most requests have none, and for them no clock is read and no text is made.
  static bool expires_by(const core::send_request& req, std::int64_t at, std::string_view why,
                         const std::string& last_error, core::delivery_result& res) {
    if (!req.deadline_ms || at < *req.deadline_ms) return false;
    res.status = delivery_status::expired;
    res.error = core::failure{error_kind::expired, "deadline: " + std::string(why) +
                                                       (last_error.empty() ? std::string() : " (last: " + last_error + ")")};
    return true;
  }

  // Ends `res` for a request that had to wait on the retry topic and could not be parked there
  // (`why`, from park()).
  static attempt_end unparked(const std::string& why, const std::string& last_error, core::delivery_result& res) {
    res.status = delivery_status::failed;
    res.error = core::failure{error_kind::too_large, why + (last_error.empty() ? "" : "; last: " + last_error)};
    return attempt_end::final_result;
  }

  // Whole milliseconds from `from` to `to`, rounded up.
  static std::int64_t ms_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
    return std::chrono::ceil<std::chrono::milliseconds>(to - from).count();
  }

  // Checked before inline_media is called: a coroutine call costs a frame and a resume, and
  // nearly no delivery needs one.
  static bool needs_media_inline(const route& r, const core::send_request& req) {
    return r.provider->inlines_media_from_url() && req.type == core::message_type::voice && req.body.url &&
           !req.body.data_base64;
  }

  // For providers that need the media bytes (gps Command): fetch body.url under the account's
  // policy and inline it as body.data_base64. nullopt when it worked (needs_media_inline first).
  net::awaitable<std::optional<std::pair<delivery_status, core::failure>>> inline_media(const route& r, record& rec, http::client& http) {
    auto& req = rec.req;
    const auto policy = fetch_policy_of(*r.account);
    if (policy.allowed_hosts.empty()) co_return std::nullopt;  // the provider rejects: data_base64 required
    http::endpoint ep;
    std::string target;
    if (auto f = check_fetch_url(*req.body.url, policy, ep, target)) co_return std::pair{delivery_status::rejected, *f};
    // The provider's own checks first, on the request with a stand-in file (an AMR header): what
    // it would refuse is rejected without a fetch (and not made expired by a passed deadline).
    {
      core::send_request probe = req;
      probe.body.data_base64 = "IyFBTVIK";  // base64 of "#!AMR\n"
      auto built = r.provider->build(probe, *r.account);
      if (auto* f = std::get_if<core::failure>(&built)) co_return std::pair{delivery_status::rejected, std::move(*f)};
    }
    const auto expired = [&](std::string why) {
      return std::pair{delivery_status::expired, core::failure{error_kind::expired, "deadline: " + std::move(why)}};
    };
    if (req.deadline_ms && now_ms() >= *req.deadline_ms) co_return expired("passed before delivery");
    const auto why_not = [](const http::call_result& c) {
      return c.ok ? "HTTP " + std::to_string(c.ok->status) : c.message;
    };
    // A failure that may pass (no connection, a reset, a timeout, 408, 429, 5xx) is tried again,
    // three tries in all, half a second then a second apart. fetch_timeout_ms bounds the whole
    // fetch, its tries and pauses included, and so does the request's deadline.
    constexpr int max_fetch_tries = 3;
    const auto fetch_until = std::chrono::steady_clock::now() + policy.timeout;
    http::call_result got;
    for (int tries = 1;; ++tries) {
      auto until = fetch_until;
      if (req.deadline_ms) {
        until = std::min(until, std::chrono::steady_clock::now() +
                                    std::chrono::milliseconds(std::max<std::int64_t>(*req.deadline_ms - now_ms(), 1)));
      }
      http::request get;
      get.method = "GET";
      get.target = target;
      get.content_type.clear();
      // The whole try, the wait for a connection, the connect and the exchange, ends by `until`.
      get.timeout = std::max(std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()),
                             std::chrono::milliseconds(1));
      get.done_by = until;
      get.body_limit = policy.max_bytes;
      get.allow_address = [allow = policy.allow_private](const std::string& ip) { return address_allowed(ip, allow); };
      got = co_await http.send(ep, std::move(get));
      const bool may_pass = [&] {
        if (got.ok) return got.ok->status == 408 || got.ok->status == 429 || got.ok->status >= 500;
        if (got.message.find("address policy") != std::string::npos) return false;
        switch (got.kind) {
          case http::failure_kind::connect:
          case http::failure_kind::reset_before_write:
          case http::failure_kind::timeout_before_write:
          case http::failure_kind::reset_after_write:  // a GET: sending it again is safe
          case http::failure_kind::timeout_after_write:
            return true;
          default:
            return false;
        }
      }();
      if (!may_pass) break;
      if (req.deadline_ms && now_ms() >= *req.deadline_ms) co_return expired("passed while fetching body.url (last: " + why_not(got) + ")");
      if (tries == max_fetch_tries) break;
      const auto pause = std::chrono::milliseconds(500 * tries);
      if (req.deadline_ms && now_ms() + pause.count() >= *req.deadline_ms) {
        co_return expired("the next try of fetching body.url is past it (last: " + why_not(got) + ")");
      }
      if (std::chrono::steady_clock::now() + pause >= fetch_until) break;  // fetch_timeout_ms is spent
      log.debug("pipeline", "fetching the voice file failed; trying again",
                {{"id", req.id}, {"try", std::to_string(tries)}, {"error", why_not(got)}});
      net::steady_timer timer(co_await net::this_coro::executor);
      timer.expires_after(pause);
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
    if (!got.ok) {
      if (got.kind == http::failure_kind::body_too_large) {
        co_return std::pair{delivery_status::rejected,
                            core::failure{error_kind::too_large, "body.url: the file is over the account's fetch_max_bytes (" +
                                                                     std::to_string(policy.max_bytes) + " bytes)"}};
      }
      if (got.message.find("address policy") != std::string::npos) {
        co_return std::pair{delivery_status::rejected,
                            core::failure{error_kind::invalid_field, "body.url: " + ep.host +
                                                                         " resolves only to private, loopback or link-local "
                                                                         "addresses, which this account does not fetch from"}};
      }
      const auto kind = got.kind == http::failure_kind::tls ? error_kind::tls
                        : got.kind == http::failure_kind::timeout_before_write || got.kind == http::failure_kind::timeout_after_write
                            ? error_kind::timeout
                            : error_kind::connect;
      co_return std::pair{delivery_status::failed, core::failure{kind, "body.url: fetching the voice file failed: " + got.message}};
    }
    if (got.ok->status != 200) {
      co_return std::pair{delivery_status::failed,
                          core::failure{got.ok->status < 500 ? error_kind::http_4xx : error_kind::http_5xx,
                                        "body.url: fetching the voice file answered HTTP " + std::to_string(got.ok->status)}};
    }
    req.body.data_base64 = base64_encode(got.ok->body);
    co_return std::nullopt;
  }

  net::awaitable<attempt_end> send_with_retries(const route& r, record& rec, core::delivery_result& res,
                                                http::client& http) {
    const auto& req = rec.req;
    auto built = r.provider->build(req, *r.account);
    if (auto* f = std::get_if<core::failure>(&built)) {
      res.status = delivery_status::rejected;
      res.error = *f;
      co_return attempt_end::final_result;
    }
    bool built_used = false;  // its strings were moved into an attempt: build again for the next
    const int max_attempts = req.max_attempts.value_or(cfg.worker.max_attempts);
    const std::string provider(r.provider->name());
    auto& duration = cached(r.series->request_duration, [&]() -> auto& { return metrics.request_duration_for(provider); });
    std::string last_error;

    const auto max_age = std::chrono::milliseconds(cfg.worker.max_request_age_ms);
    for (int attempt = req.attempt + 1;; ++attempt) {
      res.attempts = attempt - 1;
      if (req.deadline_ms && expires_by(req, now_ms(), "passed before delivery", last_error, res)) {
        co_return attempt_end::final_result;
      }
      // A park's read-back gets the attempt it was parked for: the park was only made when that
      // attempt fell within the age limit, and the read-back comes a little after it is due. Not
      // when it comes much later (behind a later head of its partition, after an outage).
      const bool due_from_park = attempt == req.attempt + 1 && rec.topic == cfg.kafka.retry_topic && !rec.due_taken_early &&
                                 req.not_before_ms && *req.not_before_ms > now_ms() - park_read_back_grace_ms;
      if (!due_from_park && std::chrono::steady_clock::now() - rec.held_since > max_age) {
        // A poison pill or a stalled provider must not hold its key and partition forever.
        res.status = delivery_status::failed;
        res.error = core::failure{error_kind::timeout, "request held longer than worker.max_request_age_ms (" +
                                                           std::to_string(max_age.count()) + " ms)" +
                                                           (last_error.empty() ? std::string() : "; last: " + last_error)};
        co_return attempt_end::final_result;
      }
      // A slot further out than the age limit allows is not waited for: the request would be
      // sent past it (a paced account's backlog can hand out slots many minutes ahead).
      const auto past_age_limit = [&](std::chrono::steady_clock::time_point until) {
        if (due_from_park || until - rec.held_since <= max_age) return false;
        res.status = delivery_status::failed;
        res.error = core::failure{error_kind::timeout, "the rate limit's next slot comes after the request would have "
                                                       "been held longer than worker.max_request_age_ms (" +
                                                       std::to_string(max_age.count()) + " ms)" +
                                                       (last_error.empty() ? std::string() : "; last: " + last_error)};
        return true;
      };
      // Rate limit, shared by every thread: wait for this account's next slot.
      if (rec.bulk) {
        // Bulk first takes a slot of its own share, then one of the account's.
        if (auto bulk = bulk_limiters.find(provider, req.account)) {
          const auto now = std::chrono::steady_clock::now();
          const auto slot = bulk->reserve(now);
          const auto until = slot.at;
          if (until > now && req.deadline_ms &&
              expires_by(req, now_ms() + ms_between(now, until), "the rate limit's next slot is past it", last_error, res)) {
            bulk->release(slot);  // not used: the slot goes to the next request
            co_return attempt_end::final_result;
          }
          if (until > now && past_age_limit(until)) {
            bulk->release(slot);
            co_return attempt_end::final_result;
          }
          if (until > now) {
            net::steady_timer timer(co_await net::this_coro::executor);
            timer.expires_at(until);
            co_await timer.async_wait(net::as_tuple(net::use_awaitable));
          }
        }
      }
      // Looked up after the bulk wait, which may be long: a reload meanwhile has its limiter ready.
      const auto limits_generation = limiters.generation();
      const auto limiter = limiters.find(provider, req.account);
      if (limiter) {
        const auto now = std::chrono::steady_clock::now();
        const auto slot = limiter->reserve(now, req.to);
        const auto penalized_until = limiter->penalized_until();
        const auto until = std::max(slot.at, penalized_until);
        if (until > now && req.deadline_ms &&
            expires_by(req, now_ms() + ms_between(now, until), "the rate limit's next slot is past it", last_error, res)) {
          limiter->release(slot);  // not used: the slot goes to the next request
          co_return attempt_end::final_result;
        }
        // Not while a throttle reply's pause holds the account (slots then start at its end):
        // that pause is capped at the age limit, and the account's requests wait it out, as
        // documented.
        if (slot.at > now && penalized_until <= now && past_age_limit(slot.at)) {
          limiter->release(slot);
          co_return attempt_end::final_result;
        }
        if (until > now) {
          metrics.rate_limit_wait.Add({{"provider", provider}, {"account", req.account}})
              .Increment(std::chrono::duration<double>(until - now).count());
          net::steady_timer timer(co_await net::this_coro::executor);
          timer.expires_at(until);
          co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        }
      }
      // Circuit breaker: while the account's endpoint is failing, wait (or park) instead of
      // sending; requests are not failed for it.
      policy::permit permit;
      for (;;) {
        // The last check before the call, after every wait above (and each of the breaker's):
        // past its deadline a request is not sent. Made before try_acquire, so that a half-open
        // probe slot is never taken by a request that then is not sent.
        if (req.deadline_ms &&
            expires_by(req, now_ms(), "passed while waiting for the rate limit or the circuit breaker", last_error, res)) {
          co_return attempt_end::final_result;
        }
        const auto now = std::chrono::steady_clock::now();
        permit = r.breaker->try_acquire(now);
        r.circuit_gauge->Set(gauge_value(r.breaker->state()));
        if (permit) break;
        const auto open_for = permit.open_until ? *permit.open_until - now : std::chrono::steady_clock::duration(1s);
        if (req.deadline_ms && expires_by(req, now_ms() + std::chrono::ceil<std::chrono::milliseconds>(open_for).count(),
                       "the circuit breaker of " + provider + " stays open past it", last_error, res)) {
          co_return attempt_end::final_result;
        }
        // Requests are not failed for an open circuit, but neither do they wait for ever: the
        // breaker re-opens for as long as the endpoint fails, in memory or through parks.
        if (now - rec.held_since + open_for > max_age) {
          res.status = delivery_status::failed;
          res.error = core::failure{error_kind::timeout, "the circuit breaker of " + provider +
                                                             " stays open past worker.max_request_age_ms (" +
                                                             std::to_string(max_age.count()) + " ms)" +
                                                             (last_error.empty() ? std::string() : "; last: " + last_error)};
          co_return attempt_end::final_result;
        }
        if (open_for > std::chrono::milliseconds(cfg.worker.retry_topic_threshold_ms)) {
          const auto not_before = now_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(open_for).count();
          if (auto refused = park(rec, attempt - 1, not_before); !refused.empty()) {
            co_return unparked(refused, last_error, res);
          }
          co_return attempt_end::parked;
        }
        net::steady_timer timer(co_await net::this_coro::executor);
        timer.expires_after(open_for);
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      }

      if (built_used) {
        // A retry (rare): build the call again rather than copy every first attempt's body and
        // headers for it. Building is a pure function of the request and the account.
        built = r.provider->build(req, *r.account);
        if (auto* f = std::get_if<core::failure>(&built)) {
          res.status = delivery_status::rejected;
          res.error = *f;
          co_return attempt_end::final_result;
        }
      }
      auto& call = std::get<providers::http_call>(built);
      built_used = true;
      // Designated: the request's default method and content type are not built only to be
      // replaced (the content type's is a heap string).
      http::request hr{.method = std::move(call.method),
                       .target = r.endpoint.base_path.empty() ? std::move(call.path_and_query)
                                                              : r.endpoint.base_path + call.path_and_query,
                       .content_type = std::move(call.content_type),
                       .headers = std::move(call.headers),
                       .body = std::move(call.body),
                       .timeout = std::chrono::milliseconds(cfg.worker.request_timeout_ms)};
      hr.max_redirects = r.account->follow_redirects;
      std::optional<std::chrono::steady_clock::time_point> write_by;
      if (req.deadline_ms) {
        // Capped at a year: a deadline further off (9999-12-31, INT64_MAX as "none") changes
        // nothing here, and a steady time point that far would overflow its nanoseconds.
        constexpr std::int64_t year_ms = 366LL * 86'400'000;
        const auto left = std::chrono::milliseconds(std::clamp<std::int64_t>(*req.deadline_ms - now_ms(), 1, year_ms));
        hr.timeout = std::min(hr.timeout, left);
        // The client may wait for a connection first: past the deadline it must not write.
        hr.write_by = write_by = std::chrono::steady_clock::now() + left;
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
        if (result.ok->status >= 300 && result.ok->status < 400) {
          o.message = redirect_not_followed(provider, *result.ok, r);  // still permanent: say why
        }
      } else {
        res.http_status.reset();
        o = classify_transport(result.kind, result.message);
      }
      cached(r.series->attempts.at(static_cast<std::size_t>(o.cls)), [&]() -> auto& {
        return metrics.attempts.Add({{"provider", provider}, {"outcome", std::string(to_string(o.cls))}});
      }).Increment();
      {
        // The breaker counts signs of a failing endpoint: transport failures, 5xx, and a 2xx whose
        // body is not the provider's reply (a maintenance page or a proxy's: waiting it out beats
        // ending every request ambiguous); throttling and the provider refusing a request (4xx,
        // business errors) say it is up.
        // Not sent because our own deadline came while waiting for a connection says nothing of
        // the endpoint either way: a probe's slot is handed back for another to try. (A refused
        // or timed-out connect is `connect`, and still counts.)
        const auto now = std::chrono::steady_clock::now();
        const bool not_sent_for_deadline =
            !result.ok && result.kind == http::failure_kind::timeout_before_write && write_by && now >= *write_by;
        const bool endpoint_failing =
            !o.throttled && (o.cls == providers::outcome_class::ambiguous ||
                             (o.cls == providers::outcome_class::retryable && (!result.ok || result.ok->status >= 500)));
        if (not_sent_for_deadline) r.breaker->release(permit);
        else if (endpoint_failing) r.breaker->record_failure(now, permit);
        else r.breaker->record_success(now, permit);
        r.circuit_gauge->Set(gauge_value(r.breaker->state()));
        // What the reply says (a 429's pause, a slowdown, a success) goes to the limiter that paced
        // the call and, when a reload replaced it meanwhile, to the account's current one too:
        // replace() moves the generation before it copies the old limiter's state, so an update
        // that came too late for the copy sees the move.
        const auto update = [&](policy::rate_limiter& l) {
          if (o.throttled) {
            // Capped at max_request_age_ms: every request of the account waits the penalty out in
            // memory, so a longer one would only make them all outlive the age limit, and one reply
            // (a Retry-After of a day) must not stall the account for a day.
            if (o.retry_after) l.penalize(now, now + std::min<std::chrono::milliseconds>(*o.retry_after, max_age));
            else l.adaptive_slowdown(now);  // once per min_cut_gap: a second call is no second cut
          } else if (o.cls == providers::outcome_class::delivered) {
            l.on_success(now);
          }
        };
        if (limiter) update(*limiter);
        if (limiters.generation() != limits_generation) {
          if (const auto current = limiters.find(provider, req.account); current && current != limiter) update(*current);
        }
        if (o.throttled) metrics.throttled.Add({{"provider", provider}, {"account", req.account}}).Increment();
      }
      if (!o.provider_code.empty()) res.provider_code = o.provider_code;

      if (o.cls == providers::outcome_class::delivered) {
        res.status = delivery_status::delivered;
        if (!o.id_problem.empty()) {
          res.provider_message_id.reset();
          r.without_id->Increment();
          if (due_once_a_minute(*r.without_id_warned_ms)) {
            log.warn("pipeline",
                     "delivered, but the provider's reply has no usable message id (its result's provider_message_id "
                     "is null; more within a minute are only counted, sendq_deliveries_without_provider_id_total)",
                     {{"id", req.id}, {"provider", provider}, {"account", req.account}, {"reply", o.id_problem}});
          }
        } else {
          // Providers without an id of their own (gps) know the message by our id (IdentityID).
          res.provider_message_id = o.provider_message_id.empty() ? req.id : o.provider_message_id;
        }
        res.error.reset();
        co_return attempt_end::final_result;
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
        co_return attempt_end::final_result;
      }
      if (attempt >= max_attempts) {
        res.status = delivery_status::failed;
        res.error = core::failure{error_kind::retries_exhausted,
                                  std::to_string(attempt) + " attempts failed; last: " + o.message};
        co_return attempt_end::final_result;
      }
      // Exponential back-off with full jitter, at least what the provider asked for.
      const auto base = std::min<std::int64_t>(cfg.worker.max_retry_backoff_ms,
                                               static_cast<std::int64_t>(cfg.worker.retry_backoff_ms) << std::min(attempt - 1, 20));
      auto wait = std::chrono::milliseconds(base / 2 + static_cast<std::int64_t>(jitter() % static_cast<std::uint64_t>(base / 2 + 1)));
      if (o.retry_after) wait = std::max(wait, *o.retry_after);
      // A next attempt past the deadline or the age limit could never be made: end now rather
      // than hold the key, or a retry partition (parked), until then. This also bounds the time
      // points made from `wait` below, whatever the provider's Retry-After.
      // (a function: the text is made only for a request that ends here)
      const auto next_in = [&] {
        return "the next attempt is due in " + std::to_string(wait.count()) + " ms" +
               (o.retry_after && wait == *o.retry_after ? " (the provider's Retry-After)" : "");
      };
      if (req.deadline_ms && expires_by(req, now_ms() + wait.count(), next_in() + ", after it", o.message, res)) {
        co_return attempt_end::final_result;
      }
      if (std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - rec.held_since) + wait >
          max_age) {
        res.status = delivery_status::failed;  // as the age limit at the top of an attempt ends it
        res.error = core::failure{error_kind::timeout, next_in() + ", after the request would have been held longer than "
                                                       "worker.max_request_age_ms (" + std::to_string(max_age.count()) +
                                                       " ms); last: " + o.message};
        co_return attempt_end::final_result;
      }
      if (wait > std::chrono::milliseconds(cfg.worker.retry_topic_threshold_ms)) {
        // Too long to hold in memory (and its slot): park it on the retry topic.
        if (auto refused = park(rec, attempt, now_ms() + wait.count()); !refused.empty()) {
          co_return unparked(refused, o.message, res);
        }
        co_return attempt_end::parked;
      }
      log.debug("pipeline", "retrying", {{"id", req.id}, {"attempt", std::to_string(attempt)},
                                         {"wait_ms", std::to_string(wait.count())}, {"last", o.message}});
      net::steady_timer timer(co_await net::this_coro::executor);
      timer.expires_after(wait);
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
  }

  // Produces the request with its attempt count and due time to the retry topic; the offset is
  // done once that is acknowledged, and the result comes when the retry is consumed again.
  // Returns "" when parked, else why it could not be (too large): the caller must then end the
  // request itself, or it would never get a result.
  [[nodiscard]] std::string park(record& rec, int attempts_made, std::int64_t not_before, bool routine = false,
                                 const kafka::header_list& headers = {},
                                 std::int32_t partition = kafka::any_partition) {
    // Waits for the request's next attempt count towards its age; a bulkhead's (routine) park
    // does not: it is a place in a queue, read back when the account has room, not a wait the
    // request could repeat.
    auto with_age = headers;
    const std::string json = park_value(rec, attempts_made, not_before, with_age);
    if (rec.origin.empty()) {
      with_age.emplace_back(std::string(origin_topic_header), rec.topic);
      with_age.emplace_back(std::string(origin_partition_header), std::to_string(rec.partition));
      with_age.emplace_back(std::string(origin_offset_header), std::to_string(rec.offset));
    } else {
      with_age.insert(with_age.end(), rec.origin.begin(), rec.origin.end());
    }
    if (rec.bulk) with_age.emplace_back(std::string(bulk_header), "1");
    if (!routine) {
      const auto held_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - rec.held_since);
      with_age.emplace_back(std::string(held_since_header), std::to_string(now_ms() - held_ms.count()));
    }
    rec.acks.expect(1);
    rec.remember_id = false;
    produce_ticket ticket{rec.shared_from_this()};
    ticket.park_attempts = attempts_made;
    for (const auto& [name, value] : headers) {
      if (name == parked_keys::header) ticket.park_token = value;
    }
    if (auto refused = produce_or_retry(cfg.kafka.retry_topic, rec.req.key, json, with_age, std::move(ticket), partition);
        !refused.empty()) {
      rec.remember_id = true;
      // It carries its key (by default provider:to) besides the request: up to twice its size.
      std::size_t bytes = rec.req.key.size() + json.size();
      for (const auto& [name, value] : with_age) bytes += name.size() + value.size();
      return "the request could not wait on " + cfg.kafka.retry_topic + " for its next attempt: that record is " +
             std::to_string(bytes) + " bytes with its key and headers, over the producer's message.max.bytes (" +
             producer_max_bytes + ")";
    }
    if (const auto level = routine ? log::level::debug : log::level::info; producer_run.load() && log.enabled(level)) {
      log.write(level, "pipeline", "parked on the retry topic",
                {{"id", rec.req.id}, {"attempts", std::to_string(attempts_made)}, {"not_before", std::to_string(not_before)}});
    }
    return {};
  }

  // The value of `rec`'s park: its original bytes with attempt, not_before and (when they have
  // none: the worker took the Kafka timestamp) created_at added, and `headers` get
  // added_members_header (fuzz_request_decoder checks that such a value decodes as the request
  // with them). When the original has attempt or not_before already (a client's request may:
  // added, they would repeat), the worker's encoding of the request (its body from body_json: a
  // fetched file is not in it), which its DLQ record is then.
  std::string park_value(const record& rec, int attempts_made, std::int64_t not_before, kafka::header_list& headers) {
    if (!rec.req.retry_members_read) {
      std::string members = "\"attempt\":" + std::to_string(attempts_made) + ",\"not_before\":" + std::to_string(not_before);
      if (rec.created_at_added && rec.req.created_at_ms) members += ",\"created_at\":" + std::to_string(*rec.req.created_at_ms);
      if (auto added = core::add_members(rec.payload, members)) {
        headers.emplace_back(std::string(added_members_header), std::move(added->header));
        return std::move(added->value);
      }
    }
    core::send_request copy = rec.req;
    copy.attempt = attempts_made;
    copy.not_before_ms = not_before;
    std::string json;
    core::encode_request(copy, json);
    return json;
  }

  void fill_identity(const core::send_request& req, core::delivery_result& res, const std::shared_ptr<record>& rec) {
    // Undecodable records have no usable id: name them by their position so they can be found.
    res.id = req.id.empty() ? position_id(rec->topic, rec->partition, rec->offset) : req.id;
    res.provider = req.provider;
    res.account = req.account;
    // A type that was missing or not one of the types is reported as "", not as the default (text).
    res.type = res.status == delivery_status::rejected && (req.provider.empty() || !req.type_read)
                   ? ""
                   : std::string(core::to_string(req.type));
    res.to = req.to;
    res.created_at_ms = req.created_at_ms;
    res.completed_at_ms = now_ms();
    if (res.created_at_ms) res.latency_ms = std::max<std::int64_t>(0, res.completed_at_ms - *res.created_at_ms);
    if (res.error) cap_error_message(res.error->message);  // it may quote a huge input value
  }

  // `routed`: the request's configured route (nullptr when it has none).
  void publish(const std::shared_ptr<record>& rec, const core::delivery_result& res, const route* routed) {
    thread_local std::string json;
    json.clear();
    core::encode_result(res, json);
    const bool to_dlq = res.status != delivery_status::delivered;
    rec->delivered = !to_dlq;
    rec->acks.expect(to_dlq ? 2 : 1);

    // Metric labels must stay bounded: names that are not configured are reported as "unknown".
    const std::string_view provider_label = routed ? std::string_view(res.provider) : "unknown";
    const std::string_view account_label = routed ? std::string_view(res.account) : "unknown";
    const std::string_view kind = res.error ? core::to_string(res.error->kind) : "";
    const auto counter = [&]() -> auto& {
      return metrics.delivery_counter(provider_label, account_label, core::to_string(res.status), kind);
    };
    // Deliveries of a configured route, the common case, use its cached series.
    (routed && res.status == delivery_status::delivered ? cached(routed->series->delivered, counter) : counter())
        .Increment();
    // A configured route's series are cached on it; unrouted requests (rejected) look theirs up.
    const auto histogram = [&](std::atomic<prometheus::Histogram*> route_metrics::*slot, auto make) -> prometheus::Histogram& {
      return routed ? cached((*routed->series).*slot, make) : make();
    };
    // created_at -> the result on the topic: observed when Kafka acknowledges it (on_delivery).
    prometheus::Histogram* acked_latency =
        res.created_at_ms ? &histogram(&route_metrics::end_to_end, [&]() -> auto& { return metrics.end_to_end_for(provider_label); })
                          : nullptr;
    histogram(&route_metrics::in_worker, [&]() -> auto& { return metrics.worker_latency_for(provider_label); })
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - rec->consumed_at).count());
    if (res.status == delivery_status::delivered) {
      log.debug("pipeline", "delivered", {{"id", res.id}, {"provider", res.provider}});
    } else {
      log.info("pipeline", "request ended without delivery",
               {{"id", res.id}, {"status", core::to_string(res.status)}, {"kind", kind},
                {"error", res.error ? std::string_view(res.error->message) : ""}});
    }

    produce_or_retry(cfg.kafka.results_topic, res.id, json, {},
                     produce_ticket{rec, false, acked_latency, res.created_at_ms.value_or(0)});
    if (to_dlq) {
      metrics.dlq_records.Add({{"error_kind", std::string(kind)}}).Increment();
      rec->result_id = res.id;
      rec->dlq_headers = dlq_headers(res);
      rec->dlq_headers.insert(rec->dlq_headers.end(), rec->origin.begin(), rec->origin.end());
      produce_or_retry(cfg.kafka.dlq_topic, res.id, rec->value(), rec->dlq_headers, produce_ticket{rec, true});
    }
  }

  // The DLQ record of `rec` when its original bytes are over message.max.bytes (the producer's
  // or the broker's): a null value, the same headers and one saying why (dead_letter.hpp). The
  // request still ends, with its result: a record too large to copy must not stop its partition.
  // A back-off's parked copy the broker refused for its size (on_delivery): the request ends
  // failed/too_large.
  void end_unwritable_park(const record_ptr& rec, const std::string& error, int attempts) {
    rec->remember_id = true;
    core::delivery_result res;
    res.source = {rec->topic, rec->partition, rec->offset};
    res.attempts = attempts;
    unparked("the request could not wait on " + cfg.kafka.retry_topic + ": the broker refused the record (" + error +
                 "); the topic's max.message.bytes must be at least the producer's message.max.bytes (" +
                 producer_max_bytes + ")",
             "", res);
    const auto routes = current_table();
    fill_identity(rec->req, res, rec);
    publish(rec, res, routes->find(rec->req));
  }

  void produce_dlq_without_value(const record_ptr& rec, const std::string& error) {
    auto headers = rec->dlq_headers;
    mark_value_omitted(headers, rec->payload.size(), error);
    log.warn("pipeline", "DLQ record written without the original value: too large",
             {{"id", rec->result_id}, {"bytes", std::to_string(rec->payload.size())}, {"error", error}});
    produce_or_retry(cfg.kafka.dlq_topic, rec->result_id, std::string_view(), headers, produce_ticket{rec});
  }

  // Returns "" once the record is with the producer (or the refusal is handled here), or the
  // producer's error for a parked request over its message.max.bytes: park()'s caller ends it.
  std::string produce_or_retry(const std::string& topic, std::string_view key, std::string_view value,
                               const kafka::header_list& headers, produce_ticket fields,
                               std::int32_t partition = kafka::any_partition) {
    const record_ptr rec = fields.rec;
    const bool dlq_with_value = fields.dlq_with_value;
    auto* ticket = new produce_ticket(std::move(fields));  // released in on_delivery
    for (int i = 0;; ++i) {
      auto err = producer->produce(topic, key, value, headers, ticket, partition);
      if (err.empty()) return {};
      if (kafka::is_queue_full(err) && !failed.load() && producer_run.load()) {
        // A full local queue drains as the producer thread polls (once it has stopped, at
        // shutdown, nothing drains it: waiting would hold this I/O thread, and the exit, for ever).
        if (i % 100 == 0) log.warn("pipeline", "producer queue full; waiting", {{"error", err}});
        std::this_thread::sleep_for(5ms);
        continue;
      }
      // Waiting cannot help: a record over the producer's message.max.bytes, a fatal error of the
      // idempotent producer (every later record is refused too), a topic Kafka does not know.
      // Retrying would block this I/O thread.
      delete ticket;
      if (kafka::is_message_too_large(err)) {
        if (dlq_with_value) {
          produce_dlq_without_value(rec, err);
          return {};
        }
        // A parked request carries its key besides the request, so it may be over the limit. A
        // result is not larger than its request, which configuration keeps well under the limit:
        // should one still be refused, stop (below) rather than hold its slot for ever.
        if (topic == cfg.kafka.retry_topic) return err;
      }
      if (failed.load()) return {};  // said once: the others are counted at exit
      if (!producer_run.load()) {
        if (!unwritten_at_stop.exchange(true)) {  // once: a full queue at shutdown refuses thousands
          log.warn("pipeline", "stopping: records are not written, the producer has stopped; their offsets stay "
                   "uncommitted and the requests are read again after a restart",
                   {{"topic", topic}, {"error", err}, {"partition", std::to_string(rec->partition)},
                    {"offset", std::to_string(rec->offset)}});
        }
        return {};
      }
      log.error("pipeline", "record refused by the producer; offset stays uncommitted",
                {{"topic", topic}, {"error", err}, {"bytes", std::to_string(key.size() + value.size())},
                 {"partition", std::to_string(rec->partition)}, {"offset", std::to_string(rec->offset)}});
      fail("the producer refused a record for " + topic + ": " + err);
      return {};
    }
  }

  // Kafka refused a record for good (any thread): report it once and let the drain stop waiting.
  // After the producer thread is gone (shutdown), reports of purged records are not failures.
  void fail(const std::string& reason) {
    if (!producer_run.load() || failed.exchange(true)) return;
    {
      std::lock_guard lock(failure_mutex);
      failure_reason = reason;
    }
    log.error("pipeline", "stopping: " + reason);
    {
      std::lock_guard lock(drain_mutex);
      drained.notify_all();
    }
    if (on_failure) on_failure(reason);
  }
};

pipeline::pipeline(const config::config& cfg, std::string brokers, log::logger& log, metrics::worker_metrics& metrics,
                   std::vector<io_shard> shards)
    : impl_(std::make_unique<impl>(cfg, std::move(brokers), log, metrics, std::move(shards))) {}

pipeline::~pipeline() { stop(); }

void pipeline::start(failure_handler on_failure) {
  auto& d = *impl_;
  d.on_failure = std::move(on_failure);
  // A result, DLQ record or parked request carries up to a whole accepted request: let the
  // producer take one (kafka.librdkafka may still set message.max.bytes).
  auto producer_settings = d.cfg.kafka.librdkafka;
  producer_settings["message.max.bytes"] = std::to_string(config::producer_max_bytes(d.cfg));
  // Results may wait up to 10 ms to be batched (the producer's default is 2): with a partition's
  // queue empty more often, a produce call on an I/O thread wakes librdkafka's broker thread more
  // often. Five alternated drains: 41.1 -> 34.2 us of worker CPU per delivery. completed_at is
  // stamped before; a result reaches the topic up to 10 ms later.
  producer_settings.try_emplace("linger.ms", "10");
  d.producer_max_bytes = producer_settings.at("message.max.bytes");
  d.producer = std::make_unique<kafka::producer>(
      kafka::producer_options{d.brokers, std::move(producer_settings)}, d.log,
      [&d](void* opaque, const std::string& err) { d.on_delivery(opaque, err); });
  d.consumer = std::make_unique<kafka::consumer>(
      kafka::consumer_options{d.brokers, d.cfg.kafka.group_id,
                              {d.cfg.kafka.requests_topic, d.cfg.kafka.retry_topic, d.cfg.kafka.bulk_topic},
                              d.cfg.kafka.librdkafka,
                              [&d](const std::vector<kafka::partition_lag>& lags) {
                                for (const auto& l : lags) {
                                  if (!d.assigned_now.count({l.topic, l.partition})) continue;  // revoked since
                                  d.metrics.consumer_lag
                                      .Add({{"topic", l.topic}, {"partition", std::to_string(l.partition)}})
                                      .Set(static_cast<double>(l.lag));
                                }
                              },
                              // Committed again at the next tick, or the final commit.
                              [&d](const std::vector<kafka::partition_offset>& failed) { d.tracker.commit_failed(failed); }},
      d.log, d);
  // Named for `top -H`, perf and gdb (at most 15 characters).
  d.producer_thread = std::thread([&d] {
    pthread_setname_np(pthread_self(), "sendq-producer");
    d.producer_loop();
  });
  d.kafka_thread = std::thread([&d] {
    pthread_setname_np(pthread_self(), "sendq-kafka");
    d.consume_loop();
  });
  d.started.store(true, std::memory_order_release);
}

void pipeline::stop() {
  auto& d = *impl_;
  if (d.stopped.exchange(true)) return;
  d.stopping = true;
  if (d.kafka_thread.joinable()) d.kafka_thread.join();
  // The Kafka thread's last batches and ticks may still wait on the shards: they run before
  // stop() returns (unless a shard's thread is not running), not after the pipeline is gone.
  for (auto& s : d.shards) {
    auto ran = std::make_shared<std::promise<void>>();
    auto done = ran->get_future();
    net::post(s.executor, [ran] { ran->set_value(); });
    done.wait_for(2s);
  }
  if (d.producer) {
    if (int left = d.producer->flush(10s); left > 0) {
      d.log.error("pipeline", "records not acknowledged at shutdown", {{"count", std::to_string(left)}});
    }
  }
  d.producer_run = false;
  if (d.producer_thread.joinable()) d.producer_thread.join();
}

void pipeline::hurry() {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.drain_mutex);  // not between the drain's check and its wait
    d.hurried = true;
  }
  d.drained.notify_all();
}

void pipeline::reload(const config::config& next) {
  auto& d = *impl_;
  // Validate everything before changing anything: both steps throw on a bad configuration.
  auto table = d.build_table(next.accounts, d.current_table().get());
  {
    std::lock_guard lock(d.limits_mutex);
    d.install_limits(next.limits, d.share_owned, d.share_total);
  }
  std::lock_guard lock(d.table_mutex);
  d.table = std::move(table);
}

long pipeline::unfinished() const { return impl_->in_flight.load(); }

std::size_t pipeline::route_gates() const { return impl_->route_gates(); }

std::string pipeline::failure() const {
  std::lock_guard lock(impl_->failure_mutex);
  return impl_->failure_reason;
}

std::string pipeline::readiness() const {
  if (impl_->failed.load()) return "failed: " + failure();
  if (impl_->stopping.load()) return "stopping";
  if (!impl_->started.load(std::memory_order_acquire) || impl_->consumer->assigned_count() == 0) {
    return "no partitions assigned yet";
  }
  // Stalled: the oldest unfinished request is older than a request may ever be held.
  if (const auto oldest = impl_->tracker.oldest_unfinished()) {
    const auto age = std::chrono::steady_clock::now() - *oldest;
    if (age > std::chrono::milliseconds(impl_->cfg.worker.max_request_age_ms) + 60s) {
      return "stalled: the oldest unfinished request is " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()) + " s old";
    }
  }
  return {};
}

}  // namespace sendq::delivery
