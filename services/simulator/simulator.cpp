#include "simulator.hpp"

#include <simdjson.h>

#include <random>

#include "json_text.hpp"

namespace sendq::simulator {

namespace {

http_reply json_reply(unsigned status, std::string body) {
  http_reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http_reply error_reply(unsigned status, std::string_view message) {
  return json_reply(status, "{\"error\":" + json_string(message) + "}");
}

decision respond(http_reply r) {
  decision d;
  d.reply = std::move(r);
  return d;
}

/// Value of query parameter `name` ("" when absent); control queries are simple, no decoding needed.
std::string_view query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = part.find('=');
    if (part.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
  }
  return {};
}

}  // namespace

simulator::simulator(simulator_config cfg, clock now)
    : cfg_(std::move(cfg)),
      now_(std::move(now)),
      parser_(std::make_unique<simdjson::dom::parser>()),
      log_(cfg_.max_recorded),
      faults_(cfg_.seed, cfg_.fault_rate),
      id_salt_(static_cast<std::uint32_t>(std::mt19937_64(cfg_.seed ^ 0x9e3779b97f4a7c15ULL)())) {}

simulator::~simulator() = default;

decision simulator::handle(const http_request& req) {
  auto path = req.path();
  if (path.starts_with("/_sim/")) return handle_control(req);
  if (auto p = provider_for_path(path)) return handle_provider_request(*p, req);
  return respond(json_reply(404, "{\"error\":\"not found\",\"path\":" + json_string(path) + "}"));
}

decision simulator::handle_provider_request(provider p, const http_request& req) {
  std::lock_guard lock(mu_);
  reply_context ctx;
  ctx.now = now_();
  ctx.seq = next_seq_++;
  ctx.id_salt = id_salt_;
  ctx.host_name = cfg_.host_name;

  fault f = faults_.pick(req.target, req.body);
  ctx.omit_message_id = f.action == fault_action::no_message_id;
  // Validation runs even when a fault pre-empts it, so that the record says whether it was well-formed.
  provider_outcome outcome = handle_provider(p, req, cfg_.credentials, ctx, *parser_);

  decision d;
  d.delay = f.latency;
  bool accepted = outcome.accepted;
  switch (f.action) {
    case fault_action::none:
    case fault_action::latency:
    case fault_action::no_message_id: d.reply = std::move(outcome.reply); break;
    case fault_action::drop_after_headers:
      d.how = transport::drop_after_headers;
      d.reply = std::move(outcome.reply);
      break;
    case fault_action::status: {
      accepted = false;
      d.reply = json_reply(f.status, "{\"error\":\"injected fault\",\"status\":" + std::to_string(f.status) + "}");
      if (f.retry_after) d.reply.headers.emplace_back("Retry-After", std::to_string(*f.retry_after));
      break;
    }
    case fault_action::business_error:
      accepted = false;
      d.reply = business_error_reply(p, req, ctx, f.code);
      break;
    case fault_action::reset:
      accepted = false;
      d.how = transport::reset;
      break;
    case fault_action::timeout:
      accepted = false;
      d.how = transport::hang;
      d.delay = {};
      break;
    // Misbehaving providers: the request is processed (or not) as the reply shows.
    case fault_action::slow_drip:
      d.how = transport::slow_drip;
      d.interval = f.interval;
      d.reply = std::move(outcome.reply);
      break;
    case fault_action::huge_body:
      d.how = transport::huge_body;
      d.bytes = f.bytes;
      d.reply = std::move(outcome.reply);
      break;
    case fault_action::non_json:
      // A proxy's error page in front of the provider: the provider never saw the request.
      accepted = false;
      d.reply.status = 200;
      d.reply.content_type = "text/html; charset=utf-8";
      d.reply.body = "<html><head><title>gateway</title></head><body><h1>gateway</h1></body></html>";
      break;
    case fault_action::wrong_content_type:
      d.reply = std::move(outcome.reply);
      d.reply.content_type = "text/plain; charset=utf-8";
      break;
    case fault_action::chunked:
      d.how = transport::chunked;
      d.reply = std::move(outcome.reply);
      break;
    case fault_action::close_after_reply:
      d.how = transport::close_after_reply;
      d.reply = std::move(outcome.reply);
      break;
    case fault_action::http10:
      d.how = transport::http10;
      d.reply = std::move(outcome.reply);
      break;
    case fault_action::redirect: {
      accepted = false;
      // Default: the same URL on the same host (absolute, as most servers send it).
      std::string location = f.location.value_or(
          req.header("host").empty() ? req.target : "http://" + std::string(req.header("host")) + req.target);
      d.reply = json_reply(f.status, "{\"error\":\"moved\",\"location\":" + json_string(location) + "}");
      d.reply.headers.emplace_back("Location", std::move(location));
      break;
    }
  }

  request_record r;
  r.seq = ctx.seq;
  r.p = p;
  r.time_ms = unix_millis(ctx.now);
  r.request = &req;
  r.accepted = accepted;
  r.valid = outcome.accepted;
  r.fault = f.action;
  if (d.how != transport::reset && d.how != transport::hang) {
    r.status = d.reply.status;
    r.reply = d.reply.body;  // huge_body: before its padding
  }
  r.error = outcome.error;
  log_.add(r);
  return d;
}

decision simulator::handle_control(const http_request& req) {
  auto path = req.path();
  auto method_not_allowed = [&](std::string_view allow) {
    http_reply r = error_reply(405, "method " + req.method + " not allowed on " + std::string(path));
    r.headers.emplace_back("Allow", std::string(allow));
    return respond(std::move(r));
  };
  std::lock_guard lock(mu_);
  if (path == "/_sim/requests") {
    if (req.method == "GET") {
      auto q = req.query();
      std::optional<provider> only;
      if (auto name = query_param(q, "provider"); !name.empty()) {
        for (auto p : all_providers) {
          if (provider_name(p) == name) only = p;
        }
        if (!only) return respond(error_reply(400, "unknown provider '" + std::string(name) + "'"));
      }
      std::uint64_t since = 0;
      std::size_t limit = SIZE_MAX;
      if (auto s = query_param(q, "since"); !s.empty()) {
        auto v = parse_int64(s);
        if (!v || *v < 0) return respond(error_reply(400, "'since' must be a non-negative integer"));
        since = static_cast<std::uint64_t>(*v);
      }
      if (auto s = query_param(q, "limit"); !s.empty()) {
        auto v = parse_int64(s);
        if (!v || *v < 0) return respond(error_reply(400, "'limit' must be a non-negative integer"));
        limit = static_cast<std::size_t>(*v);
      }
      http_reply r = json_reply(200, log_.lines(only, since, limit));
      r.content_type = "application/x-ndjson; charset=utf-8";
      return respond(std::move(r));
    }
    if (req.method == "DELETE") {
      return respond(json_reply(200, "{\"cleared\":" + std::to_string(log_.clear()) + "}"));
    }
    return method_not_allowed("GET, DELETE");
  }
  if (path == "/_sim/stats") {
    if (req.method != "GET") return method_not_allowed("GET");
    return respond(json_reply(200, log_.stats_json()));
  }
  if (path == "/_sim/faults") {
    if (req.method == "GET") return respond(json_reply(200, faults_.rules_json()));
    if (req.method == "DELETE") {
      faults_.clear();
      return respond(json_reply(200, "{\"rules\":0}"));
    }
    if (req.method == "POST") {
      auto parsed = parse_fault_rules(req.body, *parser_);
      if (auto* err = std::get_if<std::string>(&parsed)) return respond(error_reply(400, *err));
      auto& rules = std::get<std::vector<fault_rule>>(parsed);
      auto n = rules.size();
      faults_.replace(std::move(rules));
      return respond(json_reply(200, "{\"rules\":" + std::to_string(n) + "}"));
    }
    return method_not_allowed("GET, POST, DELETE");
  }
  if (path == "/_sim/health") {
    if (req.method != "GET") return method_not_allowed("GET");
    return respond(json_reply(200, "{\"status\":\"ok\"}"));
  }
  return respond(json_reply(404, "{\"error\":\"not found\",\"path\":" + json_string(path) + "}"));
}

}  // namespace sendq::simulator
