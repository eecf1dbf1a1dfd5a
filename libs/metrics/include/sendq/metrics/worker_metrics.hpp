#pragma once
/// The worker's Prometheus metrics, built once from a registry and injected where they are updated.
/// Label values are bounded: configured providers/accounts, statuses, error kinds (never ids).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>
#include <string_view>

namespace sendq::metrics {

struct worker_metrics {
  explicit worker_metrics(prometheus::Registry& registry, std::string_view version, std::string_view commit);

  prometheus::Counter& requests_consumed;                  ///< sendq_requests_consumed_total
  prometheus::Family<prometheus::Counter>& deliveries;     ///< {provider,account,status,error_kind}
  prometheus::Family<prometheus::Histogram>& provider_request_duration;  ///< seconds {provider}
  prometheus::Family<prometheus::Histogram>& end_to_end_latency;         ///< seconds {provider}
  prometheus::Family<prometheus::Histogram>& worker_latency;             ///< seconds {provider}
  prometheus::Family<prometheus::Counter>& attempts;       ///< {provider,outcome}
  prometheus::Family<prometheus::Counter>& retries;        ///< {provider}
  prometheus::Family<prometheus::Counter>& dlq_records;    ///< {error_kind}
  prometheus::Gauge& in_flight;                            ///< consumed, no result acknowledged yet
  prometheus::Gauge& producer_queue_length;                ///< records queued in librdkafka
  prometheus::Gauge& assigned_partitions;
  prometheus::Gauge& rate_limit_share;                     ///< share of each account's rate limits taken here (0-1]
  prometheus::Gauge& queued;                               ///< consumed, waiting for their key's turn or a rate slot
  prometheus::Family<prometheus::Counter>& rate_limit_wait;  ///< seconds waited for a rate slot {provider,account}
  prometheus::Family<prometheus::Counter>& throttled;      ///< provider throttling replies (429, ...) {provider,account}
  /// deliveries whose success reply lacked the provider's message id {provider,account}
  prometheus::Family<prometheus::Counter>& without_provider_id;
  prometheus::Family<prometheus::Gauge>& circuit_state;    ///< 0 closed, 1 half-open, 2 open {provider,account}
  prometheus::Family<prometheus::Gauge>& consumer_lag;     ///< messages behind the high watermark {topic,partition}
  prometheus::Gauge& oldest_request_age;                   ///< seconds since the oldest unfinished request was consumed
  prometheus::Counter& duplicates;                         ///< requests skipped as already finished (duplicate guard)
  prometheus::Counter& bulkhead_parked;                    ///< requests parked because their account was at its cap
  prometheus::Counter& capacity_pauses;                    ///< partitions all paused: no slot freed for a second
  prometheus::Family<prometheus::Counter>& config_reloads; ///< SIGHUP reloads {result="ok"|"error"}

  /// The final-result counter of these labels (sendq_deliveries_total).
  prometheus::Counter& delivery_counter(std::string_view provider, std::string_view account, std::string_view status,
                                        std::string_view error_kind);
  prometheus::Histogram& request_duration_for(std::string_view provider);
  prometheus::Histogram& end_to_end_for(std::string_view provider);
  prometheus::Histogram& worker_latency_for(std::string_view provider);

  /// Bucket bounds (seconds) suited to HTTP calls: 1 ms .. 30 s.
  static const prometheus::Histogram::BucketBoundaries& http_buckets();
  /// Finer below 10 ms, for the time a request spends in the worker: 0.25 ms .. 60 s.
  static const prometheus::Histogram::BucketBoundaries& worker_buckets();
  /// sendq_end_to_end_latency_seconds': 1 ms steps to 5 ms (the latency target's bound), then to 300 s.
  static const prometheus::Histogram::BucketBoundaries& end_to_end_buckets();
};

}  // namespace sendq::metrics
