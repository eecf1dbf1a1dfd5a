// SendRequest decode (simdjson On-Demand) on realistic 300-1,000-byte requests: all providers
// mixed, and each provider alone. Reports bytes/s (target: >= 1 GB/s per core) and items/s.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "../support/realistic_requests.hpp"
#include "sendq/core/request_decoder.hpp"

namespace {

using sendq::core::request_decoder;
using sendq::core::send_request;

/// The requests of `provider` ("" = all), copied into their own buffers as they would arrive
/// from Kafka (not in read-only data next to each other).
std::vector<std::string> requests_of(std::string_view provider) {
  std::vector<std::string> out;
  for (const auto& r : sendq::bench::realistic_requests()) {
    if (provider.empty() || r.provider == provider) out.emplace_back(r.json);
  }
  return out;
}

void decode(benchmark::State& state, std::string_view provider) {
  const auto requests = requests_of(provider);
  request_decoder decoder;
  send_request out;
  for (const auto& r : requests) {
    if (auto f = decoder.decode(r, out)) {
      state.SkipWithError(("a benchmark request does not decode: " + f->message).c_str());
      return;
    }
  }
  std::size_t i = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    const auto& r = requests[i];
    auto f = decoder.decode(r, out);
    benchmark::DoNotOptimize(f);
    benchmark::DoNotOptimize(out);
    bytes += r.size();
    if (++i == requests.size()) i = 0;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
  state.counters["avg_bytes"] = static_cast<double>(bytes) / static_cast<double>(state.iterations());
}

BENCHMARK_CAPTURE(decode, all_providers, "");
BENCHMARK_CAPTURE(decode, sender, "sender");
BENCHMARK_CAPTURE(decode, gewe, "gewe");
BENCHMARK_CAPTURE(decode, im, "im");
BENCHMARK_CAPTURE(decode, gps, "gps");

}  // namespace
