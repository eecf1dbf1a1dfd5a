// What every built-in provider shares: the factory, account settings, the HTTP-status rules
// and robustness against replies cut short or corrupted.
#include <gtest/gtest.h>

#include <algorithm>

#include "sendq/providers/provider.hpp"
#include "test_support.hpp"

using namespace sendq;
using namespace sendq::providers;
using namespace std::chrono_literals;
using core::error_kind;

namespace {

// A compact success reply of each provider, as its seed documents it.
std::string success_reply(std::string_view provider) {
  if (provider == "sender") return R"({"code":200,"message":"成功","data":{"getMessageId":"abc"},"page":null})";
  if (provider == "gewe") return R"({"ret":200,"msg":"操作成功","data":{"toWxid":"x@chatroom","newMsgId":2321462558768366600,"type":null}})";
  if (provider == "im") return R"({"success":true,"data":{"_id":"5995336a8eee10fc252f6c54","status":0}})";
  return R"({"Message":"成功","State":0})";
}

}  // namespace

TEST(provider, makes_each_builtin_provider_by_name) {
  for (auto name : builtin_provider_names()) {
    // when
    const auto p = make_provider(name);
    // then
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->name(), name);
    EXPECT_FALSE(p->account_keys().empty());
  }
  EXPECT_EQ(builtin_provider_names().size(), 4u);
}

TEST(provider, makes_nothing_for_an_unknown_name) {
  EXPECT_EQ(make_provider("wechat"), nullptr);
  EXPECT_EQ(make_provider(""), nullptr);
}

TEST(provider, spells_outcome_classes_as_words) {
  EXPECT_EQ(to_string(outcome_class::delivered), "delivered");
  EXPECT_EQ(to_string(outcome_class::retryable), "retryable");
  EXPECT_EQ(to_string(outcome_class::ambiguous), "ambiguous");
  EXPECT_EQ(to_string(outcome_class::permanent), "permanent");
}

TEST(account, gives_a_setting_or_the_fallback) {
  // given
  account a;
  a.settings["language"] = "en-US";
  a.settings["empty"] = "";
  // when / then
  EXPECT_EQ(a.get("language", "zh-CN"), "en-US");
  EXPECT_EQ(a.get("chat_type", "1"), "1");
  EXPECT_EQ(a.get("chat_type"), "");
  EXPECT_EQ(a.get("empty", "x"), "");
}

TEST(provider, every_provider_accepts_its_test_account_and_lists_its_keys) {
  for (auto name : builtin_provider_names()) {
    const auto p = make_provider(name);
    const auto a = providers::testing::account_for(name);
    EXPECT_FALSE(p->check_account(a)) << name << ": " << p->check_account(a).value_or("");
    for (const auto& [key, value] : a.settings) {
      const auto keys = p->account_keys();
      EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << name << " " << key;
    }
  }
}

TEST(provider, every_provider_retries_408_429_and_503) {
  for (auto name : builtin_provider_names()) {
    const auto p = make_provider(name);
    for (unsigned status : {408u, 429u, 503u}) {
      // when
      const auto o = p->classify(status, "text/plain", "busy", 2000ms);
      // then
      EXPECT_EQ(o.cls, outcome_class::retryable) << name << " " << status;
      EXPECT_EQ(o.kind, status == 503 ? error_kind::http_5xx : error_kind::http_4xx);
      if (status == 408) {
        EXPECT_FALSE(o.retry_after) << name;
      } else {
        EXPECT_EQ(o.retry_after, std::optional<std::chrono::milliseconds>(2000ms)) << name;
      }
    }
  }
}

TEST(provider, every_provider_retries_429_without_retry_after) {
  for (auto name : builtin_provider_names()) {
    // when
    const auto o = make_provider(name)->classify(429, "", "");
    // then
    EXPECT_EQ(o.cls, outcome_class::retryable) << name;
    EXPECT_FALSE(o.retry_after) << name;
  }
}

