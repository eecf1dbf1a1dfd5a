#include "sendq/core/request_decoder.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sendq/core/json_string_check.hpp"
#include "sendq/core/set_string.hpp"
#include "swar.hpp"

namespace sendq::core {
namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;

// The characters of an id ([A-Za-z0-9._:-]), as a table: one load per character and no branch,
// where the ranges cost a compare and a branch each on every character of every request.
constexpr std::array<bool, 256> id_chars = [] {
  std::array<bool, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (char c : {'.', '_', ':', '-'}) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  bool ok = true;
  for (char c : id) ok &= id_chars[static_cast<unsigned char>(c)];
  return ok;
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


bool is_passthrough(message_type t) {
  return t == message_type::link || t == message_type::template_ || t == message_type::custom;
}

// Clears `r` keeping its strings' capacity (a decoder reused on one request saves allocations).
void reset(send_request& r) {
  r.id.clear();
  r.provider.clear();
  r.account.assign("default");
  r.type = message_type::text;
  r.type_read = false;
  r.from.clear();
  r.to.clear();
  r.key.clear();
  r.body = message_body{};
  r.body_json.clear();
  r.ext_json.clear();
  r.provider_fields_json.clear();
  r.deadline_ms.reset();
  r.created_at_ms.reset();
  r.max_attempts.reset();
  r.attempt = 0;
  r.not_before_ms.reset();
  r.retry_members_read = false;
}

// The members each normalized type knows (CONTRACT.md "Normalized bodies"), read by decode_body
// and fast_body alike. A member's index in its type's list is its bit for telling repeats.
struct body_member {
  std::string_view name;
  std::optional<std::string> message_body::*text = nullptr;    // a string member, or
  std::optional<std::int64_t> message_body::*count = nullptr;  // a non-negative integer in `unit`, or
  std::optional<double> message_body::*degrees = nullptr;      // a coordinate
  std::string_view unit = {};
};
using mb = message_body;
constexpr body_member text_members[] = {{"text", &mb::text}};
constexpr body_member image_members[] = {
    {"url", &mb::url}, {"name", &mb::name}, {"size", nullptr, &mb::size, nullptr, "bytes"},
    {"width", nullptr, &mb::width, nullptr, "pixels"}, {"height", nullptr, &mb::height, nullptr, "pixels"}};
constexpr body_member voice_members[] = {
    {"url", &mb::url}, {"name", &mb::name}, {"data_base64", &mb::data_base64}, {"format", &mb::format},
    {"duration_ms", nullptr, &mb::duration_ms, nullptr, "milliseconds"}, {"size", nullptr, &mb::size, nullptr, "bytes"}};
constexpr body_member video_members[] = {
    {"url", &mb::url}, {"name", &mb::name}, {"thumb_url", &mb::thumb_url}, {"thumb_name", &mb::thumb_name},
    {"thumb_size", nullptr, &mb::thumb_size, nullptr, "bytes"}, {"title", &mb::title},
    {"description", &mb::description}, {"size", nullptr, &mb::size, nullptr, "bytes"},
    {"duration_ms", nullptr, &mb::duration_ms, nullptr, "milliseconds"},
    {"width", nullptr, &mb::width, nullptr, "pixels"}, {"height", nullptr, &mb::height, nullptr, "pixels"}};
constexpr body_member location_members[] = {
    {"lat", nullptr, nullptr, &mb::lat}, {"lng", nullptr, nullptr, &mb::lng}, {"address", &mb::address}};
constexpr body_member file_members[] = {{"url", &mb::url}, {"name", &mb::name}, {"size", nullptr, &mb::size, nullptr, "bytes"}};

// The members of `type` (none for the passthrough types).
std::span<const body_member> body_members(message_type type) {
  switch (type) {
    case message_type::text: return text_members;
    case message_type::image: return image_members;
    case message_type::voice: return voice_members;
    case message_type::video: return video_members;
    case message_type::location: return location_members;
    case message_type::file: return file_members;
    case message_type::link:
    case message_type::template_:
    case message_type::custom: return {};
  }
  return {};
}

// Index of member `k` in `members`, or -1. Names are short: compared inline, not by memcmp calls.
int body_member_index(std::span<const body_member> members, std::string_view k) {
  for (std::size_t i = 0; i < members.size(); ++i) {
    const std::string_view name = members[i].name;
    if (name.size() != k.size() || name[0] != k[0]) continue;
    std::size_t j = 1;
    while (j < k.size() && name[j] == k[j]) ++j;
    if (j == k.size()) return static_cast<int>(i);
  }
  return -1;
}

// Eight bytes at a time ("SWAR"): a request's strings and names are mostly 2 to 60 bytes, where a
// byte loop costs a compare and a branch per byte and a memchr call more than the scan. They may
// only be used on text inside the decoder's padded copy of the request (`impl::buffer`, with
// SIMDJSON_PADDING bytes after its end), as a word may run up to 7 bytes past a string's end: the
// bytes past it are masked off or never reached.
constexpr bool little_endian = std::endian::native == std::endian::little;  // the scans below read bytes in memory order

using swar::bytes_equal;
using swar::load8;

[[gnu::always_inline]] inline bool has_backslash(std::string_view s) {
  if constexpr (!little_endian) return s.find('\\') != std::string_view::npos;
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    if (bytes_equal(load8(p), '\\')) return true;
  }
  if (n == 0) return false;
  // The last 1-7 bytes, the rest masked off: a wrong mark among them needs a true one below it.
  return (bytes_equal(load8(p), '\\') & ((std::uint64_t{1} << (8 * n)) - 1)) != 0;
}

// The first '"' or '\\' at or after `p`, which the caller knows comes at least 8 bytes before the
// buffer's end (the padding: the word holding it is read whole).
const char* quote_or_backslash(const char* p) {
  if constexpr (little_endian) {
    for (;; p += 8) {
      const std::uint64_t w = load8(p);
      if (const std::uint64_t m = bytes_equal(w, '"') | bytes_equal(w, '\\')) {
        return p + std::countr_zero(m) / 8;
      }
    }
  }
  while (*p != '"' && *p != '\\') ++p;
  return p;
}

// Equal to a literal: a fixed-size compare the compiler inlines (no memcmp call per member).
template <std::size_t N>
bool is(std::string_view k, const char (&lit)[N]) {
  return k.size() == N - 1 && std::memcmp(k.data(), lit, N - 1) == 0;
}

// The top-level member `k` names, or none (0), by length first.
member member_of(std::string_view k) {
  switch (k.size()) {
    case 2: return is(k, "id") ? m_id : is(k, "to") ? m_to : member{};
    case 3: return is(k, "key") ? m_key : is(k, "ext") ? m_ext : member{};
    case 4: return is(k, "type") ? m_type : is(k, "from") ? m_from : is(k, "body") ? m_body : member{};
    case 7: return is(k, "account") ? m_account : is(k, "attempt") ? m_attempt : member{};
    case 8: return is(k, "provider") ? m_provider : is(k, "deadline") ? m_deadline : member{};
    case 10: return is(k, "created_at") ? m_created_at : is(k, "not_before") ? m_not_before : member{};
    case 12: return is(k, "max_attempts") ? m_max_attempts : member{};
    case 15: return is(k, "provider_fields") ? m_provider_fields : member{};
    default: return member{};
  }
}

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
  std::string_view failed_string;    // the token of the last string string_of could not read
  std::string_view failed_key;       // the text of the last member name with an escape key_of read

