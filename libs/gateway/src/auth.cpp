#include "sendq/gateway/auth.hpp"

#include <algorithm>
#include <cctype>

#include <openssl/crypto.h>

namespace sendq::gateway {

std::string_view presented_key(const http::server_request& req) {
  const auto auth = req.header("authorization");
  // The scheme is case-insensitive (RFC 9110 11.1): "bearer k1" is "Bearer k1".
  constexpr std::string_view bearer = "bearer ";
  if (auth.size() > bearer.size() &&
      std::equal(bearer.begin(), bearer.end(), auth.begin(),
                 [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
    // RFC 9110's credentials follow one or more spaces (1*SP); a tab is taken too.
    auto key = auth.substr(bearer.size());
    while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
    return key;
  }
  return req.header("x-api-key");
}

bool key_accepted(const std::vector<std::string>& keys, std::string_view key) {
  if (keys.empty()) return true;
  bool ok = false;
  for (const auto& k : keys) {
    // Constant time for equal lengths; lengths are not secret enough to hide.
    if (k.size() == key.size() && CRYPTO_memcmp(k.data(), key.data(), k.size()) == 0) ok = true;
  }
  return ok && !key.empty();
}

}  // namespace sendq::gateway
