#include "sendq/delivery/duplicate_guard.hpp"

#include <gtest/gtest.h>

using sendq::delivery::duplicate_guard;
using namespace std::chrono_literals;

TEST(duplicate_guard, remembers_ended_ids_for_the_window) {
  duplicate_guard g(10s, 100);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  EXPECT_FALSE(g.seen("a", t0));
  g.remember("a", t0);
  EXPECT_TRUE(g.seen("a", t0 + 9s));
  EXPECT_FALSE(g.seen("b", t0 + 9s));
  EXPECT_FALSE(g.seen("a", t0 + 10s)) << "forgotten after the window";
}

TEST(duplicate_guard, stays_within_its_size_bound) {
  duplicate_guard g(1h, 3);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  for (auto id : {"a", "b", "c", "d"}) g.remember(id, t0);
  EXPECT_EQ(g.size(), 3u);
  EXPECT_FALSE(g.seen("a", t0)) << "the oldest goes first";
  EXPECT_TRUE(g.seen("d", t0));
}

TEST(duplicate_guard, is_off_with_zero_ids) {
  duplicate_guard g(1h, 0);
  g.remember("a", duplicate_guard::clock::time_point{});
  EXPECT_FALSE(g.seen("a", duplicate_guard::clock::time_point{}));
}
