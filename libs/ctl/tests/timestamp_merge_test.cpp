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

std::vector<std::string> drain(timestamp_merge<fake_message>& merge) {
  std::vector<std::string> out;
  while (auto m = merge.next()) out.push_back(m->value);
  return out;
}

TEST(timestamp_merge, releases_a_record_only_once_no_partition_can_bring_an_earlier_one) {
  // given two partitions of three records each, the DLQ's records of one key spread over both
  timestamp_merge<fake_message> merge({{0, 3}, {1, 3}}, 1 << 20);
  merge.add({0, 0, 100, "a1"});
  merge.add({0, 1, 300, "a3"});
  // then: nothing while partition 1 has nothing buffered (it may hold an earlier record)
  EXPECT_EQ(drain(merge), std::vector<std::string>{});
  merge.add({1, 0, 200, "b2"});
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"a1", "b2"}));
  merge.add({1, 1, 400, "b4"});
  merge.add({1, 2, 500, "b5"});  // partition 1 is done: its range ends at 3
  // a3 goes; b4 waits, as partition 0's next record may come before it
  EXPECT_EQ(drain(merge), std::vector<std::string>{"a3"});
  merge.add({0, 2, 450, "a45"});  // partition 0 done too
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"b4", "a45", "b5"}));
  EXPECT_FALSE(merge.overflowed());
  EXPECT_EQ(merge.buffered_bytes(), 0u);
}

TEST(timestamp_merge, equal_times_go_by_partition_then_offset) {
  timestamp_merge<fake_message> merge({{0, 2}, {1, 1}}, 1 << 20);
  merge.add({1, 0, 100, "b"});
  merge.add({0, 0, 100, "a"});
  merge.add({0, 1, 100, "a'"});
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"a", "a'", "b"}));
}

TEST(timestamp_merge, a_partition_that_ends_short_of_its_range_is_waited_for_until_the_read_ends) {
  // given partition 1, whose range ends at 10 but whose records were deleted (the reader ends it)
  timestamp_merge<fake_message> merge({{0, 2}, {1, 10}}, 1 << 20);
  merge.add({0, 0, 100, "a"});
  merge.add({0, 1, 200, "b"});
  EXPECT_EQ(drain(merge), std::vector<std::string>{});
  merge.finish();
  EXPECT_EQ(drain(merge), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(merge.overflowed());
}

TEST(timestamp_merge, past_its_memory_the_earliest_buffered_record_goes_and_it_says_so) {
  // given room for about two records (each counts its value and 128 bytes)
  timestamp_merge<fake_message> merge({{0, 5}, {1, 5}}, 300);
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
