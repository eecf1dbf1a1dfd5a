#include "providers.hpp"

#include <simdjson.h>

#include <array>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <set>
#include <vector>

#include "json_text.hpp"
#include "sendq/core/percent_decode.hpp"
#include "sender_sign.hpp"

namespace sendq::simulator {

namespace dom = simdjson::dom;

namespace {

constexpr std::int64_t int64_max = INT64_MAX;
constexpr std::string_view sender_path = "/sender/v1/handleBasicMessage";
constexpr std::string_view im_path = "/api/im/sendMsg";
constexpr std::string_view gps_path = "/api/Files/NewVoiceUpload";
constexpr std::string_view gps_xml_namespace = "http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ParModel";
constexpr std::size_t gps_max_voice_bytes = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Strict readers. Each check records the first error only, so a chain of checks reads top-down and
// the reply names the first field that is wrong.

class check_state {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

 private:
  std::string error_;
};

std::string_view type_name(dom::element e) {
  switch (e.type()) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64: return "an integer";
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

class object_reader {
 public:
  object_reader(dom::object obj, std::string prefix, check_state& state)
      : obj_(obj), prefix_(std::move(prefix)), state_(state) {}

  /// Every member must be one of `allowed`, and none may repeat.
  void only(std::initializer_list<std::string_view> allowed) {
    std::set<std::string_view> seen;
    for (auto [key, value] : obj_) {
      (void)value;
      bool known = false;
      for (auto a : allowed) known = known || a == key;
      if (!known) {
        state_.fail("unknown member '" + field(key) + "'");
        return;
      }
      if (!seen.insert(key).second) {
        state_.fail("duplicate member '" + field(key) + "'");
        return;
      }
    }
  }

  std::optional<std::string_view> string(std::string_view name, bool required, bool non_empty) {
    auto e = find(name, required);
    if (!e) return std::nullopt;
    std::string_view s;
    if (e->get_string().get(s) != simdjson::SUCCESS || (non_empty && s.empty())) {
      state_.fail("'" + field(name) + "' must be a " + (non_empty ? "non-empty " : "") + "string, got " +
                  describe(*e));
      return std::nullopt;
    }
    return s;
  }

  /// An integer in [min, max]; `range` words the limit in the error message.
  std::optional<std::int64_t> integer(std::string_view name, bool required, std::int64_t min, std::int64_t max,
                                      std::string_view range = {}) {
    auto e = find(name, required);
    if (!e) return std::nullopt;
    std::int64_t v = 0;
    bool is_int = e->type() == dom::element_type::INT64 && e->get_int64().get(v) == simdjson::SUCCESS;
    if (!is_int || v < min || v > max) {
      std::string words = range.empty() ? (min == 0 && max == int64_max ? std::string("a non-negative integer")
                                                                         : "an integer in " + std::to_string(min) +
                                                                               ".." + std::to_string(max))
                                        : std::string(range);
      state_.fail("'" + field(name) + "' must be " + words + ", got " + describe(*e));
      return std::nullopt;
    }
    return v;
  }

  std::optional<double> number(std::string_view name, bool required) {
    auto e = find(name, required);
    if (!e) return std::nullopt;
    double d = 0;
    if (!e->is_number() || e->get_double().get(d) != simdjson::SUCCESS) {
      state_.fail("'" + field(name) + "' must be a number, got " + describe(*e));
      return std::nullopt;
    }
    return d;
  }

  std::optional<dom::object> object(std::string_view name, bool required) {
    auto e = find(name, required);
    if (!e) return std::nullopt;
    dom::object o;
    if (e->get_object().get(o) != simdjson::SUCCESS) {
      state_.fail("'" + field(name) + "' must be an object, got " + describe(*e));
      return std::nullopt;
    }
    return o;
  }

  std::string field(std::string_view name) const { return prefix_ + std::string(name); }

 private:
  std::optional<dom::element> find(std::string_view name, bool required) {
    if (!state_.ok()) return std::nullopt;
    dom::element e;
    if (obj_.at_key(name).get(e) != simdjson::SUCCESS) {
      if (required) state_.fail("missing member '" + field(name) + "'");
      return std::nullopt;
    }
    return e;
  }

  static std::string describe(dom::element e) {
    std::string out(type_name(e));
    if (e.type() == dom::element_type::STRING) {
      std::string_view s;
      if (e.get_string().get(s) == simdjson::SUCCESS && s.empty()) out = "an empty string";
    }
    if (e.type() == dom::element_type::UINT64) out = "an integer beyond 2^63";
    return out;
  }

  dom::object obj_;
  std::string prefix_;
  check_state& state_;
};

/// Parses `body` as a JSON object; on failure fills `state` and returns nullopt.
std::optional<dom::object> parse_object(std::string_view body, dom::parser& parser, check_state& state) {
  dom::element root;
  if (auto ec = parser.parse(body.data(), body.size(), true).get(root); ec != simdjson::SUCCESS) {
    state.fail(std::string("body is not valid JSON: ") + simdjson::error_message(ec));
    return std::nullopt;
  }
  dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    state.fail("body must be a JSON object, got " + std::string(type_name(root)));
    return std::nullopt;
  }
  return obj;
}

std::string_view media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  auto t = content_type.substr(0, semi);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  return t;
}

bool is_json_content(const http_request& req) { return iequals(media_type(req.header("content-type")), "application/json"); }

std::string content_type_error(const http_request& req, std::string_view wanted) {
  auto ct = req.header("content-type");
  return "Content-Type must be " + std::string(wanted) + ", got " +
         (ct.empty() ? std::string("none") : "'" + std::string(ct) + "'");
}

http_reply json_reply(unsigned status, std::string body) {
  http_reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http_reply method_not_allowed(const http_request& req) {
  http_reply r = json_reply(405, "{\"error\":\"method not allowed\",\"method\":" + json_string(req.method) +
                                     ",\"allow\":\"POST\"}");
  r.headers.emplace_back("Allow", "POST");
  return r;
}

http_reply unknown_endpoint(const http_request& req) {
  return json_reply(404, "{\"error\":\"not found\",\"path\":" + json_string(req.path()) + "}");
}

// ---------------------------------------------------------------------------------------------
// sender (seeds 000, 001)

std::string sender_body(std::int64_t code, std::string_view message, const std::string& data_json,
                        const reply_context& ctx) {
  std::string out = "{\"code\":" + std::to_string(code) + ",\"message\":";
  append_json_string(out, message);
  out += ",\"data\":" + data_json + ",\"page\":null,\"foot\":{\"operationTime\":";
  append_json_string(out, format_sql_time(ctx.now));
  out += ",\"servicePhone\":\"400800400\",\"host\":";
  append_json_string(out, ctx.host_name);
  out += "}}";
  return out;
}

provider_outcome sender_error(std::int64_t code, std::string message, const reply_context& ctx) {
  provider_outcome o;
  o.reply = json_reply(200, sender_body(code, message, "null", ctx));
  o.error = std::move(message);
  return o;
}

/// Checks the five query parameters (a computed sign against `body` when the simulator has a
/// sign secret); returns {code, message} of the first problem.
std::optional<std::pair<std::int64_t, std::string>> check_sender_query(std::string_view query, std::string_view body,
                                                                       const provider_credentials& c) {
  const std::array<std::pair<std::string_view, const std::string*>, 5> expected = {{
      {"apiVersion", &c.sender_api_version},
      {"client", &c.sender_client},
      {"channel", &c.sender_channel},
      {"version", &c.sender_version},
      {"sign", &c.sender_sign},
  }};
  std::map<std::string, std::string> got;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    auto key = core::percent_decode(part.substr(0, eq));
    auto value = core::percent_decode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1));
    if (!key || !value) return std::pair{400, "query parameter '" + std::string(part) + "' is badly percent-encoded"};
    bool known = false;
    for (auto& [name, want] : expected) known = known || name == *key;
    if (!known) return std::pair{400, "unknown query parameter '" + *key + "'"};
    if (!got.emplace(*key, *value).second) return std::pair{400, "duplicate query parameter '" + *key + "'"};
  }
  for (auto& [name, want] : expected) {
    if (got.find(std::string(name)) == got.end()) return std::pair{400, "missing query parameter '" + std::string(name) + "'"};
  }
  const bool computed_sign = !c.sender_sign_secret.empty();
  for (auto& [name, want] : expected) {
    if (name == "sign" && computed_sign) continue;
    const std::string& v = got[std::string(name)];
    if (v == *want) continue;
    // Credentials (client, channel, sign) are an authentication failure; versions a bad request.
    bool credential = name == "client" || name == "channel" || name == "sign";
    if (credential) return std::pair{401, "query parameter '" + std::string(name) + "' is wrong (sign check failed)"};
    return std::pair{400, "unsupported " + std::string(name) + " '" + v + "'"};
  }
  if (computed_sign) {
    // options.cpp accepts only the names parse_sender_sign_algorithm knows.
    const auto algorithm =
        parse_sender_sign_algorithm(c.sender_sign_algorithm).value_or(sender_sign_algorithm::md5_sorted);
    const sender_sign_query q{got["apiVersion"], got["client"], got["channel"], got["version"]};
    const auto want = sender_sign(algorithm, q, body, c.sender_sign_secret);
    if (!want) return std::pair{500, "cannot compute the " + c.sender_sign_algorithm + " sign"};
    if (got["sign"] != *want) {
      return std::pair{401, "query parameter 'sign' is wrong (" + c.sender_sign_algorithm + " sign check failed)"};
    }
  }
  return std::nullopt;
}

