// gps: the GPS-watch app's voice chat upload, api/Files/NewVoiceUpload (seed 004).
#include <tuple>

#include "base64.hpp"
#include "build_support.hpp"
#include "builtin_providers.hpp"
#include "json_members.hpp"
#include "reply_classifier.hpp"
#include "sendq/core/json_writer.hpp"
#include "xml_text.hpp"

namespace sendq::providers::detail {
namespace {

constexpr std::string_view provider_name = "gps";
constexpr std::string_view upload_path = "/api/Files/NewVoiceUpload";
constexpr std::string_view amr_magic = "#!AMR";  // AMR-NB "#!AMR\n" and AMR-WB "#!AMR-WB\n"
// VoiceTime is written with a four-digit year: 1970-01-01 up to 9999-12-31.
constexpr std::int64_t max_epoch_ms = 253402300799999;

constexpr std::string_view xml_content_type = "application/xml; charset=utf-8";
// The root elements of seed 004's XML samples, namespaces included.
constexpr std::string_view voice_upload_open =
    "<VoiceUploadModel xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" "
    "xmlns=\"http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ParModel\">";
constexpr std::string_view voice_upload_close = "\n</VoiceUploadModel>";
constexpr std::string_view normal_result_namespace =
    "http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ResModel";

bool valid_chat_type(std::int64_t v) { return v == 1 || v == 2; }

// The request's values, in the order of seed 004's XML sample.
struct voice_upload {
  std::string_view app_id;
  std::string_view language;
  std::string_view token;
  std::int64_t chat_type = 0;
  std::string_view command;
  std::int64_t file_type = 0;
  std::string_view identity_id;
  std::int64_t seconds = 0;  // Long
  std::string_view serial_number;
  std::int64_t user_id = 0;
  std::string voice_time;
};

std::string json_body(const voice_upload& v) {
  std::string body;
  body.reserve(256 + v.command.size());
  core::json_writer w(body);
  w.begin_object()
      .field("SerialNumber", v.serial_number)
      .field("Long", v.seconds)
      .field("VoiceTime", v.voice_time)
      .field("Command", v.command)
      .field("IdentityID", v.identity_id)
      .field("UserId", v.user_id)
      .field("ChatType", v.chat_type)
      .field("FileType", v.file_type)
      .field("Token", v.token)
      .field("Language", v.language)
      .field("AppId", v.app_id)
      .end_object();
  return body;
}

// Seed 004's XML sample exactly: its root line, two-space indented children in its order.
// DataContractSerializer reads members in that order and skips any out of place.
std::string xml_body(const voice_upload& v) {
  std::string body;
  body.reserve(512 + v.command.size());
  body += voice_upload_open;
  auto element = [&body](std::string_view name, std::string_view value) {
    body.append("\n  <").append(name).append(">");
    append_xml_escaped(body, value);
    body.append("</").append(name).append(">");
  };
  element("AppId", v.app_id);
  element("Language", v.language);
  element("Token", v.token);
  element("ChatType", std::to_string(v.chat_type));
  element("Command", v.command);
  element("FileType", std::to_string(v.file_type));
  element("IdentityID", v.identity_id);
  element("Long", std::to_string(v.seconds));
  element("SerialNumber", v.serial_number);
  element("UserId", std::to_string(v.user_id));
  element("VoiceTime", v.voice_time);
  body += voice_upload_close;
  return body;
}

std::optional<core::failure> check_xml_text(std::string_view value, std::string_view field) {
  if (xml_representable(value)) return std::nullopt;
  return invalid_field(std::string(field) +
                       ": holds a control character, which XML 1.0 cannot carry (gps format xml)");
}

// Trims XML whitespace, as xs:int values allow around their digits.
std::string_view trim_xml_space(std::string_view s) noexcept {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// Meaning of a documented State (seed 004), "" for others.
std::string_view state_meaning(std::int64_t state) {
  switch (state) {
    case 1000: return "device does not exist";
    case 1100: return "IMEI is empty";
    case 8000: return "voice data is empty or too long";
  }
  return "";
}

// Bounds of the fetch policy's keys: a voice file of 64 MiB is already far past any AMR message, and
// a fetch is part of one delivery, which no one waits 10 minutes for.
constexpr std::int64_t max_fetch_bytes = 64 << 20;
constexpr std::int64_t max_fetch_timeout_ms = 600'000;

class gps_provider final : public provider {
 public:
  std::string_view name() const noexcept override { return provider_name; }

  std::vector<std::string_view> account_keys() const override {
    return {"token", "app_id", "language", "chat_type", "file_type", "format",
            // fetching body.url for Command (the worker's media_fetch policy)
            "fetch_allowed_hosts", "fetch_allow_private", "fetch_max_bytes", "fetch_timeout_ms"};
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
    // The fetch policy's keys (libs/delivery/media_fetch) are read there without checks: check them here,
    // where a wrong one stops start-up, instead of meaning "no limit" or a 0 ms timeout.
    if (const auto v = a.get("fetch_allow_private", "false"); v != "true" && v != "false") {
      return "account " + a.name + " of gps: key \"fetch_allow_private\" must be true or false, not " + quoted(v);
    }
    for (const auto& [key, unit, max] : {std::tuple<std::string_view, std::string_view, std::int64_t>{
                                             "fetch_max_bytes", "bytes", max_fetch_bytes},
                                         {"fetch_timeout_ms", "milliseconds", max_fetch_timeout_ms}}) {
      if (!a.settings.contains(key)) continue;
      const auto n = parse_int64(a.get(key));
      if (!n || *n < 1 || *n > max) {
        return "account " + a.name + " of gps: key " + quoted(key) + " must be an integer of " + std::string(unit) +
               " in 1.." + std::to_string(max) + ", not " + quoted(a.get(key));
      }
    }
    const auto format = a.get("format", "json");
    if (format != "json" && format != "xml") {
      return "account " + a.name + " of gps: key \"format\" must be json or xml, not " +
             quoted(format);
    }
    if (format == "xml") {
      // Token is a secret: name the key, never quote the value.
      for (std::string_view key : {"token", "app_id", "language"}) {
        if (!xml_representable(a.get(key))) {
          return "account " + a.name + " of gps: key " + quoted(key) +
                 " holds a control character, which XML 1.0 cannot carry (format xml)";
        }
      }
    }
    return std::nullopt;
  }

  bool dedupes_by_request_id() const noexcept override { return false; }
  bool inlines_media_from_url() const noexcept override { return true; }

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
          "body.data_base64: required by gps (Command carries the AMR file as base64, seed 004); "
          "to send body.url instead, allow its host in the account's fetch_allowed_hosts");
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

    const auto format = a.get("format", "json");
    const bool xml = format == "xml";
    if (!xml && format != "json") {
      return core::failure{core::error_kind::internal,
                           "account " + a.name + " of gps: format is neither json nor xml"};
    }
    if (xml) {
      if (auto f = check_xml_text(r.to, "to")) return *f;
      if (auto f = check_xml_text(r.id, "id")) return *f;
    }

    const voice_upload v{a.get("app_id"),     a.get("language", "zh-CN"),
                         a.get("token"),      chat_type,
                         *b.data_base64,      *file_type,
                         r.id,                ceil_s(*b.duration_ms),
                         r.to,                *user_id,
                         format_utc_iso8601(*r.created_at_ms)};
    if (!xml) return json_post(std::string(upload_path), json_body(v));
    return http_call{.method = "POST",
                     .path_and_query = std::string(upload_path),
                     .content_type = std::string(xml_content_type),
                     .headers = {},
                     .body = xml_body(v)};
  }

