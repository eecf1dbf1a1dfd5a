#include "sendq/delivery/parked_keys.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

using sendq::delivery::parked_keys;

// Given for the lane tests: "gewe" parks key "k" and "im" key "i", each in a lane of its own.
struct parked_keys_two_lanes : ::testing::Test {
  parked_keys parks{1};
  std::vector<std::int32_t> partitions;
  parked_keys::parked g, i;
  void park_both(std::vector<std::int32_t> among) {
    partitions = std::move(among);
    g = parks.park("k", "gewe", partitions);
    i = parks.park("i", "im", partitions);
    ASSERT_NE(g.partition, i.partition);
  }
};

TEST(parked_keys, holds_a_key_until_each_of_its_parks_has_ended_once) {
  // given two parks of one key
  parked_keys parks(1);
  const auto first = parks.park("k").token;
  const auto second = parks.park("k").token;
  ASSERT_NE(first, second);
  // when the first comes back, twice (read again after a seek or a redelivery)
  EXPECT_TRUE(parks.release(first));
  EXPECT_FALSE(parks.release(first));
  // then the key is still held by the second, and free once that one is back
  EXPECT_TRUE(parks.holds("k"));
  EXPECT_TRUE(parks.release(second));
  EXPECT_FALSE(parks.holds("k"));
  EXPECT_EQ(parks.size(), 0u);
}

TEST(parked_keys, ignores_records_that_are_not_its_parks) {
  // given a park of "k" by this process
  parked_keys parks(1);
  const auto token = parks.park("k").token;
  // when a retry without a park token comes back, and one parked by another process for "k"
  parked_keys other(2);
  const auto foreign = other.park("k").token;
  ASSERT_NE(token, foreign);
  EXPECT_FALSE(parks.release(""));
  EXPECT_FALSE(parks.release(foreign));
  // then "k" stays held: its park has not come back
  EXPECT_TRUE(parks.holds("k"));
  EXPECT_FALSE(parks.holds("other"));
}

TEST(parked_keys, a_refused_park_ends_at_once) {
  // given a park that the producer refused (the record over message.max.bytes)
  parked_keys parks(1);
  const auto token = parks.park("k").token;
  // when the caller ends it
  parks.release(token);
  // then the key is free for the next request
  EXPECT_FALSE(parks.holds("k"));
}

TEST(parked_keys, clear_forgets_every_park_and_their_late_returns_change_nothing) {
  // given parks of two keys, then their partitions revoked
  parked_keys parks(1);
  const auto a = parks.park("a").token;
  parks.park("b");
  parks.clear();
  EXPECT_FALSE(parks.holds("a"));
  EXPECT_FALSE(parks.holds("b"));
  // when "a" is parked again, and the record of its old park comes back afterwards
  const auto again = parks.park("a").token;
  EXPECT_FALSE(parks.release(a));
  // then the new park still holds "a" until its own record is back
  EXPECT_TRUE(parks.holds("a"));
  EXPECT_TRUE(parks.release(again));
  EXPECT_FALSE(parks.holds("a"));
}

TEST(parked_keys, each_account_with_parks_out_gets_a_partition_of_its_own_while_there_are_enough) {
  // given four retry partitions and three accounts parking requests of several keys
  parked_keys parks(1);
  const std::vector<std::int32_t> partitions{0, 1, 2, 3};
  const auto slow1 = parks.park("slow:a", "gewe", partitions);
  const auto slow2 = parks.park("slow:b", "gewe", partitions);
  const auto fast1 = parks.park("fast:a", "im", partitions);
  const auto fast2 = parks.park("fast:b", "im", partitions);
  const auto other = parks.park("other:a", "sender", partitions);
  // then one account's parks share its partition, and no two accounts share one
  ASSERT_TRUE(slow1.partition && fast1.partition && other.partition);
  EXPECT_EQ(slow2.partition, slow1.partition);
  EXPECT_EQ(fast2.partition, fast1.partition);
  EXPECT_NE(slow1.partition, fast1.partition);
  EXPECT_NE(other.partition, slow1.partition);
  EXPECT_NE(other.partition, fast1.partition);
}