void check_sender_voice(dom::object info, check_state& state) {
  object_reader r(info, "messageInfo.", state);
  r.only({"audioMessage", "fileUrl", "fileLength", "duration"});
  r.string("audioMessage", true, true);
  r.string("fileUrl", false, false);
  r.integer("fileLength", false, 0, 2097151, "a non-negative integer less than 2097152 (2 MB)");
  r.integer("duration", false, 0, 60, "an integer number of seconds in 0..60");
}

void check_sender_video(dom::object info, check_state& state) {
  object_reader r(info, "messageInfo.", state);
  r.only({"videoMessage", "thumbMessage", "title", "description", "fileUrl", "fileLength", "duration",
          "thumbFileUrl", "thumbFileLength", "imageWidth", "imageHeight"});
  r.string("videoMessage", true, true);
  r.string("thumbMessage", false, false);
  r.string("title", false, false);
  r.string("description", false, false);
  r.string("fileUrl", false, false);
  r.integer("fileLength", false, 0, 10485759, "a non-negative integer less than 10485760 (10 MB)");
  r.integer("duration", false, 0, int64_max, "a non-negative integer number of seconds");
  r.string("thumbFileUrl", false, false);
  r.integer("thumbFileLength", false, 0, 65536, "a non-negative integer at most 65536 (64 KB)");
  r.integer("imageWidth", false, 0, int64_max);
  r.integer("imageHeight", false, 0, int64_max);
}

