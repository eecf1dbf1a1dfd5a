#include "sendq/core/request_decoder.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace sendq::core {
namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Errors that mean the bytes are not JSON at all (as opposed to a field of the wrong type).
bool is_syntax_error(error_code e) {
  switch (e) {
    case simdjson::INCORRECT_TYPE:
    case simdjson::NUMBER_OUT_OF_RANGE:
    case simdjson::NUMBER_ERROR:
      return false;
    default:
      return true;
  }
}

std::string json_error_message(error_code e) {
  std::string m = "message: not valid JSON: ";
  m += simdjson::error_message(e);
  return m;
}

// Which top-level members were seen, to refuse duplicates.
enum member : unsigned {
  m_id = 1u << 0, m_provider = 1u << 1, m_account = 1u << 2, m_type = 1u << 3, m_from = 1u << 4,
  m_to = 1u << 5, m_key = 1u << 6, m_body = 1u << 7, m_ext = 1u << 8, m_provider_fields = 1u << 9,
  m_deadline = 1u << 10, m_max_attempts = 1u << 11, m_created_at = 1u << 12, m_attempt = 1u << 13,
  m_not_before = 1u << 14,
};

struct member_name {
  std::string_view name;
  member bit;
};
constexpr member_name members[] = {
    {"id", m_id},         {"provider", m_provider}, {"account", m_account},
    {"type", m_type},     {"from", m_from},         {"to", m_to},
    {"key", m_key},       {"body", m_body},         {"ext", m_ext},
    {"provider_fields", m_provider_fields},         {"deadline", m_deadline},
    {"max_attempts", m_max_attempts},               {"created_at", m_created_at},
    {"attempt", m_attempt},                         {"not_before", m_not_before},
};

}  // namespace

struct request_decoder::impl {
  explicit impl(std::size_t max_bytes) : max_bytes(max_bytes) {}

  std::size_t max_bytes;
  od::parser parser;
  od::parser body_parser;
  simdjson::dom::parser dom_parser;  // full validation of passthrough objects
  std::vector<std::string_view> key_scratch;  // no_duplicates' member names, reused
  std::vector<char> buffer;          // padded copy of the input
  std::optional<failure> first;      // first field error; decoding goes on to name the request

  void note(error_kind k, std::string msg) {
    if (!first) first = failure{k, std::move(msg)};
  }

  // Reads a string member; records an error naming `field` when it is not a string.
  bool read_string(od::value v, std::string_view field, std::string& out) {
    std::string_view s;
    if (auto e = v.get_string().get(s); e) {
      note(error_kind::invalid_field, std::string(field) + ": must be a string");
      return false;
    }
    out.assign(s);
    return true;
  }

  bool read_int(od::value v, std::string_view field, std::string_view what, std::int64_t& out) {
    if (auto e = v.get_int64().get(out); e) {
      std::string msg = std::string(field) + ": must be an integer";
      // An integer token that get_int64 refused is out of range (2^64, 1e400 is not an integer).
      std::string_view token = v.raw_json_token();
      while (!token.empty() && (token.back() == ' ' || token.back() == '\n' || token.back() == '\r' || token.back() == '\t')) {
        token.remove_suffix(1);
      }
      const auto digits = token.substr(!token.empty() && token.front() == '-' ? 1 : 0);
      if (!digits.empty() && digits.size() <= 64 &&
          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        msg += " of at most 64 bits (" + std::string(what) + "); " + std::string(token) + " is out of range";
      } else {
        msg += " (" + std::string(what) + ")";
      }
      note(error_kind::invalid_field, std::move(msg));
      return false;
    }
    return true;
  }

