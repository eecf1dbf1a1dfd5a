#include "sendq/policy/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sendq::policy::rate_limit_config;
using sendq::policy::rate_limiter;
using sendq::policy::window;
using time_point = rate_limiter::time_point;

namespace {

// The fake clock: plain time points, advanced by hand.
const time_point t0 = time_point{} + 1h;

rate_limit_config windows(std::vector<window> w) {
  rate_limit_config c;
  c.windows = std::move(w);
  return c;
}

// Largest number of slots in any half-open interval [s, s + per) (slots sorted).
std::size_t busiest(const std::vector<time_point>& slots, std::chrono::nanoseconds per) {
  std::size_t best = 0;
  std::size_t lo = 0;
  for (std::size_t hi = 0; hi < slots.size(); ++hi) {
    while (slots[hi] - slots[lo] >= per) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return best;
}

std::size_t count_in(const std::vector<time_point>& slots, time_point from, time_point to) {
  return static_cast<std::size_t>(std::count_if(slots.begin(), slots.end(), [&](auto s) { return s >= from && s < to; }));
}

}  // namespace

TEST(rate_limiter, sends_the_first_request_at_once) {
  rate_limiter l(windows({{100, 1s}}));
  EXPECT_EQ(l.reserve(t0).at, t0);
  EXPECT_EQ(l.wait_for(t0), 10ms);
}

TEST(rate_limiter, honours_every_window_at_once) {
  // given 100/s and 6000/min, and a backlog of 12000 requests
  rate_limiter l(windows({{100, 1s}, {6000, 1min}}));
  std::vector<time_point> slots;
  // when all of them reserve at once
  for (int i = 0; i < 12000; ++i) slots.push_back(l.reserve(t0).at);
  // then 6000 go in the first minute and 6000 in the second, never over either window
  EXPECT_EQ(count_in(slots, t0, t0 + 1min), 6000u);
  EXPECT_EQ(count_in(slots, t0 + 1min, t0 + 2min), 6000u);
  EXPECT_LE(busiest(slots, 1s), 100u);
  EXPECT_LE(busiest(slots, 1min), 6000u);
}

TEST(rate_limiter, throttles_to_the_longer_window_when_it_is_tighter) {
  // given 100/s but only 3000/min
  rate_limiter l(windows({{100, 1s}, {3000, 1min}}));
  std::vector<time_point> slots;
  // when a backlog of 9000 reserves
  for (int i = 0; i < 9000; ++i) slots.push_back(l.reserve(t0).at);
  // then the minute window rules
  EXPECT_EQ(count_in(slots, t0, t0 + 1min), 3000u);
  EXPECT_EQ(count_in(slots, t0 + 1min, t0 + 2min), 3000u);
  EXPECT_LE(busiest(slots, 1s), 100u);
  EXPECT_LE(busiest(slots, 1min), 3000u);
}

TEST(rate_limiter, long_run_rate_is_exact) {
  // given 200/s
  rate_limiter l(windows({{200, 1s}}));
  // when 2000 requests reserve at once
  time_point last;
  for (int i = 0; i < 2000; ++i) last = l.reserve(t0).at;
  // then the last slot is 10 s out, within 1%
  auto seconds = std::chrono::duration<double>(last - t0).count();
  EXPECT_NEAR(seconds, 10.0, 0.1);
}

TEST(rate_limiter, measured_rate_with_random_arrivals_is_within_5_percent) {
  // given 200/s and requests arriving at random, on average 400/s, for 20 s
  rate_limiter l(windows({{200, 1s}}));
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> gap(400.0);
  std::vector<time_point> slots;
  auto now = t0;
  while (now < t0 + 20s) {
    now += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(gap(rng)));
    slots.push_back(l.reserve(now).at);
  }
  // when measured over the first 10 s
  auto n = count_in(slots, t0, t0 + 10s);
  // then
  EXPECT_NEAR(static_cast<double>(n), 2000.0, 100.0);
  EXPECT_LE(busiest(slots, 1s), 200u);
}

TEST(rate_limiter, a_limited_recipient_does_not_hold_back_the_others) {
  // given 100/s for the account, 1/s per recipient
  auto c = windows({{100, 1s}});
  c.per_recipient = window{1, 1s};
  rate_limiter l(c);
  // when alice has three requests
  auto a1 = l.reserve(t0, "alice").at;
  auto a2 = l.reserve(t0, "alice").at;
  auto a3 = l.reserve(t0, "alice").at;
  // then they go a second apart
  EXPECT_EQ(a1, t0);
  EXPECT_EQ(a2, t0 + 1s);
  EXPECT_EQ(a3, t0 + 2s);
  // and bob goes right after alice's first, not after her last
  EXPECT_EQ(l.reserve(t0, "bob").at, t0 + 10ms);
  EXPECT_EQ(l.reserve(t0, "carol").at, t0 + 20ms);
}