provider_outcome handle_sender(const http_request& req, const provider_credentials& creds, const reply_context& ctx,
                               dom::parser& parser) {
  if (auto bad = check_sender_query(req.query(), req.body, creds)) return sender_error(bad->first, bad->second, ctx);
  if (!is_json_content(req)) return sender_error(415, content_type_error(req, "application/json"), ctx);

  check_state state;
  auto root = parse_object(req.body, parser, state);
  if (!root) return sender_error(400, state.error(), ctx);
  object_reader r(*root, "", state);
  r.only({"messageType", "from", "to", "messageInfo", "ext", "getMessageId"});
  auto type = r.integer("messageType", true, 1, 10);
  r.string("from", true, true);
  r.string("to", true, true);
  auto info = r.object("messageInfo", true);
  r.object("ext", false);
  auto id = r.string("getMessageId", true, true);
  if (state.ok()) {
    switch (*type) {
      case 1: object_reader(*info, "messageInfo.", state).string("text", true, true); break;
      case 3: check_sender_voice(*info, state); break;
      case 4: check_sender_video(*info, state); break;
      case 5: {
        object_reader loc(*info, "messageInfo.", state);
        loc.number("lat", true);
        loc.number("lng", true);
        break;
      }
      default: break;  // 2, 6..10: any object, passed through as is
    }
  }
  if (!state.ok()) return sender_error(400, state.error(), ctx);

  provider_outcome o;
  o.accepted = true;
  o.reply = json_reply(200, sender_body(200, "成功", ctx.omit_message_id ? "{}" : "{\"getMessageId\":" + json_string(*id) + "}", ctx));
  return o;
}

// ---------------------------------------------------------------------------------------------
// gewe (seed 002 and the same API family)

enum class gewe_endpoint { text, image, voice, video, file, link };

std::optional<gewe_endpoint> gewe_endpoint_for(std::string_view path) {
  if (path == "/message/postText") return gewe_endpoint::text;
  if (path == "/message/postImage") return gewe_endpoint::image;
  if (path == "/message/postVoice") return gewe_endpoint::voice;
  if (path == "/message/postVideo") return gewe_endpoint::video;
  if (path == "/message/postFile") return gewe_endpoint::file;
  if (path == "/message/postLink") return gewe_endpoint::link;
  return std::nullopt;
}

/// WeChat's message type number for the reply's data.type; postVoice answers null as in seed 002.
std::string gewe_type_json(gewe_endpoint e) {
  switch (e) {
    case gewe_endpoint::text: return "1";
    case gewe_endpoint::image: return "3";
    case gewe_endpoint::voice: return "null";
    case gewe_endpoint::video: return "43";
    case gewe_endpoint::file: return "49";
    case gewe_endpoint::link: return "49";
  }
  return "null";
}

std::string gewe_error_body(std::int64_t ret, std::string_view msg) {
  std::string out = "{\"ret\":" + std::to_string(ret) + ",\"msg\":";
  append_json_string(out, msg);
  out += ",\"data\":null}";
  return out;
}

provider_outcome gewe_error(std::int64_t ret, std::string message) {
  provider_outcome o;
  o.reply = json_reply(200, gewe_error_body(ret, message));
  o.error = std::move(message);
  return o;
}

bool is_silk_url(std::string_view url) {
  auto path = url.substr(0, url.find('?'));
  path = path.substr(0, path.find('#'));
  return path.size() > 5 && iequals(path.substr(path.size() - 5), ".silk");
}

