#include "reply_classifier.hpp"

#include <gtest/gtest.h>

using namespace sendq;
using namespace sendq::providers;
using namespace sendq::providers::detail;
using namespace std::chrono_literals;

TEST(reply_classifier, sorts_statuses_into_verdicts) {
  EXPECT_EQ(verdict_of(200), status_verdict::body_decides);
  EXPECT_EQ(verdict_of(204), status_verdict::body_decides);
  EXPECT_EQ(verdict_of(299), status_verdict::body_decides);
  EXPECT_EQ(verdict_of(408), status_verdict::retryable);
  EXPECT_EQ(verdict_of(429), status_verdict::retryable);
  EXPECT_EQ(verdict_of(503), status_verdict::retryable);
  EXPECT_EQ(verdict_of(500), status_verdict::ambiguous);
  EXPECT_EQ(verdict_of(502), status_verdict::ambiguous);
  EXPECT_EQ(verdict_of(504), status_verdict::ambiguous);
  EXPECT_EQ(verdict_of(400), status_verdict::client_error);
  EXPECT_EQ(verdict_of(404), status_verdict::client_error);
  EXPECT_EQ(verdict_of(499), status_verdict::client_error);
  EXPECT_EQ(verdict_of(501), status_verdict::server_error);
  EXPECT_EQ(verdict_of(505), status_verdict::server_error);
  EXPECT_EQ(verdict_of(507), status_verdict::ambiguous);
  EXPECT_EQ(verdict_of(520), status_verdict::ambiguous);
  EXPECT_EQ(verdict_of(522), status_verdict::ambiguous);
  EXPECT_EQ(verdict_of(599), status_verdict::ambiguous);
  EXPECT_EQ(verdict_of(0), status_verdict::unexpected);
  EXPECT_EQ(verdict_of(100), status_verdict::unexpected);
  EXPECT_EQ(verdict_of(304), status_verdict::unexpected);
  EXPECT_EQ(verdict_of(600), status_verdict::unexpected);
}

TEST(reply_classifier, leaves_a_2xx_to_the_body) {
  EXPECT_FALSE(classify_status("gewe", 200, "{}", std::nullopt));
}

TEST(reply_classifier, retries_on_503_with_retry_after) {
  // when
  const auto o = classify_status("gewe", 503, "", 5000ms);
  // then
  ASSERT_TRUE(o);
  EXPECT_EQ(o->cls, outcome_class::retryable);
  EXPECT_EQ(o->kind, core::error_kind::http_5xx);
  EXPECT_EQ(o->retry_after, std::optional<std::chrono::milliseconds>(5000ms));
  EXPECT_NE(o->message.find("gewe answered HTTP 503"), std::string::npos) << o->message;
  EXPECT_NE(o->message.find("5000 ms"), std::string::npos) << o->message;
}

TEST(reply_classifier, retries_on_429_with_and_without_retry_after) {
  EXPECT_EQ(classify_status("im", 429, "", 1000ms)->retry_after,
            std::optional<std::chrono::milliseconds>(1000ms));
  EXPECT_FALSE(classify_status("im", 429, "", std::nullopt)->retry_after);
  EXPECT_EQ(classify_status("im", 429, "", std::nullopt)->cls, outcome_class::retryable);
}

TEST(reply_classifier, ignores_retry_after_on_408) {
  // when
  const auto o = classify_status("gps", 408, "", 1000ms);
  // then
  EXPECT_EQ(o->cls, outcome_class::retryable);
  EXPECT_EQ(o->kind, core::error_kind::http_4xx);
  EXPECT_FALSE(o->retry_after);
}

TEST(reply_classifier, calls_502_ambiguous) {
  // when
  const auto o = classify_status("sender", 502, "Bad Gateway", std::nullopt);
  // then
  EXPECT_EQ(o->cls, outcome_class::ambiguous);
  EXPECT_EQ(o->kind, core::error_kind::ambiguous);
  EXPECT_NE(o->message.find("Bad Gateway"), std::string::npos) << o->message;
}

TEST(reply_classifier, fails_permanently_on_404_as_http_4xx) {
  // when
  const auto o = classify_status("sender", 404, "no such path", std::nullopt);
  // then
  EXPECT_EQ(o->cls, outcome_class::permanent);
  EXPECT_EQ(o->kind, core::error_kind::http_4xx);
  EXPECT_EQ(o->message, "sender answered HTTP 404: no such path");
}

TEST(reply_classifier, quotes_at_most_the_start_of_a_long_body_without_splitting_a_character) {
  // given: 199 ASCII bytes then 3-byte characters, so byte 200 is inside one
  const std::string body = std::string(199, 'a') + "你好你好";
  // when
  const std::string e = excerpt(body);
  // then
  EXPECT_EQ(e, std::string(199, 'a') + "...");
  EXPECT_EQ(excerpt("short"), "short");
}
