// gps: the GPS-watch app's voice chat upload, api/Files/NewVoiceUpload (seed 004).
#include "base64.hpp"
#include "build_support.hpp"
#include "builtin_providers.hpp"
#include "json_members.hpp"
#include "reply_classifier.hpp"
#include "sendq/core/json_writer.hpp"

namespace sendq::providers::detail {
namespace {

constexpr std::string_view provider_name = "gps";
constexpr std::string_view amr_magic = "#!AMR";  // AMR-NB "#!AMR\n" and AMR-WB "#!AMR-WB\n"
// VoiceTime is written with a four-digit year: 1970-01-01 up to 9999-12-31.
constexpr std::int64_t max_epoch_ms = 253402300799999;

bool valid_chat_type(std::int64_t v) { return v == 1 || v == 2; }

// Meaning of a documented State (seed 004), "" for others.
std::string_view state_meaning(std::int64_t state) {
  switch (state) {
    case 1000: return "device does not exist";
    case 1100: return "IMEI is empty";
    case 8000: return "voice data is empty or too long";
  }
  return "";
}

class gps_provider final : public provider {
 public:
  std::string_view name() const noexcept override { return provider_name; }

  std::vector<std::string_view> account_keys() const override {
    return {"token", "app_id", "language", "chat_type", "file_type"};
  }

  std::optional<std::string> check_account(const account& a) const override {
    if (auto err = check_account_keys(a, provider_name, account_keys(), {"token", "app_id"})) {
      return err;
    }
    const auto chat_type = parse_int64(a.get("chat_type", "1"));
    if (!chat_type || !valid_chat_type(*chat_type)) {
      return "account " + a.name + " of gps: key \"chat_type\" must be 1 (single) or 2 (group), not " +
             quoted(a.get("chat_type"));
    }
    if (!parse_int64(a.get("file_type", "1"))) {
      return "account " + a.name + " of gps: key \"file_type\" must be an integer, not " +
             quoted(a.get("file_type"));
    }
    if (a.get("language", "zh-CN").empty()) {
      return "account " + a.name + " of gps: key \"language\" must not be empty";
    }
    return std::nullopt;
  }

  bool dedupes_by_request_id() const noexcept override { return false; }

  std::variant<http_call, core::failure> build(const core::send_request& r,
                                               const account& a) const override {
    json_members fields;
    if (auto f = read_provider_fields(provider_name, r.provider_fields_json, {"chat_type"}, fields)) {
      return *f;
    }
    switch (r.type) {
      case core::message_type::voice:
        break;
      case core::message_type::text:
      case core::message_type::image:
      case core::message_type::video:
      case core::message_type::location:
      case core::message_type::file:
      case core::message_type::link:
      case core::message_type::template_:
      case core::message_type::custom:
        return unsupported_type(provider_name, r.type, "voice only");
    }
    const auto& b = r.body;
    const auto user_id = parse_int64(r.from);
    if (!user_id) {
      return invalid_field("from: " + quoted(r.from) + " is not an integer (gps UserId, seed 004)");
    }
    if (!b.format) return invalid_field("body.format: required (gps takes amr, seed 004)");
    if (*b.format != "amr") {
      return invalid_field("body.format: " + quoted(*b.format) +
                           " is not taken by gps, which takes amr (seed 004)");
    }
    if (!b.data_base64) {
      return invalid_field(
          "body.data_base64: required by gps (Command carries the AMR file as base64, seed 004)");
    }
    if (auto err = base64_validate(*b.data_base64)) {
      return invalid_field("body.data_base64: not valid base64: " + *err);
    }
    const auto head = base64_decode_prefix(*b.data_base64, amr_magic.size());
    if (!head || *head != amr_magic) {
      return invalid_field("body.data_base64: does not decode to an AMR file (it must start "
                           "with \"#!AMR\")");
    }
    if (auto f = check_duration(b.duration_ms, "gps (Long, seed 004)")) return *f;
    // The worker fills created_at from the Kafka timestamp; this guards hand-built requests.
    if (!r.created_at_ms) return invalid_field("created_at: required by gps (VoiceTime, seed 004)");
    if (*r.created_at_ms < 0 || *r.created_at_ms > max_epoch_ms) {
      return invalid_field("created_at: " + std::to_string(*r.created_at_ms) +
                           " is outside years 1970 to 9999 (gps VoiceTime)");
    }

    std::int64_t chat_type = 1;
    if (const json_member* m = find_member(fields, "chat_type")) {
      const auto v =
          m->kind == json_kind::number ? parse_int64(m->text) : std::optional<std::int64_t>{};
      if (!v || !valid_chat_type(*v)) {
        return invalid_field("provider_fields.chat_type: must be 1 (single) or 2 (group), not " +
                             (m->kind == json_kind::number ? m->text
                                                           : std::string(describe(m->kind))));
      }
      chat_type = *v;
    } else if (const auto v = parse_int64(a.get("chat_type", "1"))) {
      chat_type = *v;
    } else {
      return core::failure{core::error_kind::internal,
                           "account " + a.name + " of gps: chat_type is not an integer"};
    }
    const auto file_type = parse_int64(a.get("file_type", "1"));
    if (!file_type) {
      return core::failure{core::error_kind::internal,
                           "account " + a.name + " of gps: file_type is not an integer"};
    }

    std::string body;
    body.reserve(256 + b.data_base64->size());
    core::json_writer w(body);
    w.begin_object()
        .field("SerialNumber", r.to)
        .field("Long", ceil_s(*b.duration_ms))
        .field("VoiceTime", format_utc_iso8601(*r.created_at_ms))
        .field("Command", *b.data_base64)
        .field("IdentityID", r.id)
        .field("UserId", *user_id)
        .field("ChatType", chat_type)
        .field("FileType", *file_type)
        .field("Token", a.get("token"))
        .field("Language", a.get("language", "zh-CN"))
        .field("AppId", a.get("app_id"))
        .end_object();
    return json_post("/api/Files/NewVoiceUpload", std::move(body));
  }

  reply_outcome classify(unsigned http_status, std::string_view content_type,
                         std::string_view body,
                         std::optional<std::chrono::milliseconds> retry_after) const override {
    if (auto o = classify_status(provider_name, http_status, body, retry_after)) {
      return std::move(*o);
    }
    json_members m;
    if (auto err = read_members(body, m)) return malformed_reply(provider_name, content_type, *err);
    if (auto err = expect_kind(m, "State", json_kind::number)) {
      return malformed_reply(provider_name, content_type, *err);
    }
    const std::string& state_text = find_member(m, "State")->text;
    const auto state = parse_int64(state_text);
    if (!state) {
      return malformed_reply(provider_name, content_type,
                             "\"State\" is not an integer (" + state_text + ")");
    }
    // The reply carries no id of its own: the provider keeps our IdentityID (the request id).
    if (*state == 0) return delivered("", state_text);
    std::string text = "gps State " + state_text;
    if (auto meaning = state_meaning(*state); !meaning.empty()) {
      text.append(" (").append(meaning).append(")");
    }
    const json_member* message = find_member(m, "Message");
    if (message != nullptr && message->kind == json_kind::string && !message->text.empty()) {
      text += ": " + message->text;
    }
    return business_error(state_text, std::move(text));
  }
};

}  // namespace

std::unique_ptr<provider> make_gps_provider() { return std::make_unique<gps_provider>(); }

}  // namespace sendq::providers::detail