provider_outcome handle_gewe(const http_request& req, const provider_credentials& creds, const reply_context& ctx,
                             dom::parser& parser) {
  auto endpoint = gewe_endpoint_for(req.path());
  if (!endpoint) {
    provider_outcome o;
    o.reply = unknown_endpoint(req);
    o.error = "unknown endpoint " + std::string(req.path());
    return o;
  }
  auto token = req.header("x-gewe-token");
  if (token.empty()) return gewe_error(401, "missing header X-GEWE-TOKEN");
  if (token != creds.gewe_token) return gewe_error(401, "X-GEWE-TOKEN is not valid");
  if (!req.query().empty()) return gewe_error(500, "unexpected query string '" + std::string(req.query()) + "'");
  if (!is_json_content(req)) return gewe_error(500, content_type_error(req, "application/json"));

  check_state state;
  auto root = parse_object(req.body, parser, state);
  if (!root) return gewe_error(500, state.error());
  object_reader r(*root, "", state);
  switch (*endpoint) {
    case gewe_endpoint::text: r.only({"appId", "toWxid", "content", "ats"}); break;
    case gewe_endpoint::image: r.only({"appId", "toWxid", "imgUrl"}); break;
    case gewe_endpoint::voice: r.only({"appId", "toWxid", "voiceUrl", "voiceDuration"}); break;
    case gewe_endpoint::video: r.only({"appId", "toWxid", "videoUrl", "thumbUrl", "videoDuration"}); break;
    case gewe_endpoint::file: r.only({"appId", "toWxid", "fileUrl", "fileName"}); break;
    case gewe_endpoint::link: r.only({"appId", "toWxid", "title", "desc", "linkUrl", "thumbUrl"}); break;
  }
  auto app_id = r.string("appId", true, true);
  auto to = r.string("toWxid", true, true);
  switch (*endpoint) {
    case gewe_endpoint::text:
      r.string("content", true, true);
      r.string("ats", false, false);
      break;
    case gewe_endpoint::image: r.string("imgUrl", true, true); break;
    case gewe_endpoint::voice: {
      auto url = r.string("voiceUrl", true, true);
      if (url && !is_silk_url(*url)) state.fail("'voiceUrl' must link a .silk file (only silk is supported)");
      r.integer("voiceDuration", true, 1, int64_max, "a positive integer number of milliseconds");
      break;
    }
    case gewe_endpoint::video:
      r.string("videoUrl", true, true);
      r.string("thumbUrl", true, true);
      r.integer("videoDuration", true, 0, int64_max, "a non-negative integer number of seconds");
      break;
    case gewe_endpoint::file:
      r.string("fileUrl", true, true);
      r.string("fileName", true, true);
      break;
    case gewe_endpoint::link:
      r.string("title", true, true);
      r.string("desc", true, false);
      r.string("linkUrl", true, true);
      r.string("thumbUrl", true, false);
      break;
  }
  if (state.ok() && *app_id != creds.gewe_app_id) state.fail("appId '" + std::string(*app_id) + "' is not valid for this token");
  if (!state.ok()) return gewe_error(500, state.error());

  provider_outcome o;
  o.accepted = true;
  std::string body = "{\"ret\":200,\"msg\":\"操作成功\",\"data\":{\"toWxid\":";
  append_json_string(body, *to);
  body += ",\"createTime\":" + std::to_string(unix_seconds(ctx.now)) +
          ",\"msgId\":" + std::to_string(640355967 + ctx.seq) +
          (ctx.omit_message_id ? std::string() : ",\"newMsgId\":" + std::to_string(gewe_new_msg_id(ctx.seq))) +
          ",\"type\":" + gewe_type_json(*endpoint) + "}}";
  o.reply = json_reply(200, std::move(body));
  return o;
}

// ---------------------------------------------------------------------------------------------
// im (seed 003)

std::string im_error_body(std::string_view message) {
  std::string out = "{\"success\":false,\"message\":";
  append_json_string(out, message);
  out += "}";
  return out;
}

provider_outcome im_error(std::string message) {
  provider_outcome o;
  o.reply = json_reply(200, im_error_body(message));
  o.error = std::move(message);
  return o;
}

std::string im_object_id(const reply_context& ctx) {
  // Shaped like a MongoDB ObjectId: 4 bytes of time, 3 of per-process salt, 5 of sequence.
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%08llx%06x%010llx",
                static_cast<unsigned long long>(unix_seconds(ctx.now) & 0xFFFFFFFF), ctx.id_salt & 0xFFFFFF,
                static_cast<unsigned long long>(ctx.seq & 0xFFFFFFFFFFULL));
  return buf.data();
}

