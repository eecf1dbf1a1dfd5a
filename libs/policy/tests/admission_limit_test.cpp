#include "sendq/policy/admission_limit.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace std::chrono_literals;
using sendq::policy::admission_limit;
using sendq::policy::admission_limit_options;
using time_point = std::chrono::steady_clock::time_point;

namespace {

const time_point t0 = time_point{} + 1h;

// Default options: max 4096, min 1024, behind at a 2 ms mean wait, windows of 100 ms. The first
// update only starts the first window.
struct admission_limit_test : ::testing::Test {
  admission_limit limit{admission_limit_options{}};
  time_point now = t0;

  void SetUp() override { limit.update(now, 0); }

  // One window in which new work waited `wait` for an I/O thread (three posts) and `in_flight`
  // were held; returns the limit after it.
  long window(std::chrono::nanoseconds wait, long in_flight) {
    for (int i = 0; i < 3; ++i) limit.record_wait(wait);
    limit.update(now + 50ms, in_flight);
    now += 100ms;
    return limit.update(now, in_flight);
  }
};

}  // namespace

TEST_F(admission_limit_test, starts_at_the_maximum_and_stays_there_while_the_io_threads_keep_up) {
  EXPECT_EQ(limit.limit(), 4096);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(window(300us, 4096), 4096);
  EXPECT_EQ(limit.last_mean_wait(), 300us);
}

TEST_F(admission_limit_test, falls_by_an_eighth_per_window_while_behind_and_stops_at_the_minimum) {
  std::vector<long> seen;
  for (int i = 0; i < 12; ++i) seen.push_back(window(5ms, 4096));
  EXPECT_EQ(seen, (std::vector<long>{3584, 3136, 2744, 2401, 2101, 1839, 1610, 1409, 1233, 1079, 1024, 1024}));
  EXPECT_EQ(limit.last_mean_wait(), 5ms);
}

TEST_F(admission_limit_test, grows_back_by_a_64th_of_the_maximum_per_window_only_while_the_limit_is_reached) {
  // given a limit brought down to the minimum
  for (int i = 0; i < 12; ++i) window(5ms, 4096);
  ASSERT_EQ(limit.limit(), 1024);
  // when the I/O threads keep up again but fewer than the limit are held: no growth
  EXPECT_EQ(window(100us, 500), 1024);
  // then while the limit is reached it grows by 64 a window
  EXPECT_EQ(window(100us, 1024), 1088);
  EXPECT_EQ(window(100us, 1088), 1152);
  // and back at the maximum it stays there
  for (int i = 0; i < 60; ++i) window(100us, 4096);
  EXPECT_EQ(limit.limit(), 4096);
}

TEST_F(admission_limit_test, a_peak_within_the_window_counts_as_reaching_the_limit) {
  for (int i = 0; i < 12; ++i) window(5ms, 4096);
  // the limit was reached in the middle of the window, not at its end
  limit.update(now + 10ms, 1024);
  EXPECT_EQ(window(100us, 200), 1088);
}

TEST_F(admission_limit_test, a_window_without_posts_changes_nothing) {
  window(5ms, 4096);
  ASSERT_EQ(limit.limit(), 3584);
  now += 100ms;
  EXPECT_EQ(limit.update(now, 4096), 3584);
  EXPECT_EQ(limit.last_mean_wait(), 5ms);
}

TEST_F(admission_limit_test, the_mean_wait_decides_not_one_long_wait) {
  // one post waited 5 ms, nine waited 0.1 ms: a mean of 0.59 ms is keeping up
  limit.record_wait(5ms);
  for (int i = 0; i < 9; ++i) limit.record_wait(100us);
  now += 100ms;
  EXPECT_EQ(limit.update(now, 4096), 4096);
  EXPECT_EQ(limit.last_mean_wait(), 590us);
}

TEST(admission_limit, a_minimum_at_the_maximum_turns_it_off) {
  admission_limit limit{admission_limit_options{.max_limit = 10000, .min_limit = 10000}};
  time_point now = t0;
  limit.update(now, 0);
  for (int i = 0; i < 20; ++i) {
    limit.record_wait(50ms);
    now += 100ms;
    EXPECT_EQ(limit.update(now, 10000), 10000);
  }
}

TEST(admission_limit, a_minimum_above_the_maximum_is_the_maximum) {
  admission_limit limit{admission_limit_options{.max_limit = 512, .min_limit = 1024}};
  time_point now = t0;
  limit.update(now, 0);
  limit.record_wait(50ms);
  now += 100ms;
  EXPECT_EQ(limit.update(now, 512), 512);
}