  // Finds a duplicate member name anywhere in `el` (RFC 8259: names should be unique; a provider
  // would take the first or the last, we cannot know which). On one, returns false with `where`
  // naming it relative to `el` (".a.b", "[2].c"): the path is built only then, while unwinding,
  // so that valid requests allocate nothing here. Depth is bounded by the DOM parser's max depth
  // (1024), so the recursion is too.
  bool no_duplicates(simdjson::dom::element el, std::string& where) {
    simdjson::dom::array arr;
    if (el.get_array().get(arr) == simdjson::SUCCESS) {
      std::size_t i = 0;
      for (auto child : arr) {
        if (!no_duplicates(child, where)) {
          where.insert(0, "[" + std::to_string(i) + "]");
          return false;
        }
        ++i;
      }
      return true;
    }
    simdjson::dom::object obj;
    if (el.get_object().get(obj) != simdjson::SUCCESS) return true;
    const auto start = key_scratch.size();
    for (auto field : obj) key_scratch.push_back(field.key);
    std::sort(key_scratch.begin() + static_cast<std::ptrdiff_t>(start), key_scratch.end());
    const auto dup = std::adjacent_find(key_scratch.begin() + static_cast<std::ptrdiff_t>(start), key_scratch.end());
    if (dup != key_scratch.end()) {
      where = "." + std::string(dup->substr(0, 64));
      if (dup->size() > 64) where += "...";
      key_scratch.resize(start);
      return false;
    }
    key_scratch.resize(start);
    for (auto field : obj) {
      if (!no_duplicates(field.value, where)) {
        where.insert(0, "." + std::string(field.key.substr(0, 64)));
        return false;
      }
    }
    return true;
  }

  // Returns the raw text of an object member after validating it completely (duplicate member
  // names included), or nullopt. With `number_error`, a number simdjson cannot represent (1e400,
  // 2^64) is not noted but reported there, the raw text still returned: a normalized body's own
  // decoding then names the member.
  std::optional<std::string_view> read_object_raw(od::value v, std::string_view field,
                                                  std::optional<failure>* number_error = nullptr) {
    od::object obj;
    if (auto e = v.get_object().get(obj); e) {
      note(error_kind::invalid_field, std::string(field) + ": must be a JSON object");
      return std::nullopt;
    }
    std::string_view raw;
    if (auto e = obj.raw_json().get(raw); e) {
      note(error_kind::invalid_json, std::string(field) + ": " + simdjson::error_message(e));
      return std::nullopt;
    }
    // raw_json() only skips over the object; validate it so that we never pass on bad JSON.
    simdjson::dom::element el;
    if (auto e = dom_parser.parse(raw.data(), raw.size(), false).get(el); e) {
      failure f{e == simdjson::DEPTH_ERROR ? error_kind::too_large : error_kind::invalid_json,
                std::string(field) + ": " + simdjson::error_message(e)};
      if (number_error && e == simdjson::NUMBER_ERROR) {
        *number_error = std::move(f);
        return raw;
      }
      note(f.kind, std::move(f.message));
      return std::nullopt;
    }
    if (std::string where; !no_duplicates(el, where)) {
      note(error_kind::invalid_field, std::string(field) + where + ": appears more than once");
      return std::nullopt;
    }
    return raw;
  }

  void decode_body(std::string_view raw, const char* buffer_end, send_request& out);
  void check_body(send_request& out);
};

request_decoder::request_decoder(std::size_t max_request_bytes)
    : impl_(std::make_unique<impl>(max_request_bytes)) {}
request_decoder::~request_decoder() = default;

