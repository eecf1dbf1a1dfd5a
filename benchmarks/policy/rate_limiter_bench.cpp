// Cost of one rate-limiter / circuit-breaker call, alone and with 2 or 4 threads sharing one
// account (the mutex contended). Time is a fake clock advanced per call, as in production the
// caller passes `now`.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "sendq/policy/circuit_breaker.hpp"
#include "sendq/policy/rate_limiter.hpp"
#include "sendq/policy/rate_limiter_registry.hpp"

namespace {

using namespace std::chrono_literals;
using sendq::policy::circuit_breaker;
using sendq::policy::rate_limit_config;
using sendq::policy::rate_limiter;
using sendq::policy::rate_limiter_registry;
using time_point = rate_limiter::time_point;

const time_point t0 = time_point{} + 1h;

rate_limiter& one_window_limiter() {
  static rate_limiter l([] {
    rate_limit_config c;
    c.windows = {{1000, 1s}};
    return c;
  }());
  return l;
}

rate_limiter& recipient_limiter() {
  static rate_limiter l([] {
    rate_limit_config c;
    c.windows = {{100, 1s}, {6000, 1min}};
    c.per_recipient = sendq::policy::window{1, 1s};
    return c;
  }());
  return l;
}

const std::vector<std::string>& recipients() {
  static const std::vector<std::string> r = [] {
    std::vector<std::string> out;
    for (int i = 0; i < 10'000; ++i) out.push_back("+86138000" + std::to_string(10'000 + i));
    return out;
  }();
  return r;
}

void reserve_one_window(benchmark::State& state) {
  auto& l = one_window_limiter();
  auto now = t0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(l.reserve(now));
    now += 1us;
  }
}
BENCHMARK(reserve_one_window);
BENCHMARK(reserve_one_window)->Threads(2);
BENCHMARK(reserve_one_window)->Threads(4);

void reserve_two_windows_and_recipient(benchmark::State& state) {
  auto& l = recipient_limiter();
  const auto& to = recipients();
  auto now = t0;
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    benchmark::DoNotOptimize(l.reserve(now, to[i % to.size()]));
    now += 1us;
    ++i;
  }
}
BENCHMARK(reserve_two_windows_and_recipient);
BENCHMARK(reserve_two_windows_and_recipient)->Threads(2);
BENCHMARK(reserve_two_windows_and_recipient)->Threads(4);

void registry_find(benchmark::State& state) {
  static rate_limiter_registry r([] {
    std::vector<sendq::policy::account_limits> a;
    for (int i = 0; i < 100; ++i) a.push_back({"sender", "account" + std::to_string(i), {{{100, 1s}}, {}, {}}});
    return a;
  }());
  for (auto _ : state) benchmark::DoNotOptimize(r.find("sender", "account42"));
}
BENCHMARK(registry_find);
BENCHMARK(registry_find)->Threads(4);

void breaker_acquire_and_record(benchmark::State& state) {
  static circuit_breaker b;
  auto now = t0;
  for (auto _ : state) {
    auto p = b.try_acquire(now);
    b.record_success(now, p);
    now += 1us;
  }
}
BENCHMARK(breaker_acquire_and_record);
BENCHMARK(breaker_acquire_and_record)->Threads(2);
BENCHMARK(breaker_acquire_and_record)->Threads(4);

}  // namespace
