#pragma once
/// Fetching media that a producer named by URL, for providers that need the bytes inline (gps:
/// `Command` is the base64 of the AMR file). The URL is the producer's choice, so this is a
/// server-side request forgery risk: only http(s), only hosts the account allows, and never a
/// private, loopback or link-local address unless the account allows it (checked on the
/// addresses actually connected to, after DNS). Pure helpers; the fetch itself is the pipeline's.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sendq/core/failure.hpp"
#include "sendq/http/client.hpp"
#include "sendq/providers/provider.hpp"

namespace sendq::delivery {

struct fetch_policy {
  std::vector<std::string> allowed_hosts;  ///< exact host names; empty = fetching refused
  bool allow_private = false;              ///< loopback/private/link-local addresses allowed
  std::size_t max_bytes = 1024 * 1024;     ///< larger files are refused (too_large)
  std::chrono::milliseconds timeout{5000};  ///< the whole fetch, its tries included
};

/// The account's policy from its keys fetch_allowed_hosts ("a.example, b.example"),
/// fetch_allow_private ("true"/"false"), fetch_max_bytes, fetch_timeout_ms.
fetch_policy fetch_policy_of(const providers::account& a);

/// Checks `url` against the policy before any I/O. On success fills `ep` and `target`.
std::optional<core::failure> check_fetch_url(std::string_view url, const fetch_policy& p, http::endpoint& ep,
                                             std::string& target);

/// Whether a resolved address may be connected to: public unicast always; loopback, private
/// (RFC 1918, fc00::/7), link-local, CGNAT, unspecified and multicast only with allow_private
/// (multicast and unspecified never).
bool address_allowed(const std::string& ip, bool allow_private);

/// Standard base64 with padding.
std::string base64_encode(std::string_view bytes);

}  // namespace sendq::delivery
