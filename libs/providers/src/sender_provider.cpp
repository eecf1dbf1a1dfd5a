// sender: "Get 消息发送中心" handleBasicMessage (seeds 000 voice, 001 video; docs/providers.md).
#include "build_support.hpp"
#include "builtin_providers.hpp"
#include "json_members.hpp"
#include "reply_classifier.hpp"
#include "sender_signer.hpp"
#include "sendq/core/json_writer.hpp"

namespace sendq::providers::detail {
namespace {

constexpr std::string_view provider_name = "sender";
constexpr std::int64_t max_voice_bytes = 2 * 1024 * 1024;   // fileLength < 2 MB (seed 000)
constexpr std::int64_t max_voice_seconds = 60;               // duration <= 60 s (seed 000)
constexpr std::int64_t max_video_bytes = 10 * 1024 * 1024;  // fileLength < 10 MB (seed 001)
constexpr std::int64_t max_thumb_bytes = 64 * 1024;         // thumbFileLength <= 64 KB (seed 001)

// True when the raw body text is a JSON object (the decoder guarantees it; this guards
// requests built by hand).
bool is_object_text(std::string_view json) {
  const auto start = json.find_first_not_of(" \t\r\n");
  return start != std::string_view::npos && json[start] == '{';
}

std::optional<core::failure> require_from(const core::send_request& r, std::string_view seed) {
  if (!r.from.empty()) return std::nullopt;
  return invalid_field("from: required by sender (seed " + std::string(seed) + ": from 可为空 否)");
}

std::optional<core::failure> check_size(const std::optional<std::int64_t>& size,
                                        std::string_view field) {
  if (size && *size < 0) {
    return invalid_field(std::string(field) + ": " + std::to_string(*size) + " is negative");
  }
  return std::nullopt;
}

// messageInfo of a voice message (seed 000), or the failure naming the field.
std::optional<core::failure> voice_info(const core::send_request& r, std::string& info) {
  const auto& b = r.body;
  if (!b.name || b.name->empty()) {
    return invalid_field(
        "body.name: required by sender voice (audioMessage, the file's name; seed 000: 可为空 否)");
  }
  if (!b.format) return invalid_field("body.format: required (sender voice takes mp3, seed 000)");
  if (*b.format != "mp3") {
    return invalid_field("body.format: " + quoted(*b.format) +
                         " is not taken by sender voice, which takes mp3 (seed 000)");
  }
  if (auto f = check_size(b.size, "body.size")) return f;
  if (b.size && *b.size >= max_voice_bytes) {
    return too_large("body.size: " + std::to_string(*b.size) +
                     " bytes is over sender's voice limit (fileLength < 2 MB = 2097152 bytes, "
                     "seed 000)");
  }
  if (auto f = check_duration(b.duration_ms, "sender voice (duration, seed 000)")) return f;
  if (ceil_s(*b.duration_ms) > max_voice_seconds) {
    return invalid_field("body.duration_ms: " + std::to_string(*b.duration_ms) +
                         " ms is over sender's 60 s voice limit (seed 000)");
  }
  core::json_writer w(info);
  w.begin_object().field("audioMessage", *b.name);
  if (b.url) w.field("fileUrl", *b.url);
  if (b.size) w.field("fileLength", *b.size);
  w.field("duration", ceil_s(*b.duration_ms));
  w.end_object();
  return std::nullopt;
}

// messageInfo of a video message (seed 001).
std::optional<core::failure> video_info(const core::send_request& r, std::string& info) {
  const auto& b = r.body;
  if (!b.name || b.name->empty()) {
    return invalid_field(
        "body.name: required by sender video (videoMessage, the file's name; seed 001: 可为空 否)");
  }
  if (auto f = check_size(b.size, "body.size")) return f;
  if (b.size && *b.size >= max_video_bytes) {
    return too_large("body.size: " + std::to_string(*b.size) +
                     " bytes is over sender's video limit (fileLength < 10 MB = 10485760 bytes, "
                     "seed 001)");
  }
  if (auto f = check_size(b.thumb_size, "body.thumb_size")) return f;
  if (b.thumb_size && *b.thumb_size > max_thumb_bytes) {
    return too_large("body.thumb_size: " + std::to_string(*b.thumb_size) +
                     " bytes is over sender's thumbnail limit (thumbFileLength <= 64 KB = 65536 "
                     "bytes, seed 001)");
  }
  if (b.duration_ms) {
    if (auto f = check_duration(b.duration_ms, "sender video")) return f;
  }
  // imageWidth and imageHeight are Java Integers (seed 001): past 2^31-1 the provider refuses the
  // body, or wraps the value.
  for (const auto& [value, field] : {std::pair{b.width, "body.width"}, std::pair{b.height, "body.height"}}) {
    if (value && *value > 2147483647) {
      return invalid_field(std::string(field) + ": " + std::to_string(*value) +
                           " is over 2147483647, the most sender takes (imageWidth/imageHeight are Integer, seed 001)");
    }
  }
  core::json_writer w(info);
  w.begin_object().field("videoMessage", *b.name);
  if (b.thumb_name) w.field("thumbMessage", *b.thumb_name);
  if (b.title) w.field("title", *b.title);
  if (b.description) w.field("description", *b.description);
  if (b.url) w.field("fileUrl", *b.url);
  if (b.size) w.field("fileLength", *b.size);
  if (b.duration_ms) w.field("duration", ceil_s(*b.duration_ms));
  if (b.thumb_url) w.field("thumbFileUrl", *b.thumb_url);
  if (b.thumb_size) w.field("thumbFileLength", *b.thumb_size);
  if (b.width) w.field("imageWidth", *b.width);
  if (b.height) w.field("imageHeight", *b.height);
  w.end_object();
  return std::nullopt;
}

// How an account signs its calls, or a message naming the key that is wrong. Never quotes the
// values of "sign" or "sign_secret": they are secrets.
struct signing {
  std::optional<sign_algorithm> algorithm;
  std::string error;
};

signing signing_of(const account& a) {
  // Called for every sender request: the message's prefix is built only when there is an error.
  const auto refused = [&a](const std::string& why) {
    return signing{std::nullopt, "account " + a.name + " of sender: " + why};
  };
  const bool has_sign = !a.get("sign").empty();
  const bool has_secret = !a.get("sign_secret").empty();
  const bool has_algorithm = a.settings.contains("sign_algorithm");
  const std::string_view name = a.get("sign_algorithm", has_secret ? "" : "static");
  const auto algorithm = parse_sign_algorithm(name);
  if (has_algorithm && !algorithm) {
    return refused(
        "key \"sign_algorithm\" must be static, md5_sorted or "
        "hmac_sha256_sorted, not " +
        quoted(name));
  }
  if (has_sign && has_secret) {
    return refused(
        "keys \"sign\" and \"sign_secret\" exclude each other: set "
        "\"sign\" for a fixed sign, or \"sign_secret\" and "
        "\"sign_algorithm\" to compute it for every call");
  }
  if (has_secret) {
    if (!algorithm || *algorithm == sign_algorithm::fixed) {
      return refused(
          "key \"sign_secret\" needs \"sign_algorithm\" md5_sorted or "
          "hmac_sha256_sorted");
    }
    return {algorithm, {}};
  }
  if (!has_sign && *algorithm != sign_algorithm::fixed) {
    return refused("key \"sign_secret\" is required by sign_algorithm " + std::string(name));
  }
  if (!has_sign) {
    return refused(
        "key \"sign\" is required (or \"sign_secret\" with "
        "\"sign_algorithm\" md5_sorted or hmac_sha256_sorted)");
  }
  if (*algorithm != sign_algorithm::fixed) {
    return refused("key \"sign_algorithm\" " + std::string(name) +
                   " computes the sign from \"sign_secret\", which is not set "
                   "(\"sign\" goes with sign_algorithm static)");
  }
  return {algorithm, {}};
}

class sender_provider final : public provider {
 public:
  std::string_view name() const noexcept override { return provider_name; }

