#include "sendq/core/added_members.hpp"

#include <charconv>

namespace sendq::core {

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

std::optional<added_members> add_members(std::string_view original, std::string_view members) {
  std::size_t close = original.size();
  while (close > 0 && is_space(original[close - 1])) --close;
  if (close == 0 || original[--close] != '}') return std::nullopt;
  std::size_t last = close;
  while (last > 0 && is_space(original[last - 1])) --last;
  if (last == 0 || original[last - 1] == '{') return std::nullopt;  // `{}`: no member to follow
  added_members out;
  out.value.reserve(original.size() + members.size() + 1);
  out.value.append(original.substr(0, close)).append(",").append(members).append(original.substr(close));
  out.header = std::to_string(close) + ":" + std::to_string(members.size() + 1);
  return out;
}

bool remove_added_members(std::string& value, std::string_view header, std::string* removed) {
  std::size_t offset = 0, length = 0;
  const char* end = header.data() + header.size();
  auto [p, ec] = std::from_chars(header.data(), end, offset);
  if (ec != std::errc() || p == end || *p != ':') return false;
  auto [q, ec2] = std::from_chars(p + 1, end, length);
  if (ec2 != std::errc() || q != end || length < 2 || offset >= value.size() || length >= value.size() - offset) return false;
  // What add_members put in: `,"attempt":...` right before the object's last brace (a header
  // copied onto another record must not cut members out of it).
  constexpr std::string_view starts = ",\"attempt\":";
  if (std::string_view(value).substr(offset, length).substr(0, starts.size()) != starts || value[offset + length] != '}') {
    return false;
  }
  for (std::size_t i = offset + length + 1; i < value.size(); ++i) {
    if (!is_space(value[i])) return false;
  }
  if (removed) removed->assign(value, offset, length);
  value.erase(offset, length);
  return true;
}

}  // namespace sendq::core