  reply_outcome classify(unsigned http_status, std::string_view content_type,
                         std::string_view body,
                         std::optional<std::chrono::milliseconds> retry_after) const override {
    if (auto o = classify_status(provider_name, http_status, body, retry_after)) {
      return std::move(*o);
    }
    // The account's format decides what we send, not what comes back: read either form.
    const auto start = body.find_first_not_of(" \t\r\n");
    const bool xml = body.starts_with("\xEF\xBB\xBF") ||
                     (start != std::string_view::npos && body[start] == '<');
    return xml ? classify_xml(content_type, body) : classify_json(content_type, body);
  }

 private:
  // {"Message": "...", "State": N} (seed 004, application/json).
  static reply_outcome classify_json(std::string_view content_type, std::string_view body) {
    thread_local json_members m;  // reused: its strings keep their storage (read_members)
    if (auto err = read_members(body, m)) return malformed_reply(provider_name, content_type, *err);
    if (auto err = expect_kind(m, "State", json_kind::number)) {
      return malformed_reply(provider_name, content_type, *err);
    }
    const std::string& state_text = find_member(m, "State")->text;
    const json_member* message = find_member(m, "Message");
    return outcome_of_state(
        content_type, state_text,
        message != nullptr && message->kind == json_kind::string ? message->text : std::string());
  }

  // <NormalResult xmlns:i=... xmlns="...ResModel"><State>N</State><Message>...</Message>
  // </NormalResult> (seed 004, application/xml).
  static reply_outcome classify_xml(std::string_view content_type, std::string_view body) {
    flat_xml doc;
    if (auto err = read_flat_xml(body, doc)) {
      return malformed_reply(provider_name, content_type, "not well-formed NormalResult XML: " + *err);
    }
    if (doc.root != "NormalResult") {
      return malformed_reply(provider_name, content_type,
                             "root element <" + excerpt(doc.root, 64) + ">, not <NormalResult>");
    }
    const std::string* ns = doc.attribute("xmlns");
    if (ns == nullptr || *ns != normal_result_namespace) {
      return malformed_reply(provider_name, content_type,
                             "NormalResult is not in namespace " + std::string(normal_result_namespace));
    }
    const xml_child* state = nullptr;
    const xml_child* message = nullptr;
    for (const auto& child : doc.children) {
      const xml_child** slot = child.name == "State"     ? &state
                               : child.name == "Message" ? &message
                                                         : nullptr;
      if (slot == nullptr) continue;  // members added later are no business of ours
      if (*slot != nullptr) {
        return malformed_reply(provider_name, content_type, "duplicate <" + child.name + ">");
      }
      *slot = &child;
    }
    if (state == nullptr || state->nil) {
      return malformed_reply(provider_name, content_type, "missing <State>");
    }
    return outcome_of_state(content_type, std::string(trim_xml_space(state->text)),
                            message != nullptr && !message->nil ? message->text : std::string());
  }

  // State 0 is delivered; every other State is a permanent business error (seed 004).
  static reply_outcome outcome_of_state(std::string_view content_type, const std::string& state_text,
                                        const std::string& message) {
    const auto state = parse_int64(state_text);
    if (!state) {
      return malformed_reply(provider_name, content_type,
                             "\"State\" is not an integer (" + excerpt(state_text, 64) + ")");
    }
    // The reply carries no id of its own: the provider keeps our IdentityID (the request id).
    if (*state == 0) return delivered("", state_text);
    std::string text = "gps State " + state_text;
    if (auto meaning = state_meaning(*state); !meaning.empty()) {
      text.append(" (").append(meaning).append(")");
    }
    if (!message.empty()) text += ": " + message;
    return business_error(state_text, std::move(text));
  }
};

}  // namespace

std::unique_ptr<provider> make_gps_provider() { return std::make_unique<gps_provider>(); }

}  // namespace sendq::providers::detail
