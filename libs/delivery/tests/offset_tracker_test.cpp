#include "sendq/delivery/offset_tracker.hpp"

#include <gtest/gtest.h>

using sendq::delivery::offset_tracker;

TEST(offset_tracker, commits_only_up_to_the_lowest_unfinished_offset) {
  // given three records of one partition
  offset_tracker t;
  auto g = t.track("t", 0, 10);
  t.track("t", 0, 11);
  t.track("t", 0, 12);
  // when the later ones finish first
  t.done("t", 0, 12, g);
  t.done("t", 0, 11, g);
  // then nothing is committable yet
  EXPECT_TRUE(t.take_committable().empty());
  EXPECT_EQ(t.pending(), 1u);
  // when the first finishes, everything up to 13 is
  t.done("t", 0, 10, g);
  auto c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].topic, "t");
  EXPECT_EQ(c[0].partition, 0);
  EXPECT_EQ(c[0].offset, 13);
  EXPECT_TRUE(t.take_committable().empty()) << "a position is handed out once";
}

TEST(offset_tracker, keeps_partitions_apart) {
  offset_tracker t;
  auto g0 = t.track("t", 0, 5);
  auto g1 = t.track("t", 1, 7);
  t.done("t", 1, 7, g1);
  auto c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].partition, 1);
  EXPECT_EQ(c[0].offset, 8);
  t.done("t", 0, 5, g0);
  c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].partition, 0);
  EXPECT_EQ(c[0].offset, 6);
}

TEST(offset_tracker, ignores_completions_from_before_a_revocation) {
  offset_tracker t;
  auto old_gen = t.track("t", 0, 1);
  t.track("t", 0, 2);
  auto released = t.release({{"t", 0, 0}});
  EXPECT_TRUE(released.empty());
  EXPECT_EQ(t.pending(), 0u);
  auto new_gen = t.track("t", 0, 1);  // reassigned, redelivered
  EXPECT_NE(old_gen, new_gen);
  t.done("t", 0, 1, old_gen);  // late completion of the old copy
  EXPECT_TRUE(t.take_committable().empty());
  t.done("t", 0, 1, new_gen);
  auto c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].offset, 2);
}

TEST(offset_tracker, release_returns_finished_positions_not_yet_committed) {
  offset_tracker t;
  auto g = t.track("t", 3, 40);
  t.track("t", 3, 41);
  t.done("t", 3, 40, g);
  auto r = t.release({{"t", 3, 0}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].offset, 41);
}
