#include "build_support.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "sendq/core/json_writer.hpp"

namespace sendq::providers::detail {

core::failure unsupported_type(std::string_view provider, core::message_type type,
                               std::string_view supported) {
  return {core::error_kind::unsupported_type,
          "type: " + std::string(provider) + " does not send " + std::string(core::to_string(type)) +
              " (it sends " + std::string(supported) + ")"};
}

std::optional<core::failure> check_duration(const std::optional<std::int64_t>& duration_ms,
                                            std::string_view who) {
  if (!duration_ms) return invalid_field("body.duration_ms: required by " + std::string(who));
  if (*duration_ms < 0) {
    return invalid_field("body.duration_ms: " + std::to_string(*duration_ms) +
                         " is negative");
  }
  if (*duration_ms > max_duration_ms) {
    return invalid_field("body.duration_ms: " + std::to_string(*duration_ms) + " is over " +
                         std::to_string(max_duration_ms) + " (about 24.8 days), the most sendq sends " +
                         std::string(who));
  }
  return std::nullopt;
}

std::string quoted(std::string_view value) {
  std::string out;
  core::append_json_string(out, value);
  return out;
}

std::optional<core::failure> read_provider_fields(std::string_view provider,
                                                  std::string_view provider_fields_json,
                                                  std::initializer_list<std::string_view> known,
                                                  json_members& out) {
  out.clear();
  if (provider_fields_json.empty()) return std::nullopt;
  if (auto err = read_members(provider_fields_json, out)) {
    return invalid_field("provider_fields: " + *err);
  }
  for (const auto& m : out) {
    if (std::find(known.begin(), known.end(), m.name) != known.end()) continue;
    std::string msg = "provider_fields." + m.name + ": unknown to " + std::string(provider);
    if (known.size() == 0) {
      msg += ", which takes no provider_fields";
    } else {
      msg += " (it knows";
      for (auto k : known) msg.append(" ").append(k);
      msg += ")";
    }
    return invalid_field(std::move(msg));
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_int64(std::string_view s) noexcept {
  std::int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc{} || p != end) return std::nullopt;
  return v;
}

void append_percent_encoded(std::string& out, std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
}

std::string format_utc_iso8601(std::int64_t epoch_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds{epoch_ms}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{t - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03d+00:00",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

std::optional<std::string> check_account_keys(const account& a, std::string_view provider,
                                              const std::vector<std::string_view>& known,
                                              std::initializer_list<std::string_view> required) {
  for (const auto& [key, value] : a.settings) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string msg = "account " + a.name + " of " + std::string(provider) + ": unknown key " +
                      quoted(key) + " (known:";
    for (auto k : known) msg.append(" ").append(k);
    return msg + ")";
  }
  for (auto key : required) {
    auto it = a.settings.find(key);
    if (it == a.settings.end() || it->second.empty()) {
      return "account " + a.name + " of " + std::string(provider) + ": key " + quoted(key) +
             " is required";
    }
  }
  return std::nullopt;
}

http_call json_post(std::string path_and_query, std::string body) {
  // Designated: the members' defaults are not built only to be replaced (a default content type
  // is a heap string, one byte over the short-string buffer).
  return http_call{.method = "POST",
                   .path_and_query = std::move(path_and_query),
                   .content_type = std::string(json_content_type),
                   .headers = {},
                   .body = std::move(body)};
}

}  // namespace sendq::providers::detail
