#include "sendq/core/result_encoder.hpp"

#include <charconv>
#include <cstring>

#include "sendq/core/json_writer.hpp"

namespace sendq::core {
namespace {

// Writes into a buffer sized by the caller: every string known to need no escaping, every key a
// literal. Each std::string call costs more than copying a key or an id, and there are 37 pieces.
class plain_writer {
 public:
  explicit plain_writer(char* p) : p_(p) {}
  plain_writer& text(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
    return *this;
  }
  plain_writer& number(std::int64_t n) {
    p_ = std::to_chars(p_, p_ + 20, n).ptr;  // 20 characters: INT64_MIN
    return *this;
  }
  plain_writer& quoted_or_null(const std::optional<std::string>& s) {
    return s ? text("\"").text(*s).text("\"") : text("null");
  }
  template <class T>
  plain_writer& number_or_null(const std::optional<T>& n) {
    return n ? number(*n) : text("null");
  }
  char* end() const { return p_; }

 private:
  char* p_;
};

}  // namespace

bool encode_plain_result(const delivery_result& r, std::string& out) {
  const std::string_view error_message = r.error ? std::string_view(r.error->message) : std::string_view();
  const std::string_view strings[] = {r.id, r.provider, r.account, r.type, r.to,
                                      r.provider_message_id ? std::string_view(*r.provider_message_id) : "",
                                      r.provider_code ? std::string_view(*r.provider_code) : "",
                                      error_message, r.source.topic};
  constexpr std::size_t capacity = 4096;
  // The keys and punctuation (259 bytes with two more "null"s), the longest status and error kind
  // (26) and 7 numbers of up to 20 characters: at most 429.
  constexpr std::size_t fixed = 512;
  std::size_t total = fixed;
  for (const std::string_view s : strings) {
    total += s.size();
    if (total > capacity || !is_plain_json_text(s)) return false;
  }
  char buffer[capacity];
  plain_writer w(buffer);
  w.text(R"({"id":")").text(r.id);
  w.text(R"(","provider":")").text(r.provider);
  w.text(R"(","account":")").text(r.account);
  w.text(R"(","type":")").text(r.type);
  w.text(R"(","to":")").text(r.to);
  w.text(R"(","status":")").text(to_string(r.status));
  w.text(R"(","attempts":)").number(r.attempts);
  w.text(R"(,"provider_message_id":)").quoted_or_null(r.provider_message_id);
  w.text(R"(,"http_status":)").number_or_null(r.http_status);
  w.text(R"(,"provider_code":)").quoted_or_null(r.provider_code);
  w.text(R"(,"error":)");
  if (r.error) {
    w.text(R"({"kind":")").text(to_string(r.error->kind)).text(R"(","message":")").text(error_message).text(R"("})");
  } else {
    w.text("null");
  }
  w.text(R"(,"created_at":)").number_or_null(r.created_at_ms);
  w.text(R"(,"completed_at":)").number(r.completed_at_ms);
  w.text(R"(,"latency_ms":)").number_or_null(r.latency_ms);
  w.text(R"(,"source":{"topic":")").text(r.source.topic);
  w.text(R"(","partition":)").number(r.source.partition);
  w.text(R"(,"offset":)").number(r.source.offset).text("}}");
  out.append(buffer, static_cast<std::size_t>(w.end() - buffer));
  return true;
}

void encode_result(const delivery_result& r, std::string& out) {
  if (!encode_plain_result(r, out)) encode_result_escaping(r, out);
}

void encode_result_escaping(const delivery_result& r, std::string& out) {
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