  std::vector<std::string_view> account_keys() const override {
    return {"api_version", "client", "channel", "version", "sign", "sign_secret", "sign_algorithm"};
  }

  std::optional<std::string> check_account(const account& a) const override {
    if (auto err = check_account_keys(a, provider_name, account_keys(),
                                      {"api_version", "client", "channel", "version"})) {
      return err;
    }
    if (auto s = signing_of(a); !s.algorithm) return std::move(s.error);
    return std::nullopt;
  }

  // The sender API deduplicates by getMessageId, which is our request id.
  bool dedupes_by_request_id() const noexcept override { return true; }

  std::variant<http_call, core::failure> build(const core::send_request& r,
                                               const account& a) const override {
    json_members fields;
    if (auto f = read_provider_fields(provider_name, r.provider_fields_json, {}, fields)) {
      return *f;
    }
    if (!is_object_text(r.body_json)) return invalid_field("body: must be a JSON object");
    // The endpoint takes no message without a sender, whatever its type (seed 000's field table).
    if (auto f = require_from(r, r.type == core::message_type::video ? "001" : "000")) return *f;

    int message_type = 0;
    std::string info;  // messageInfo, JSON text
    switch (r.type) {
      case core::message_type::text:
        if (!r.body.text || r.body.text->empty()) {
          return invalid_field("body.text: required, a non-empty string");
        }
        message_type = 1;
        info = r.body_json;
        break;
      case core::message_type::image:
        message_type = 2;
        info = r.body_json;
        break;
      case core::message_type::voice:
        message_type = 3;
        if (auto f = voice_info(r, info)) return *f;
        break;
      case core::message_type::video:
        message_type = 4;
        if (auto f = video_info(r, info)) return *f;
        break;
      case core::message_type::location:
        if (!r.body.lat) return invalid_field("body.lat: required, a number");
        if (!r.body.lng) return invalid_field("body.lng: required, a number");
        message_type = 5;
        info = r.body_json;
        break;
      case core::message_type::link:
        message_type = 7;  // 图文 (news)
        info = r.body_json;
        break;
      case core::message_type::custom:
        message_type = 8;  // 自定义图文 (custom news)
        info = r.body_json;
        break;
      case core::message_type::template_:
        message_type = 9;
        info = r.body_json;
        break;
      case core::message_type::file:
        message_type = 10;  // 扩展 (ext)
        info = r.body_json;
        break;
    }

    std::string body;
    body.reserve(128 + info.size() + r.ext_json.size());
    core::json_writer w(body);
    w.begin_object()
        .field("messageType", message_type)
        .field("from", r.from)
        .field("to", r.to)
        .key("messageInfo")
        .raw(info);
    // ext is passed through byte for byte, template and expandMsg maps included.
    if (!r.ext_json.empty()) w.key("ext").raw(r.ext_json);
    w.field("getMessageId", r.id).end_object();

    // check_account has vetted the signing keys; these failures guard hand-built accounts.
    const signing how = signing_of(a);
    if (!how.algorithm) return core::failure{core::error_kind::internal, how.error};
    const sign_query q{a.get("api_version"), a.get("client"), a.get("channel"), a.get("version")};
    std::string sign;
    if (*how.algorithm == sign_algorithm::fixed) {
      sign = a.get("sign");
    } else if (auto computed = compute_sign(*how.algorithm, q, body, a.get("sign_secret"))) {
      sign = std::move(*computed);
    } else {
      return core::failure{core::error_kind::internal,
                           "account " + a.name + " of sender: OpenSSL could not compute the " +
                               std::string(a.get("sign_algorithm")) + " sign"};
    }

    std::string target = "/sender/v1/handleBasicMessage?apiVersion=";
    append_percent_encoded(target, q.api_version);
    target += "&client=";
    append_percent_encoded(target, q.client);
    target += "&channel=";
    append_percent_encoded(target, q.channel);
    target += "&version=";
    append_percent_encoded(target, q.version);
    target += "&sign=";
    append_percent_encoded(target, sign);
    return json_post(std::move(target), std::move(body));
  }

