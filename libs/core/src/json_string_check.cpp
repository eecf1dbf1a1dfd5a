#include "sendq/core/json_string_check.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace sendq::core {
namespace {

// The two wordings, the same for every caller.
constexpr std::string_view not_valid = "not a valid JSON string: ";
constexpr std::string_view name_not_valid = "a member name is not a valid JSON string: ";

// The code unit of the four hex digits at `at` (a \u escape's), or false.
bool hex4(std::string_view s, std::size_t at, std::uint32_t& cp) {
  if (at + 4 > s.size()) return false;
  cp = 0;
  for (std::size_t i = at; i < at + 4; ++i) {
    const char c = s[i];
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
    if (d < 0) return false;
    cp = cp << 4 | static_cast<std::uint32_t>(d);
  }
  return true;
}

// Why simdjson refused to unescape a string (STRING_ERROR): the first escape in `s` (its text
// between the quotes) that JSON does not have, or half a surrogate pair, which simdjson refuses
// as not Unicode. Empty if none is found. Error path only.
std::string bad_escape(std::string_view s) {
  for (std::size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != '\\') continue;
    const char c = s[i + 1];
    if (c != 'u') {
      if (std::string_view("\"\\/bfnrt").find(c) == std::string_view::npos) {
        return c > ' ' && c < 0x7f ? "\\" + std::string(1, c) + " is not a JSON escape"
                                   : "a backslash before a character that is not a JSON escape";
      }
      ++i;
      continue;
    }
    std::uint32_t cp = 0, low = 0;
    if (!hex4(s, i + 2, cp)) return "\\u must be followed by four hex digits";
    if (cp >= 0xd800 && cp <= 0xdbff && s.substr(i + 6, 2) == "\\u" && hex4(s, i + 8, low) && low >= 0xdc00 &&
        low <= 0xdfff) {
      i += 11;  // a pair: one character
    } else if (cp >= 0xd800 && cp <= 0xdfff) {
      return std::string(s.substr(i, 6)) + " is a lone UTF-16 surrogate (not a Unicode character)";
    } else {
      i += 5;
    }
  }
  return {};
}

// Why the string `token` (its raw JSON text) cannot be unescaped; simdjson's words if no escape
// explains it.
std::string why_not_unescaped(std::string_view token) {
  while (!token.empty() &&
         (token.back() == ' ' || token.back() == '\n' || token.back() == '\r' || token.back() == '\t')) {
    token.remove_suffix(1);
  }
  if (token.size() >= 2 && token.front() == '"' && token.back() == '"') token = token.substr(1, token.size() - 2);
  auto why = bad_escape(token);
  if (why.empty()) why = simdjson::error_message(simdjson::STRING_ERROR);
  return why;
}

}  // namespace

std::string member_path(std::string_view name) {
  std::string p = "." + std::string(name.substr(0, 64));
  if (name.size() > 64) p += "...";
  return p;
}

std::string string_error(std::string_view token) { return std::string(not_valid) + why_not_unescaped(token); }

std::string member_name_error(std::string_view token) { return std::string(name_not_valid) + why_not_unescaped(token); }

std::string_view quoted_token(const char* content, const char* end) {
  const char* q = content;
  while (q < end && *q != '"') q += *q == '\\' && q + 1 < end ? 2 : 1;
  return {content - 1, static_cast<std::size_t>((q < end ? q + 1 : end) - (content - 1))};
}

std::optional<std::string> find_bad_string(std::string_view raw) {
  struct level {
    bool array;
    std::size_t index;
    std::string_view name;
  };
  std::vector<level> stack;
  bool want_name = false;
  const auto path = [&](std::size_t levels) {
    std::string p;
    for (std::size_t l = 0; l < levels; ++l) {
      p += stack[l].array ? "[" + std::to_string(stack[l].index) + "]" : member_path(stack[l].name);
    }
    return p;
  };
  for (std::size_t i = 0; i < raw.size(); ++i) {
    switch (raw[i]) {
      case '{':
        stack.push_back({false, 0, {}});
        want_name = true;
        break;
      case '[':
        stack.push_back({true, 0, {}});
        break;
      case '}':
      case ']':
        if (!stack.empty()) stack.pop_back();
        break;
      case ',':
        if (!stack.empty() && stack.back().array) {
          ++stack.back().index;
        } else {
          want_name = true;
        }
        break;
      case '"': {
        std::size_t j = i + 1;
        while (j < raw.size() && raw[j] != '"') j += raw[j] == '\\' ? 2 : 1;
        const auto text = raw.substr(i + 1, std::min(j, raw.size()) - i - 1);
        const bool is_name = want_name && !stack.empty() && !stack.back().array;
        if (auto why = bad_escape(text); !why.empty()) {
          if (is_name) return path(stack.size() - 1) + ": " + std::string(name_not_valid) + why;
          return path(stack.size()) + ": " + std::string(not_valid) + why;
        }
        if (is_name) {
          stack.back().name = text;
          want_name = false;
        }
        i = j;
        break;
      }
      default:
        break;
    }
  }
  return std::nullopt;
}

}  // namespace sendq::core
