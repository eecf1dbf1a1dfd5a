#include "sendq/delivery/pending_acks.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

namespace sendq::delivery {
namespace {

using acks = pending_acks<int>;

TEST(pending_acks, a_follower_is_held_until_the_last_acknowledgement) {
  // given a record waiting for its result and its DLQ record
  acks a;
  a.expect(2);
  // when a duplicate follows it, then one acknowledgement comes
  EXPECT_EQ(a.follow(7), acks::follow_result::waiting);
  EXPECT_FALSE(a.acknowledge());
  // then the duplicate is still held, and comes back with the last one
  EXPECT_EQ(a.follow(8), acks::follow_result::waiting);
  EXPECT_TRUE(a.acknowledge());
  EXPECT_EQ(a.take_followers(), (std::vector<int>{7, 8}));
  EXPECT_TRUE(a.take_followers().empty());
}

TEST(pending_acks, a_follower_of_an_acknowledged_record_ends_at_once) {
  acks a;
  a.expect(1);
  EXPECT_TRUE(a.acknowledge());
  EXPECT_EQ(a.follow(1), acks::follow_result::ended_before);
  EXPECT_TRUE(a.take_followers().empty());
  // and a record that never waited for any (never published) has nothing to wait for either
  acks never;
  EXPECT_EQ(never.follow(2), acks::follow_result::ended_before);
}

// A follower whose move acknowledges: the last acknowledgement then comes in while follow() holds
// its own count, between taking it and giving it back, the window the race below only sometimes hits.
struct acking_follower {
  pending_acks<acking_follower>* acks;
  int value;
  acking_follower(pending_acks<acking_follower>* a, int v) : acks(a), value(v) {}
  acking_follower(acking_follower&& o) noexcept : acks(std::exchange(o.acks, nullptr)), value(o.value) {
    if (acks) acks->acknowledge();  // once, at the first move (into the follower list)
    acks = nullptr;
  }
  acking_follower& operator=(acking_follower&&) = default;
};

TEST(pending_acks, a_follower_added_while_the_last_acknowledgement_comes_in_ends_the_record_itself) {
  // given a record waiting for one acknowledgement
  pending_acks<acking_follower> a;
  a.expect(1);
  // when that acknowledgement comes in while the follower is being added
  const auto r = a.follow(acking_follower{&a, 7});
  // then follow() says the record is to be ended by its caller, with the follower among its own
  EXPECT_EQ(r, pending_acks<acking_follower>::follow_result::last);
  const auto followers = a.take_followers();
  ASSERT_EQ(followers.size(), 1u);
  EXPECT_EQ(followers[0].value, 7);
  // and nothing is left to wait for
  EXPECT_EQ(a.follow(acking_follower{nullptr, 8}), pending_acks<acking_follower>::follow_result::ended_before);
}

// The race the count settles: the last acknowledgement arrives (on the producer thread) while a
// follower is being added (on the I/O thread). Exactly one side ends the record, and the follower
// is neither lost nor ended before the record.
TEST(pending_acks, exactly_one_side_ends_the_record_when_the_last_acknowledgement_races_a_follower) {
  for (int round = 0; round < 2000; ++round) {
    // given
    acks a;
    a.expect(1);
    std::atomic<int> record_ended{0};
    std::atomic<bool> follower_ended_early{false};
    std::vector<int> released;
    // when
    std::thread producer([&] {
      if (a.acknowledge()) {
        record_ended.fetch_add(1);
        released = a.take_followers();
      }
    });
    const auto r = a.follow(round);
    if (r == acks::follow_result::last) {
      record_ended.fetch_add(1);
      released = a.take_followers();
    }
    if (r == acks::follow_result::ended_before) follower_ended_early = true;
    producer.join();
    // then
    ASSERT_EQ(record_ended.load(), 1) << "round " << round;
    if (follower_ended_early) {
      EXPECT_TRUE(released.empty()) << "round " << round;
    } else {
      EXPECT_EQ(released, std::vector<int>{round}) << "round " << round;
    }
  }
}

}  // namespace
}  // namespace sendq::delivery
