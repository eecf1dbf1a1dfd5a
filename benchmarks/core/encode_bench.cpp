// DeliveryResult encode: a delivered result (the common case) and a failed one carrying an
// error, appended to a reused buffer as the pipeline does. Reports bytes/s and items/s.
#include <benchmark/benchmark.h>

#include <string>

#include "sendq/core/delivery_result.hpp"
#include "sendq/core/result_encoder.hpp"

namespace {

using namespace sendq::core;

delivery_result delivered() {
  delivery_result r;
  r.id = "req-01234-gewe-voice";
  r.provider = "gewe";
  r.account = "default";
  r.type = "voice";
  r.to = "34757816141@chatroom";
  r.status = delivery_status::delivered;
  r.attempts = 1;
  r.provider_message_id = "2321462558768366600";
  r.http_status = 200;
  r.provider_code = "200";
  r.created_at_ms = 1794999000000;
  r.completed_at_ms = 1794999000420;
  r.latency_ms = 420;
  r.source = {"sendq.requests", 7, 123456789};
  return r;
}

delivery_result failed() {
  delivery_result r = delivered();
  r.status = delivery_status::failed;
  r.attempts = 3;
  r.provider_message_id.reset();
  r.http_status = 503;
  r.provider_code.reset();
  r.error = failure{error_kind::http_5xx, "provider answered 503 Service Unavailable \"busy\" after 3 attempts"};
  return r;
}

void encode(benchmark::State& state, const delivery_result& r) {
  std::string out;
  std::size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    encode_result(r, out);
    benchmark::DoNotOptimize(out.data());
    bytes += out.size();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(encode, delivered, delivered());
BENCHMARK_CAPTURE(encode, failed_with_error, failed());

}  // namespace