provider_outcome handle_im(const http_request& req, const provider_credentials& creds, const reply_context& ctx,
                           dom::parser& parser) {
  if (req.path() != im_path) {
    provider_outcome o;
    o.reply = unknown_endpoint(req);
    o.error = "unknown endpoint " + std::string(req.path());
    return o;
  }
  if (!is_json_content(req)) return im_error(content_type_error(req, "application/json"));
  check_state state;
  auto root = parse_object(req.body, parser, state);
  if (!root) return im_error(state.error());
  object_reader r(*root, "", state);
  r.only({"appid", "from", "fromarea", "fromrole", "f_nickname", "f_avatar", "to", "t_nickname", "t_avatar", "content",
          "type", "channel"});
  auto appid = r.string("appid", true, true);
  auto from = r.string("from", true, true);
  auto fromarea = r.string("fromarea", true, false);
  auto fromrole = r.string("fromrole", true, true);
  auto f_nickname = r.string("f_nickname", true, false);
  auto f_avatar = r.string("f_avatar", true, false);
  auto to = r.string("to", true, true);
  auto t_nickname = r.string("t_nickname", true, false);
  auto t_avatar = r.string("t_avatar", true, false);
  auto content = r.string("content", true, true);
  auto type = r.string("type", true, true);
  auto channel = r.string("channel", true, true);
  if (state.ok() && *appid != creds.im_appid) state.fail("appid '" + std::string(*appid) + "' is not registered");
  if (state.ok() && *fromrole != "MEMBER" && *fromrole != "SALER") {
    state.fail("'fromrole' must be MEMBER or SALER, got '" + std::string(*fromrole) + "'");
  }
  if (state.ok() && *type != "TEXT" && *type != "IMAGE" && *type != "VOICE") {
    state.fail("'type' must be TEXT, IMAGE or VOICE, got '" + std::string(*type) + "'");
  }
  if (state.ok() && *channel != "PC" && *channel != "WX") {
    state.fail("'channel' must be PC or WX, got '" + std::string(*channel) + "'");
  }
  if (!state.ok()) return im_error(state.error());

  std::string iso = format_iso_ms(ctx.now);
  std::string b = "{\"success\":true,\"data\":{\"__v\":0";
  auto field = [&b](std::string_view name, std::string_view value) {
    b += ",\"";
    b += name;
    b += "\":";
    append_json_string(b, value);
  };
  field("fromarea", *fromarea);
  field("content", *content);
  field("t_avatar", *t_avatar);
  field("t_nickname", *t_nickname);
  field("to", *to);
  field("f_avatar", *f_avatar);
  field("f_nickname", *f_nickname);
  field("from", *from);
  field("appid", *appid);
  if (!ctx.omit_message_id) field("_id", im_object_id(ctx));
  b += ",\"readtime\":-1,\"sendtime\":" + std::to_string(unix_millis(ctx.now));
  field("update_at", iso);
  field("create_at", iso);
  b += ",\"imageSize\":-1,\"voiceLength\":-1";
  field("channel", *channel);
  field("torole", *fromrole == "MEMBER" ? "SALER" : "MEMBER");
  field("fromrole", *fromrole);
  field("type", *type);
  b += ",\"status\":0}}";
  provider_outcome o;
  o.accepted = true;
  o.reply = json_reply(200, std::move(b));
  return o;
}

// ---------------------------------------------------------------------------------------------
// gps (seed 004). JSON and XML bodies are read into the same member map, then checked once.

struct gps_value {
  bool is_string = false;               ///< JSON string, or any XML text
  std::string text;                     ///< the string's value
  std::optional<std::int64_t> integer;  ///< JSON integer, or XML text that reads as one
  std::string_view type = "a value";    ///< for error messages
};

using gps_members = std::map<std::string, gps_value, std::less<>>;

constexpr std::array<std::string_view, 11> gps_member_names = {"SerialNumber", "Long",    "VoiceTime", "Command",
                                                               "IdentityID",   "UserId",  "ChatType",  "FileType",
                                                               "Token",        "Language", "AppId"};

/// The order of seed 004's XML sample. DataContractSerializer reads members in this order and
/// skips any that come out of it, so the XML form must keep it.
constexpr std::array<std::string_view, 11> gps_xml_order = {"AppId",    "Language",   "Token", "ChatType",
                                                            "Command",  "FileType",   "IdentityID", "Long",
                                                            "SerialNumber", "UserId", "VoiceTime"};

std::size_t gps_xml_position(std::string_view name) {
  for (std::size_t i = 0; i < gps_xml_order.size(); ++i) {
    if (gps_xml_order[i] == name) return i;
  }
  return gps_xml_order.size();
}

bool is_gps_member(std::string_view name) {
  for (auto n : gps_member_names) {
    if (n == name) return true;
  }
  return false;
}

void read_gps_json(std::string_view body, dom::parser& parser, gps_members& out, check_state& state) {
  auto root = parse_object(body, parser, state);
  if (!root) return;
  object_reader(*root, "", state).only({gps_member_names[0], gps_member_names[1], gps_member_names[2],
                                        gps_member_names[3], gps_member_names[4], gps_member_names[5],
                                        gps_member_names[6], gps_member_names[7], gps_member_names[8],
                                        gps_member_names[9], gps_member_names[10]});
  if (!state.ok()) return;
  for (auto [key, value] : *root) {
    gps_value v;
    v.type = type_name(value);
    std::string_view s;
    std::int64_t n = 0;
    if (value.get_string().get(s) == simdjson::SUCCESS) {
      v.is_string = true;
      v.text = std::string(s);
    } else if (value.type() == dom::element_type::INT64 && value.get_int64().get(n) == simdjson::SUCCESS) {
      v.integer = n;
    }
    out.emplace(std::string(key), std::move(v));
  }
}

