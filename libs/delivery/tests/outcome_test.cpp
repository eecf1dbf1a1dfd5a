#include "sendq/delivery/outcome.hpp"

#include <gtest/gtest.h>

using namespace sendq;
using providers::outcome_class;

TEST(outcome, connect_failures_are_retryable) {
  auto o = delivery::classify_transport(http::failure_kind::connect, "refused");
  EXPECT_EQ(o.cls, outcome_class::retryable);
  EXPECT_EQ(o.kind, core::error_kind::connect);
}

TEST(outcome, a_timeout_after_the_request_was_written_is_ambiguous) {
  auto o = delivery::classify_transport(http::failure_kind::timeout_after_write, "no answer in 10 s");
  EXPECT_EQ(o.cls, outcome_class::ambiguous);
  EXPECT_EQ(o.kind, core::error_kind::timeout);
  EXPECT_NE(o.message.find("no answer"), std::string::npos);
}

TEST(outcome, certificate_failures_are_permanent) {
  auto o = delivery::classify_transport(http::failure_kind::tls, "certificate verify failed");
  EXPECT_EQ(o.cls, outcome_class::permanent);
  EXPECT_EQ(o.kind, core::error_kind::tls);
}

TEST(outcome, a_request_the_client_would_not_send_is_permanent_and_names_the_part) {
  auto o = delivery::classify_transport(http::failure_kind::invalid_request, "request not sent: target: byte 0x0D at 8");
  EXPECT_EQ(o.cls, outcome_class::permanent);
  EXPECT_EQ(o.kind, core::error_kind::invalid_field);
  EXPECT_EQ(o.message, "invalid_request: request not sent: target: byte 0x0D at 8");
}

TEST(outcome, ambiguous_outcomes_are_retried_only_where_the_provider_deduplicates_or_the_account_allows) {
  auto sender = providers::make_provider("sender");
  auto gewe = providers::make_provider("gewe");
  providers::account plain, allowing;
  allowing.retry_ambiguous = true;
  providers::reply_outcome o;
  o.cls = outcome_class::ambiguous;
  EXPECT_TRUE(delivery::should_retry(o, *sender, plain));
  EXPECT_FALSE(delivery::should_retry(o, *gewe, plain));
  EXPECT_TRUE(delivery::should_retry(o, *gewe, allowing));
  o.cls = outcome_class::permanent;
  EXPECT_FALSE(delivery::should_retry(o, *sender, allowing));
}
