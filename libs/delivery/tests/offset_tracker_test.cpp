#include "sendq/delivery/offset_tracker.hpp"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

using sendq::delivery::offset_tracker;

namespace {

// Tracks offsets first..last of partition 0 of "t" and finishes them all; their generation.
std::uint64_t finish_run(offset_tracker& t, std::int64_t first, std::int64_t last) {
  const auto g = t.track("t", 0, first);
  for (std::int64_t o = first + 1; o <= last; ++o) t.track("t", 0, o);
  for (std::int64_t o = first; o <= last; ++o) t.done("t", 0, o, g);
  return g;
}

// The offset of the one position in `positions`; -1 (and a failure) when there is not exactly one.
std::int64_t only_offset(const std::vector<sendq::kafka::partition_offset>& positions) {
  EXPECT_EQ(positions.size(), 1u);
  return positions.size() == 1 ? positions[0].offset : -1;
}

}  // namespace

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
  EXPECT_FALSE(t.current("t", 0, old_gen));
  auto new_gen = t.track("t", 0, 1);  // reassigned, redelivered
  EXPECT_NE(old_gen, new_gen);
  EXPECT_TRUE(t.current("t", 0, new_gen));
  EXPECT_FALSE(t.current("t", 0, old_gen));
  EXPECT_FALSE(t.current("t", 1, new_gen));
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
  EXPECT_EQ(only_offset(t.release({{"t", 3, 0}})), 41);
}

// The asynchronous commit of a position handed out may still be in flight at the revocation, and
// fail there (the rebalance): the synchronous commit on revocation must carry it again, or the
// next owner re-sends everything since the commit before.
TEST(offset_tracker, release_returns_positions_handed_out_already_too) {
  // given a partition at 41 handed out to an asynchronous commit, and one at 8 not handed out
  offset_tracker t;
  auto g = t.track("t", 3, 40);
  t.done("t", 3, 40, g);
  ASSERT_EQ(t.take_committable().size(), 1u);
  auto g2 = t.track("t", 4, 7);
  t.track("t", 4, 8);
  t.done("t", 4, 7, g2);
  t.track("t", 5, 1);  // nothing finished: no position
  // when both are revoked
  auto r = t.release({{"t", 3, 0}, {"t", 4, 0}, {"t", 5, 0}});
  // then both positions are returned, and the unfinished partition has none
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].partition, 3);
  EXPECT_EQ(r[0].offset, 41);
  EXPECT_EQ(r[1].partition, 4);
  EXPECT_EQ(r[1].offset, 8);
}

// A record fetched before a rebalance can come after the re-read of its partition has started
// lower: the later ones must still hold back every commit until they finish.
TEST(offset_tracker, an_offset_tracked_out_of_order_holds_back_the_commit_past_it) {
  // given 1900-1950 tracked, then 1050 (out of order)
  offset_tracker t;
  auto g = t.track("t", 0, 1900);
  for (std::int64_t o = 1901; o <= 1950; ++o) t.track("t", 0, o);
  EXPECT_EQ(t.track("t", 0, 1050), g);
  // when 1900-1950 finish
  for (std::int64_t o = 1900; o <= 1950; ++o) t.done("t", 0, o, g);
  // then nothing is committable (1951 would skip the unfinished 1050), and 1900-1950 are done
  EXPECT_TRUE(t.take_committable().empty());
  EXPECT_EQ(t.pending(), 1u);
  // when 1050 finishes too, the position is past 1950
  t.done("t", 0, 1050, g);
  auto c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].partition, 0);
  EXPECT_EQ(c[0].offset, 1951);
  EXPECT_EQ(t.pending(), 0u);
}

TEST(offset_tracker, an_offset_tracked_after_its_successors_finished_takes_the_position_back) {
  // given 1900 finished and committable
  offset_tracker t;
  auto g = t.track("t", 0, 1900);
  t.done("t", 0, 1900, g);
  // when 1050 comes afterwards
  t.track("t", 0, 1050);
  // then 1901 is not handed out while 1050 is unfinished: the position of 1050 itself
  auto held = t.take_committable();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].offset, 1050);
  // and once it finishes, the position is right behind it
  t.done("t", 0, 1050, g);
  auto c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].offset, 1051);
}

