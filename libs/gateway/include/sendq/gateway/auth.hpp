#pragma once
/// API-key check of the gateway.
#include <string>
#include <string_view>
#include <vector>

#include "sendq/http/server.hpp"

namespace sendq::gateway {

/// The key a request presents: `Authorization: Bearer <key>` (scheme in any case), else `X-API-Key`, else "".
std::string_view presented_key(const http::server_request& req);

/// True when `keys` is empty (no authentication) or `key` is one of them. Compares in constant
/// time per key so that response times do not reveal a prefix.
bool key_accepted(const std::vector<std::string>& keys, std::string_view key);

}  // namespace sendq::gateway
