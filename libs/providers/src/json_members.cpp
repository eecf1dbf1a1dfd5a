#include "json_members.hpp"

#include <simdjson.h>

#include "sendq/core/set_string.hpp"

namespace sendq::providers::detail {
namespace {

namespace od = simdjson::ondemand;
using core::set_string;

std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string error_text(simdjson::error_code e) { return std::string(simdjson::error_message(e)); }

// An integer token too long for 64 bits: valid JSON (RFC 8259 sets no range), which simdjson 3.0
// refuses as it does a malformed number.
bool is_big_integer(std::string_view t) noexcept {
  if (t.starts_with('-')) t.remove_prefix(1);
  return t.size() > 18 && t.front() != '0' && t.find_first_not_of("0123456789") == std::string_view::npos;
}

// Reads one scalar (or notes the kind of a container) into `m`. Containers other than the
// nested one are left unread: On-Demand skips them when the loop moves on.
std::optional<std::string> read_value(od::value& v, json_member& m) {
  od::json_type t{};
  if (auto e = v.type().get(t)) return error_text(e);
  switch (t) {
    case od::json_type::null:
    {
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return error_text(e);
      if (!is_null) return std::string("invalid literal");
      m.kind = json_kind::null;
      m.text = "null";
      return std::nullopt;
    }
    case od::json_type::boolean: {
      bool b = false;
      if (auto e = v.get_bool().get(b)) return error_text(e);
      m.kind = json_kind::boolean;
      m.text = b ? "true" : "false";
      return std::nullopt;
    }
    case od::json_type::number: {
      // Keep the token's text (a 64-bit id must never pass through a double), then parse the
      // number in full: that rejects malformed ones such as 01 and says if it is an integer.
      set_string(m.text, trim_right(v.raw_json_token()));
      od::number n;
      if (auto e = v.get_number().get(n)) {
        if (!is_big_integer(m.text)) return error_text(e);
        m.kind = json_kind::number;  // kept as its text; not an integer a caller can take as one
        m.integer = false;
        return std::nullopt;
      }
      m.kind = json_kind::number;
      m.integer = n.is_int64() || n.is_uint64();
      return std::nullopt;
    }
    case od::json_type::string: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return error_text(e);
      m.kind = json_kind::string;
      set_string(m.text, s);
      return std::nullopt;
    }
    case od::json_type::object:
      m.kind = json_kind::object;
      return std::nullopt;
    case od::json_type::array:
      m.kind = json_kind::array;
      return std::nullopt;
  }
  return std::string("unknown JSON type");
}

// Members are written into out[count], out[count + 1], ...: a vector reused from an earlier
// reply keeps its members' strings, so a reply like the last one allocates nothing.
std::optional<std::string> read_object(od::object& obj, std::string_view prefix,
                                       std::string_view nested, json_members& out, std::size_t& count) {
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return error_text(e);
    if (count == out.size()) out.emplace_back();
    const std::size_t at = count++;
    json_member& m = out[at];
    set_string(m.name, prefix);
    m.name.append(key);
    m.text.clear();
    m.integer = false;
    od::value v;
    if (auto e = field.value().get(v)) return error_text(e);
    if (auto err = read_value(v, m)) return "member \"" + m.name + "\": " + *err;
    if (m.kind == json_kind::object && !nested.empty() && key == nested) {
      const std::string inner_prefix = m.name + ".";  // a copy: `out` may grow below
      od::object inner;
      if (auto e = v.get_object().get(inner)) return "member \"" + out[at].name + "\": " + error_text(e);
      if (auto err = read_object(inner, inner_prefix, {}, out, count)) return err;
    }
  }
  return std::nullopt;
}

std::optional<std::string> read_document(std::string_view json, json_members& out, std::string_view nested,
                                         std::size_t& count) {
  // One parser and one padded copy per thread: replies are small and this runs per message.
  thread_local od::parser parser;
  thread_local std::string buffer;
  buffer.reserve(json.size() + simdjson::SIMDJSON_PADDING);
  set_string(buffer, json);
  od::document doc;
  if (auto e = parser.iterate(buffer.data(), json.size(), buffer.capacity()).get(doc)) {
    return "not JSON (" + error_text(e) + ")";
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj)) return "not a JSON object (" + error_text(e) + ")";
  if (auto err = read_object(obj, {}, nested, out, count)) return "not valid JSON: " + *err;
  // Anything after the object (a second value, stray bytes) makes the whole text invalid.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return std::string("not valid JSON: trailing content after the object");
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> read_members(std::string_view json, json_members& out,
                                        std::string_view nested) {
  if (out.capacity() == 0) out.reserve(16);  // replies have a handful of members: no regrowth per member
  std::size_t count = 0;
  auto err = read_document(json, out, nested, count);
  out.resize(err ? 0 : count);
  return err;
}

const json_member* find_member(const json_members& members, std::string_view name) noexcept {
  for (const auto& m : members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::optional<std::string> expect_kind(const json_members& members, std::string_view name,
                                       json_kind k, std::optional<json_kind> alt) {
  const json_member* m = find_member(members, name);
  if (m == nullptr) return "missing \"" + std::string(name) + "\"";
  if (m->kind == k || (alt && m->kind == *alt)) return std::nullopt;
  return "\"" + std::string(name) + "\" is " + std::string(describe(m->kind)) + ", not " +
         std::string(describe(k));
}

std::string_view describe(json_kind k) noexcept {
  switch (k) {
    case json_kind::null: return "null";
    case json_kind::boolean: return "a boolean";
    case json_kind::number: return "a number";
    case json_kind::string: return "a string";
    case json_kind::object: return "an object";
    case json_kind::array: return "an array";
  }
  return "a value";
}

}  // namespace sendq::providers::detail