TEST(rate_limiter, slots_of_other_recipients_leave_room_for_a_held_back_one) {
  // given 10/s and 1/s per recipient, alice's second request placed at t0 + 1 s
  auto c = windows({{10, 1s}});
  c.per_recipient = window{1, 1s};
  rate_limiter l(c);
  std::vector<time_point> slots{l.reserve(t0, "alice").at, l.reserve(t0, "alice").at};
  EXPECT_EQ(slots[1], t0 + 1s);
  EXPECT_EQ(l.calendar_size(), 1u);
  // when 20 other recipients reserve
  for (int i = 0; i < 20; ++i) slots.push_back(l.reserve(t0, "r" + std::to_string(i)).at);
  // then they fill the gap before alice's slot and go on after it, 100 ms apart throughout
  std::sort(slots.begin(), slots.end());
  for (std::size_t i = 1; i < slots.size(); ++i) EXPECT_GE(slots[i] - slots[i - 1], 100ms) << i;
  EXPECT_EQ(slots.back(), t0 + 2100ms);
  EXPECT_EQ(l.calendar_size(), 0u) << "the in-order part grew over alice's slot";
}

TEST(rate_limiter, recipient_map_stays_bounded) {
  // given at most 1000 recipients remembered
  rate_limit_config c;
  c.per_recipient = window{1, 1min};
  c.max_recipients = 1000;
  rate_limiter l(c);
  // when 10000 distinct recipients send
  for (int i = 0; i < 10000; ++i) l.reserve(t0, "user" + std::to_string(i));
  // then
  EXPECT_EQ(l.recipients(), 1000u);
  // and once their limits have passed, traffic sweeps the idle ones away
  for (int i = 0; i < 600; ++i) l.reserve(t0 + 2min + i * 1ms, "one");
  EXPECT_EQ(l.recipients(), 1u);
}

TEST(rate_limiter, pacing_gaps_are_random_within_bounds) {
  // given human-like pacing of 1 to 5 s between sends
  rate_limit_config c;
  c.pacing = sendq::policy::pacing{1s, 5s};
  rate_limiter l(c, 42);
  // when a backlog of 500 reserves
  std::vector<time_point> slots;
  for (int i = 0; i < 500; ++i) slots.push_back(l.reserve(t0).at);
  // then each gap is within bounds, they vary, and they average near the middle
  std::set<std::chrono::nanoseconds> gaps;
  std::chrono::nanoseconds total{0};
  for (std::size_t i = 1; i < slots.size(); ++i) {
    auto g = slots[i] - slots[i - 1];
    EXPECT_GE(g, 1s);
    EXPECT_LE(g, 5s);
    gaps.insert(g);
    total += g;
  }
  EXPECT_GT(gaps.size(), 400u);
  auto mean = std::chrono::duration<double>(total).count() / static_cast<double>(slots.size() - 1);
  EXPECT_NEAR(mean, 3.0, 0.3);
}

TEST(rate_limiter, pacing_is_repeatable_for_a_seed) {
  rate_limit_config c;
  c.pacing = sendq::policy::pacing{1s, 5s};
  rate_limiter a(c, 1);
  rate_limiter b(c, 1);
  a.reserve(t0);
  b.reserve(t0);
  EXPECT_EQ(a.reserve(t0).at, b.reserve(t0).at);
}

TEST(rate_limiter, nothing_goes_before_a_penalty_ends) {
  // given a throttle reply with Retry-After: 30 s
  rate_limiter l(windows({{10, 1s}}));
  l.reserve(t0);
  l.penalize(t0, t0 + 30s);
  // when
  auto a = l.reserve(t0 + 1s).at;
  auto b = l.reserve(t0 + 1s).at;
  // then
  EXPECT_EQ(l.penalized_until(), t0 + 30s);
  EXPECT_EQ(a, t0 + 30s);
  EXPECT_EQ(b, t0 + 30s + 100ms);
  // and a shorter later penalty does not shorten it
  l.penalize(t0 + 2s, t0 + 5s);
  EXPECT_EQ(l.penalized_until(), t0 + 30s);
}

TEST(rate_limiter, adaptive_slowdown_halves_the_rate_and_recovers_step_by_step) {
  // given 100/s (10 ms apart), cool-down 30 s, +10% per second of successes
  rate_limiter l(windows({{100, 1s}}));
  auto gap_at = [&](time_point now) {
    auto a = l.reserve(now).at;
    return l.reserve(now).at - a;
  };
  EXPECT_EQ(gap_at(t0), 10ms);
  // when a throttle reply without Retry-After arrives (twice, from one burst)
  l.adaptive_slowdown(t0);
  l.adaptive_slowdown(t0 + 100ms);
  // then the rate halves once
  EXPECT_DOUBLE_EQ(l.rate_factor(), 0.5);
  EXPECT_EQ(gap_at(t0 + 1s), 20ms);
  // and successes during the cool-down change nothing
  l.on_success(t0 + 29s);
  EXPECT_DOUBLE_EQ(l.rate_factor(), 0.5);
  // then after it, each second of successes wins back 10%
  l.on_success(t0 + 30s);
  EXPECT_DOUBLE_EQ(l.rate_factor(), 0.6);
  l.on_success(t0 + 30s + 500ms);
  EXPECT_DOUBLE_EQ(l.rate_factor(), 0.6);
  for (int i = 1; i <= 5; ++i) l.on_success(t0 + 30s + i * 1s);
  EXPECT_DOUBLE_EQ(l.rate_factor(), 1.0);
  EXPECT_EQ(gap_at(t0 + 40s), 10ms);
}

