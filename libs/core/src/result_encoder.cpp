#include "sendq/core/result_encoder.hpp"

#include "sendq/core/json_writer.hpp"

namespace sendq::core {

void encode_result(const delivery_result& r, std::string& out) {
  json_writer w(out);
  w.begin_object();
  w.field("id", r.id);
  w.field("provider", r.provider);
  w.field("account", r.account);
  w.field("type", r.type);
  w.field("to", r.to);
  w.field("status", to_string(r.status));
  w.field("attempts", r.attempts);
  w.key("provider_message_id");
  if (r.provider_message_id) w.value(*r.provider_message_id); else w.null();
  w.key("http_status");
  if (r.http_status) w.value(*r.http_status); else w.null();
  w.key("provider_code");
  if (r.provider_code) w.value(*r.provider_code); else w.null();
  w.key("error");
  if (r.error) {
    w.begin_object();
    w.field("kind", to_string(r.error->kind));
    w.field("message", r.error->message);
    w.end_object();
  } else {
    w.null();
  }
  w.key("created_at");
  if (r.created_at_ms) w.value(*r.created_at_ms); else w.null();
  w.field("completed_at", r.completed_at_ms);
  w.key("latency_ms");
  if (r.latency_ms) w.value(*r.latency_ms); else w.null();
  w.key("source").begin_object();
  w.field("topic", r.source.topic);
  w.field("partition", static_cast<std::int64_t>(r.source.partition));
  w.field("offset", r.source.offset);
  w.end_object();
  w.end_object();
}

void encode_request(const send_request& r, std::string& out) {
  json_writer w(out);
  w.begin_object();
  w.field("id", r.id);
  w.field("provider", r.provider);
  w.field("account", r.account);
  w.field("type", to_string(r.type));
  if (!r.from.empty()) w.field("from", r.from);
  w.field("to", r.to);
  w.field("key", r.key);
  w.key("body").raw(r.body_json.empty() ? std::string_view("{}") : std::string_view(r.body_json));
  if (!r.ext_json.empty()) w.key("ext").raw(r.ext_json);
  if (!r.provider_fields_json.empty()) w.key("provider_fields").raw(r.provider_fields_json);
  if (r.deadline_ms) w.field("deadline", *r.deadline_ms);
  if (r.max_attempts) w.field("max_attempts", *r.max_attempts);
  if (r.created_at_ms) w.field("created_at", *r.created_at_ms);
  if (r.attempt > 0) w.field("attempt", r.attempt);
  if (r.not_before_ms) w.field("not_before", *r.not_before_ms);
  w.end_object();
}

}  // namespace sendq::core
