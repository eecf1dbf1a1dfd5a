#include "sendq/policy/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sendq::policy::breaker_state;
using sendq::policy::circuit_breaker;
using sendq::policy::circuit_breaker_config;
using time_point = circuit_breaker::time_point;

namespace {

const time_point t0 = time_point{} + 1h;

// Default config: last 20 outcomes within 10 s, >= 50% failures over >= 10 calls, open 5 s
// doubling up to 60 s, one probe.
void open_at(circuit_breaker& b, time_point now) {
  for (int i = 0; i < 10; ++i) b.record_failure(now);
}

}  // namespace

TEST(circuit_breaker, opens_when_the_failure_ratio_is_reached) {
  // given 5 successes
  circuit_breaker b;
  for (int i = 0; i < 5; ++i) b.record_success(t0);
  // when 4 failures come: 9 calls, below min_calls
  for (int i = 0; i < 4; ++i) b.record_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::closed);
  // then the 5th failure makes 5 of 10
  b.record_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.open_until(), t0 + 5s);
}

TEST(circuit_breaker, respects_min_calls_even_when_every_call_fails) {
  circuit_breaker b;
  for (int i = 0; i < 9; ++i) b.record_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_TRUE(b.allow(t0));
}

TEST(circuit_breaker, stays_closed_below_the_ratio) {
  // given 11 successes
  circuit_breaker b;
  for (int i = 0; i < 11; ++i) b.record_success(t0);
  // when 9 failures follow (45% of 20)
  for (int i = 0; i < 9; ++i) b.record_failure(t0);
  // then
  EXPECT_EQ(to_string(b.state()), "closed");
}

TEST(circuit_breaker, forgets_outcomes_older_than_the_window) {
  // given 9 failures 11 s ago
  circuit_breaker b;
  for (int i = 0; i < 9; ++i) b.record_failure(t0);
  // when one more fails now
  b.record_failure(t0 + 11s);
  // then only one outcome counts
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(circuit_breaker, fails_fast_while_open) {
  // given
  circuit_breaker b;
  open_at(b, t0);
  // when
  auto p = b.try_acquire(t0 + 1s);
  // then
  EXPECT_FALSE(p);
  EXPECT_FALSE(p.probe);
  EXPECT_EQ(p.open_until, t0 + 5s);
  EXPECT_FALSE(b.allow(t0 + 4999ms));
  EXPECT_EQ(b.state(), breaker_state::open);
}

TEST(circuit_breaker, half_opens_after_open_for_and_lets_one_probe_through) {
  // given
  circuit_breaker b;
  open_at(b, t0);
  // when
  auto probe = b.try_acquire(t0 + 5s);
  // then
  EXPECT_TRUE(probe);
  EXPECT_TRUE(probe.probe);
  EXPECT_EQ(b.state(), breaker_state::half_open);
  auto second = b.try_acquire(t0 + 5s);
  EXPECT_FALSE(second);
  EXPECT_EQ(second.open_until, std::nullopt);
}

TEST(circuit_breaker, closes_when_the_probe_succeeds) {
  // given
  circuit_breaker b;
  open_at(b, t0);
  auto probe = b.try_acquire(t0 + 5s);
  // when
  b.record_success(t0 + 5100ms, probe);
  // then
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_TRUE(b.allow(t0 + 5100ms));
  // and the window starts empty: 9 failures do not reopen it
  for (int i = 0; i < 9; ++i) b.record_failure(t0 + 6s);
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(circuit_breaker, reopens_for_longer_when_a_probe_fails) {
  // given
  circuit_breaker b;
  open_at(b, t0);
  // when the probe at 5 s fails
  b.try_acquire(t0 + 5s);
  b.record_failure(t0 + 5s);
  // then it is open for 10 s
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.open_until(), t0 + 15s);
  // and then 20 s, 40 s, capped at 60 s
  b.try_acquire(t0 + 15s);
  b.record_failure(t0 + 15s);
  EXPECT_EQ(b.open_until(), t0 + 35s);
  b.try_acquire(t0 + 35s);
  b.record_failure(t0 + 35s);
  EXPECT_EQ(b.open_until(), t0 + 75s);
  b.try_acquire(t0 + 75s);
  b.record_failure(t0 + 75s);
  EXPECT_EQ(b.open_until(), t0 + 135s);
  // and a close resets the period
  b.record_success(t0 + 135s, b.try_acquire(t0 + 135s));
  for (int i = 0; i < 10; ++i) b.record_failure(t0 + 136s);
  EXPECT_EQ(b.open_until(), t0 + 141s);
}

TEST(circuit_breaker, allows_several_probes_and_needs_their_successes) {
  // given 3 probes at once, 2 successes to close
  circuit_breaker_config c;
  c.half_open_probes = 3;
  c.successes_to_close = 2;
  circuit_breaker b(c);
  for (int i = 0; i < 10; ++i) b.record_failure(t0);
  // when
  auto p1 = b.try_acquire(t0 + 5s);
  auto p2 = b.try_acquire(t0 + 5s);
  auto p3 = b.try_acquire(t0 + 5s);
  // then
  EXPECT_TRUE(p1 && p2 && p3);
  EXPECT_FALSE(b.try_acquire(t0 + 5s));
  b.record_success(t0 + 5s, p1);
  EXPECT_EQ(b.state(), breaker_state::half_open);
  b.record_success(t0 + 5s, p2);
  EXPECT_EQ(b.state(), breaker_state::closed);
  // and the third probe's late failure belongs to an old state
  b.record_failure(t0 + 5s, p3);
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(circuit_breaker, ignores_outcomes_of_calls_admitted_before_it_opened) {
  // given a call admitted while closed, still in flight when the breaker opens and half-opens
  circuit_breaker b;
  auto slow = b.try_acquire(t0);
  for (int i = 0; i < 10; ++i) b.record_failure(t0);
  auto probe = b.try_acquire(t0 + 5s);
  ASSERT_TRUE(probe.probe);
  // when the slow call succeeds
  b.record_success(t0 + 6s, slow);
  // then it is not taken for the probe
  EXPECT_EQ(b.state(), breaker_state::half_open);
}

// While closed, try_acquire() and state() read one atomic word instead of taking the lock: the
// permit must still carry the epoch it was given in, so that a call admitted just before the
// breaker opened counts for nothing afterwards. Several threads at once (the TSan stage runs this).
TEST(circuit_breaker, permits_taken_on_many_threads_while_it_opens_keep_their_epoch) {
  circuit_breaker b;
  const auto closed = b.try_acquire(t0);  // reports after the opening, below
  const auto closed_epoch = closed.epoch;
  std::atomic<bool> go{false};
  std::atomic<int> allowed{0}, refused{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 2000; ++i) {
        const auto p = b.try_acquire(t0 + 1s);
        if (p) {
          ++allowed;
          EXPECT_EQ(p.epoch, closed_epoch) << "allowed only while closed, in its epoch";
          EXPECT_FALSE(p.probe);
          b.record_failure(t0 + 1s, p);  // opens it after min_calls of them
        } else {
          ++refused;
          EXPECT_TRUE(p.open_until.has_value());
          EXPECT_NE(p.epoch, closed_epoch);
        }
        (void)b.state();
      }
    });
  }
  go = true;
  for (auto& c : callers) c.join();
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_GE(allowed.load(), 10) << "min_calls failures were needed to open it";
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(allowed.load() + refused.load(), 8000);
  // Permits of the closed epoch report after the opening: ignored, the breaker stays open and
  // half-opens on time with its one probe.
  b.record_success(t0 + 2s, closed);
  EXPECT_EQ(b.state(), breaker_state::open);
  const auto probe = b.try_acquire(t0 + 7s);
  EXPECT_TRUE(probe.probe);
  EXPECT_EQ(b.state(), breaker_state::half_open);
  EXPECT_FALSE(b.try_acquire(t0 + 7s)) << "one probe at a time";
}

