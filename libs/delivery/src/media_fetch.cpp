#include "sendq/delivery/media_fetch.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

namespace sendq::delivery {
namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

constexpr char hex[] = "0123456789ABCDEF";

bool v4_is_special(const unsigned char a[4]) {
  return a[0] == 127 || a[0] == 10 || (a[0] == 172 && (a[1] & 0xF0) == 16) || (a[0] == 192 && a[1] == 168) ||
         (a[0] == 169 && a[1] == 254) || (a[0] == 100 && (a[1] & 0xC0) == 64);
}

}  // namespace

fetch_policy fetch_policy_of(const providers::account& a) {
  fetch_policy p;
  std::string_view hosts = a.get("fetch_allowed_hosts");
  while (!hosts.empty()) {
    const auto comma = hosts.find(',');
    auto h = trim(hosts.substr(0, comma));
    if (!h.empty()) p.allowed_hosts.push_back(h);
    if (comma == std::string_view::npos) break;
    hosts.remove_prefix(comma + 1);
  }
  p.allow_private = a.get("fetch_allow_private", "false") == "true";
  if (auto v = a.get("fetch_max_bytes"); !v.empty()) p.max_bytes = std::strtoull(std::string(v).c_str(), nullptr, 10);
  if (auto v = a.get("fetch_timeout_ms"); !v.empty()) p.timeout = std::chrono::milliseconds(std::strtoll(std::string(v).c_str(), nullptr, 10));
  return p;
}

std::optional<core::failure> check_fetch_url(std::string_view url, const fetch_policy& p, http::endpoint& ep,
                                             std::string& target) {
  using core::error_kind;
  // A control byte (CR, LF, ...) could end the request line and start another request on the
  // connection: no real URL has one, so it is refused, not encoded.
  if (const auto bad = core::first_control_character(url)) {
    return core::failure{error_kind::invalid_field, "body.url: " + *bad + " (a URL cannot contain one)"};
  }
  url = url.substr(0, url.find('#'));  // the fragment is the client's, never sent
  std::string err;
  auto parsed = http::endpoint::parse(url.substr(0, url.find('?')), &err);
  if (!parsed) return core::failure{error_kind::invalid_field, "body.url: only http and https URLs can be fetched (" + err + ")"};
  if (p.allowed_hosts.empty()) {
    return core::failure{error_kind::invalid_field,
                         "body.url: this account fetches no URLs (set fetch_allowed_hosts), send body.data_base64"};
  }
  if (std::find(p.allowed_hosts.begin(), p.allowed_hosts.end(), parsed->host) == p.allowed_hosts.end()) {
    return core::failure{error_kind::invalid_field, "body.url: host '" + parsed->host +
                                                        "' is not in the account's fetch_allowed_hosts"};
  }
  ep = *parsed;
  // The path (with its query) is fetched as given; the endpoint keeps no base path for it.
  const auto scheme_end = url.find("://") + 3;
  const auto path_start = std::min(url.find_first_of("/?", scheme_end), url.size());
  target.clear();
  if (path_start == url.size() || url[path_start] == '?') target = "/";
  // Spaces and bytes past ASCII (file names in other scripts) are percent-encoded, as browsers
  // and curl send them; so are the other characters RFC 3986 leaves out of a URL.
  for (char ch : url.substr(path_start)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
        c == '{' || c == '|' || c == '}') {
      target.push_back('%');
      target.push_back(hex[c >> 4]);
      target.push_back(hex[c & 15]);
    } else {
      target.push_back(ch);
    }
  }
  ep.base_path.clear();
  return std::nullopt;
}

bool address_allowed(const std::string& ip, bool allow_private) {
  unsigned char b[16];
  if (inet_pton(AF_INET, ip.c_str(), b) == 1) {
    if (b[0] == 0 || b[0] >= 224) return false;  // unspecified, multicast, reserved: never
    return allow_private || !v4_is_special(b);
  }
  if (inet_pton(AF_INET6, ip.c_str(), b) == 1) {
    static constexpr unsigned char zero[16] = {};
    static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (std::memcmp(b, zero, 16) == 0 || b[0] == 0xFF) return false;  // ::, multicast
    if (std::memcmp(b, mapped, 12) == 0) {
      if (b[12] == 0 || b[12] >= 224) return false;
      return allow_private || !v4_is_special(b + 12);
    }
    const bool loopback = std::memcmp(b, zero, 15) == 0 && b[15] == 1;
    const bool unique_local = (b[0] & 0xFE) == 0xFC;
    const bool link_local = b[0] == 0xFE && (b[1] & 0xC0) == 0x80;
    return allow_private || !(loopback || unique_local || link_local);
  }
  return false;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16) |
                   (std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8) | static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[n >> 18];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (const auto rest = bytes.size() - i; rest > 0) {
    std::uint32_t n = std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) n |= std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += alphabet[n >> 18];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace sendq::delivery
