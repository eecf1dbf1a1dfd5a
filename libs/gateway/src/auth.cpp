#include "sendq/gateway/auth.hpp"

#include <openssl/crypto.h>

namespace sendq::gateway {

std::string_view presented_key(const http::server_request& req) {
  const auto auth = req.header("authorization");
  constexpr std::string_view bearer = "Bearer ";
  if (auth.size() > bearer.size() && auth.substr(0, bearer.size()) == bearer) return auth.substr(bearer.size());
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
