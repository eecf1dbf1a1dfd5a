#include "sendq/policy/rate_limiter_registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sendq::policy::account_limits;
using sendq::policy::rate_limit_config;
using sendq::policy::rate_limiter_registry;

namespace {

const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

// Milliseconds from t0, so that failures print readable time points.
long long ms_after_t0(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - t0).count();
}

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

TEST(rate_limiter_registry, a_changed_account_goes_on_after_the_old_schedule_at_no_more_than_its_rate) {
  // given an account at 10/s with 100 slots handed out (callers wait on them for 10 s)
  rate_limiter_registry r({{"sender", "a", per_second(10)}});
  auto old = r.find("sender", "a");
  std::vector<std::chrono::steady_clock::time_point> slots;
  for (int i = 0; i < 100; ++i) slots.push_back(old->reserve(t0).at);
  ASSERT_EQ(ms_after_t0(slots.back()), 9900);
  // when its limits change on reload (still 10/s, plus a per-minute window)
  auto changed = per_second(10);
  changed.windows.push_back({600, 60s});
  r.replace({{"sender", "a", changed}});
  auto fresh = r.find("sender", "a");
  ASSERT_NE(fresh, old);
  for (int i = 0; i < 10; ++i) slots.push_back(fresh->reserve(t0).at);
  // then the new slots follow the old ones at 100 ms spacing, not from t0 in parallel with them
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ms_after_t0(slots[100 + i]), 10000 + 100 * i) << "new slot " << i;
  // and no one-second window holds more than 10 slots of old and new together
  std::sort(slots.begin(), slots.end());
  for (std::size_t i = 0; i + 10 < slots.size(); ++i) {
    EXPECT_GE(ms_after_t0(slots[i + 10]) - ms_after_t0(slots[i]), 1000) << "11 slots within a second from slot " << i;
  }
}

TEST(rate_limiter_registry, a_changed_account_keeps_its_penalty_and_slowdown) {
  // given an account told to wait 30 s (Retry-After), and one slowed down by a 429 without it
  rate_limiter_registry r({{"sender", "a", per_second(10)}, {"sender", "b", per_second(10)}});
  r.find("sender", "a")->penalize(t0, t0 + 30s);
  r.find("sender", "b")->adaptive_slowdown(t0);
  // when both accounts' limits change on reload
  r.replace({{"sender", "a", per_second(20)}, {"sender", "b", per_second(20)}});
  // then the new limiter of `a` still gives no slot before the penalty's end
  auto a = r.find("sender", "a");
  EXPECT_EQ(a->config(), per_second(20));
  EXPECT_EQ(ms_after_t0(a->penalized_until()), 30000);
  EXPECT_EQ(ms_after_t0(a->reserve(t0 + 1s).at), 30000);
  // and `b` stays at half its (new) rate: 20/s halved is a slot every 100 ms
  auto b = r.find("sender", "b");
  EXPECT_EQ(b->rate_factor(), 0.5);
  const auto first = b->reserve(t0 + 1s).at;
  EXPECT_EQ(ms_after_t0(b->reserve(t0 + 1s).at) - ms_after_t0(first), 100);
}

TEST(rate_limiter_registry, a_changed_account_keeps_each_recipients_spacing) {
  // given a recipient limit of 1 per 10 s, and "x" sent to at t0
  auto limits = per_second(10);
  limits.per_recipient = sendq::policy::window{1, 10s};
  rate_limiter_registry r({{"sender", "a", limits}});
  EXPECT_EQ(ms_after_t0(r.find("sender", "a")->reserve(t0, "x").at), 0);
  // when the recipient limit becomes 1 per 20 s
  limits.per_recipient = sendq::policy::window{1, 20s};
  r.replace({{"sender", "a", limits}});
  // then "x" waits 20 s from its last slot, and other recipients do not wait for it
  auto fresh = r.find("sender", "a");
  EXPECT_EQ(ms_after_t0(fresh->reserve(t0 + 1s, "x").at), 20000);
  EXPECT_EQ(ms_after_t0(fresh->reserve(t0 + 1s, "y").at), 1000);
}

TEST(rate_limiter_registry, replace_drops_accounts_no_longer_listed) {
  rate_limiter_registry r({{"sender", "a", per_second(10)}});
  r.replace({});
  EXPECT_EQ(r.find("sender", "a"), nullptr);
  EXPECT_EQ(r.size(), 0u);
}

TEST(rate_limiter_registry, generation_counts_the_replacements_that_took_effect) {
  // given
  rate_limiter_registry r({{"sender", "a", per_second(10)}});
  const auto before = r.generation();
  // when looked up only: unchanged
  (void)r.find("sender", "a");
  EXPECT_EQ(r.generation(), before);
  // when replaced (even by the same limits): one more, so a holder knows to look again
  r.replace({{"sender", "a", per_second(20)}});
  EXPECT_EQ(r.generation(), before + 1);
  r.replace({{"sender", "a", per_second(20)}});
  EXPECT_EQ(r.generation(), before + 2);
  // when a replacement is refused: unchanged
  EXPECT_THROW(r.replace({{"sender", "a", per_second(0)}}), std::invalid_argument);
  EXPECT_EQ(r.generation(), before + 2);
}

TEST(rate_limiter_registry, rejects_bad_configuration_and_keeps_the_old_one) {
  // given
  rate_limiter_registry r({{"sender", "a", per_second(10)}});
  auto a = r.find("sender", "a");
  const auto generation = r.generation();
  // when / then
  EXPECT_THROW(r.replace({{"sender", "a", per_second(0)}}), std::invalid_argument);
  EXPECT_THROW(r.replace({{"sender", "x", per_second(1)}, {"sender", "x", per_second(1)}}), std::invalid_argument);
  EXPECT_EQ(r.find("sender", "a"), a);
  EXPECT_EQ(r.generation(), generation);
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
