#pragma once
/// The sender API's request signature (docs/providers.md, "sender": signing). Pure functions.
///
/// The canonical string is the four other query parameters in ascending byte order of their
/// names, each `name=value` with the value as configured (not percent-encoded), joined by `&`,
/// followed by `&body=` and the exact request body bytes:
///
///     apiVersion=01&channel=C&client=K&version=2.0&body={"messageType":3,...}
///
///   md5_sorted:          sign = hex(MD5(canonical + "&secret=" + sign_secret))
///   hmac_sha256_sorted:  sign = hex(HMAC-SHA256(key = sign_secret, canonical))
///
/// `hex` is lowercase (32 characters for MD5, 64 for HMAC-SHA256).
#include <optional>
#include <string>
#include <string_view>

namespace sendq::providers::detail {

enum class sign_algorithm {
  fixed,               ///< "static": the account's `sign`, as configured
  md5_sorted,          ///< "md5_sorted"
  hmac_sha256_sorted,  ///< "hmac_sha256_sorted"
};

/// The algorithm named `name` ("static", "md5_sorted", "hmac_sha256_sorted"), or nullopt.
std::optional<sign_algorithm> parse_sign_algorithm(std::string_view name) noexcept;

/// The query values the signature covers, as configured.
struct sign_query {
  std::string_view api_version;
  std::string_view client;
  std::string_view channel;
  std::string_view version;
};

/// The canonical string above (without the secret).
std::string sign_canonical_string(const sign_query& q, std::string_view body);

/// The computed sign, lowercase hex; nullopt for `fixed` (nothing to compute) or when OpenSSL
/// cannot compute the digest (MD5 disabled by a FIPS configuration, for example).
std::optional<std::string> compute_sign(sign_algorithm algorithm, const sign_query& q,
                                        std::string_view body, std::string_view secret);

}  // namespace sendq::providers::detail
