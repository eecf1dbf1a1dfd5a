#include "sendq/metrics/worker_metrics.hpp"

#include "sendq/metrics/build_info.hpp"

namespace sendq::metrics {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

worker_metrics::worker_metrics(prometheus::Registry& r, std::string_view version, std::string_view commit)
    : requests_consumed(BuildCounter().Name("sendq_requests_consumed_total")
                            .Help("SendRequests read from Kafka").Register(r).Add({})),
      deliveries(BuildCounter().Name("sendq_deliveries_total")
                     .Help("Final results produced, by provider, account, status and error kind").Register(r)),
      provider_request_duration(BuildHistogram().Name("sendq_provider_request_duration_seconds")
                                    .Help("Duration of one HTTP call to a provider").Register(r)),
      end_to_end_latency(BuildHistogram().Name("sendq_end_to_end_latency_seconds")
                             .Help("From the request's created_at to Kafka's acknowledgement of its result (the result on "
                                   "the results topic for its readers)").Register(r)),
      worker_latency(BuildHistogram().Name("sendq_worker_latency_seconds")
                         .Help("From consuming the request to its result: the time it spends in this worker "
                               "(waits for its key, rate limits, retries and HTTP calls included)")
                         .Register(r)),
      attempts(BuildCounter().Name("sendq_attempts_total")
                   .Help("HTTP attempts by provider and outcome class").Register(r)),
      retries(BuildCounter().Name("sendq_retries_total").Help("Attempts that were retries").Register(r)),
      dlq_records(BuildCounter().Name("sendq_dlq_records_total").Help("Records written to the DLQ").Register(r)),
      in_flight(BuildGauge().Name("sendq_requests_in_flight")
                    .Help("Requests consumed whose result is not yet acknowledged").Register(r).Add({})),
      producer_queue_length(BuildGauge().Name("sendq_producer_queue_length")
                                .Help("Records queued in the Kafka producer").Register(r).Add({})),
      assigned_partitions(BuildGauge().Name("sendq_assigned_partitions")
                              .Help("Partitions assigned to this worker").Register(r).Add({})),
      rate_limit_share(BuildGauge().Name("sendq_rate_limit_share")
                           .Help("Share of each account's rate limits this worker takes: its share of the requests "
                                 "topic's partitions with worker.rate_limit_scope = group, else 1")
                           .Register(r).Add({})),
      queued(BuildGauge().Name("sendq_requests_queued")
                 .Help("Requests consumed and waiting for their key's turn or a rate-limit slot").Register(r).Add({})),
      rate_limit_wait(BuildCounter().Name("sendq_rate_limit_wait_seconds_total")
                          .Help("Seconds requests waited for a rate-limit slot").Register(r)),
      throttled(BuildCounter().Name("sendq_provider_throttled_total")
                    .Help("Throttling replies from providers (429, 403 send reach limit, ...)").Register(r)),
      without_provider_id(BuildCounter().Name("sendq_deliveries_without_provider_id_total")
                              .Help("Deliveries whose provider reply said success without its message id "
                                    "(gewe data.newMsgId, im data._id): provider_message_id null")
                              .Register(r)),
      circuit_state(BuildGauge().Name("sendq_circuit_state")
                        .Help("Circuit breaker state per provider account: 0 closed, 1 half-open, 2 open").Register(r)),
      consumer_lag(BuildGauge().Name("sendq_consumer_lag_messages")
                       .Help("Messages between the committed offset and the high watermark").Register(r)),
      oldest_request_age(BuildGauge().Name("sendq_oldest_request_age_seconds")
                             .Help("Age of the oldest request consumed and not yet finished").Register(r).Add({})),
      duplicates(BuildCounter().Name("sendq_duplicates_total")
                     .Help("Requests not sent again because their id already ended recently").Register(r).Add({})),
      bulkhead_parked(BuildCounter().Name("sendq_bulkhead_parked_total")
                          .Help("Requests parked on the retry topic because their account held its maximum").Register(r).Add({})),
      capacity_pauses(BuildCounter().Name("sendq_capacity_pauses_total")
                          .Help("Times every partition was paused because all max_in_flight slots stayed held for a "
                                "second (five within 30 s of the last pause)").Register(r).Add({})),
      config_reloads(BuildCounter().Name("sendq_config_reloads_total")
                         .Help("Configuration reloads on SIGHUP by result").Register(r)) {
  register_build_info(r, version, commit);
}

prometheus::Counter& worker_metrics::delivery_counter(std::string_view provider, std::string_view account,
                                                     std::string_view status, std::string_view error_kind) {
  return deliveries.Add({{"provider", std::string(provider)},
                         {"account", std::string(account)},
                         {"status", std::string(status)},
                         {"error_kind", std::string(error_kind)}});
}

const prometheus::Histogram::BucketBoundaries& worker_metrics::http_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                         0.25,  0.5,    1,     2.5,  5,     10,   30};
  return b;
}

const prometheus::Histogram::BucketBoundaries& worker_metrics::worker_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,     0.25,   0.5,   1,     2.5,   5,    10,   60};
  return b;
}

prometheus::Histogram& worker_metrics::request_duration_for(std::string_view provider) {
  return provider_request_duration.Add({{"provider", std::string(provider)}}, http_buckets());
}

const prometheus::Histogram::BucketBoundaries& worker_metrics::end_to_end_buckets() {
  // Millisecond steps up to 5 ms, so that the share of results on the topic within 5 ms of
  // created_at is read exactly (le="0.005"); then up to a backlog's minutes in Kafka.
  static const prometheus::Histogram::BucketBoundaries b{0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015,
                                                         0.025, 0.05,  0.1,   0.25,  0.5,   1,      2.5,  5,
                                                         10,    30,    60,    300};
  return b;
}

prometheus::Histogram& worker_metrics::end_to_end_for(std::string_view provider) {
  return end_to_end_latency.Add({{"provider", std::string(provider)}}, end_to_end_buckets());
}

prometheus::Histogram& worker_metrics::worker_latency_for(std::string_view provider) {
  return worker_latency.Add({{"provider", std::string(provider)}}, worker_buckets());
}

}  // namespace sendq::metrics