TEST(provider, every_provider_calls_500_502_and_504_ambiguous) {
  for (auto name : builtin_provider_names()) {
    const auto p = make_provider(name);
    for (unsigned status : {500u, 502u, 504u}) {
      // when: even a body that looks like success does not make it delivered
      const auto o = p->classify(status, "application/json", success_reply(name));
      // then
      EXPECT_EQ(o.cls, outcome_class::ambiguous) << name << " " << status;
      EXPECT_EQ(o.kind, error_kind::ambiguous);
      EXPECT_NE(o.message.find(std::to_string(status)), std::string::npos) << o.message;
    }
  }
}

TEST(provider, every_provider_fails_permanently_on_other_4xx_and_5xx) {
  for (auto name : builtin_provider_names()) {
    const auto p = make_provider(name);
    // when
    const auto not_found = p->classify(404, "text/html", "<h1>Not Found</h1>");
    const auto unauthorized = p->classify(401, "", "");
    const auto not_implemented = p->classify(501, "", "");
    const auto origin_timeout = p->classify(522, "text/html", "<h1>Connection timed out</h1>");
    const auto redirect = p->classify(302, "", "");
    // then
    EXPECT_EQ(not_found.cls, outcome_class::permanent) << name;
    EXPECT_EQ(not_found.kind, error_kind::http_4xx) << name;
    EXPECT_NE(not_found.message.find("404"), std::string::npos) << not_found.message;
    EXPECT_NE(not_found.message.find("Not Found"), std::string::npos) << not_found.message;
    EXPECT_EQ(unauthorized.kind, error_kind::http_4xx) << name;
    EXPECT_EQ(not_implemented.cls, outcome_class::permanent) << name;
    EXPECT_EQ(not_implemented.kind, error_kind::http_5xx) << name;
    EXPECT_EQ(origin_timeout.cls, outcome_class::ambiguous) << name;
    EXPECT_EQ(origin_timeout.kind, error_kind::ambiguous) << name;
    EXPECT_NE(origin_timeout.message.find("HTTP 522 (the message may have been taken)"), std::string::npos)
        << origin_timeout.message;
    EXPECT_EQ(redirect.cls, outcome_class::permanent) << name;
  }
}

TEST(provider, every_provider_lets_the_body_decide_any_2xx) {
  for (auto name : builtin_provider_names()) {
    for (unsigned status : {200u, 201u, 202u}) {
      // when
      const auto o = make_provider(name)->classify(status, "application/json", success_reply(name));
      // then
      EXPECT_EQ(o.cls, outcome_class::delivered) << name << " " << status << ": " << o.message;
    }
  }
}

// A success reply cut short at every length is never delivered (and never crashes).
TEST(provider, no_provider_delivers_a_truncated_reply) {
  for (auto name : builtin_provider_names()) {
    const auto p = make_provider(name);
    const std::string reply = success_reply(name);
    for (std::size_t n = 0; n < reply.size(); ++n) {
      // when
      const auto o = p->classify(200, "application/json", std::string_view(reply).substr(0, n));
      // then
      EXPECT_EQ(o.cls, outcome_class::ambiguous) << name << " at " << n;  // a 2xx: it may have been taken
      EXPECT_EQ(o.kind, error_kind::ambiguous) << name << " at " << n;
      EXPECT_FALSE(o.message.empty());
    }
  }
}

// Every byte of a success reply replaced by bytes that break JSON in different ways: the
// classifier must return some outcome with a message, never crash or read out of bounds.
TEST(provider, no_provider_crashes_on_corrupted_replies) {
  for (auto name : builtin_provider_names()) {
    const auto p = make_provider(name);
    const std::string reply = success_reply(name);
    for (std::size_t i = 0; i < reply.size(); ++i) {
      for (char c : {'\0', '"', '{', '}', '[', ']', ':', ',', '\\', 'x', '9', '\xff', ' '}) {
        std::string bad = reply;
        bad[i] = c;
        // when
        const auto o = p->classify(200, "application/json", bad);
        // then
        if (o.cls != outcome_class::delivered) {
          EXPECT_FALSE(o.message.empty()) << name << " " << bad;
        }
      }
    }
  }
}