void request_decoder::impl::decode_body(std::string_view raw, const char* buffer_end,
                                        send_request& out) {
  auto& b = out.body;
  od::document doc;
  const auto capacity = static_cast<std::size_t>(buffer_end - raw.data());
  if (auto e = body_parser.iterate(raw.data(), raw.size(), capacity).get(doc); e) {
    note(error_kind::invalid_json, std::string("body: ") + simdjson::error_message(e));
    return;
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj); e) {
    note(error_kind::invalid_field, "body: must be a JSON object");
    return;
  }
  const auto type = out.type;
  const bool passthrough = type == message_type::link || type == message_type::template_ ||
                           type == message_type::custom;
  if (passthrough) return;  // validated as an object already; providers read it raw

  for (auto field : obj) {
    std::string_view k;
    if (auto e = field.unescaped_key().get(k); e) {
      note(error_kind::invalid_json, std::string("body: ") + simdjson::error_message(e));
      return;
    }
    od::value v;
    if (auto e = field.value().get(v); e) {
      note(error_kind::invalid_json, std::string("body.") + std::string(k) + ": " +
                                         simdjson::error_message(e));
      return;
    }
    const std::string path = "body." + std::string(k);
    auto str = [&](std::optional<std::string>& dst) {
      std::string s;
      if (read_string(v, path, s)) dst = std::move(s);
    };
    auto num = [&](std::optional<std::int64_t>& dst, std::string_view unit) {
      std::int64_t n = 0;
      if (!read_int(v, path, unit, n)) return;
      if (n < 0) {
        note(error_kind::invalid_field, path + ": must not be negative");
        return;
      }
      dst = n;
    };
    auto real = [&](std::optional<double>& dst) {
      double d = 0;
      if (auto e = v.get_double().get(d); e) {
        note(error_kind::invalid_field, path + ": must be a number (degrees)");
        return;
      }
      dst = d;
    };
    // The members each normalized type knows (CONTRACT.md "Normalized bodies").
    bool known = true;
    switch (type) {
      case message_type::text:
        if (k == "text") str(b.text); else known = false;
        break;
      case message_type::image:
        if (k == "url") str(b.url);
        else if (k == "name") str(b.name);
        else if (k == "size") num(b.size, "bytes");
        else if (k == "width") num(b.width, "pixels");
        else if (k == "height") num(b.height, "pixels");
        else known = false;
        break;
      case message_type::voice:
        if (k == "url") str(b.url);
        else if (k == "name") str(b.name);
        else if (k == "data_base64") str(b.data_base64);
        else if (k == "format") str(b.format);
        else if (k == "duration_ms") num(b.duration_ms, "milliseconds");
        else if (k == "size") num(b.size, "bytes");
        else known = false;
        break;
      case message_type::video:
        if (k == "url") str(b.url);
        else if (k == "name") str(b.name);
        else if (k == "thumb_url") str(b.thumb_url);
        else if (k == "thumb_name") str(b.thumb_name);
        else if (k == "thumb_size") num(b.thumb_size, "bytes");
        else if (k == "title") str(b.title);
        else if (k == "description") str(b.description);
        else if (k == "size") num(b.size, "bytes");
        else if (k == "duration_ms") num(b.duration_ms, "milliseconds");
        else if (k == "width") num(b.width, "pixels");
        else if (k == "height") num(b.height, "pixels");
        else known = false;
        break;
      case message_type::location:
        if (k == "lat") real(b.lat);
        else if (k == "lng") real(b.lng);
        else if (k == "address") str(b.address);
        else known = false;
        break;
      case message_type::file:
        if (k == "url") str(b.url);
        else if (k == "name") str(b.name);
        else if (k == "size") num(b.size, "bytes");
        else known = false;
        break;
      case message_type::link:
      case message_type::template_:
      case message_type::custom:
        break;
    }
    if (!known) {
      note(error_kind::invalid_field,
           path + ": unknown field for type " + std::string(to_string(type)));
    }
  }
  if (!doc.current_location().error()) note(error_kind::invalid_json, "body: trailing content");
}

