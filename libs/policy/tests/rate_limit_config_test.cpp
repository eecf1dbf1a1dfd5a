#include "sendq/policy/rate_limit_config.hpp"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using sendq::policy::parse_duration;
using sendq::policy::parse_window;
using sendq::policy::parse_windows;
using sendq::policy::rate_limit_config;
using sendq::policy::window;

TEST(rate_limit_config, parses_a_list_of_windows_with_units) {
  // given / when
  auto r = parse_windows("100/1s, 6000/1m,5/250ms , 20000/h");
  // then
  ASSERT_TRUE(r) << r.error;
  ASSERT_EQ(r.value->size(), 4u);
  EXPECT_EQ((*r.value)[0], (window{100, 1s}));
  EXPECT_EQ((*r.value)[1], (window{6000, 1min}));
  EXPECT_EQ((*r.value)[2], (window{5, 250ms}));
  EXPECT_EQ((*r.value)[3], (window{20000, 1h}));
}

TEST(rate_limit_config, parses_single_windows_and_durations) {
  EXPECT_EQ(*parse_window(" 10 / 2s ").value, (window{10, 2s}));
  EXPECT_EQ(*parse_window("1/s").value, (window{1, 1s}));
  EXPECT_EQ(*parse_duration("1500ms").value, 1500ms);
  EXPECT_EQ(*parse_duration("3h").value, 3h);
}

TEST(rate_limit_config, names_the_problem_in_bad_input) {
  struct bad {
    const char* text;
    const char* says;
  };
  for (auto [text, says] : {bad{"", "empty"},
                            bad{"100", "missing \"/\""},
                            bad{"100/1x", "unknown unit \"x\""},
                            bad{"0/1s", "limit \"0\""},
                            bad{"abc/1s", "limit \"abc\""},
                            bad{"-1/1s", "limit \"-1\""},
                            bad{"5000000000/1s", "below 2^32"},
                            bad{"100/0s", "must be > 0"},
                            bad{"100/1.5s", "unknown unit \".5s\""},
                            bad{"100/1", "missing unit"},
                            bad{"100/1s,", "empty rate"},
                            bad{"100/1s, 7/", "rate \"7/\""},
                            bad{"1/99999999999h", "too long"}}) {
    // when
    auto r = parse_windows(text);
    // then
    EXPECT_FALSE(r) << text;
    EXPECT_NE(r.error.find(says), std::string::npos) << text << " -> " << r.error;
  }
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("10"));
}

TEST(rate_limit_config, validate_reports_each_problem) {
  // given
  rate_limit_config c;
  c.windows = {{0, 1s}, {10, 0ms}};
  c.pacing = sendq::policy::pacing{2s, 1s};
  // when
  auto problems = validate(c);
  // then
  EXPECT_NE(problems.find("windows[0]: limit must be > 0"), std::string::npos) << problems;
  EXPECT_NE(problems.find("windows[1]: per must be > 0"), std::string::npos) << problems;
  EXPECT_NE(problems.find("max_gap must be >= min_gap"), std::string::npos) << problems;
  EXPECT_TRUE(validate(rate_limit_config{}).empty());
}

TEST(rate_limit_config, a_share_divides_each_window_so_that_the_shares_add_up_to_at_most_the_limit) {
  // given an account's limits, and a worker holding 3 of 8 partitions
  rate_limit_config c;
  c.windows = {{100, 1s}, {6000, 1min}, {2, 1s}};
  c.per_recipient = window{1, 2s};
  c.pacing = sendq::policy::pacing{2s, 8s};
  // when
  const auto s = sendq::policy::share_of(c, 3, 8);
  // then each window allows 3/8 of its requests, rounded down; one left with less than one
  // (2 × 3/8) keeps one, over a period to match: 1 s × 8 / (2 × 3), rounded up; pacing gaps grow by 8/3
  EXPECT_EQ(s.windows, (std::vector<window>{{37, 1s}, {2250, 1min}, {1, 1334ms}}));
  EXPECT_EQ(s.per_recipient, (window{1, 2s}));  // a recipient's requests are on one worker's partition
  EXPECT_EQ(s.pacing, (sendq::policy::pacing{5334ms, 21334ms}));
  EXPECT_TRUE(validate(s).empty());
  // and three workers holding 3, 3 and 2 of 8 partitions stay within the account's 100 a second
  EXPECT_LE(sendq::policy::share_of(c, 3, 8).windows[0].limit * 2 + sendq::policy::share_of(c, 2, 8).windows[0].limit,
            100u);
}

TEST(rate_limit_config, a_whole_share_or_an_unknown_total_leaves_the_limits_as_they_are) {
  rate_limit_config c;
  c.windows = {{100, 1s}};
  c.pacing = sendq::policy::pacing{1s, 2s};
  EXPECT_EQ(sendq::policy::share_of(c, 8, 8), c);
  EXPECT_EQ(sendq::policy::share_of(c, 9, 8), c);
  EXPECT_EQ(sendq::policy::share_of(c, 0, 0), c);
  // a worker with no partition of its own (more workers than partitions) takes one part
  EXPECT_EQ(sendq::policy::share_of(c, 0, 4).windows, (std::vector<window>{{25, 1s}}));
}
