// The duplicate guard (duplicate_guard): what one delivery costs it with the default bound of
// 200,000 ids remembered. The Kafka thread asks seen(id, position) for each consumed request (its
// id and its record's position, under one lock; a miss, the common case) and the producer thread
// remember()s it when its result is acknowledged, which also forgets the oldest once the guard is
// full.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "sendq/delivery/duplicate_guard.hpp"

namespace {

using sendq::delivery::duplicate_guard;
using namespace std::chrono_literals;

constexpr std::size_t max_ids = 200'000;  // worker.dedupe_max_ids' default

// A record's position as the pipeline keys it (id, topic, partition:offset), for the second lookup.
std::string position_of(const std::string& id, std::size_t i) {
  return id + '\0' + "sendq.requests" + '\0' + std::to_string(i % 64) + ':' + std::to_string(i);
}

// Ids shaped like the contract's examples (a UUID): 36 characters.
std::string id_of(std::size_t i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "5f0c7a52-%04zx-4c1e-9d3b-%012zx", (i * 7) & 0xffff, i);
  return buf;
}

void seen_then_remember_when_full(benchmark::State& state) {
  std::vector<std::string> ids, positions;
  const std::size_t n = 4 * max_ids;
  ids.reserve(n);
  positions.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    ids.push_back(id_of(i));
    positions.push_back(position_of(ids.back(), i));
  }
  duplicate_guard g(600'000ms, max_ids);
  const auto now = duplicate_guard::clock::now();
  for (std::size_t i = 0; i < max_ids; ++i) g.remember(ids[i], now);  // full: each remember forgets one
  std::size_t i = max_ids;
  for (auto _ : state) {
    const auto& id = ids[i];
    benchmark::DoNotOptimize(g.seen(id, positions[i], now));
    g.remember(id, now);
    if (++i == n) i = 0;  // ids from the start were forgotten long ago: still misses
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(seen_then_remember_when_full);

void seen_of_a_remembered_id(benchmark::State& state) {
  duplicate_guard g(600'000ms, max_ids);
  const auto now = duplicate_guard::clock::now();
  std::vector<std::string> ids, positions;
  for (std::size_t i = 0; i < max_ids; ++i) {
    ids.push_back(id_of(i));
    positions.push_back(position_of(ids.back(), i));
    g.remember(ids.back(), now);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(g.seen(ids[i], positions[i], now));
    i = (i + 7919) % max_ids;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(seen_of_a_remembered_id);

}  // namespace
