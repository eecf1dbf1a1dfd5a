#include "fault_rules.hpp"

#include <simdjson.h>

#include <array>
#include <cstdio>
#include <set>

#include "json_text.hpp"

namespace sendq::simulator {

namespace dom = simdjson::dom;

std::string_view fault_action_name(fault_action a) {
  switch (a) {
    case fault_action::none: return "none";
    case fault_action::status: return "status";
    case fault_action::latency: return "latency";
    case fault_action::reset: return "reset";
    case fault_action::timeout: return "timeout";
    case fault_action::business_error: return "business_error";
    case fault_action::drop_after_headers: return "drop_after_headers";
    case fault_action::slow_drip: return "slow_drip";
    case fault_action::huge_body: return "huge_body";
    case fault_action::non_json: return "non_json";
    case fault_action::wrong_content_type: return "wrong_content_type";
    case fault_action::chunked: return "chunked";
    case fault_action::close_after_reply: return "close_after_reply";
    case fault_action::http10: return "http10";
    case fault_action::redirect: return "redirect";
    case fault_action::no_message_id: return "no_message_id";
  }
  return "none";
}

namespace {

constexpr fault_action all_actions[] = {
    fault_action::status,   fault_action::latency,   fault_action::reset,    fault_action::timeout,
    fault_action::business_error, fault_action::drop_after_headers, fault_action::slow_drip,
    fault_action::huge_body, fault_action::non_json, fault_action::wrong_content_type, fault_action::chunked,
    fault_action::close_after_reply, fault_action::http10, fault_action::redirect, fault_action::no_message_id};

std::optional<fault_action> action_from_name(std::string_view s) {
  for (auto a : all_actions) {
    if (fault_action_name(a) == s) return a;
  }
  return std::nullopt;
}

std::string action_names() {
  std::string out;
  for (auto a : all_actions) out += (out.empty() ? "" : ", ") + std::string(fault_action_name(a));
  return out;
}

// A Location value goes into a header as is: printable ASCII only, no spaces.
bool header_safe(std::string_view s) {
  for (char ch : s) {
    if (static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7f) return false;
  }
  return !s.empty();
}

std::optional<std::int64_t> as_int(dom::element e) {
  std::int64_t v = 0;
  if (e.type() != dom::element_type::INT64 || e.get_int64().get(v) != simdjson::SUCCESS) return std::nullopt;
  return v;
}

std::optional<std::string> parse_rule(dom::object obj, fault_rule& rule) {
  std::set<std::string_view> seen;
  bool has_action = false;
  std::optional<unsigned> status;
  for (auto [key, value] : obj) {
    if (!seen.insert(key).second) return "duplicate member '" + std::string(key) + "'";
    if (key == "match") {
      std::string_view s;
      if (value.get_string().get(s) != simdjson::SUCCESS) return std::string("'match' must be a string");
      rule.match = std::string(s);
    } else if (key == "action") {
      std::string_view s;
      auto a = value.get_string().get(s) == simdjson::SUCCESS ? action_from_name(s) : std::nullopt;
      if (!a) return "'action' must be one of " + action_names();
      rule.action = *a;
      has_action = true;
    } else if (key == "status") {
      auto v = as_int(value);
      if (!v || *v < 100 || *v > 599) return std::string("'status' must be an integer in 100..599");
      status = static_cast<unsigned>(*v);
    } else if (key == "retry_after") {
      auto v = as_int(value);
      if (!v || *v < 0 || *v > 86400) return std::string("'retry_after' must be an integer number of seconds in 0..86400");
      rule.retry_after = static_cast<std::uint32_t>(*v);
    } else if (key == "latency_ms") {
      auto v = as_int(value);
      if (!v || *v < 0 || *v > 3600000) return std::string("'latency_ms' must be an integer in 0..3600000");
      rule.latency = std::chrono::milliseconds(*v);
    } else if (key == "times") {
      auto v = as_int(value);
      if (!v || *v < 0) return std::string("'times' must be a non-negative integer");
      rule.times = static_cast<std::uint64_t>(*v);
    } else if (key == "rate") {
      double d = -1;
      if (!value.is_number() || value.get_double().get(d) != simdjson::SUCCESS || !(d >= 0.0 && d <= 1.0)) {
        return std::string("'rate' must be a number in 0..1");
      }
      rule.rate = d;
    } else if (key == "code") {
      auto v = as_int(value);
      if (!v) return std::string("'code' must be an integer");
      rule.code = *v;
    } else if (key == "interval_ms") {
      auto v = as_int(value);
      if (!v || *v < 1 || *v > 60000) return std::string("'interval_ms' must be an integer in 1..60000");
      rule.interval = std::chrono::milliseconds(*v);
    } else if (key == "bytes") {
      auto v = as_int(value);
      if (!v || *v < 1 || *v > (std::int64_t{1} << 40)) return std::string("'bytes' must be an integer in 1..2^40");
      rule.bytes = static_cast<std::uint64_t>(*v);
    } else if (key == "location") {
      std::string_view s;
      if (value.get_string().get(s) != simdjson::SUCCESS || !header_safe(s) || s.size() > 2048) {
        return std::string("'location' must be a non-empty URL of printable ASCII without spaces");
      }
      rule.location = std::string(s);
    } else {
      return "unknown member '" + std::string(key) + "'";
    }
  }
  if (!has_action) return std::string("missing member 'action'");
  if (rule.action == fault_action::redirect) {
    rule.status = status.value_or(302);
    if (rule.status < 300 || rule.status > 399) return std::string("'status' must be 3xx for action redirect");
  } else if (status) {
    rule.status = *status;
  }
  return std::nullopt;
}

}  // namespace

std::variant<std::vector<fault_rule>, std::string> parse_fault_rules(std::string_view json, dom::parser& parser) {
  dom::element root;
  if (auto ec = parser.parse(json.data(), json.size(), true).get(root); ec != simdjson::SUCCESS) {
    return std::string("body is not valid JSON: ") + simdjson::error_message(ec);
  }
  dom::array arr;
  if (root.get_array().get(arr) != simdjson::SUCCESS) return std::string("body must be a JSON array of rules");
  std::vector<fault_rule> rules;
  std::size_t i = 0;
  for (dom::element e : arr) {
    dom::object obj;
    if (e.get_object().get(obj) != simdjson::SUCCESS) return "rule " + std::to_string(i) + " must be an object";
    fault_rule rule;
    if (auto err = parse_rule(obj, rule)) return "rule " + std::to_string(i) + ": " + *err;
    rules.push_back(std::move(rule));
    ++i;
  }
  return rules;
}

bool fault_plan::draw(double p) {
  if (p >= 1.0) return true;
  if (p <= 0.0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
}

fault fault_plan::pick(std::string_view target, std::string_view body) {
  for (auto& rule : rules_) {
    bool matches = target.find(rule.match) != std::string_view::npos || body.find(rule.match) != std::string_view::npos;
    if (!matches || (rule.times && rule.applied >= *rule.times) || !draw(rule.rate)) continue;
    ++rule.applied;
    fault f;
    f.action = rule.action;
    f.status = rule.action == fault_action::status || rule.action == fault_action::redirect ? rule.status : 0;
    f.retry_after = rule.retry_after;
    f.latency = rule.latency;
    f.code = rule.code;
    if (rule.action == fault_action::slow_drip) f.interval = rule.interval;
    if (rule.action == fault_action::huge_body) f.bytes = rule.bytes;
    f.location = rule.location;
    return f;
  }
  if (!draw(random_rate_)) return {};
  fault f;
  switch (std::uniform_int_distribution<int>(0, 3)(rng_)) {
    case 0:
      f.action = fault_action::status;
      f.status = 503;
      break;
    case 1:
      f.action = fault_action::status;
      f.status = 429;
      f.retry_after = 1;
      break;
    case 2: f.action = fault_action::reset; break;
    default: f.action = fault_action::timeout; break;
  }
  return f;
}

std::string fault_plan::rules_json() const {
  std::string out = "[";
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const auto& r = rules_[i];
    if (i) out += ",";
    out += "{\"match\":";
    append_json_string(out, r.match);
    out += ",\"action\":\"" + std::string(fault_action_name(r.action)) + "\"";
    if (r.action == fault_action::status || r.action == fault_action::redirect) {
      out += ",\"status\":" + std::to_string(r.status);
    }
    if (r.retry_after) out += ",\"retry_after\":" + std::to_string(*r.retry_after);
    out += ",\"latency_ms\":" + std::to_string(r.latency.count());
    if (r.times) out += ",\"times\":" + std::to_string(*r.times);
    std::array<char, 32> rate{};
    std::snprintf(rate.data(), rate.size(), "%g", r.rate);
    out += ",\"rate\":" + std::string(rate.data());
    if (r.code) out += ",\"code\":" + std::to_string(*r.code);
    if (r.action == fault_action::slow_drip) out += ",\"interval_ms\":" + std::to_string(r.interval.count());
    if (r.action == fault_action::huge_body) out += ",\"bytes\":" + std::to_string(r.bytes);
    if (r.location) {
      out += ",\"location\":";
      append_json_string(out, *r.location);
    }
    out += ",\"applied\":" + std::to_string(r.applied) + "}";
  }
  out += "]";
  return out;
}

}  // namespace sendq::simulator