  reply_outcome classify(unsigned http_status, std::string_view content_type,
                         std::string_view body,
                         std::optional<std::chrono::milliseconds> retry_after) const override {
    // Easemob (behind this API) throttles with 403 "send reach limit": slow down and retry.
    if (http_status == 403 && body.find("reach limit") != std::string_view::npos) {
      reply_outcome o;
      o.cls = outcome_class::retryable;
      o.kind = core::error_kind::http_4xx;
      o.throttled = true;
      o.retry_after = retry_after;
      o.message = "sender answered HTTP 403 send reach limit (throttled; retryable)";
      return o;
    }
    if (auto o = classify_status(provider_name, http_status, body, retry_after)) return std::move(*o);
    thread_local json_members m;  // reused: its strings keep their storage (read_members)
    if (auto err = read_members(body, m, "data")) {
      return malformed_reply(provider_name, content_type, *err);
    }
    if (auto err = expect_kind(m, "code", json_kind::number)) {
      return malformed_reply(provider_name, content_type, *err);
    }
    const std::string& code_text = find_member(m, "code")->text;
    const auto code = parse_int64(code_text);
    if (!code) {
      return malformed_reply(provider_name, content_type,
                             "\"code\" is not an integer (" + code_text + ")");
    }
    if (*code != 200) {
      const json_member* message = find_member(m, "message");
      std::string text = "sender code " + code_text;
      if (message != nullptr && message->kind == json_kind::string) text += ": " + message->text;
      return business_error(code_text, std::move(text));
    }
    // getMessageId is our own id sent back: a code 200 without it is still a success, known by
    // the id we sent (the empty id tells the pipeline so).
    if (expect_kind(m, "data.getMessageId", json_kind::string, json_kind::number)) return delivered("", code_text);
    return delivered(find_member(m, "data.getMessageId")->text, code_text);
  }
};

}  // namespace

std::unique_ptr<provider> make_sender_provider() { return std::make_unique<sender_provider>(); }

}  // namespace sendq::providers::detail