TEST(offset_tracker, finds_each_entry_among_several_out_of_order) {
  // given offsets tracked in a scrambled order
  offset_tracker t;
  auto g = t.track("t", 0, 30);
  for (std::int64_t o : {10, 40, 20, 31}) t.track("t", 0, o);
  // when all but 10 finish
  for (std::int64_t o : {40, 20, 31, 30}) t.done("t", 0, o, g);
  // then 10 holds everything back
  EXPECT_TRUE(t.take_committable().empty());
  EXPECT_EQ(t.pending(), 1u);
  t.done("t", 0, 10, g);
  auto c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].offset, 41);
  EXPECT_EQ(t.pending(), 0u);
}

// An asynchronous commit the broker refused (a rebalance in progress, a coordinator that moved):
// a partition that goes idle afterwards must still be committed, or a restart reads it again.
TEST(offset_tracker, hands_out_again_a_position_whose_commit_failed) {
  // given a position handed out for commit
  offset_tracker t;
  auto g = t.track("t", 0, 7);
  t.track("t", 1, 3);
  t.done("t", 0, 7, g);
  auto c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0].offset, 8);
  EXPECT_TRUE(t.take_committable().empty());
  // when its commit fails, with nothing new finished
  t.commit_failed({{"t", 0, 8}});
  // then the next commit has it again, once
  c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].topic, "t");
  EXPECT_EQ(c[0].partition, 0);
  EXPECT_EQ(c[0].offset, 8);
  EXPECT_TRUE(t.take_committable().empty());
}

TEST(offset_tracker, a_failed_commit_of_a_revoked_partition_is_left_to_its_next_owner) {
  // given a position handed out, then the partition revoked and re-assigned
  offset_tracker t;
  auto g = t.track("t", 0, 7);
  t.done("t", 0, 7, g);
  ASSERT_EQ(t.take_committable().size(), 1u);
  t.release({{"t", 0, 0}});
  const auto g2 = t.track("t", 0, 5);  // re-read from the group's committed offset
  t.done("t", 0, 5, g2);
  auto c = t.take_committable();
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0].offset, 6);
  // when the old assignment's commit failure is reported
  t.commit_failed({{"t", 0, 8}});
  // then the new assignment's position, handed out already, is not handed out again, nor is 8
  EXPECT_TRUE(t.take_committable().empty());
}

// An offset tracked again below a position handed out (a record fetched before a rebalance) was
// finished before: neither the final nor the revocation commit goes back to it, or the next
// reader would re-send everything after it.
TEST(offset_tracker, the_final_and_revocation_commits_never_go_below_a_position_handed_out) {
  // given 40-45 finished and position 46 handed out, then 42 tracked again (unfinished)
  offset_tracker t;
  finish_run(t, 40, 45);
  ASSERT_EQ(only_offset(t.take_committable()), 46);
  t.track("t", 0, 42);
  // when the final commit takes every position, then 46, not 42
  EXPECT_EQ(only_offset(t.take_committable(true)), 46);
  // and the revocation's as well
  EXPECT_EQ(only_offset(t.release({{"t", 0, 0}})), 46);
}

// A failed commit hands its position out again; the position itself was right, so a final commit
// after a record tracked again below it still goes to it, not one short of it.
TEST(offset_tracker, the_final_commit_after_a_failed_commit_keeps_the_position_reached) {
  // given 40-45 finished, 46 handed out and its commit failed, then 42 tracked again and finished
  offset_tracker t;
  const auto g = finish_run(t, 40, 45);
  ASSERT_EQ(only_offset(t.take_committable()), 46);
  t.commit_failed({{"t", 0, 46}});
  t.track("t", 0, 42);
  t.done("t", 0, 42, g);
  // when the final commit takes every position, then 46 (not 45, nor 43)
  EXPECT_EQ(only_offset(t.take_committable(true)), 46);
}

TEST(offset_tracker, the_final_commit_has_every_partitions_position) {
  // given two partitions with positions handed out already, one of them also with a newer one
  offset_tracker t;
  auto g0 = t.track("t", 0, 7);
  auto g1 = t.track("t", 1, 3);
  t.track("t", 1, 4);
  auto g2 = t.track("t", 2, 9);  // nothing finished: no position
  (void)g2;
  t.done("t", 0, 7, g0);
  t.done("t", 1, 3, g1);
  ASSERT_EQ(t.take_committable().size(), 2u);
  t.done("t", 1, 4, g1);
  // when the positions are taken for the final commit
  auto c = t.take_committable(true);
  // then every partition with a position is in it, the committed ones too
  std::vector<std::pair<std::int32_t, std::int64_t>> got;
  for (const auto& po : c) got.emplace_back(po.partition, po.offset);
  EXPECT_EQ(got, (std::vector<std::pair<std::int32_t, std::int64_t>>{{0, 8}, {1, 5}}));
}
