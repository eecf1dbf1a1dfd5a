#include "sendq/ctl/common.hpp"

#include <gtest/gtest.h>

namespace sendq::ctl {
namespace {

TEST(ctl, rates_read_per_second_and_per_minute) {
  EXPECT_EQ(parse_rate("500/s"), 500.0);
  EXPECT_EQ(parse_rate("500"), 500.0);
  EXPECT_EQ(parse_rate("60/m"), 1.0);
  EXPECT_FALSE(parse_rate("fast"));
  EXPECT_FALSE(parse_rate("-1/s"));
}

TEST(ctl, times_read_relative_epoch_and_utc) {
  const std::int64_t now = 1700000000000;
  EXPECT_EQ(parse_time("now", now), now);
  EXPECT_EQ(parse_time("-15m", now), now - 15 * 60000);
  EXPECT_EQ(parse_time("-2h", now), now - 2 * 3600000);
  EXPECT_EQ(parse_time("1699999999000", now), 1699999999000);
  EXPECT_EQ(parse_time("2023-11-14T22:13:20Z", now), 1700000000000);
  EXPECT_FALSE(parse_time("yesterday", now));
  EXPECT_FALSE(parse_time("-5x", now));
}

TEST(ctl, progress_line_shows_bar_rate_and_eta) {
  EXPECT_EQ(progress::line("replay", 50, 100, 1.0), "replay [===============>              ] 50/100  50/s  ETA 1s");
  EXPECT_EQ(progress::line("enqueue", 10, 0, 2.0), "enqueue 10  5/s");
}

TEST(ctl, results_parse_the_fields_the_tools_filter_on) {
  auto r = parse_result(R"({"id":"a","provider":"gewe","account":"default","type":"text","to":"x","status":"failed",)"
                        R"("error":{"kind":"http_5xx","message":"503"},"completed_at":5,"latency_ms":3})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, "failed");
  EXPECT_EQ(r->error_kind, "http_5xx");
  EXPECT_EQ(r->latency_ms, 3);
  EXPECT_FALSE(parse_result("not json"));
}

TEST(ctl, rate_limiter_spaces_records) {
  rate_limiter l(200);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 41; ++i) l.acquire();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
}

}  // namespace
}  // namespace sendq::ctl