/// Decodes the five XML entities and numeric character references.
std::optional<std::string> xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') return std::nullopt;
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    auto semi = s.find(';', i);
    if (semi == std::string_view::npos) return std::nullopt;
    auto ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out.push_back('&');
    else if (ent == "lt") out.push_back('<');
    else if (ent == "gt") out.push_back('>');
    else if (ent == "quot") out.push_back('"');
    else if (ent == "apos") out.push_back('\'');
    else if (ent.size() > 1 && ent[0] == '#') {
      std::uint32_t cp = 0;
      bool hex = ent[1] == 'x';
      auto digits = ent.substr(hex ? 2 : 1);
      if (digits.empty()) return std::nullopt;
      for (char c : digits) {
        int d = (c >= '0' && c <= '9') ? c - '0'
                : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                              : -1;
        if (d < 0) return std::nullopt;
        cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
        if (cp > 0x10FFFF) return std::nullopt;
      }
      // UTF-8 encode.
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    } else {
      return std::nullopt;
    }
    i = semi;
  }
  return out;
}

/// A minimal reader for the flat DataContract XML of seed 004: one root element with attributes,
/// child elements holding text only.
class xml_reader {
 public:
  explicit xml_reader(std::string_view s) : s_(s) {}

  void skip_misc() {
    for (;;) {
      while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
      if (s_.substr(pos_, 4) == "<!--") {
        auto end = s_.find("-->", pos_ + 4);
        pos_ = end == std::string_view::npos ? s_.size() : end + 3;
      } else if (s_.substr(pos_, 2) == "<?") {
        auto end = s_.find("?>", pos_ + 2);
        pos_ = end == std::string_view::npos ? s_.size() : end + 2;
      } else {
        return;
      }
    }
  }

  struct tag {
    std::string_view name;
    std::vector<std::pair<std::string_view, std::string>> attributes;
    bool self_closing = false;
  };

  /// Reads `<name attr="v" ...>` or `<name .../>`.
  std::optional<tag> start_tag() {
    if (pos_ >= s_.size() || s_[pos_] != '<' || s_.substr(pos_, 2) == "</") return std::nullopt;
    ++pos_;
    tag t;
    t.name = name();
    if (t.name.empty()) return std::nullopt;
    for (;;) {
      while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
      if (pos_ >= s_.size()) return std::nullopt;
      if (s_.substr(pos_, 2) == "/>") {
        pos_ += 2;
        t.self_closing = true;
        return t;
      }
      if (s_[pos_] == '>') {
        ++pos_;
        return t;
      }
      auto attr = name();
      if (attr.empty() || pos_ >= s_.size() || s_[pos_] != '=') return std::nullopt;
      ++pos_;
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) return std::nullopt;
      char q = s_[pos_++];
      auto end = s_.find(q, pos_);
      if (end == std::string_view::npos) return std::nullopt;
      auto value = xml_unescape(s_.substr(pos_, end - pos_));
      if (!value) return std::nullopt;
      t.attributes.emplace_back(attr, std::move(*value));
      pos_ = end + 1;
    }
  }

  /// Text up to the next '<'.
  std::string_view text() {
    auto end = s_.find('<', pos_);
    if (end == std::string_view::npos) end = s_.size();
    auto t = s_.substr(pos_, end - pos_);
    pos_ = end;
    return t;
  }

  bool end_tag(std::string_view expected) {
    if (s_.substr(pos_, 2) != "</") return false;
    pos_ += 2;
    if (name() != expected) return false;
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
    if (pos_ >= s_.size() || s_[pos_] != '>') return false;
    ++pos_;
    return true;
  }

  bool at_end() const { return pos_ >= s_.size(); }

 private:
  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  std::string_view name() {
    auto start = pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':' ||
                c == '-' || c == '.';
      if (!ok) break;
      ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

void read_gps_xml(std::string_view body, gps_members& out, check_state& state) {
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  xml_reader x(body);
  x.skip_misc();
  auto root = x.start_tag();
  if (!root || root->name != "VoiceUploadModel") {
    state.fail("body is not a VoiceUploadModel XML document");
    return;
  }
  bool ns_ok = false;
  for (auto& [k, v] : root->attributes) ns_ok = ns_ok || (k == "xmlns" && v == gps_xml_namespace);
  if (!ns_ok) {
    state.fail("VoiceUploadModel must have xmlns=\"" + std::string(gps_xml_namespace) + "\"");
    return;
  }
  if (!root->self_closing) {
    std::optional<std::size_t> last_position;
    for (;;) {
      auto between = x.text();
      if (between.find_first_not_of(" \t\r\n") != std::string_view::npos) {
        state.fail("unexpected text inside VoiceUploadModel");
        return;
      }
      if (x.end_tag("VoiceUploadModel")) break;
      auto child = x.start_tag();
      if (!child) {
        state.fail("malformed XML inside VoiceUploadModel");
        return;
      }
      std::string name(child->name);
      if (!is_gps_member(name)) {
        state.fail("unknown member '" + name + "'");
        return;
      }
      const auto position = gps_xml_position(name);
      if (last_position && position < *last_position) {
        state.fail("element '" + name + "' is out of order: the XML form keeps seed 004's order (AppId, Language, "
                   "Token, ChatType, Command, FileType, IdentityID, Long, SerialNumber, UserId, VoiceTime)");
        return;
      }
      last_position = position;
      gps_value v;
      bool nil = false;
      for (auto& [k, val] : child->attributes) nil = nil || (k.ends_with(":nil") && val == "true");
      if (!child->self_closing) {
        auto raw = x.text();
        if (!x.end_tag(child->name)) {
          state.fail("element '" + name + "' must hold text only and be closed");
          return;
        }
        auto txt = xml_unescape(raw);
        if (!txt) {
          state.fail("element '" + name + "' has a bad entity reference");
          return;
        }
        v.text = std::move(*txt);
      }
      if (nil) {
        v.type = "null";
      } else {
        v.is_string = true;
        v.type = "a string";
        v.integer = parse_int64(v.text);
      }
      if (!out.emplace(name, std::move(v)).second) {
        state.fail("duplicate member '" + name + "'");
        return;
      }
    }
  }
  x.skip_misc();
  if (!x.at_end()) state.fail("unexpected content after </VoiceUploadModel>");
}

std::string gps_json_body(std::int64_t state, std::string_view message) {
  std::string out = "{\"Message\":";
  append_json_string(out, message);
  out += ",\"State\":" + std::to_string(state) + "}";
  return out;
}

std::string gps_xml_body(std::int64_t state, std::string_view message) {
  std::string escaped;
  for (char c : message) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      default: escaped.push_back(c);
    }
  }
  return "<NormalResult xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" "
         "xmlns=\"http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ResModel\"><State>" +
         std::to_string(state) + "</State><Message>" + escaped + "</Message></NormalResult>";
}

