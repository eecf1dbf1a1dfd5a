#include "sendq/delivery/parked_keys.hpp"

#include <gtest/gtest.h>

#include <string>

using sendq::delivery::parked_keys;

TEST(parked_keys, holds_a_key_until_each_of_its_parks_has_ended_once) {
  // given two parks of one key
  parked_keys parks(1);
  const auto first = parks.park("k");
  const auto second = parks.park("k");
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
  const auto token = parks.park("k");
  // when a retry without a park token comes back, and one parked by another process for "k"
  parked_keys other(2);
  const auto foreign = other.park("k");
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
  const auto token = parks.park("k");
  // when the caller ends it
  parks.release(token);
  // then the key is free for the next request
  EXPECT_FALSE(parks.holds("k"));
}

TEST(parked_keys, clear_forgets_every_park_and_their_late_returns_change_nothing) {
  // given parks of two keys, then their partitions revoked
  parked_keys parks(1);
  const auto a = parks.park("a");
  parks.park("b");
  parks.clear();
  EXPECT_FALSE(parks.holds("a"));
  EXPECT_FALSE(parks.holds("b"));
  // when "a" is parked again, and the record of its old park comes back afterwards
  const auto again = parks.park("a");
  EXPECT_FALSE(parks.release(a));
  // then the new park still holds "a" until its own record is back
  EXPECT_TRUE(parks.holds("a"));
  EXPECT_TRUE(parks.release(again));
  EXPECT_FALSE(parks.holds("a"));
}
