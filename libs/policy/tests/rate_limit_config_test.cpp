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