std::string_view gps_state_message(std::int64_t state) {
  switch (state) {
    case 0: return "成功";
    case 1000: return "设备不存在";
    case 1100: return "IMEI为空";
    case 8000: return "语音数据为空或时长超长";
    default: return "injected business error";
  }
}

/// ASP.NET content negotiation, simplified: XML when the request was XML and Accept does not ask for JSON.
bool gps_reply_xml(const http_request& req) {
  auto mt = media_type(req.header("content-type"));
  bool xml_request = iequals(mt, "application/xml") || iequals(mt, "text/xml");
  auto accept = req.header("accept");
  bool wants_json = accept.find("json") != std::string_view::npos;
  bool wants_xml = accept.find("xml") != std::string_view::npos;
  return wants_xml || (xml_request && !wants_json);
}

http_reply gps_reply(const http_request& req, unsigned status, std::int64_t state, std::string_view message) {
  http_reply r;
  r.status = status;
  if (gps_reply_xml(req)) {
    r.content_type = "application/xml; charset=utf-8";
    r.body = gps_xml_body(state, message);
  } else {
    r.body = gps_json_body(state, message);
  }
  return r;
}

provider_outcome gps_outcome(const http_request& req, unsigned status, std::int64_t state, std::string message) {
  provider_outcome o;
  o.reply = gps_reply(req, status, state, message);
  o.accepted = state == 0;
  if (state != 0) o.error = std::move(message);
  return o;
}