void request_decoder::impl::check_body(send_request& out) {
  const auto& b = out.body;
  auto need = [&](const std::optional<std::string>& v, std::string_view name) {
    if (!v || v->empty()) {
      note(error_kind::invalid_field, "body." + std::string(name) + ": required for type " +
                                          std::string(to_string(out.type)));
    }
  };
  switch (out.type) {
    case message_type::text:
      need(b.text, "text");
      break;
    case message_type::image:
      need(b.url, "url");
      break;
    case message_type::voice:
      if (!b.url && !b.name && !b.data_base64) {
        note(error_kind::invalid_field, "body.url: voice needs one of body.url, body.name or body.data_base64");
      }
      if (!b.format) {
        note(error_kind::invalid_field, "body.format: required for type voice (mp3, silk or amr)");
      } else if (*b.format != "mp3" && *b.format != "silk" && *b.format != "amr") {
        note(error_kind::invalid_field, "body.format: '" + *b.format + "' is not one of mp3, silk, amr");
      }
      if (!b.duration_ms) {
        note(error_kind::invalid_field, "body.duration_ms: required for type voice (milliseconds)");
      } else if (*b.duration_ms == 0) {
        note(error_kind::invalid_field, "body.duration_ms: must be greater than 0");
      }
      break;
    case message_type::video:
      need(b.name, "name");
      break;
    case message_type::location:
      if (!b.lat) note(error_kind::invalid_field, "body.lat: required for type location");
      else if (*b.lat < -90 || *b.lat > 90) note(error_kind::invalid_field, "body.lat: must be within -90..90");
      if (!b.lng) note(error_kind::invalid_field, "body.lng: required for type location");
      else if (*b.lng < -180 || *b.lng > 180) note(error_kind::invalid_field, "body.lng: must be within -180..180");
      break;
    case message_type::file:
      need(b.url, "url");
      need(b.name, "name");
      break;
    case message_type::link:
    case message_type::template_:
    case message_type::custom:
      break;
  }
}

