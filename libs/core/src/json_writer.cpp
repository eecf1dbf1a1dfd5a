#include "sendq/core/json_writer.hpp"

#include <charconv>
#include <cmath>

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

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      // Copy the run of text that needs no escaping in one go: ASCII and valid multi-byte
      // characters (CJK text would otherwise be appended one character at a time).
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
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
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
  out.push_back('"');
}

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
  comma();
  append_json_string(out_, k);
  out_.push_back(':');
  need_comma_ = false;
  return *this;
}

json_writer& json_writer::value(std::string_view s) {
  comma();
  append_json_string(out_, s);
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
