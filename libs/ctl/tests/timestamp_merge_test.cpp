#include "../src/timestamp_merge.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace sendq::ctl::detail {
namespace {

struct fake_message {
  std::int32_t p;
  std::int64_t o;
  std::int64_t ts;
  std::string value;
  std::int32_t partition() const { return p; }
  std::int64_t offset() const { return o; }
  std::int64_t timestamp_ms() const { return ts; }
  std::string_view payload() const { return value; }
  std::string_view key() const { return {}; }
};

using merge_t = timestamp_merge<fake_message>;

std::vector<std::string> drain(merge_t& merge) {
  std::vector<std::string> out;
  while (auto m = merge.next()) out.push_back(m->value);
  return out;
}

TEST(timestamp_merge, releases_a_record_only_once_no_partition_can_bring_an_earlier_one) {
  // given two partitions of three records each, the DLQ's records of one key spread over both
  merge_t merge({0, 1}, 1 << 20);
  merge.add({0, 0, 100, "a1"});
  merge.add({0, 1, 300, "a3"});
  // then: nothing while partition 1 has nothing buffered (it may hold an earlier record)
  EXPECT_EQ(drain(merge), std::vector<std::string>{});
  merge.add({1, 0, 200, "b2"});
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"a1", "b2"}));
  merge.add({1, 1, 400, "b4"});
  merge.add({1, 2, 500, "b5"});
  merge.done(1);  // its range ended
  // a3 goes; b4 waits, as partition 0's next record may come before it
  EXPECT_EQ(drain(merge), std::vector<std::string>{"a3"});
  merge.add({0, 2, 450, "a45"});
  merge.done(0);
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"b4", "a45", "b5"}));
  EXPECT_FALSE(merge.overflowed());
  EXPECT_FALSE(merge.earliest_held_ms());
}

TEST(timestamp_merge, equal_times_go_by_partition_then_offset) {
  merge_t merge({0, 1}, 1 << 20);
  merge.add({1, 0, 100, "b"});
  merge.add({0, 0, 100, "a"});
  merge.add({0, 1, 100, "a'"});
  merge.done(0);
  merge.done(1);
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"a", "a'", "b"}));
}

TEST(timestamp_merge, a_partition_with_nothing_buffered_is_waited_for_until_it_is_said_done) {
  // given partition 1, whose records were deleted (the reader ends it short of its range)
  merge_t merge({0, 1, 2}, 1 << 20);
  merge.add({0, 0, 100, "a"});
  merge.add({0, 1, 200, "b"});
  EXPECT_EQ(drain(merge), std::vector<std::string>{});
  EXPECT_EQ(merge.earliest_held_ms(), 100);
  merge.done(1);
  merge.done(7);  // not one of its partitions: nothing happens
  EXPECT_EQ(drain(merge), std::vector<std::string>{});  // partition 2 may still come
  merge.done(2);
  merge.done(0);
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(merge.overflowed());
}

TEST(timestamp_merge, in_one_millisecond_records_from_one_source_partition_go_by_its_offsets) {
  // given one key's three requests (source sendq.requests/5, offsets 40-42) ended within one
  // millisecond, their DLQ records on partitions 2, 0 and 1, and another key's from elsewhere
  merge_t merge({0, 1, 2}, 1 << 20);
  merge.add({2, 0, 100, "k40"}, {"sendq.requests", 5, 40});
  merge.add({0, 0, 100, "k41"}, {"sendq.requests", 5, 41});
  merge.add({1, 0, 100, "k42"}, {"sendq.requests", 5, 42});
  merge.add({2, 1, 101, "other"}, {"sendq.requests", 3, 7});
  for (const auto p : {0, 1, 2}) merge.done(p);
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"k40", "k41", "k42", "other"}));
}

TEST(timestamp_merge, past_its_memory_the_earliest_buffered_record_goes_and_it_says_so) {
  // given room for about two records (each counts its value and 128 bytes)
  merge_t merge({0, 1}, 300);
  merge.add({0, 0, 100, "a"});
  merge.add({0, 1, 200, "b"});
  EXPECT_EQ(drain(merge), std::vector<std::string>{});
  merge.add({0, 2, 300, "c"});  // over: partition 1 still has nothing
  EXPECT_EQ(drain(merge), std::vector<std::string>{"a"});
  EXPECT_TRUE(merge.overflowed());
  merge.add({1, 0, 150, "x"});  // earlier than what is left: order resumes from here
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"x"}));
}

}  // namespace
}  // namespace sendq::ctl::detail
