// gewe: GeWe WeChat API, /message/post* (seed 002 postVoice; the same family for the others).
#include <charconv>

#include "build_support.hpp"
#include "builtin_providers.hpp"
#include "json_members.hpp"
#include "reply_classifier.hpp"
#include "sendq/core/json_writer.hpp"

namespace sendq::providers::detail {
namespace {

constexpr std::string_view provider_name = "gewe";
constexpr std::string_view supported = "text, image, voice, video, file, link";

std::optional<core::failure> require_string(const std::optional<std::string>& v,
                                            std::string_view field, std::string_view why) {
  if (v && !v->empty()) return std::nullopt;
  return invalid_field(std::string(field) + ": required by gewe " + std::string(why));
}

class gewe_provider final : public provider {
 public:
  std::string_view name() const noexcept override { return provider_name; }

  std::vector<std::string_view> account_keys() const override { return {"token", "app_id"}; }

  std::optional<std::string> check_account(const account& a) const override {
    return check_account_keys(a, provider_name, account_keys(), {"token", "app_id"});
  }

  bool dedupes_by_request_id() const noexcept override { return false; }

  std::variant<http_call, core::failure> build(const core::send_request& r,
                                               const account& a) const override {
    json_members fields;
    if (auto f = read_provider_fields(provider_name, r.provider_fields_json, {"ats"}, fields)) {
      return *f;
    }
    // Only postText has ats (CONTRACT.md): on another type it would be dropped without a word.
    if (r.type != core::message_type::text && find_member(fields, "ats")) {
      return invalid_field("provider_fields.ats: only for type text (postText's ats), not " +
                           std::string(core::to_string(r.type)));
    }
    const auto& b = r.body;
    std::string body;
    body.reserve(256);
    core::json_writer w(body);
    w.begin_object().field("appId", a.get("app_id")).field("toWxid", r.to);
    std::string_view path;
    switch (r.type) {
      case core::message_type::text: {
        if (!b.text || b.text->empty()) {
          return invalid_field("body.text: required, a non-empty string (gewe postText content)");
        }
        path = "/message/postText";
        w.field("content", *b.text);
        if (const json_member* ats = find_member(fields, "ats")) {
          if (ats->kind != json_kind::string) {
            return invalid_field("provider_fields.ats: must be a string of wxids separated by "
                                 "commas, not " + std::string(describe(ats->kind)));
          }
          w.field("ats", ats->text);
        }
        break;
      }
      case core::message_type::image:
        if (auto f = require_string(b.url, "body.url", "image (postImage imgUrl)")) return *f;
        path = "/message/postImage";
        w.field("imgUrl", *b.url);
        break;
      case core::message_type::voice:
        if (auto f = require_string(b.url, "body.url", "voice (postVoice voiceUrl, seed 002)")) {
          return *f;
        }
        if (!b.format) {
          return invalid_field("body.format: required (gewe voice takes silk only, seed 002)");
        }
        if (*b.format != "silk") {
          return invalid_field("body.format: " + quoted(*b.format) +
                               " is not taken by gewe voice, which takes silk only (seed 002)");
        }
        if (auto f = check_duration(b.duration_ms, "gewe voice (voiceDuration, seed 002)")) {
          return *f;
        }
        path = "/message/postVoice";
        w.field("voiceUrl", *b.url).field("voiceDuration", *b.duration_ms);  // milliseconds
        break;
      case core::message_type::video:
        if (auto f = require_string(b.url, "body.url", "video (postVideo videoUrl)")) return *f;
        if (auto f = require_string(b.thumb_url, "body.thumb_url", "video (postVideo thumbUrl)")) {
          return *f;
        }
        if (auto f = check_duration(b.duration_ms, "gewe video (postVideo videoDuration)")) {
          return *f;
        }
        path = "/message/postVideo";
        // postVideo wants seconds, unlike postVoice.
        w.field("videoUrl", *b.url)
            .field("thumbUrl", *b.thumb_url)
            .field("videoDuration", ceil_s(*b.duration_ms));
        break;
      case core::message_type::file:
        if (auto f = require_string(b.url, "body.url", "file (postFile fileUrl)")) return *f;
        if (auto f = require_string(b.name, "body.name", "file (postFile fileName)")) return *f;
        path = "/message/postFile";
        w.field("fileUrl", *b.url).field("fileName", *b.name);
        break;
      case core::message_type::link: {
        // A link body is passed through by the decoder: read its members here.
        json_members link;
        if (auto err = read_members(r.body_json, link)) return invalid_field("body: " + *err);
        for (std::string_view member : {"title", "desc", "linkUrl", "thumbUrl"}) {
          const json_member* m = find_member(link, member);
          if (m == nullptr || m->kind != json_kind::string) {
            return invalid_field("body." + std::string(member) +
                                 ": required by gewe link (postLink), a string");
          }
        }
        path = "/message/postLink";
        for (std::string_view member : {"title", "desc", "linkUrl", "thumbUrl"}) {
          w.field(member, find_member(link, member)->text);
        }
        break;
      }
      case core::message_type::location:
      case core::message_type::template_:
      case core::message_type::custom:
        return unsupported_type(provider_name, r.type, supported);
    }
    w.end_object();
    http_call call = json_post(std::string(path), std::move(body));
    call.headers.emplace_back("X-GEWE-TOKEN", std::string(a.get("token")));
    return call;
  }

