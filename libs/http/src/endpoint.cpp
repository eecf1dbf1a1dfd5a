// URL and address parsing, plus the small value helpers of the public headers. No Asio here so
// this TU stays cheap to compile.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <stdexcept>

#include "sendq/http/client.hpp"
#include "sendq/http/server.hpp"

namespace sendq::http {
namespace {

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
}

// Decimal port 0..65535; nullopt for anything else (sign, spaces, overflow).
std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || ptr != s.data() + s.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::optional<endpoint> fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return std::nullopt;
}

}  // namespace

// Error messages never echo the URL: it may carry a token in its path.
std::optional<endpoint> endpoint::parse(std::string_view url, std::string* error) {
  endpoint ep;
  if (iequals_prefix(url, "https://")) {
    ep.tls = true;
    url.remove_prefix(8);
  } else if (iequals_prefix(url, "http://")) {
    url.remove_prefix(7);
  } else {
    return fail(error, "URL must start with http:// or https://");
  }

  const auto path_start = url.find('/');
  std::string_view authority = url.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? std::string_view{} : url.substr(path_start);
  if (url.find_first_of("?#") != std::string_view::npos) {
    return fail(error, "base URL must not have a query or fragment");
  }
  if (authority.find('@') != std::string_view::npos) {
    return fail(error, "URL must not contain user info (credentials belong in headers)");
  }
  if (authority.empty()) return fail(error, "URL has no host");

  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (authority.front() == '[') {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail(error, "URL has an unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_ipv6_char)) {
      return fail(error, "URL has an invalid IPv6 address");
    }
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail(error, "URL has junk after the IPv6 address");
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
    }
    if (host.empty()) return fail(error, "URL has no host");
    if (!std::all_of(host.begin(), host.end(), is_host_char)) {
      return fail(error, "URL host has invalid characters");
    }
  }

  ep.host = std::string(host);
  if (has_port) {
    const auto p = parse_port(port);
    if (!p || *p == 0) return fail(error, "URL port must be a number from 1 to 65535");
    ep.port = *p;
  } else {
    ep.port = ep.tls ? 443 : 80;
  }

  if (path.find_first_of(" \t\r\n") != std::string_view::npos) {
    return fail(error, "URL path must not contain whitespace");
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  ep.base_path = std::string(path);
  return ep;
}

bool is_followable_redirect(unsigned status) noexcept {
  return status == 301 || status == 302 || status == 307 || status == 308;
}

std::optional<std::string> same_origin_target(const endpoint& ep, std::string_view current_target,
                                              std::string_view location) {
  while (!location.empty() && (location.front() == ' ' || location.front() == '\t')) location.remove_prefix(1);
  while (!location.empty() && (location.back() == ' ' || location.back() == '\t')) location.remove_suffix(1);
  location = location.substr(0, location.find('#'));
  if (location.empty()) return std::nullopt;
  for (char c : location) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  }
  std::string_view rest = location;
  std::optional<bool> tls;  // the scheme, when the reference has one
  if (iequals_prefix(rest, "https://")) {
    tls = true;
    rest.remove_prefix(6);
  } else if (iequals_prefix(rest, "http://")) {
    tls = false;
    rest.remove_prefix(5);
  } else if (rest.find(':') < rest.find_first_of("/?")) {
    return std::nullopt;  // another scheme (ftp:, javascript:, ...)
  }
  if (rest.starts_with("//")) {
    // Absolute or scheme-relative: compare the authority with ours.
    rest.remove_prefix(2);
    const auto end = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    auto there = endpoint::parse(std::string(tls.value_or(ep.tls) ? "https://" : "http://") + std::string(authority));
    if (!there || there->tls != ep.tls || there->port != ep.port || there->host.size() != ep.host.size() ||
        !std::equal(there->host.begin(), there->host.end(), ep.host.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return std::nullopt;
    }
    if (rest.empty() || rest.front() == '?') return "/" + std::string(rest);
    return std::string(rest);
  }
  if (tls) return std::nullopt;  // "http:path" without "//": not a URL we follow
  if (rest.front() == '/') return std::string(rest);
  // A relative reference: against the directory of the current path (no dot-segment games).
  std::string_view path = current_target.substr(0, current_target.find('?'));
  if (rest.front() == '?') return std::string(path.empty() ? "/" : path) + std::string(rest);
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? std::string_view("/") : path.substr(0, slash + 1)) +
         std::string(rest);
}

