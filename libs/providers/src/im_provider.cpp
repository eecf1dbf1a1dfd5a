// im: the customer-service IM /api/im/sendMsg (seed 003).
#include <array>

#include "build_support.hpp"
#include "builtin_providers.hpp"
#include "json_members.hpp"
#include "reply_classifier.hpp"
#include "sendq/core/json_writer.hpp"

namespace sendq::providers::detail {
namespace {

constexpr std::string_view provider_name = "im";

// The members that come from provider_fields or else the account, with their defaults.
struct defaulted_member {
  std::string_view name;
  std::string_view fallback;
};
constexpr std::array<defaulted_member, 7> defaulted{{
    {"fromarea", ""},
    {"fromrole", "MEMBER"},
    {"f_nickname", ""},
    {"f_avatar", ""},
    {"t_nickname", ""},
    {"t_avatar", ""},
    {"channel", "PC"},
}};

bool valid_role(std::string_view v) { return v == "MEMBER" || v == "SALER"; }
bool valid_channel(std::string_view v) { return v == "PC" || v == "WX"; }

class im_provider final : public provider {
 public:
  std::string_view name() const noexcept override { return provider_name; }

  std::vector<std::string_view> account_keys() const override {
    std::vector<std::string_view> keys{"appid"};
    for (const auto& d : defaulted) keys.push_back(d.name);
    return keys;
  }

  std::optional<std::string> check_account(const account& a) const override {
    if (auto err = check_account_keys(a, provider_name, account_keys(), {"appid"})) return err;
    if (!valid_role(a.get("fromrole", "MEMBER"))) {
      return "account " + a.name + " of im: key \"fromrole\" must be MEMBER or SALER, not " +
             quoted(a.get("fromrole"));
    }
    if (!valid_channel(a.get("channel", "PC"))) {
      return "account " + a.name + " of im: key \"channel\" must be PC or WX, not " +
             quoted(a.get("channel"));
    }
    return std::nullopt;
  }

  bool dedupes_by_request_id() const noexcept override { return false; }

  std::variant<http_call, core::failure> build(const core::send_request& r,
                                               const account& a) const override {
    json_members fields;
    if (auto f = read_provider_fields(provider_name, r.provider_fields_json,
                                      {"fromarea", "fromrole", "f_nickname", "f_avatar",
                                       "t_nickname", "t_avatar", "channel"},
                                      fields)) {
      return *f;
    }
    for (const auto& m : fields) {
      if (m.kind != json_kind::string) {
        return invalid_field("provider_fields." + m.name + ": must be a string, not " +
                             std::string(describe(m.kind)));
      }
    }
    if (r.from.empty()) return invalid_field("from: required by im (the sender's user id)");

    std::string_view type;
    const std::string* content = nullptr;
    switch (r.type) {
      case core::message_type::text:
        if (!r.body.text || r.body.text->empty()) {
          return invalid_field("body.text: required, a non-empty string");
        }
        type = "TEXT";
        content = &*r.body.text;
        break;
      case core::message_type::image:
      case core::message_type::voice:
        if (!r.body.url || r.body.url->empty()) {
          return invalid_field("body.url: required by im " +
                               std::string(core::to_string(r.type)) + " (sent as content)");
        }
        type = r.type == core::message_type::image ? "IMAGE" : "VOICE";
        content = &*r.body.url;
        break;
      case core::message_type::video:
      case core::message_type::location:
      case core::message_type::file:
      case core::message_type::link:
      case core::message_type::template_:
      case core::message_type::custom:
        return unsupported_type(provider_name, r.type, "text, image, voice");
    }

    // provider_fields first, then the account, then the documented default.
    std::array<std::string_view, defaulted.size()> values{};
    for (std::size_t i = 0; i < defaulted.size(); ++i) {
      const json_member* m = find_member(fields, defaulted[i].name);
      values[i] = m != nullptr ? std::string_view(m->text)
                               : a.get(defaulted[i].name, defaulted[i].fallback);
    }
    const auto source = [&](std::string_view member) {
      return find_member(fields, member) != nullptr ? "provider_fields." : "account key ";
    };
    if (!valid_role(values[1])) {
      return invalid_field(std::string(source("fromrole")) + "fromrole: " + quoted(values[1]) +
                           " is not MEMBER or SALER (seed 003)");
    }
    if (!valid_channel(values[6])) {
      return invalid_field(std::string(source("channel")) + "channel: " + quoted(values[6]) +
                           " is not PC or WX (seed 003)");
    }

    std::string body;
    body.reserve(256 + content->size());
    core::json_writer w(body);
    w.begin_object()
        .field("appid", a.get("appid"))
        .field("from", r.from)
        .field("fromarea", values[0])
        .field("fromrole", values[1])
        .field("f_nickname", values[2])
        .field("f_avatar", values[3])
        .field("to", r.to)
        .field("t_nickname", values[4])
        .field("t_avatar", values[5])
        .field("content", *content)
        .field("type", type)
        .field("channel", values[6])
        .end_object();
    return json_post("/api/im/sendMsg", std::move(body));
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
    // The document's table says String, its example a boolean: take either spelling.
    const json_member* success = find_member(m, "success");
    if (success == nullptr) return malformed_reply(provider_name, content_type, "missing \"success\"");
    const bool typed = success->kind == json_kind::boolean || success->kind == json_kind::string;
    if (!typed || (success->text != "true" && success->text != "false")) {
      return malformed_reply(provider_name, content_type,
                             "\"success\" is " + std::string(describe(success->kind)) +
                                 ", not true or false");
    }
    if (success->text == "false") {
      return business_error("false", "im success false: " + excerpt(body));
    }
    // success decides (CONTRACT.md); without its _id the message is still delivered.
    if (auto err = expect_kind(m, "data._id", json_kind::string)) {
      return delivered_without_id("true", "im success true but " + *err);
    }
    const std::string& id = find_member(m, "data._id")->text;
    if (id.empty()) return delivered_without_id("true", "im success true but \"data._id\" is empty");
    return delivered(id, "true");
  }
};

}  // namespace

std::unique_ptr<provider> make_im_provider() { return std::make_unique<im_provider>(); }

}  // namespace sendq::providers::detail
