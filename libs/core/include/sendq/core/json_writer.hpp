#pragma once
/// A minimal JSON writer that appends to a caller-owned std::string (no allocation of its own).
#include <cstdint>
#include <string>
#include <string_view>

namespace sendq::core {

/// Appends `s` as a JSON string literal (quotes included), escaping as RFC 8259 requires.
/// Invalid UTF-8 bytes are replaced by U+FFFD so that the output is always valid JSON.
void append_json_string(std::string& out, std::string_view s);

/// True when `s` goes into a JSON string as it is: printable ASCII but '"' and '\\' throughout.
bool is_plain_json_text(std::string_view s) noexcept;

class json_writer {
 public:
  explicit json_writer(std::string& out) : out_(out) {}
  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view k);
  json_writer& value(std::string_view s);
  json_writer& value(const char* s) { return value(std::string_view(s)); }
  json_writer& value(std::int64_t n);
  json_writer& value(int n) { return value(static_cast<std::int64_t>(n)); }
  json_writer& value(double d);
  json_writer& value(bool b);
  json_writer& null();
  /// Writes already-valid JSON text as a value (passthrough objects).
  json_writer& raw(std::string_view json);
  /// key + string value.
  template <class T>
  json_writer& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

 private:
  void comma();
  std::string& out_;
  bool need_comma_ = false;
};

}  // namespace sendq::core