std::string endpoint::authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
  return out;
}

std::string_view to_string(failure_kind k) noexcept {
  switch (k) {
    case failure_kind::connect: return "connect";
    case failure_kind::tls: return "tls";
    case failure_kind::reset_before_write: return "reset_before_write";
    case failure_kind::timeout_before_write: return "timeout_before_write";
    case failure_kind::reset_after_write: return "reset_after_write";
    case failure_kind::timeout_after_write: return "timeout_after_write";
    case failure_kind::body_too_large: return "body_too_large";
    case failure_kind::bad_response: return "bad_response";
    case failure_kind::invalid_request: return "invalid_request";
  }
  return "unknown";
}

namespace {

// RFC 9110 tchar, as a table: this runs for every request sent.
constexpr std::array<bool, 256> token_chars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = t[c + 32] = true;
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t[c] = true;
  return t;
}();

bool is_token(std::string_view s) {
  bool ok = !s.empty();
  for (unsigned char c : s) ok &= token_chars[c];
  return ok;
}

// Without an early exit, so that the compiler vectorizes them; the position is looked for only
// when there is something wrong.
bool ends_the_request_line(unsigned char c) { return c <= 0x20 || c == 0x7f; }
bool ends_a_field(unsigned char c) { return c == '\r' || c == '\n' || c == 0; }

template <class Pred>
bool any_of_bytes(std::string_view s, Pred bad) {
  bool found = false;
  for (unsigned char c : s) found |= bad(c);
  return found;
}

template <class Pred>
std::string where(std::string_view s, Pred bad) {
  static constexpr char hex[] = "0123456789ABCDEF";
  const auto at = static_cast<std::size_t>(
      std::find_if(s.begin(), s.end(), [&](char c) { return bad(static_cast<unsigned char>(c)); }) - s.begin());
  const auto c = static_cast<unsigned char>(s[at]);
  return std::string("byte 0x") + hex[c >> 4] + hex[c & 15] + " at " + std::to_string(at);
}

}  // namespace

// Values are never echoed: a header may carry a secret. Positions and byte values are enough.
std::optional<std::string> unsendable(const request& req) {
  if (!is_token(req.method)) return "method: not an HTTP token";
  if (any_of_bytes(req.target, ends_the_request_line)) {
    return "target: " + where(req.target, ends_the_request_line) + " (spaces and control characters end the request line)";
  }
  for (const auto& [name, value] : req.headers) {
    if (!is_token(name)) {
      const bool printable = !any_of_bytes(name, [](unsigned char c) { return c <= 0x20 || c >= 0x7f; });
      return "header name " + (printable ? "'" + name + "'" : std::string("(with a space or control byte)")) + ": not an HTTP token";
    }
    if (any_of_bytes(value, ends_a_field)) {
      return "header " + name + ": " + where(value, ends_a_field) + " of its value (CR, LF and NUL end the field)";
    }
  }
  return std::nullopt;
}

std::string_view server_request::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::pair<std::string, std::uint16_t> parse_host_port(std::string_view addr, std::string_view what) {
  const auto bad = [&](std::string_view why) {
    return std::invalid_argument(std::string(what) + ": invalid address \"" + std::string(addr) +
                                 "\" (" + std::string(why) + "; expected host:port, e.g. 127.0.0.1:9464)");
  };
  const auto colon = addr.rfind(':');
  if (colon == std::string_view::npos) throw bad("missing port");
  std::string_view host = addr.substr(0, colon);
  const auto port = parse_port(addr.substr(colon + 1));
  if (!port) throw bad("port must be a number from 0 to 65535");
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') throw bad("unterminated IPv6 address");
    host = host.substr(1, host.size() - 2);
    if (!std::all_of(host.begin(), host.end(), is_ipv6_char)) throw bad("invalid IPv6 address");
  } else if (host.find(':') != std::string_view::npos) {
    throw bad("IPv6 addresses must be in brackets");
  } else if (!std::all_of(host.begin(), host.end(), is_host_char)) {
    throw bad("host has invalid characters");
  }
  // ":9464" means every interface, as in most servers' listen syntax.
  return {host.empty() ? std::string("0.0.0.0") : std::string(host), *port};
}

}  // namespace sendq::http
