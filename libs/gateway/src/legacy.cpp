// Legacy sender API (seeds 000/001) ↔ SendRequest. The voice/video messageInfo field names and
// units are the seed's; the SendRequest body is the contract's normalized one (docs/providers.md
// gives the adapter's reverse mapping, so a round trip sends the same messageInfo).
#include "sendq/gateway/legacy.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <optional>
#include <simdjson.h>

#include "sendq/core/json_string_check.hpp"
#include "sendq/core/json_writer.hpp"

namespace sendq::gateway {
namespace {

namespace od = simdjson::ondemand;

std::optional<std::string_view> type_of_message_type(std::int64_t t) {
  switch (t) {
    case 1: return "text";
    case 2: return "image";
    case 3: return "voice";
    case 4: return "video";
    case 5: return "location";
    case 7: return "link";
    case 8: return "custom";
    case 9: return "template";
    case 10: return "file";
    default: return std::nullopt;
  }
}

enum class kind { string, integer };

// One messageInfo member of a voice or video message and its normalized name.
struct info_field {
  std::string_view legacy;
  std::string_view normalized;
  kind k;
  std::int64_t scale = 1;  // seconds → ms for duration
};

constexpr std::array voice_fields{
    info_field{"audioMessage", "name", kind::string}, info_field{"fileUrl", "url", kind::string},
    info_field{"fileLength", "size", kind::integer}, info_field{"duration", "duration_ms", kind::integer, 1000}};

constexpr std::array video_fields{
    info_field{"videoMessage", "name", kind::string},      info_field{"thumbMessage", "thumb_name", kind::string},
    info_field{"title", "title", kind::string},             info_field{"description", "description", kind::string},
    info_field{"fileUrl", "url", kind::string},             info_field{"fileLength", "size", kind::integer},
    info_field{"duration", "duration_ms", kind::integer, 1000}, info_field{"thumbFileUrl", "thumb_url", kind::string},
    info_field{"thumbFileLength", "thumb_size", kind::integer}, info_field{"imageWidth", "width", kind::integer},
    info_field{"imageHeight", "height", kind::integer}};

template <std::size_t N>
const info_field* find_field(const std::array<info_field, N>& fields, std::string_view name, bool legacy) {
  for (const auto& f : fields) {
    if ((legacy ? f.legacy : f.normalized) == name) return &f;
  }
  return nullptr;
}

// The raw text of a member's name in `json`, quotes included, for member_name_error: simdjson 3.0
// gives only where it starts, so this runs to the closing quote, which stage 1 has seen (the end of
// `json` bounds it anyway). It must be read before unescaped_key(), which consumes the key, so it
// runs for every member name; the names of a legacy request are few and short.
std::string_view key_token(const od::field& field, const simdjson::padded_string& json) {
  const char* begin = json.data();
  const char* end = begin + json.size();
  const char* p = field.key().raw();
  if (p <= begin || p > end) return {};  // not in `json`: member_name_error falls back to simdjson's words
  return core::quoted_token(p, end);
}

// The member name of `member` in `name`, or the legacy error: `where` names the object holding it.
std::optional<legacy_error> read_key(simdjson::simdjson_result<od::field>& member, const simdjson::padded_string& json,
                                     std::string_view where, std::string_view& name) {
  if (member.error()) return legacy_error{std::string(where) + ": malformed JSON"};
  const auto token = key_token(member.value_unsafe(), json);
  if (auto e = member.unescaped_key().get(name); e == simdjson::STRING_ERROR) {
    return legacy_error{std::string(where) + ": " + core::member_name_error(token)};
  } else if (e) {
    return legacy_error{std::string(where) + ": malformed JSON"};
  }
  return std::nullopt;
}

// The string value `v` in `out`, or the legacy error naming `where`: not a string, or a string that
// cannot be unescaped (a lone surrogate, an escape JSON does not have), in the decoder's words.
std::optional<legacy_error> read_string(od::value& v, std::string_view where, std::string_view& out) {
  const std::string_view token = v.raw_json_token();  // get_string consumes it
  if (auto e = v.get_string().get(out); e == simdjson::STRING_ERROR) {
    return legacy_error{std::string(where) + ": " + core::string_error(token)};
  } else if (e) {
    return legacy_error{std::string(where) + ": must be a string"};
  }
  return std::nullopt;
}

// Normalizes a voice/video messageInfo into `out` (a JSON object), or names the bad field.
template <std::size_t N>
std::optional<legacy_error> normalize_info(std::string_view info_json, const std::array<info_field, N>& fields,
                                           std::string_view seed, bool voice, std::string& out) {
  od::parser parser;
  simdjson::padded_string padded(info_json);
  auto doc = parser.iterate(padded);
  od::object obj;
  if (doc.get_object().get(obj)) return legacy_error{"messageInfo: must be a JSON object"};
  core::json_writer w(out);
  w.begin_object();
  bool has_name = false;
  for (auto member : obj) {
    std::string_view key;
    if (auto e = read_key(member, padded, "messageInfo", key)) return *e;
    const std::string where = "messageInfo." + std::string(key);
    const auto* f = find_field(fields, key, true);
    if (!f) {
      return legacy_error{where + ": not a field of the " + std::string(voice ? "voice" : "video") +
                          " MessageInfo (seed " + std::string(seed) + ")"};
    }
    od::value v;
    if (member.value().get(v)) return legacy_error{where + ": malformed JSON"};
    bool is_null = false;
    if (v.is_null().get(is_null) == simdjson::SUCCESS && is_null) continue;  // as if absent
    if (f->k == kind::string) {
      std::string_view s;
      if (auto e = read_string(v, where, s)) return *e;
      if (f->normalized == "name") has_name = !s.empty();
      w.field(f->normalized, s);
    } else {
      std::int64_t n = 0;
      if (v.get_int64().get(n)) {
        return legacy_error{where + ": must be an integer" + (f->scale == 1000 ? " (seconds)" : std::string())};
      }
      if (n < 0) return legacy_error{where + ": must not be negative"};
      if (n > INT64_MAX / 1000) return legacy_error{where + ": too large"};
      w.field(f->normalized, n * f->scale);
    }
  }
  if (!has_name) {
    return legacy_error{"messageInfo." + std::string(voice ? "audioMessage" : "videoMessage") +
                        ": required, the file's name (seed " + std::string(seed) + ": 可为空 否)"};
  }
  if (voice) w.field("format", "mp3");  // seed 000: the voice file is MP3
  w.end_object();
  return std::nullopt;
}

}  // namespace

std::variant<legacy_request, legacy_error> legacy_to_send_request(std::string_view body, std::string_view account,
                                                                 std::string_view generated_id,
                                                                 std::int64_t created_at_ms) {
  od::parser parser;
  simdjson::padded_string padded(body);
  auto doc = parser.iterate(padded);
  od::object obj;
  if (doc.get_object().get(obj)) return legacy_error{"body: must be a JSON object"};

  std::optional<std::int64_t> message_type;
  std::optional<std::string> from, to, id;
  std::string info_json, ext_json;
  unsigned seen = 0;  // a bit for each member of `known` below
  for (auto member : obj) {
    std::string_view key;
    if (auto e = read_key(member, padded, "body", key)) return *e;
    od::value v;
    if (member.value().get(v)) return legacy_error{std::string(key) + ": malformed JSON"};
    const std::string name(key);
    // As on /v1/messages: a member given twice is refused, not "the last one wins" (which one a
    // caller meant is not ours to guess).
    static constexpr std::string_view known[] = {"messageType", "from", "to", "getMessageId", "messageInfo", "ext"};
    if (const auto it = std::find(std::begin(known), std::end(known), key); it != std::end(known)) {
      const auto bit = 1u << (it - std::begin(known));
      if (seen & bit) return legacy_error{name + ": appears more than once"};
      seen |= bit;
    }
    if (key == "messageType") {
      std::int64_t n = 0;
      if (v.get_int64().get(n)) return legacy_error{"messageType: must be an integer (1 text ... 10 ext)"};
      message_type = n;
    } else if (key == "from" || key == "to" || key == "getMessageId") {
      bool is_null = false;
      if (v.is_null().get(is_null) == simdjson::SUCCESS && is_null) continue;
      std::string_view s;
      if (auto e = read_string(v, name, s)) return *e;
      (key == "from" ? from : key == "to" ? to : id) = std::string(s);
    } else if (key == "messageInfo" || key == "ext") {
      od::json_type t;
      if (v.type().get(t)) return legacy_error{name + ": malformed JSON"};
      if (t == od::json_type::null && key == "ext") continue;
      if (t != od::json_type::object) return legacy_error{name + ": must be a JSON object"};
      std::string_view raw;
      od::object o;
      if (v.get_object().get(o) || o.raw_json().get(raw)) return legacy_error{name + ": malformed JSON"};
      (key == "messageInfo" ? info_json : ext_json) = std::string(raw);
    }
    // Anything else (e.g. the seed example's struck-out channelType) is accepted and ignored,
    // as the legacy service did.
  }
  if (!doc.current_location().error()) return legacy_error{"body: trailing content after the JSON object"};
  if (!message_type) return legacy_error{"messageType: required (1 text ... 10 ext)"};
  const auto type = type_of_message_type(*message_type);
  if (!type) {
    return legacy_error{"messageType: " + std::to_string(*message_type) +
                        (*message_type == 6 ? " (透传 passthrough) is not supported by sendq"
                                            : " is not one of 1, 2, 3, 4, 5, 7, 8, 9, 10")};
  }
  if (!to || to->empty()) return legacy_error{"to: required, a non-empty string"};
  if (info_json.empty()) return legacy_error{"messageInfo: required, a JSON object"};

  std::string normalized;
  if (*type == "voice") {
    if (auto e = normalize_info(info_json, voice_fields, "000", true, normalized)) return *e;
  } else if (*type == "video") {
    if (auto e = normalize_info(info_json, video_fields, "001", false, normalized)) return *e;
  } else {
    normalized = info_json;  // other types: messageInfo is the body as is (docs/providers.md)
  }

  legacy_request out;
  out.id = id && !id->empty() ? *id : std::string(generated_id);
  out.type = std::string(*type);
  core::json_writer w(out.send_request_json);
  w.begin_object()
      .field("id", out.id)
      .field("provider", "sender")
      .field("account", account)
      .field("type", *type);
  if (from) w.field("from", *from);
  w.field("to", *to).key("body").raw(normalized);
  if (!ext_json.empty()) w.key("ext").raw(ext_json);
  w.field("created_at", created_at_ms).end_object();
  return out;
}

std::string legacy_field_message(std::string_view type, std::string_view message) {
  const auto colon = message.find(':');
  if (colon == std::string_view::npos) return std::string(message);
  const auto path = message.substr(0, colon);
  const auto rest = message.substr(colon);
  // The SendRequest's own names for the members the legacy body calls otherwise.
  if (path == "id") return "getMessageId" + std::string(rest);
  if (path == "type") return "messageType" + std::string(rest);
  if (!message.starts_with("body")) return std::string(message);
  if (path == "body") return "messageInfo" + std::string(rest);
  const auto member = path.substr(5);  // after "body."
  const info_field* f = nullptr;
  if (type == "voice") f = find_field(voice_fields, member, false);
  if (type == "video") f = find_field(video_fields, member, false);
  if (f) return "messageInfo." + std::string(f->legacy) + std::string(rest);
  return "messageInfo." + std::string(member) + std::string(rest);
}

std::string legacy_reply(int code, std::string_view message, std::optional<std::string_view> message_id,
                         std::string_view operation_time, std::string_view host) {
  std::string out;
  core::json_writer w(out);
  w.begin_object().field("code", code).field("message", message).key("data");
  if (message_id) {
    w.begin_object().field("getMessageId", *message_id).end_object();
  } else {
    w.null();
  }
  w.key("page").null();
  w.key("foot")
      .begin_object()
      .field("operationTime", operation_time)
      .field("servicePhone", "400800400")
      .field("host", host)
      .end_object();
  w.end_object();
  return out;
}

std::string generate_message_id() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // OpenSSL's CSPRNG failing is a resource problem; fall back to a weaker but unique-enough source.
    static std::atomic<std::uint64_t> counter{0};
    const auto n = counter.fetch_add(1) ^ static_cast<std::uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(n >> ((i % 8) * 8));
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (auto b : bytes) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

}  // namespace sendq::gateway