  reply_outcome classify(unsigned http_status, std::string_view content_type,
                         std::string_view body,
                         std::optional<std::chrono::milliseconds> retry_after) const override {
    if (auto o = classify_status(provider_name, http_status, body, retry_after)) {
      return std::move(*o);
    }
    thread_local json_members m;  // reused: its strings keep their storage (read_members)
    if (auto err = read_members(body, m, "data")) {
      return malformed_reply(provider_name, content_type, *err);
    }
    if (auto err = expect_kind(m, "ret", json_kind::number)) {
      return malformed_reply(provider_name, content_type, *err);
    }
    const std::string& ret_text = find_member(m, "ret")->text;
    const auto ret = parse_int64(ret_text);
    if (!ret) {
      return malformed_reply(provider_name, content_type,
                             "\"ret\" is not an integer (" + ret_text + ")");
    }
    // GeWe answers errors with HTTP 200 too: ret decides.
    if (*ret != 200) {
      const json_member* msg = find_member(m, "msg");
      std::string text = "gewe ret " + ret_text;
      if (msg != nullptr && msg->kind == json_kind::string) text += ": " + msg->text;
      return business_error(ret_text, std::move(text));
    }
    // newMsgId is larger than 2^53: its token text is kept as is, never read as a double.
    const json_member* id = find_member(m, "data.newMsgId");
    if (id == nullptr) return delivered_without_id(ret_text, "gewe ret 200 without \"data.newMsgId\"");
    // A 64-bit integer (seed 002: "integer"; negative too, as a Java Long may be), or the same
    // digits as a string.
    const std::string_view digits = std::string_view(id->text).substr(id->text.starts_with('-') ? 1 : 0);
    const bool digits_only = !digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos;
    std::uint64_t as_unsigned = 0;
    std::int64_t as_signed = 0;
    const char* first = id->text.data();
    const char* last = first + id->text.size();
    const bool string_fits = id->kind == json_kind::string &&
                             (id->text.starts_with('-') ? std::from_chars(first, last, as_signed).ec == std::errc{}
                                                        : std::from_chars(first, last, as_unsigned).ec == std::errc{});
    const bool usable =
        digits_only && ((id->kind == json_kind::number && id->integer) || string_fits);
    if (!usable) {
      return delivered_without_id(ret_text, "gewe ret 200 but \"data.newMsgId\" is not a 64-bit integer (" +
                                                (id->text.empty() ? std::string(describe(id->kind)) : excerpt(id->text, 40)) +
                                                ")");
    }
    return delivered(id->text, ret_text);
  }
};

}  // namespace

std::unique_ptr<provider> make_gewe_provider() { return std::make_unique<gewe_provider>(); }

}  // namespace sendq::providers::detail