  // A member name, read in place when it has no escape (the usual case: no call into simdjson's
  // string unescaper), unescaped otherwise. Stage 1 has seen the closing quote in the buffer, so
  // the scan ends.
  error_code key_of(simdjson::simdjson_result<od::field>& result, std::string_view& k) {
    if (result.error()) return result.error();
    od::field& field = result.value_unsafe();
    const char* p = field.key().raw();
    if (p >= buffer.data() && p < buffer.data() + buffer.size()) {
      const char* q = quote_or_backslash(p);
      if (*q == '"') {
        k = std::string_view(p, static_cast<std::size_t>(q - p));
        return simdjson::SUCCESS;
      }
      // An escape: keep the name's text for an error message, as unescaped_key() consumes it.
      failed_key = quoted_token(p, buffer.data() + buffer.size());
    } else {
      failed_key = {};  // not in our buffer: the error keeps simdjson's words
    }
    return field.unescaped_key().get(k);
  }

  // A string value, in place when it has no escape (stage 1 has checked its UTF-8 and control
  // characters already), unescaped by simdjson otherwise. Not a string: INCORRECT_TYPE. The
  // token runs from the opening quote to the next structural character: the closing quote is
  // its last non-blank character. Only for values read from `buffer` (has_backslash reads past
  // the string). Inlined by force, with has_backslash: GCC kept it out of line (a call per string
  // of every request); inlined, a decode takes 6.8% fewer instructions and about 11% less time.
  [[gnu::always_inline]] error_code string_of(od::value& v, std::string_view& out) {
    std::string_view token = v.raw_json_token();  // does not consume
    while (!token.empty() && (token.back() == ' ' || token.back() == '\n' || token.back() == '\r' || token.back() == '\t')) {
      token.remove_suffix(1);
    }
    if (token.size() >= 2 && token.front() == '"' && token.back() == '"') {
      const std::string_view content = token.substr(1, token.size() - 2);
      if (!has_backslash(content)) {
        od::raw_json_string skipped;
        if (auto e = v.get_raw_json_string().get(skipped); e) return e;
        out = content;
        return simdjson::SUCCESS;
      }
    }
    if (auto e = v.get_string().get(out); e) {
      failed_string = token;  // for note_not_string
      return e;
    }
    return simdjson::SUCCESS;
  }