TEST(circuit_breaker, a_lost_probe_frees_its_slot_after_probe_timeout) {
  circuit_breaker b;
  open_at(b, t0);
  const auto lost = b.try_acquire(t0 + 5s);
  EXPECT_TRUE(lost);
  EXPECT_FALSE(b.try_acquire(t0 + 34s));
  const auto next = b.try_acquire(t0 + 35s);
  EXPECT_TRUE(next.probe);
  // and the lost probe, should it report after all, neither frees the new probe's slot nor counts
  b.record_success(t0 + 36s, lost);
  EXPECT_FALSE(b.try_acquire(t0 + 36s));
  EXPECT_EQ(b.state(), breaker_state::half_open);
  b.release(lost);
  EXPECT_FALSE(b.try_acquire(t0 + 36s));
  // while the new probe's outcome does
  b.record_success(t0 + 37s, next);
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(circuit_breaker, a_probe_released_unmade_frees_its_slot_at_once_and_changes_nothing_else) {
  // given a half-open breaker whose one probe slot is taken
  circuit_breaker b;
  open_at(b, t0);
  const auto probe = b.try_acquire(t0 + 5s);
  ASSERT_TRUE(probe.probe);
  EXPECT_FALSE(b.try_acquire(t0 + 5s));
  // when the probe's call is not made (its request's deadline came first)
  b.release(probe);
  // then the next caller probes at once, not after probe_timeout, and the state is as it was
  EXPECT_EQ(b.state(), breaker_state::half_open);
  const auto next = b.try_acquire(t0 + 5s);
  EXPECT_TRUE(next.probe);
  EXPECT_FALSE(b.try_acquire(t0 + 5s));
  // and a probe of an earlier half-open period frees nothing in a later one
  b.record_failure(t0 + 6s, next);  // opens for 10 s
  const auto later = b.try_acquire(t0 + 16s);
  ASSERT_TRUE(later.probe);
  b.release(next);
  EXPECT_FALSE(b.try_acquire(t0 + 16s));
  // and a closed breaker's permit is released without effect
  circuit_breaker closed;
  const auto p = closed.try_acquire(t0);
  closed.release(p);
  EXPECT_EQ(closed.state(), breaker_state::closed);
}

TEST(circuit_breaker, names_its_states) {
  EXPECT_EQ(to_string(breaker_state::closed), "closed");
  EXPECT_EQ(to_string(breaker_state::open), "open");
  EXPECT_EQ(to_string(breaker_state::half_open), "half_open");
}

TEST(circuit_breaker, rejects_an_inconsistent_configuration) {
  circuit_breaker_config c;
  c.min_calls = 30;
  EXPECT_THROW(circuit_breaker{c}, std::invalid_argument);
}
