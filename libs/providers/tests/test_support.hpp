#pragma once
// Shared helpers for the provider tests: accounts like the seeds' examples, requests filled
// field by field (the tests do not depend on the decoder), and checks on build() results.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "sendq/core/send_request.hpp"
#include "sendq/providers/provider.hpp"

namespace sendq::providers::testing {

inline account sender_account() {
  account a;
  a.provider = "sender";
  a.name = "default";
  a.base_url = "http://127.0.0.1:8087";
  a.settings = {{"api_version", "01"},
                {"client", "70374ddd0f3641368d419b2d93127b8f"},
                {"channel", "eba920d452d34adb8f2badb08b9e69bb"},
                {"version", "2.0"},
                {"sign", "cdcb39dc8005c3800219d2ba5fcc5182"}};
  return a;
}

inline account gewe_account() {
  account a;
  a.provider = "gewe";
  a.name = "default";
  a.base_url = "http://127.0.0.1:2531/v2/api";
  a.settings = {{"token", "gewe-token-1"}, {"app_id", "wx_app_1"}};
  return a;
}

inline account im_account() {
  account a;
  a.provider = "im";
  a.name = "default";
  a.base_url = "http://127.0.0.1:3000";
  a.settings = {{"appid", "JH"}};
  return a;
}

inline account gps_account() {
  account a;
  a.provider = "gps";
  a.name = "default";
  a.base_url = "http://127.0.0.1:8090";
  a.settings = {{"token", "gps-token-1"}, {"app_id", "gps-app-1"}};
  return a;
}

inline account account_for(std::string_view provider) {
  if (provider == "sender") return sender_account();
  if (provider == "gewe") return gewe_account();
  if (provider == "im") return im_account();
  return gps_account();
}

/// A request with the envelope filled; the test sets the body (typed members and body_json).
inline core::send_request request(std::string provider, core::message_type type) {
  core::send_request r;
  r.id = "9f1c2d3e4b5a69788796a5b4c3d2e1f0";
  r.provider = std::move(provider);
  r.type = type;
  r.from = "u000193f6f02e01764a0f869be49a2be21e01";
  r.to = "148992289019003396";
  r.key = r.provider + ":" + r.to;
  r.created_at_ms = 1794999000000;
  return r;
}

/// The call `build` made; a test failure when it returned a failure instead.
inline http_call built(const provider& p, const core::send_request& r, const account& a) {
  auto result = p.build(r, a);
  if (const auto* f = std::get_if<core::failure>(&result)) {
    ADD_FAILURE() << "build failed: " << core::to_string(f->kind) << ": " << f->message;
    return {};
  }
  return std::get<http_call>(std::move(result));
}

/// The failure `build` returned; a test failure when it built a call instead.
inline core::failure rejected(const provider& p, const core::send_request& r, const account& a) {
  auto result = p.build(r, a);
  if (const auto* c = std::get_if<http_call>(&result)) {
    ADD_FAILURE() << "built a call but should not: " << c->body;
    return {};
  }
  return std::get<core::failure>(std::move(result));
}

/// True when `message` starts with "<field>:", as every failure message must.
inline ::testing::AssertionResult names_field(const core::failure& f, std::string_view field) {
  const std::string prefix = std::string(field) + ":";
  if (f.message.compare(0, prefix.size(), prefix) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message does not start with \"" << prefix
                                       << "\": " << f.message;
}

}  // namespace sendq::providers::testing