TEST_F(parked_keys_two_lanes, a_key_follows_its_earlier_parks_and_a_freed_partition_is_given_again) {
  // given two partitions, used by "gewe" and "im"
  ASSERT_NO_FATAL_FAILURE(park_both({5, 9}));
  // when a request of key "k" of another account is parked (an ordering key set across accounts)
  const auto other_account = parks.park("k", "sender", partitions);
  // then it goes behind "k"'s park, whatever its account's partition would be
  EXPECT_EQ(other_account.partition, g.partition);
  // and when every park of "gewe" and "sender" is back, their partition is free: a third account
  // gets it rather than sharing "im"'s
  EXPECT_TRUE(parks.release(g.token));
  EXPECT_TRUE(parks.release(other_account.token));
  const auto third = parks.park("t", "gps", partitions);
  EXPECT_EQ(third.partition, g.partition);
  EXPECT_NE(third.partition, i.partition);
}

TEST(parked_keys, more_accounts_than_partitions_share_the_least_used_and_without_partitions_none_is_chosen) {
  // given two partitions and three accounts
  parked_keys parks(1);
  const std::vector<std::int32_t> partitions{0, 1};
  const auto a = parks.park("a", "A", partitions);
  const auto b = parks.park("b", "B", partitions);
  const auto c = parks.park("c", "C", partitions);
  // then the first two have one each and the third shares one of them
  EXPECT_NE(a.partition, b.partition);
  EXPECT_TRUE(c.partition == a.partition || c.partition == b.partition);
  // and a worker that owns no retry partition leaves the choice to the producer
  const auto none = parks.park("d", "D", {});
  EXPECT_FALSE(none.partition.has_value());
  EXPECT_TRUE(parks.holds("d"));
}

TEST_F(parked_keys_two_lanes, a_park_that_follows_its_key_into_another_lane_does_not_pin_its_account_there) {
  // given three partitions, "gewe" parking key "k" in its lane and "im" in another
  ASSERT_NO_FATAL_FAILURE(park_both({0, 1, 2}));
  // when "sender" parks a request of "k" (behind k's park), then one of its own key
  const auto follows = parks.park("k", "sender", partitions);
  const auto own = parks.park("s", "sender", partitions);
  // then the first goes behind "k", and the second to the lane no other account uses
  EXPECT_EQ(follows.partition, g.partition);
  EXPECT_NE(own.partition, g.partition);
  EXPECT_NE(own.partition, i.partition);
  // and once gewe's park is back, a fourth account is not put behind sender's park of "k"
  // while a partition without another account's parks exists
  EXPECT_TRUE(parks.release(g.token));
  EXPECT_TRUE(parks.release(i.token));
  const auto fourth = parks.park("f", "gps", partitions);
  EXPECT_NE(fourth.partition, g.partition);
  EXPECT_NE(fourth.partition, own.partition);
  EXPECT_EQ(fourth.partition, i.partition);
}

TEST(parked_keys, an_accounts_lane_counts_as_used_before_any_of_its_parks_is_in_it) {
  // (a third account picks among the partitions by its name's hash: several names, so that one
  // would pick sender's lane if that lane counted as free)
  for (const std::string third : {"im", "gps", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}) {
    // given four partitions; "gewe" parks key "k", and "sender"'s first park follows "k" into
    // gewe's partition: sender's lane is chosen then, and holds none of its parks yet
    parked_keys parks(1);
    const std::vector<std::int32_t> partitions{0, 1, 2, 3};
    const auto g = parks.park("k", "gewe", partitions);
    const auto follows = parks.park("k", "sender", partitions);
    ASSERT_EQ(follows.partition, g.partition);
    // when a third account starts parking, and then sender parks a key of its own
    const auto other = parks.park("x", third, partitions);
    const auto own = parks.park("s", "sender", partitions);
    // then the third took neither gewe's partition nor sender's lane: two were free
    EXPECT_NE(own.partition, g.partition);
    EXPECT_NE(other.partition, g.partition) << third;
    EXPECT_NE(other.partition, own.partition) << third;
  }
}
