#include "sendq/core/json_writer.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "swar.hpp"

namespace sendq::core {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  unsigned cp = 0;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xE0) == 0xC0) { n = 2; cp = b0 & 0x1F; }
  else if ((b0 & 0xF0) == 0xE0) { n = 3; cp = b0 & 0x0F; }
  else if ((b0 & 0xF8) == 0xF0) { n = 4; cp = b0 & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  // Reject overlong forms, surrogates and code points past U+10FFFF.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// The JSON escape of an ASCII byte that needs one: '"', '\\' or a control character.
void append_escape(std::string& out, unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  switch (c) {
    case '"': out += "\\\""; return;
    case '\\': out += "\\\\"; return;
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '\b': out += "\\b"; return;
    case '\f': out += "\\f"; return;
    default: break;
  }
  out += "\\u00";
  out.push_back(hex[c >> 4]);
  out.push_back(hex[c & 0xF]);
}

// One escape (or U+FFFD, or a valid multi-byte character) at a time: for text that is not
// valid UTF-8, which the fast path below hands over to.
void append_escaped_slowly(std::string& out, std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      // Copy the run of text that needs no escaping in one go: ASCII and valid multi-byte
      // characters.
      std::size_t j = i + 1;
      while (j < s.size()) {
        const auto d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d == '"' || d == '\\') break;
        if (d < 0x80) {
          ++j;
          continue;
        }
        const std::size_t n = utf8_sequence_length(s, j);
        if (n == 0) break;  // replaced below
        j += n;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    if (c < 0x80) {
      append_escape(out, c);
      ++i;
      continue;
    }
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD keeps the output valid JSON
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
}

// Eight bytes at a time (SWAR): does the word hold a byte below 0x20, a '"' or a '\\'? Exact as
// a yes/no (a borrow only spreads upwards from a byte that matched); bytes >= 0x80 never match.
using swar::highs;
inline bool has_byte_to_escape(std::uint64_t w) {
  return (swar::bytes_below(w, 0x20) | swar::bytes_equal(w, '"') | swar::bytes_equal(w, '\\')) != 0;
}

// Bytes that go into a JSON string as they are whatever surrounds them: printable ASCII but '"'
// and '\\'.
constexpr auto plain_ascii = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();

// Length of the prefix of `s` that goes into a JSON string as it is (all of it, mostly: keys, ids,
// most text): eight bytes at a time (SWAR), then one by one.
std::size_t plain_prefix(std::string_view s) noexcept {
  const char* p = s.data();
  const char* const end = p + s.size();
  while (end - p >= 8) {
    const std::uint64_t w = swar::load8(p);
    if (has_byte_to_escape(w) || (w & highs) != 0) break;
    p += 8;
  }
  while (p < end && plain_ascii[static_cast<unsigned char>(*p)]) ++p;
  return static_cast<std::size_t>(p - s.data());
}

// [,]"s"[:] as one append, when `s` (whose first `plain` bytes need no escape) is short and
// plain throughout; false otherwise, with nothing written. Each std::string call costs more than
// copying a key or an id, and keys and ids are most of what is written.
bool append_short_plain(std::string& out, bool comma, std::string_view s, bool colon, std::size_t plain) {
  constexpr std::size_t short_string = 96;
  if (s.size() > short_string || plain != s.size()) return false;
  char buf[short_string + 4];
  std::size_t n = 0;
  if (comma) buf[n++] = ',';
  buf[n++] = '"';
  if (!s.empty()) std::memcpy(buf + n, s.data(), s.size());
  n += s.size();
  buf[n++] = '"';
  if (colon) buf[n++] = ':';
  out.append(buf, n);
  return true;
}

// `s` quoted and escaped, its first `plain` bytes known to need no escape. Past them: escapes are
// written where they fall and the runs between them appended whole; the first byte >= 0x80 has
// the rest checked as UTF-8 in one call (simdjson's SIMD validator), after which such bytes pass
// as they are. Text that is not valid UTF-8 goes the slow way, each bad byte becoming U+FFFD.
void append_quoted(std::string& out, std::string_view s, std::size_t plain) {
  const char* p = s.data() + plain;
  const char* const end = s.data() + s.size();
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  if (p == end) {
    out.append(s.data(), s.size());
    out.push_back('"');
    return;
  }
  const char* run = s.data();  // first byte not appended yet
  bool valid_utf8 = false;  // [p, end) is known to be valid UTF-8
  while (p < end) {
    if (end - p >= 8) {
      const std::uint64_t w = swar::load8(p);
      if (!has_byte_to_escape(w) && (valid_utf8 || (w & highs) == 0)) {
        p += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(*p);
    if (c >= 0x80) {
      if (!valid_utf8) {
        // Everything before p was ASCII, so p starts a character.
        if (!simdjson::validate_utf8(p, static_cast<std::size_t>(end - p))) {
          out.append(run, static_cast<std::size_t>(p - run));
          append_escaped_slowly(out, std::string_view(p, static_cast<std::size_t>(end - p)));
          out.push_back('"');
          return;
        }
        valid_utf8 = true;
      }
      ++p;
    } else if (!plain_ascii[c]) {
      out.append(run, static_cast<std::size_t>(p - run));
      append_escape(out, c);
      run = ++p;
    } else {
      ++p;
    }
  }
  out.append(run, static_cast<std::size_t>(end - run));
  out.push_back('"');
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  const std::size_t plain = plain_prefix(s);
  if (!append_short_plain(out, false, s, false, plain)) append_quoted(out, s, plain);
}

bool is_plain_json_text(std::string_view s) noexcept { return plain_prefix(s) == s.size(); }

void json_writer::comma() {
  if (need_comma_) out_.push_back(',');
  need_comma_ = true;
}

json_writer& json_writer::begin_object() {
  comma();
  out_.push_back('{');
  need_comma_ = false;
  return *this;
}

json_writer& json_writer::end_object() {
  out_.push_back('}');
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::begin_array() {
  comma();
  out_.push_back('[');
  need_comma_ = false;
  return *this;
}

json_writer& json_writer::end_array() {
  out_.push_back(']');
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::key(std::string_view k) {
  const std::size_t plain = plain_prefix(k);
  if (!append_short_plain(out_, need_comma_, k, true, plain)) {
    comma();
    append_quoted(out_, k, plain);
    out_.push_back(':');
  }
  need_comma_ = false;
  return *this;
}

json_writer& json_writer::value(std::string_view s) {
  const std::size_t plain = plain_prefix(s);
  if (!append_short_plain(out_, need_comma_, s, false, plain)) {
    comma();
    append_quoted(out_, s, plain);
  }
  need_comma_ = true;
  return *this;
}

json_writer& json_writer::value(std::int64_t n) {
  comma();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out_.append(buf, end);
  return *this;
}

json_writer& json_writer::value(double d) {
  comma();
  if (!std::isfinite(d)) {
    out_ += "null";
    return *this;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  out_.append(buf, end);
  return *this;
}

json_writer& json_writer::value(bool b) {
  comma();
  out_ += b ? "true" : "false";
  return *this;
}

json_writer& json_writer::null() {
  comma();
  out_ += "null";
  return *this;
}

json_writer& json_writer::raw(std::string_view json) {
  comma();
  out_.append(json);
  return *this;
}

}  // namespace sendq::core
