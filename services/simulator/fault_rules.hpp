#pragma once
/// Fault injection rules set through POST /_sim/faults, plus the --fault-rate random mix.
/// Not thread-safe: the simulator calls it under its lock.
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace simdjson::dom {
class parser;
}

namespace sendq::simulator {

/// What a rule does to a matching request. The first group fails it; the second ("misbehaving
/// providers") answers in unusual but possible ways: how the worker copes is in docs/architecture.md.
enum class fault_action {
  none,
  status,              ///< answer `status` (with Retry-After when `retry_after`)
  latency,             ///< the normal reply after `latency_ms`
  reset,               ///< close with TCP RST without answering
  timeout,             ///< never answer
  business_error,      ///< the provider's error body (HTTP 200 for most), `code` when given
  drop_after_headers,  ///< the normal status line and headers, then close
  slow_drip,           ///< the normal reply, its body one byte every `interval_ms`
  huge_body,           ///< 200 with the normal reply padded with spaces to `bytes` bytes, streamed
  non_json,            ///< 200 text/html, an HTML page instead of the provider's reply
  wrong_content_type,  ///< the normal reply labelled Content-Type text/plain
  chunked,             ///< the normal reply with Transfer-Encoding: chunked, in several chunks
  close_after_reply,   ///< the normal reply with Connection: close, then the socket is closed
  http10,              ///< the normal reply as HTTP/1.0: no keep-alive, no Content-Length, body ends at close
  redirect,            ///< `status` (default 302) with Location: `location` (default the same URL)
  no_message_id,       ///< the success reply without the provider's message id (gps's has none)
};

std::string_view fault_action_name(fault_action a);

/// One rule as posted:
/// {"match": "...", "action": "...", "status": 503, "retry_after": 2, "latency_ms": 50, "times": N,
///  "rate": 0.2, "code": 500, "interval_ms": 200, "bytes": 67108864, "location": "http://..."}
struct fault_rule {
  std::string match;                     ///< substring of target (path?query) or body; "" matches all
  fault_action action = fault_action::none;
  unsigned status = 503;                 ///< for action status; redirect: 3xx, default 302
  std::optional<std::uint32_t> retry_after;  ///< seconds, sent as Retry-After with action status
  std::chrono::milliseconds latency{0};  ///< delay before acting (the whole point of action latency)
  std::optional<std::uint64_t> times;    ///< apply to the first N matching requests only
  double rate = 1.0;                     ///< probability of applying to a matching request
  std::optional<std::int64_t> code;      ///< business_error: overrides the provider's error code
  std::chrono::milliseconds interval{200};  ///< slow_drip: gap between two bytes of the body
  std::uint64_t bytes = 64ULL << 20;     ///< huge_body: body size
  std::optional<std::string> location;   ///< redirect: Location; default the request's own URL
  std::uint64_t applied = 0;             ///< how often it was applied so far
};

/// What to do to one request.
struct fault {
  fault_action action = fault_action::none;
  unsigned status = 0;
  std::optional<std::uint32_t> retry_after;
  std::chrono::milliseconds latency{0};
  std::optional<std::int64_t> code;
  std::chrono::milliseconds interval{0};
  std::uint64_t bytes = 0;
  std::optional<std::string> location;
};

/// Parses a JSON array of rules; on error returns a message naming the rule index and member.
std::variant<std::vector<fault_rule>, std::string> parse_fault_rules(std::string_view json,
                                                                     simdjson::dom::parser& parser);

class fault_plan {
 public:
  /// `random_rate`: fraction of requests that get a random retryable fault when no rule applies.
  fault_plan(std::uint64_t seed, double random_rate) : rng_(seed), random_rate_(random_rate) {}

  void replace(std::vector<fault_rule> rules) { rules_ = std::move(rules); }
  void clear() { rules_.clear(); }

  /// The first rule that matches `target` or `body`, still has `times` left and wins its `rate` draw;
  /// else, with probability random_rate, one of 503, 429 (Retry-After 1), reset, timeout.
  fault pick(std::string_view target, std::string_view body);

  /// Current rules as a JSON array, with "applied" counts.
  std::string rules_json() const;

 private:
  bool draw(double p);

  std::vector<fault_rule> rules_;
  std::mt19937_64 rng_;
  double random_rate_;
};

}  // namespace sendq::simulator
