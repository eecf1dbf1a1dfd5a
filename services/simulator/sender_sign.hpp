#pragma once
/// The sender API's computed request signature, as docs/providers.md ("sender", signing)
/// defines it. The simulator keeps its own copy, independent of libs/providers, so that it checks
/// sendq's signer instead of sharing its mistakes; both are tested against the same digests
/// computed with md5sum and openssl dgst.
#include <optional>
#include <string>
#include <string_view>

namespace sendq::simulator {

enum class sender_sign_algorithm { md5_sorted, hmac_sha256_sorted };

/// "md5_sorted" or "hmac_sha256_sorted", nullopt for any other name.
std::optional<sender_sign_algorithm> parse_sender_sign_algorithm(std::string_view name);

/// The query values the signature covers, decoded from the received query.
struct sender_sign_query {
  std::string_view api_version;
  std::string_view client;
  std::string_view channel;
  std::string_view version;
};

/// Lowercase hex of MD5("apiVersion=A&channel=C&client=K&version=V&body=<body>&secret=S") or
/// of HMAC-SHA256(key S, "apiVersion=A&channel=C&client=K&version=V&body=<body>"); nullopt when
/// OpenSSL cannot compute it.
std::optional<std::string> sender_sign(sender_sign_algorithm algorithm, const sender_sign_query& q,
                                       std::string_view body, std::string_view secret);

}  // namespace sendq::simulator
