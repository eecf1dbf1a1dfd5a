#include "sendq/delivery/key_lanes.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

using sendq::delivery::key_lanes;

TEST(key_lanes, runs_the_first_item_of_a_key_at_once_and_queues_the_rest_in_order) {
  // given
  key_lanes<int> lanes;
  // when
  auto a = lanes.push("k", 1);
  auto b = lanes.push("k", 2);
  auto c = lanes.push("k", 3);
  auto other = lanes.push("other", 9);
  // then
  ASSERT_EQ(a, 1);
  EXPECT_FALSE(b);
  EXPECT_FALSE(c);
  ASSERT_EQ(other, 9) << "a different key is not held back";
  EXPECT_EQ(lanes.waiting(), 2u);
  EXPECT_EQ(lanes.next("k"), 2);
  EXPECT_EQ(lanes.next("k"), 3);
  EXPECT_FALSE(lanes.next("k"));
  EXPECT_EQ(lanes.active_keys(), 1u);
  EXPECT_EQ(lanes.push("k", 4), 4) << "an emptied lane is removed, so the next push runs at once";
}

TEST(key_lanes, a_lane_that_never_empties_keeps_its_order_without_keeping_every_item_it_held) {
  // given a hot key that always has two waiting: 100,000 items through one lane
  key_lanes<int> lanes;
  ASSERT_EQ(lanes.push("hot", 0), 0);
  ASSERT_FALSE(lanes.push("hot", 1));
  ASSERT_FALSE(lanes.push("hot", 2));
  std::vector<int> ran;
  std::size_t most_slots = 0;
  for (int i = 3; i < 100000; ++i) {
    ASSERT_FALSE(lanes.push("hot", i));
    auto next = lanes.next("hot");
    ASSERT_TRUE(next);
    ran.push_back(*next);
    most_slots = std::max(most_slots, lanes.slots("hot"));
  }
  // then they ran in order, and the lane's storage stayed small (it held all 100,000 before)
  for (std::size_t k = 0; k < ran.size(); ++k) ASSERT_EQ(ran[k], static_cast<int>(k) + 1);
  EXPECT_LE(most_slots, 256u);
  EXPECT_EQ(lanes.next("hot"), 99998);
  EXPECT_EQ(lanes.next("hot"), 99999);
  EXPECT_FALSE(lanes.next("hot"));
  EXPECT_EQ(lanes.slots("hot"), 0u);
}

TEST(key_lanes, keeps_per_key_order_with_many_runners_in_parallel) {
  // given 100 items pushed in order for each of 50 keys, while a thread is started to run a key's
  // lane whenever push() says it was idle: runners of different keys work at the same time as the
  // pushes and as each other
  key_lanes<int> lanes;
  std::mutex mu;
  std::map<int, std::vector<int>> seen;  // key -> items in run order
  auto run = [&](int key, int first) {
    std::optional<int> item = first;
    while (item) {
      {
        std::lock_guard l(mu);
        seen[key].push_back(*item);
      }
      item = lanes.next(std::to_string(key));
    }
  };
  std::vector<std::thread> threads;
  std::mutex tmu;
  for (int i = 0; i < 100; ++i) {
    for (int key = 0; key < 50; ++key) {
      if (auto first = lanes.push(std::to_string(key), i)) {
        std::lock_guard l(tmu);
        threads.emplace_back(run, key, *first);
      }
    }
  }
  for (auto& t : threads) t.join();
  // then every key's items ran exactly once and in order
  ASSERT_EQ(seen.size(), 50u);
  for (auto& [key, items] : seen) {
    ASSERT_EQ(items.size(), 100u) << key;
    for (int i = 0; i < 100; ++i) EXPECT_EQ(items[i], i) << "key " << key;
  }
  EXPECT_EQ(lanes.active_keys(), 0u);
}
