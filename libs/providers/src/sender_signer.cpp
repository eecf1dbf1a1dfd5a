#include "sender_signer.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>

namespace sendq::providers::detail {
namespace {

std::string to_hex(const unsigned char* data, unsigned int size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 0xF]);
  }
  return out;
}

}  // namespace

std::optional<sign_algorithm> parse_sign_algorithm(std::string_view name) noexcept {
  if (name == "static") return sign_algorithm::fixed;
  if (name == "md5_sorted") return sign_algorithm::md5_sorted;
  if (name == "hmac_sha256_sorted") return sign_algorithm::hmac_sha256_sorted;
  return std::nullopt;
}

std::string sign_canonical_string(const sign_query& q, std::string_view body) {
  std::string out;
  out.reserve(64 + q.api_version.size() + q.client.size() + q.channel.size() + q.version.size() +
              body.size());
  // Ascending byte order of the names: apiVersion < channel < client < version.
  out.append("apiVersion=").append(q.api_version);
  out.append("&channel=").append(q.channel);
  out.append("&client=").append(q.client);
  out.append("&version=").append(q.version);
  out.append("&body=").append(body);
  return out;
}

std::optional<std::string> compute_sign(sign_algorithm algorithm, const sign_query& q,
                                        std::string_view body, std::string_view secret) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  switch (algorithm) {
    case sign_algorithm::fixed:
      return std::nullopt;
    case sign_algorithm::md5_sorted: {
      std::string text = sign_canonical_string(q, body);
      text.append("&secret=").append(secret);
      if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_md5(), nullptr) != 1) {
        return std::nullopt;
      }
      return to_hex(digest, size);
    }
    case sign_algorithm::hmac_sha256_sorted: {
      if (secret.size() > static_cast<std::size_t>(INT_MAX)) return std::nullopt;
      const std::string text = sign_canonical_string(q, body);
      if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
               reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest,
               &size) == nullptr) {
        return std::nullopt;
      }
      return to_hex(digest, size);
    }
  }
  return std::nullopt;
}

}  // namespace sendq::providers::detail
