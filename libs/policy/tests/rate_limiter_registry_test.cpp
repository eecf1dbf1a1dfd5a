#include "sendq/policy/rate_limiter_registry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sendq::policy::account_limits;
using sendq::policy::rate_limit_config;
using sendq::policy::rate_limiter_registry;

namespace {

const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

rate_limit_config per_second(std::uint32_t n) {
  rate_limit_config c;
  c.windows = {{n, 1s}};
  return c;
}

}  // namespace

TEST(rate_limiter_registry, finds_limiters_by_provider_and_account) {
  // given
  rate_limiter_registry r({{"sender", "a", per_second(10)}, {"gewe", "a", per_second(5)}});
  // when / then
  ASSERT_NE(r.find("sender", "a"), nullptr);
  EXPECT_EQ(r.find("sender", "a")->config(), per_second(10));
  EXPECT_EQ(r.find("gewe", "a")->config(), per_second(5));
  EXPECT_EQ(r.find("sender", "b"), nullptr);
  EXPECT_EQ(r.size(), 2u);
}

TEST(rate_limiter_registry, replace_keeps_the_state_of_unchanged_accounts) {
  // given an account with a backlog of 10 slots at 10/s
  rate_limiter_registry r({{"sender", "a", per_second(10)}, {"sender", "b", per_second(10)}});
  auto a = r.find("sender", "a");
  auto b = r.find("sender", "b");
  for (int i = 0; i < 10; ++i) a->reserve(t0);
  // when the configuration is reloaded with `a` unchanged, `b` changed, `c` new
  r.replace({{"sender", "a", per_second(10)}, {"sender", "b", per_second(20)}, {"sender", "c", per_second(1)}});
  // then `a` is the same limiter and its schedule goes on after the 10th slot
  EXPECT_EQ(r.find("sender", "a"), a);
  EXPECT_EQ(r.find("sender", "a")->reserve(t0).at, t0 + 1s);
  EXPECT_NE(r.find("sender", "b"), b);
  EXPECT_EQ(r.find("sender", "b")->config(), per_second(20));
  EXPECT_NE(r.find("sender", "c"), nullptr);
  // and a holder of the old `b` can still use it
  EXPECT_EQ(b->reserve(t0).at, t0);
}

TEST(rate_limiter_registry, replace_drops_accounts_no_longer_listed) {
  rate_limiter_registry r({{"sender", "a", per_second(10)}});
  r.replace({});
  EXPECT_EQ(r.find("sender", "a"), nullptr);
  EXPECT_EQ(r.size(), 0u);
}

TEST(rate_limiter_registry, rejects_bad_configuration_and_keeps_the_old_one) {
  // given
  rate_limiter_registry r({{"sender", "a", per_second(10)}});
  auto a = r.find("sender", "a");
  // when / then
  EXPECT_THROW(r.replace({{"sender", "a", per_second(0)}}), std::invalid_argument);
  EXPECT_THROW(r.replace({{"sender", "x", per_second(1)}, {"sender", "x", per_second(1)}}), std::invalid_argument);
  EXPECT_EQ(r.find("sender", "a"), a);
  EXPECT_THROW(rate_limiter_registry({{"p", "a", per_second(0)}}), std::invalid_argument);
}

TEST(rate_limiter_registry, lookups_run_safely_during_replace) {
  // given readers reserving through the registry on 3 threads
  rate_limiter_registry r({{"sender", "a", per_second(100)}});
  std::atomic<bool> stop{false};
  std::atomic<int> found{0};
  std::atomic<int> missed{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (auto l = r.find("sender", "a")) {
          l->reserve(t0, "x");
          found.fetch_add(1);
        } else {
          missed.fetch_add(1);
        }
      }
    });
  }
  while (found.load() == 0) std::this_thread::yield();
  // when the configuration is reloaded many times, alternating between two limits
  for (int i = 0; i < 200; ++i) r.replace({{"sender", "a", per_second(i % 2 == 0 ? 50 : 100)}});
  stop = true;
  for (auto& th : readers) th.join();
  // then every lookup found a limiter and the last configuration is in place
  EXPECT_EQ(missed.load(), 0);
  EXPECT_EQ(r.find("sender", "a")->config(), per_second(100));
}
