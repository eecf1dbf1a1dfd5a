// The per-key dispatcher (key_lanes): the cost of one delivery's push() + next() when its key
// is idle (the common case), of a delivery that waits behind another of the same key, and the
// same with 2 and 4 threads on 10,000 keys (shard mutexes contended).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <vector>

#include "sendq/delivery/key_lanes.hpp"

namespace {

using lanes_t = sendq::delivery::key_lanes<std::size_t>;

const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> out;
    for (int i = 0; i < 10'000; ++i) out.push_back("sender:14899228901" + std::to_string(900000 + i));
    return out;
  }();
  return k;
}

/// One delivery: push; when the lane was idle run it and every item queued behind it.
void deliver(lanes_t& lanes, const std::string& key, std::size_t item) {
  if (auto run = lanes.push(key, item)) {
    benchmark::DoNotOptimize(*run);
    while (auto more = lanes.next(key)) benchmark::DoNotOptimize(*more);
  }
}

void push_next_idle_key(benchmark::State& state) {
  static lanes_t lanes;
  const auto& k = keys();
  // threads start at different keys and stride by the thread count: rarely the same key
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    deliver(lanes, k[i % k.size()], i);
    i += 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(push_next_idle_key);
BENCHMARK(push_next_idle_key)->Threads(2)->UseRealTime();
BENCHMARK(push_next_idle_key)->Threads(4)->UseRealTime();

/// Two deliveries of one key: the second waits in the lane and is handed over by next().
void push_next_queued_behind(benchmark::State& state) {
  lanes_t lanes;
  const auto& k = keys();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& key = k[i % k.size()];
    auto first = lanes.push(key, i);
    auto second = lanes.push(key, i + 1);
    benchmark::DoNotOptimize(second);
    auto handed = lanes.next(key);
    auto done = lanes.next(key);
    benchmark::DoNotOptimize(first);
    benchmark::DoNotOptimize(handed);
    benchmark::DoNotOptimize(done);
    ++i;
  }
  state.SetItemsProcessed(2 * state.iterations());
}
BENCHMARK(push_next_queued_behind);

/// All threads on one hot key (one shard, one lane): the worst case of contention.
void push_next_one_hot_key(benchmark::State& state) {
  static lanes_t lanes;
  const std::string key = "gewe:34757816141@chatroom";
  std::size_t i = 0;
  for (auto _ : state) deliver(lanes, key, i++);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(push_next_one_hot_key)->Threads(2)->UseRealTime();
BENCHMARK(push_next_one_hot_key)->Threads(4)->UseRealTime();

}  // namespace