  void note(error_kind k, std::string msg) {
    if (!first) first = failure{k, std::move(msg)};
  }

  // string_of's error `e` for the member `where`: not a string, or a string it cannot unescape.
  void note_not_string(error_code e, std::string where) {
    if (e == simdjson::STRING_ERROR) {
      note(error_kind::invalid_json, where + ": " + string_error(failed_string));
    } else {
      note(error_kind::invalid_field, where + ": must be a string");
    }
  }

  // Reads a string member; records an error naming `field` when it is not a string.
  // `prefix` + `field` names the member in an error ("body." + "url"): joined only on an error,
  // so that valid requests allocate no field paths.
  bool read_string(od::value v, std::string_view field, std::string& out, std::string_view prefix = {}) {
    std::string_view s;
    if (auto e = string_of(v, s); e) {
      note_not_string(e, std::string(prefix) + std::string(field));
      return false;
    }
    set_string(out, s);
    return true;
  }

  bool read_int(od::value v, std::string_view field, std::string_view what, std::int64_t& out,
                std::string_view prefix = {}) {
    if (auto e = v.get_int64().get(out); e) {
      std::string msg = std::string(prefix) + std::string(field) + ": must be an integer";
      // An integer token that get_int64 refused is out of range (2^64, 1e400 is not an integer).
      std::string_view token = v.raw_json_token();
      while (!token.empty() && (token.back() == ' ' || token.back() == '\n' || token.back() == '\r' || token.back() == '\t')) {
        token.remove_suffix(1);
      }
      const auto digits = token.substr(!token.empty() && token.front() == '-' ? 1 : 0);
      if (digits.size() > 1 && digits.front() == '0' &&
          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        // simdjson refuses 01 as a number error, which read as "out of range" below.
        note(error_kind::invalid_json, std::string(prefix) + std::string(field) + ": " + std::string(token) +
                                           " is not a JSON number (no leading zeros, RFC 8259 6)");
        return false;
      }
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
      where = member_path(*dup);
      key_scratch.resize(start);
      return false;
    }
    key_scratch.resize(start);
    for (auto field : obj) {
      if (!no_duplicates(field.value, where)) {
        where.insert(0, member_path(field.key));
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
    if (!validate_raw(raw, field, number_error)) return std::nullopt;
    return raw;
  }

  // raw_json() only skips over an object; this validates it completely (DOM parse, duplicate
  // member names), so that we never pass on bad JSON. Notes the error and returns false, except
  // for a number simdjson cannot represent when `number_error` takes it (see read_object_raw).
  bool validate_raw(std::string_view raw, std::string_view field, std::optional<failure>* number_error) {
    simdjson::dom::element el;
    if (auto e = dom_parser.parse(raw.data(), raw.size(), false).get(el); e) {
      std::string msg = std::string(field) + ": " + simdjson::error_message(e);
      if (e == simdjson::DEPTH_ERROR) {
        // Nesting is no size limit (too_large): it is JSON we will not read, so invalid_json.
        msg = std::string(field) + ": JSON nested too deeply: more than " + std::to_string(dom_parser.max_depth()) +
              " levels of objects and arrays (the limit)";
      } else if (e == simdjson::STRING_ERROR) {
        if (auto bad = find_bad_string(raw)) msg = std::string(field) + *bad;  // name the string, not `field`
      }
      if (number_error && e == simdjson::NUMBER_ERROR) {
        *number_error = failure{error_kind::invalid_json, std::move(msg)};
        return true;
      }
      note(error_kind::invalid_json, std::move(msg));
      return false;
    }
    if (std::string where; !no_duplicates(el, where)) {
      note(error_kind::invalid_field, std::string(field) + where + ": appears more than once");
      return false;
    }
    return true;
  }

  // True when `bytes` is a valid JSON object followed by more than whitespace (error path only).
  bool valid_object_then_more(std::string_view bytes) {
    std::size_t i = bytes.find_first_not_of(" \t\r\n");
    if (i == std::string_view::npos || bytes[i] != '{') return false;
    int depth = 0;
    bool in_string = false;
    for (; i < bytes.size(); ++i) {
      const char c = bytes[i];
      if (in_string) {
        if (c == '\\') ++i;
        else if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        break;
      }
    }
    if (i >= bytes.size() || bytes.find_first_not_of(" \t\r\n", i + 1) == std::string_view::npos) return false;
    simdjson::dom::element el;
    return !dom_parser.parse(bytes.data(), i + 1, true).get(el);
  }

  void decode_body(std::string_view raw, const char* buffer_end, send_request& out);
  bool fast_body(od::value v, send_request& out, std::string_view& raw);
  bool fast_flat_object(od::value v, std::string_view& raw);
  std::optional<failure> decode_document(std::size_t size, const char* buffer_end, send_request& out, bool fast,
                                         bool& redo);
  void check_body(send_request& out);
};

request_decoder::request_decoder(std::size_t max_request_bytes)
    : impl_(std::make_unique<impl>(max_request_bytes)) {}
request_decoder::~request_decoder() = default;

// A normalized body (text, image, ...) parsed on its own, after the document: in the careful pass,
// and when `type` comes after `body` (fast_body needs the type first). Every member is read (so
// checked) or refused, and duplicates are caught by a bit per known member. A body that is in any
// way irregular is validated the slow way first (DOM parse, duplicates), so that an invalid or
// too deep body is named exactly as a passthrough body would be; only a body that is valid JSON
// gets the member's own message.
void request_decoder::impl::decode_body(std::string_view raw, const char* buffer_end,
                                        send_request& out) {
  bool validated = false;
  auto fail = [&](error_kind kind, std::string msg) {
    if (!validated) {
      validated = true;
      std::optional<failure> number_error;  // the member's own message says more
      if (!validate_raw(raw, "body", &number_error)) return;
    }
    note(kind, std::move(msg));
  };
  // read_string/read_int note directly: run the validation first, once, when they would fail.
  auto irregular = [&] {
    if (validated) return;
    validated = true;
    std::optional<failure> number_error;
    (void)validate_raw(raw, "body", &number_error);
  };

  auto& b = out.body;
  od::document doc;
  const auto capacity = static_cast<std::size_t>(buffer_end - raw.data());
  if (auto e = body_parser.iterate(raw.data(), raw.size(), capacity).get(doc); e) {
    fail(error_kind::invalid_json, std::string("body: ") + simdjson::error_message(e));
    return;
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj); e) {
    fail(error_kind::invalid_field, "body: must be a JSON object");
    return;
  }
  const auto type = out.type;
  const auto members = body_members(type);
  if (members.empty()) return;  // passthrough: validated whole by the caller
  constexpr std::string_view prefix = "body.";
  std::uint32_t seen = 0;

  for (auto field : obj) {
    std::string_view k;
    if (auto e = field.unescaped_key().get(k); e) {
      fail(error_kind::invalid_json, std::string("body: ") + simdjson::error_message(e));
      return;
    }
    od::value v;
    if (auto e = field.value().get(v); e) {
      fail(error_kind::invalid_json, std::string(prefix) + std::string(k) + ": " + simdjson::error_message(e));
      return;
    }
    // Scalars only: anything else is an error, possibly of the JSON itself.
    od::json_type jt{};
    if (auto e = v.type().get(jt); e || jt == od::json_type::object || jt == od::json_type::array) irregular();

    auto str = [&](std::optional<std::string>& dst) {
      std::string_view sv;
      const std::string_view token = v.raw_json_token();  // get_string consumes it
      if (auto e = v.get_string().get(sv); e == simdjson::STRING_ERROR) {
        // Bad in this string only: named here, not by the body's validation (which names the body).
        note(error_kind::invalid_json, std::string(prefix) + std::string(k) + ": " + string_error(token));
        return;
      } else if (e) {
        fail(error_kind::invalid_field, std::string(prefix) + std::string(k) + ": must be a string");
        return;
      }
      dst.emplace(sv);
    };
    auto num = [&](std::optional<std::int64_t>& dst, std::string_view unit) {
      std::int64_t n = 0;
      if (jt != od::json_type::number) irregular();
      if (auto e = v.get_int64().get(n); e) {
        irregular();
        (void)read_int(v, k, unit, n, prefix);
        return;
      }
      if (n < 0) {
        fail(error_kind::invalid_field, std::string(prefix) + std::string(k) + ": must not be negative");
        return;
      }
      dst = n;
    };
    auto real = [&](std::optional<double>& dst) {
      double d = 0;
      if (auto e = v.get_double().get(d); e) {
        fail(error_kind::invalid_field, std::string(prefix) + std::string(k) + ": must be a number (degrees)");
        return;
      }
      dst = d;
    };
    const int i = body_member_index(members, k);
    const std::uint32_t bit = i < 0 ? 0 : 1u << i;
    if (i >= 0) {
      const auto& m = members[static_cast<std::size_t>(i)];
      if (m.text) str(b.*m.text);
      else if (m.count) num(b.*m.count, m.unit);
      else real(b.*m.degrees);
    }
    if (bit == 0) {
      fail(error_kind::invalid_field,
           std::string(prefix) + std::string(k) + ": unknown field for type " + std::string(to_string(type)));
    } else if (seen & bit) {
      fail(error_kind::invalid_field, std::string(prefix) + std::string(k) + ": appears more than once");
    }
    seen |= bit;
  }
  if (!doc.current_location().error()) fail(error_kind::invalid_json, "body: trailing content");
}

// A normalized body read in the document's own pass, with no second parse: every member is
// read (strings unescaped, numbers parsed), which checks it, so a body it accepts is valid JSON.
// Returns false, having noted nothing, at the first thing that is not a perfectly valid body of
// the type (wrong JSON type, unknown or repeated member, negative size, bad JSON): the careful
// pass then names it. `raw` is the body's text, as object::raw_json() would give it.
bool request_decoder::impl::fast_body(od::value v, send_request& out, std::string_view& raw) {
  const char* begin = v.raw_json_token().data();  // the '{', not consumed
  od::object obj;
  if (v.get_object().get(obj)) return false;
  auto& b = out.body;
  const auto members = body_members(out.type);
  if (members.empty()) return false;  // passthrough types are read by fast_flat_object
  std::uint32_t seen = 0;
  for (auto field : obj) {
    std::string_view k;
    if (key_of(field, k)) return false;
    od::value& fv = field.value_unsafe().value();  // no simdjson_result copy (a store-forwarding stall)
    bool ok = true;
    auto str = [&](std::optional<std::string>& dst) {
      std::string_view sv;
      if (string_of(fv, sv)) ok = false;
      else dst.emplace(sv);
    };
    auto num = [&](std::optional<std::int64_t>& dst) {
      std::int64_t n = 0;
      if (fv.get_int64().get(n) || n < 0) ok = false;
      else dst = n;
    };
    auto real = [&](std::optional<double>& dst) {
      double d = 0;
      if (fv.get_double().get(d)) ok = false;
      else dst = d;
    };
    const int i = body_member_index(members, k);
    if (i < 0) return false;
    const std::uint32_t bit = 1u << i;
    const auto& m = members[static_cast<std::size_t>(i)];
    if (m.text) str(b.*m.text);
    else if (m.count) num(b.*m.count);
    else real(b.*m.degrees);
    if (!ok || (seen & bit)) return false;
    seen |= bit;
  }
  // Past the closing brace: the next token (',' or '}') ends the text, as in raw_json().
  const char* end = nullptr;
  if (v.current_location().get(end) || end <= begin) return false;
  raw = std::string_view(begin, static_cast<std::size_t>(end - begin));
  return true;
}

// A passthrough object (ext, provider_fields, a link/template/custom body) read in the
// document's own pass when it is flat: members with string, plain number, boolean or null values,
// at most 16 of them, no repeated name. Reading every value checks it, so what this accepts is
// valid JSON the DOM would take alike. Returns false, noting nothing, for anything else (nesting,
// long integers, any error): the careful pass validates such an object with the DOM.
bool request_decoder::impl::fast_flat_object(od::value v, std::string_view& raw) {
  const char* begin = v.raw_json_token().data();  // the '{', not consumed
  od::object obj;
  if (v.get_object().get(obj)) return false;
  key_scratch.clear();
  for (auto field : obj) {
    std::string_view k;
    if (key_of(field, k)) return false;
    od::value& fv = field.value_unsafe().value();  // no simdjson_result copy (a store-forwarding stall)
    if (key_scratch.size() == 16 || std::find(key_scratch.begin(), key_scratch.end(), k) != key_scratch.end()) {
      return false;
    }
    key_scratch.push_back(k);
    od::json_type t{};
    if (fv.type().get(t)) return false;
    switch (t) {
      case od::json_type::string: {
        std::string_view sv;
        if (string_of(fv, sv)) return false;
        break;
      }
      case od::json_type::number: {
        // Short integers, and decimals/exponents that parse: read the same by every JSON reader.
        const std::string_view token = fv.raw_json_token();
        const bool plain_int = token.find_first_of(".eE") == std::string_view::npos;
        if (plain_int) {
          std::int64_t n = 0;
          if (token.size() > 19 || fv.get_int64().get(n)) return false;
        } else {
          double d = 0;
          if (fv.get_double().get(d)) return false;
        }
        break;
      }
      case od::json_type::boolean: {
        bool b = false;
        if (fv.get_bool().get(b)) return false;
        break;
      }
      case od::json_type::null: {
        bool is_null = false;
        if (fv.is_null().get(is_null) || !is_null) return false;
        break;
      }
      default:
        return false;
    }
  }
  key_scratch.clear();
  const char* end = nullptr;
  if (v.current_location().get(end) || end <= begin) return false;
  raw = std::string_view(begin, static_cast<std::size_t>(end - begin));
  return true;
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
  reset(out);
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

  bool redo = false;
  auto f = d.decode_document(bytes.size(), buffer_end, out, true, redo);
  if (redo) {
    // The fast pass met something irregular in the body: the careful pass names it.
    d.first.reset();
    reset(out);
    f = d.decode_document(bytes.size(), buffer_end, out, false, redo);
  }
  if (f && f->kind == error_kind::invalid_json && f->message.starts_with("message: not valid JSON") &&
      d.valid_object_then_more(bytes)) {
    // simdjson says "ended early in the middle of an object" for `{...}xyz`.
    f->message = "message: trailing content after the JSON object";
  }
  return f;
}

// One pass over the padded copy in `buffer`. With `fast`, a normalized body whose type is already
// known is read in the same pass (fast_body); anything irregular in it sets `redo` and ends the
// pass, and the careful pass (fast = false) validates the body on its own and names the error.
std::optional<failure> request_decoder::impl::decode_document(std::size_t size, const char* buffer_end,
                                                              send_request& out, bool fast, bool& redo) {
  impl& d = *this;
  const std::size_t capacity = static_cast<std::size_t>(buffer_end - buffer.data());
  od::document doc;
  if (auto e = d.parser.iterate(d.buffer.data(), size, capacity).get(doc); e) {
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
  bool body_done = false;  // read by fast_body already
  std::optional<failure> body_number_error;  // see read_object_raw
  for (auto field : obj) {
    std::string_view k;
    if (auto e = d.key_of(field, k); e == simdjson::STRING_ERROR && !d.failed_key.empty()) {
      return failure{error_kind::invalid_json, "message: " + member_name_error(d.failed_key)};
    } else if (e) {
      return failure{error_kind::invalid_json, json_error_message(e)};
    }
    od::value& v = field.value_unsafe().value();  // key_of checked the field: no error to take

    const member bit = member_of(k);
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
        std::string_view t;
        if (auto e = d.string_of(v, t); e) {
          d.note_not_string(e, "type");
        } else if (auto mt = parse_message_type(t)) {
          out.type = *mt;
          out.type_read = true;
        } else {
          d.note(error_kind::unsupported_type, "type: '" + std::string(t) +
                                                   "' is not one of text, image, voice, video, location, file, link, template, custom");
        }
        break;
      }
      case m_from: d.read_string(v, "from", out.from); break;
      case m_to: d.read_string(v, "to", out.to); break;
      case m_key: d.read_string(v, "key", out.key); break;
      case m_body: {
        if (fast && (seen & m_type) && !d.first) {
          const bool ok = is_passthrough(out.type) ? d.fast_flat_object(v, body_raw) : d.fast_body(v, out, body_raw);
          if (!ok) {
            redo = true;
            return std::nullopt;
          }
          set_string(out.body_json, body_raw);
          have_body = true;
          body_done = true;
          break;
        }
        // Validated after the loop, when the type is known (see decode_body).
        od::object body;
        if (v.get_object().get(body)) {
          d.note(error_kind::invalid_field, "body: must be a JSON object");
        } else if (auto e = body.raw_json().get(body_raw); e) {
          d.note(error_kind::invalid_json, std::string("body: ") + simdjson::error_message(e));
        } else {
          have_body = true;
          set_string(out.body_json, body_raw);
        }
        break;
      }
      case m_ext:
      case m_provider_fields: {
        std::string& dst = bit == m_ext ? out.ext_json : out.provider_fields_json;
        const std::string_view name = bit == m_ext ? "ext" : "provider_fields";
        if (std::string_view raw; fast && !d.first) {
          if (!d.fast_flat_object(v, raw)) {
            redo = true;
            return std::nullopt;
          }
          set_string(dst, raw);
        } else if (auto checked = d.read_object_raw(v, name)) {
          set_string(dst, *checked);
        }
        break;
      }
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
  out.retry_members_read = (seen & (m_attempt | m_not_before)) != 0;
  if (!doc.current_location().error()) return failure{error_kind::invalid_json, "message: trailing content after the JSON object"};

  // Required members: every missing one named at once ("id, to: required"), in the contract's order.
  if ((seen & (m_id | m_provider | m_type | m_to | m_body)) != (m_id | m_provider | m_type | m_to | m_body)) {
    std::string missing;
    for (const auto& [bit, name] : {std::pair{m_id, "id"}, std::pair{m_provider, "provider"}, std::pair{m_type, "type"},
                                    std::pair{m_to, "to"}, std::pair{m_body, "body"}}) {
      if (!(seen & bit)) missing.append(missing.empty() ? "" : ", ").append(name);
    }
    d.note(error_kind::invalid_field, missing + ": required");
  }
  if ((seen & m_to) && out.to.empty()) d.note(error_kind::invalid_field, "to: must not be empty");

  if (body_done) {
    if (!d.first) d.check_body(out);
  } else if (have_body && (seen & m_type) && !d.first && !is_passthrough(out.type)) {
    d.decode_body(body_raw, buffer_end, out);  // reads, and so checks, a normalized body in one pass
    if (!d.first) d.check_body(out);
  } else if (have_body && d.validate_raw(body_raw, "body", &body_number_error) && body_number_error) {
    // Providers read a passthrough body raw: a number they may not read alike is refused.
    d.note(body_number_error->kind, std::move(body_number_error->message));
  }
  if (out.key.empty() && !out.to.empty()) out.key.append(out.provider).append(1, ':').append(out.to);
  if (d.first) return std::move(d.first);
  return std::nullopt;
}


}  // namespace sendq::core
