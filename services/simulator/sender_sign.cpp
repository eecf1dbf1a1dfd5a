#include "sender_sign.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>

namespace sendq::simulator {

std::optional<sender_sign_algorithm> parse_sender_sign_algorithm(std::string_view name) {
  if (name == "md5_sorted") return sender_sign_algorithm::md5_sorted;
  if (name == "hmac_sha256_sorted") return sender_sign_algorithm::hmac_sha256_sorted;
  return std::nullopt;
}

std::optional<std::string> sender_sign(sender_sign_algorithm algorithm, const sender_sign_query& q,
                                       std::string_view body, std::string_view secret) {
  // Names in ascending byte order, values as decoded, then the exact body bytes.
  std::string text;
  text.append("apiVersion=").append(q.api_version);
  text.append("&channel=").append(q.channel);
  text.append("&client=").append(q.client);
  text.append("&version=").append(q.version);
  text.append("&body=").append(body);

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  bool ok = false;
  switch (algorithm) {
    case sender_sign_algorithm::md5_sorted:
      text.append("&secret=").append(secret);
      ok = EVP_Digest(text.data(), text.size(), digest, &size, EVP_md5(), nullptr) == 1;
      break;
    case sender_sign_algorithm::hmac_sha256_sorted:
      ok = secret.size() <= static_cast<std::size_t>(INT_MAX) &&
           HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest,
                &size) != nullptr;
      break;
  }
  if (!ok) return std::nullopt;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 0xF]);
  }
  return out;
}

}  // namespace sendq::simulator
