#include "sendq/metrics/gateway_metrics.hpp"

#include <string>

#include "sendq/metrics/build_info.hpp"
#include "sendq/metrics/worker_metrics.hpp"

namespace sendq::metrics {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

gateway_metrics::gateway_metrics(prometheus::Registry& r, std::string_view version, std::string_view commit)
    : requests(BuildCounter().Name("sendq_gateway_requests_total")
                   .Help("Requests answered, by endpoint and code (HTTP status; the legacy API's own code)")
                   .Register(r)),
      request_duration(BuildHistogram().Name("sendq_gateway_request_duration_seconds")
                           .Help("From a request read to its answer, Kafka's acknowledgements included (not counted for one answered from its head)")
                           .Register(r)),
      records(BuildCounter().Name("sendq_gateway_records_total")
                  .Help("Records produced to Kafka, by result (acknowledged, failed)").Register(r)),
      records_in_flight(BuildGauge().Name("sendq_gateway_records_in_flight")
                            .Help("Records produced whose acknowledgement has not come yet").Register(r).Add({})),
      refused(BuildCounter().Name("sendq_gateway_refused_total")
                  .Help("Requests the HTTP server answered before any handler, by reason").Register(r)) {
  register_build_info(r, version, commit);
}

void gateway_metrics::count_request(std::string_view endpoint, unsigned code, double seconds) {
  requests.Add({{"endpoint", std::string(endpoint)}, {"code", std::to_string(code)}}).Increment();
  request_duration.Add({{"endpoint", std::string(endpoint)}}, worker_metrics::http_buckets()).Observe(seconds);
}

void gateway_metrics::count_early_answer(std::string_view endpoint, unsigned code) {
  requests.Add({{"endpoint", std::string(endpoint)}, {"code", std::to_string(code)}}).Increment();
}

void gateway_metrics::count_refusal(unsigned status, std::string_view reason) {
  std::string_view label = "bad_request";
  if (status == 413) {
    label = "body_limit";
  } else if (status == 431) {
    label = "head_limit";
  } else if (status == 500) {
    label = "internal";  // a handler failed (not before it, as the others)
  } else if (reason == "too many connections") {
    label = "connections";
  } else if (reason == "too much request body in memory") {
    label = "body_bytes";
  } else if (reason == "stopping") {
    label = "stopping";
  }
  refused.Add({{"reason", std::string(label)}}).Increment();
}

}  // namespace sendq::metrics
