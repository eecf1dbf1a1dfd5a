#pragma once
/// The gateway's Prometheus metrics (served on gateway.metrics_addr). Label values are bounded:
/// endpoints, HTTP statuses or the legacy API's codes, record results, refusal reasons.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string_view>

namespace sendq::metrics {

struct gateway_metrics {
  gateway_metrics(prometheus::Registry& registry, std::string_view version, std::string_view commit);

  /// sendq_gateway_requests_total{endpoint, code}: endpoint `messages`, `legacy` or `other`;
  /// code the HTTP status (the legacy API's own `code`, as its HTTP status is always 200).
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& request_duration;  ///< seconds {endpoint}: read to answer (handled ones)
  prometheus::Family<prometheus::Counter>& records;             ///< {result = acknowledged, failed}
  prometheus::Gauge& records_in_flight;                         ///< produced, ack not yet in
  /// sendq_gateway_refused_total{reason}: answered by the HTTP server before any handler
  /// (connections, body_bytes, body_limit, bad_request, stopping).
  prometheus::Family<prometheus::Counter>& refused;

  /// Counts one request answered by the handler, and its duration.
  void count_request(std::string_view endpoint, unsigned code, double seconds);
  /// Counts one request answered from its head (no duration: it would pull the quantiles to 0).
  void count_early_answer(std::string_view endpoint, unsigned code);
  /// Counts a refusal by the HTTP server (its status and reason, as server_options::refusal has them).
  void count_refusal(unsigned status, std::string_view reason);
};

}  // namespace sendq::metrics