std::optional<failure> request_decoder::decode(std::string_view bytes, send_request& out) {
  auto& d = *impl_;
  d.first.reset();
  out = send_request{};
  if (bytes.empty()) {
    return failure{error_kind::invalid_json, "message: empty (a tombstone or an empty value)"};
  }
  if (bytes.size() > d.max_bytes) {
    return failure{error_kind::too_large, "message: " + std::to_string(bytes.size()) +
                                              " bytes is over the limit of " +
                                              std::to_string(d.max_bytes)};
  }
  if (bytes.starts_with("\xEF\xBB\xBF")) {
    return failure{error_kind::invalid_json, "message: starts with a byte order mark (JSON must not have one, RFC 8259 8.1)"};
  }
  const std::size_t capacity = bytes.size() + simdjson::SIMDJSON_PADDING;
  if (d.buffer.size() < capacity) d.buffer.resize(capacity);
  std::memcpy(d.buffer.data(), bytes.data(), bytes.size());
  std::memset(d.buffer.data() + bytes.size(), 0, simdjson::SIMDJSON_PADDING);
  const char* buffer_end = d.buffer.data() + capacity;

  od::document doc;
  if (auto e = d.parser.iterate(d.buffer.data(), bytes.size(), capacity).get(doc); e) {
    return failure{error_kind::invalid_json, json_error_message(e)};
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj); e) {
    return failure{error_kind::invalid_json, is_syntax_error(e) ? json_error_message(e)
                                                                : "message: must be a JSON object"};
  }

  unsigned seen = 0;
  std::string_view body_raw;
  bool have_body = false;
  std::optional<failure> body_number_error;  // see read_object_raw
  for (auto field : obj) {
    std::string_view k;
    if (auto e = field.unescaped_key().get(k); e) return failure{error_kind::invalid_json, json_error_message(e)};
    od::value v;
    if (auto e = field.value().get(v); e) return failure{error_kind::invalid_json, json_error_message(e)};

    member bit{};
    for (const auto& m : members) {
      if (m.name == k) bit = m.bit;
    }
    if (bit == member{}) {
      d.note(error_kind::invalid_field, std::string(k) + ": unknown field");
      continue;  // skipped by the iterator
    }
    if (seen & bit) {
      d.note(error_kind::invalid_field, std::string(k) + ": appears more than once");
      continue;
    }
    seen |= bit;

    std::int64_t n = 0;
    switch (bit) {
      case m_id:
        if (d.read_string(v, "id", out.id) && !valid_id(out.id)) {
          d.note(error_kind::invalid_field, "id: must be 1 to 128 characters of [A-Za-z0-9._:-]");
          out.id.clear();
        }
        break;
      case m_provider:
        if (d.read_string(v, "provider", out.provider) && out.provider.empty()) {
          d.note(error_kind::invalid_field, "provider: must not be empty");
        }
        break;
      case m_account:
        if (d.read_string(v, "account", out.account) && out.account.empty()) {
          d.note(error_kind::invalid_field, "account: must not be empty");
        }
        break;
      case m_type: {
        std::string t;
        if (d.read_string(v, "type", t)) {
          if (auto mt = parse_message_type(t)) {
            out.type = *mt;
          } else {
            d.note(error_kind::unsupported_type,
                   "type: '" + t + "' is not one of text, image, voice, video, location, file, link, template, custom");
          }
        }
        break;
      }
      case m_from: d.read_string(v, "from", out.from); break;
      case m_to: d.read_string(v, "to", out.to); break;
      case m_key: d.read_string(v, "key", out.key); break;
      case m_body:
        if (auto raw = d.read_object_raw(v, "body", &body_number_error)) {
          body_raw = *raw;
          have_body = true;
          out.body_json.assign(*raw);
        }
        break;
      case m_ext:
        if (auto raw = d.read_object_raw(v, "ext")) out.ext_json.assign(*raw);
        break;
      case m_provider_fields:
        if (auto raw = d.read_object_raw(v, "provider_fields")) out.provider_fields_json.assign(*raw);
        break;
      case m_deadline:
        if (d.read_int(v, "deadline", "epoch milliseconds", n)) out.deadline_ms = n;
        break;
      case m_created_at:
        if (d.read_int(v, "created_at", "epoch milliseconds", n)) {
          // Negative is no time a request was made, and would skew the end-to-end latency.
          if (n < 0) d.note(error_kind::invalid_field, "created_at: must not be negative (epoch milliseconds)");
          else out.created_at_ms = n;
        }
        break;
      case m_not_before:
        if (d.read_int(v, "not_before", "epoch milliseconds", n)) out.not_before_ms = n;
        break;
      case m_max_attempts:
        if (d.read_int(v, "max_attempts", "a count", n)) {
          if (n < 1 || n > 100) d.note(error_kind::invalid_field, "max_attempts: must be within 1..100");
          else out.max_attempts = static_cast<int>(n);
        }
        break;
      case m_attempt:
        if (d.read_int(v, "attempt", "a count", n)) {
          if (n < 0 || n > 100) d.note(error_kind::invalid_field, "attempt: must be within 0..100");
          else out.attempt = static_cast<int>(n);
        }
        break;
    }
  }
  if (!doc.current_location().error()) return failure{error_kind::invalid_json, "message: trailing content after the JSON object"};

  // Required members, in the order a person would fix them.
  if (!(seen & m_id)) d.note(error_kind::invalid_field, "id: required");
  if (!(seen & m_provider)) d.note(error_kind::invalid_field, "provider: required");
  if (!(seen & m_type)) d.note(error_kind::invalid_field, "type: required");
  if (!(seen & m_to)) d.note(error_kind::invalid_field, "to: required");
  else if (out.to.empty()) d.note(error_kind::invalid_field, "to: must not be empty");
  if (!(seen & m_body)) d.note(error_kind::invalid_field, "body: required");

  if (have_body && (seen & m_type) && !d.first) {
    d.decode_body(body_raw, buffer_end, out);
    // A passthrough body (or a member decode_body did not read) keeps the whole-body message.
    if (!d.first && body_number_error) d.note(body_number_error->kind, std::move(body_number_error->message));
    if (!d.first) d.check_body(out);
  } else if (body_number_error) {
    d.note(body_number_error->kind, std::move(body_number_error->message));
  }
  if (out.key.empty() && !out.to.empty()) out.key = out.provider + ":" + out.to;
  if (d.first) return std::move(d.first);
  return std::nullopt;
}

}  // namespace sendq::core
