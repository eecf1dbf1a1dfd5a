#pragma once
/// Transport-neutral request and reply types, so that routing and validation run without sockets.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sendq::simulator {

struct http_request {
  std::string method;  ///< "POST", "GET", ...
  std::string target;  ///< path plus optional "?query", as received
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lower-cased, in arrival order
  std::string body;

  /// First value of a header (name lower-case), or "" when absent.
  std::string_view header(std::string_view lower_name) const;
  std::string_view path() const;   ///< target before '?'
  std::string_view query() const;  ///< target after '?', "" when none
};

struct http_reply {
  unsigned status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers (Retry-After, Allow)
};

}  // namespace sendq::simulator
