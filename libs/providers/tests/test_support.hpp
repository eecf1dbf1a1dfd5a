#pragma once
// Shared helpers for the provider tests: accounts like the seeds' examples, requests filled
// field by field (the tests do not depend on the decoder), and checks on build() results.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "sendq/core/send_request.hpp"
#include "sendq/providers/provider.hpp"
#include "seed_accounts.hpp"

namespace sendq::providers::testing {

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