provider_outcome handle_gps(const http_request& req, const provider_credentials& creds, dom::parser& parser) {
  // ASP.NET routing ignores case.
  if (!iequals(req.path(), gps_path)) {
    provider_outcome o;
    o.reply = unknown_endpoint(req);
    o.error = "unknown endpoint " + std::string(req.path());
    return o;
  }
  auto mt = media_type(req.header("content-type"));
  bool json = iequals(mt, "application/json") || iequals(mt, "text/json");
  bool xml = iequals(mt, "application/xml") || iequals(mt, "text/xml");
  if (!json && !xml) {
    return gps_outcome(req, 415, 415, content_type_error(req, "application/json, text/json, application/xml or text/xml"));
  }
  check_state state;
  gps_members m;
  if (json) {
    read_gps_json(req.body, parser, m, state);
  } else {
    read_gps_xml(req.body, m, state);
  }
  if (!state.ok()) return gps_outcome(req, 400, 400, state.error());

  auto str = [&](std::string_view name) -> const std::string* {
    auto it = m.find(name);
    if (it == m.end()) {
      state.fail("missing member '" + std::string(name) + "'");
      return nullptr;
    }
    if (!it->second.is_string) {
      state.fail("'" + std::string(name) + "' must be a string, got " + std::string(it->second.type));
      return nullptr;
    }
    return &it->second.text;
  };
  auto integer = [&](std::string_view name) -> std::optional<std::int64_t> {
    auto it = m.find(name);
    if (it == m.end()) {
      state.fail("missing member '" + std::string(name) + "'");
      return std::nullopt;
    }
    if (!it->second.integer) {
      state.fail("'" + std::string(name) + "' must be an integer, got " + std::string(it->second.type));
      return std::nullopt;
    }
    return it->second.integer;
  };
  const std::string* serial = str("SerialNumber");
  auto seconds = integer("Long");
  const std::string* voice_time = str("VoiceTime");
  const std::string* command = str("Command");
  const std::string* identity = str("IdentityID");
  integer("UserId");
  auto chat_type = integer("ChatType");
  integer("FileType");
  const std::string* token = str("Token");
  str("Language");
  const std::string* app_id = str("AppId");
  if (state.ok() && !is_iso8601_datetime(*voice_time)) {
    state.fail("'VoiceTime' must be an ISO 8601 date-time, got '" + *voice_time + "'");
  }
  if (state.ok() && identity->empty()) state.fail("'IdentityID' must be a non-empty string");
  if (state.ok() && *seconds < 1) state.fail("'Long' must be a positive number of seconds");
  if (state.ok() && *chat_type != 1 && *chat_type != 2) state.fail("'ChatType' must be 1 (single) or 2 (group)");
  if (state.ok() && *token != creds.gps_token) state.fail("Token is not valid");
  if (state.ok() && *app_id != creds.gps_app_id) state.fail("AppId '" + *app_id + "' is not valid");
  if (!state.ok()) return gps_outcome(req, 400, 400, state.error());

  // The documented business states, in the order the provider would meet them.
  if (serial->empty()) return gps_outcome(req, 200, 1100, std::string(gps_state_message(1100)));
  std::optional<std::string> voice;
  if (!command->empty()) voice = decode_base64(*command);
  if (!voice || voice->size() > gps_max_voice_bytes || !voice->starts_with("#!AMR") || *seconds > 60) {
    return gps_outcome(req, 200, 8000, std::string(gps_state_message(8000)));
  }
  // Simulator convention: an IMEI starting "missing-" is a device that does not exist.
  if (serial->starts_with("missing-")) return gps_outcome(req, 200, 1000, std::string(gps_state_message(1000)));
  return gps_outcome(req, 200, 0, std::string(gps_state_message(0)));
}

}  // namespace

std::string_view provider_name(provider p) {
  switch (p) {
    case provider::sender: return "sender";
    case provider::gewe: return "gewe";
    case provider::im: return "im";
    case provider::gps: return "gps";
  }
  return "unknown";
}

std::optional<provider> provider_for_path(std::string_view path) {
  if (path.starts_with("/sender/")) return provider::sender;
  if (path.starts_with("/message/")) return provider::gewe;
  if (path.starts_with("/api/im/")) return provider::im;
  if (istarts_with(path, "/api/Files/")) return provider::gps;
  return std::nullopt;
}

std::uint64_t gewe_new_msg_id(std::uint64_t seq) { return 2321462558768366600ULL + seq; }

provider_outcome handle_provider(provider p, const http_request& req, const provider_credentials& creds,
                                 const reply_context& ctx, simdjson::dom::parser& parser) {
  if (req.method != "POST") {
    provider_outcome o;
    o.reply = method_not_allowed(req);
    o.error = "method " + req.method + " not allowed";
    return o;
  }
  switch (p) {
    case provider::sender:
      if (req.path() != sender_path) {
        provider_outcome o;
        o.reply = unknown_endpoint(req);
        o.error = "unknown endpoint " + std::string(req.path());
        return o;
      }
      return handle_sender(req, creds, ctx, parser);
    case provider::gewe: return handle_gewe(req, creds, ctx, parser);
    case provider::im: return handle_im(req, creds, ctx, parser);
    case provider::gps: return handle_gps(req, creds, parser);
  }
  return {};
}

http_reply business_error_reply(provider p, const http_request& req, const reply_context& ctx,
                                std::optional<std::int64_t> code) {
  constexpr std::string_view message = "injected business error";
  switch (p) {
    case provider::sender: return json_reply(200, sender_body(code.value_or(500), message, "null", ctx));
    case provider::gewe: return json_reply(200, gewe_error_body(code.value_or(500), message));
    case provider::im: return json_reply(200, im_error_body(message));
    case provider::gps: {
      auto state = code.value_or(8000);
      return gps_reply(req, 200, state, gps_state_message(state));
    }
  }
  return {};
}

}  // namespace sendq::simulator