TEST(rate_limiter, repeated_throttling_stops_at_the_floor) {
  rate_limiter l(windows({{100, 1s}}));
  for (int i = 0; i < 20; ++i) l.adaptive_slowdown(t0 + i * 2s);
  EXPECT_DOUBLE_EQ(l.rate_factor(), 1.0 / 64);
}

TEST(rate_limiter, a_slow_down_of_the_longest_window_there_is_stretches_it_to_a_year_and_still_limits) {
  // given one request per 2^40 ms (the longest window accepted) slowed to 1/64 by throttle replies,
  // whose gap (~7e19 ns) would overflow nanoseconds
  const auto longest = std::chrono::milliseconds(std::int64_t{1} << 40);
  rate_limiter l(windows({{1, longest}}));
  for (int i = 0; i < 20; ++i) l.adaptive_slowdown(t0 + i * 2s);
  ASSERT_DOUBLE_EQ(l.rate_factor(), 1.0 / 64);
  // then the next slots stay that window apart (the slow-down cannot shorten it), never in the past
  const auto a = l.reserve(t0 + 40s).at;
  const auto b = l.reserve(t0 + 40s).at;
  EXPECT_GE(a, t0 + 40s);
  EXPECT_EQ(b - a, std::chrono::duration_cast<std::chrono::nanoseconds>(longest));
}

TEST(rate_limiter, releases_the_latest_slot) {
  // given
  rate_limiter l(windows({{10, 1s}}));
  l.reserve(t0);
  auto r = l.reserve(t0);
  EXPECT_EQ(r.at, t0 + 100ms);
  // when its request is dropped
  EXPECT_TRUE(l.release(r));
  // then the next request gets that slot
  EXPECT_EQ(l.reserve(t0).at, t0 + 100ms);
  // but an earlier slot, with later ones spaced from it, stays used
  auto early = l.reserve(t0);
  l.reserve(t0);
  EXPECT_FALSE(l.release(early));
}

TEST(rate_limiter, releases_an_out_of_order_slot) {
  // given alice's second slot at t0 + 1 s, then another recipient's
  auto c = windows({{10, 1s}});
  c.per_recipient = window{1, 1s};
  rate_limiter l(c);
  l.reserve(t0, "alice");
  auto held = l.reserve(t0, "alice");
  l.reserve(t0, "bob");
  EXPECT_EQ(l.calendar_size(), 1u);
  // when
  EXPECT_TRUE(l.release(held));
  // then
  EXPECT_EQ(l.calendar_size(), 0u);
}

TEST(rate_limiter, rejects_an_invalid_configuration) {
  EXPECT_THROW(rate_limiter(windows({{0, 1s}})), std::invalid_argument);
}

TEST(rate_limiter, concurrent_reservations_never_over_book_a_window) {
  // given two windows and a per-recipient limit, shared by 4 threads
  auto c = windows({{50, 100ms}, {1000, 10s}});
  c.per_recipient = window{5, 1s};
  rate_limiter l(c);
  std::atomic<std::int64_t> clock_ns{0};
  struct booked {
    time_point at;
    int recipient;
  };
  std::vector<std::vector<booked>> per_thread(4);
  // when each reserves 5000 slots for 40 recipients while the fake clock moves on
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 5000; ++i) {
        auto now = t0 + std::chrono::nanoseconds(clock_ns.fetch_add(50'000));
        int who = static_cast<int>(rng() % 40);
        auto r = l.reserve(now, "r" + std::to_string(who));
        EXPECT_GE(r.at, now);
        per_thread[static_cast<std::size_t>(t)].push_back({r.at, who});
      }
    });
  }
  for (auto& th : threads) th.join();
  // then no window and no recipient ever holds more than its limit
  std::vector<time_point> all;
  std::map<int, std::vector<time_point>> by_recipient;
  for (const auto& v : per_thread) {
    for (const auto& b : v) {
      all.push_back(b.at);
      by_recipient[b.recipient].push_back(b.at);
    }
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 20000u);
  EXPECT_LE(busiest(all, 100ms), 50u);
  EXPECT_LE(busiest(all, 10s), 1000u);
  for (auto& [who, slots] : by_recipient) {
    std::sort(slots.begin(), slots.end());
    EXPECT_LE(busiest(slots, 1s), 5u) << who;
  }
  // and the account ran at its long-run rate (100/s) for the whole backlog
  auto span = std::chrono::duration<double>(all.back() - all.front()).count();
  EXPECT_NEAR(20000.0 / span, 100.0, 5.0);
}
