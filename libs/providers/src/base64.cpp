#include "base64.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>

namespace sendq::providers::detail {
namespace {

constexpr bool in_alphabet(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Decodes already-validated base64 whose length is a multiple of 4.
std::string decode_validated(std::string_view text) {
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  std::string out(text.size() / 4 * 3, '\0');
  // EVP_DecodeBlock takes an int length; callers bound sizes well below INT_MAX.
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return {};
  // EVP_DecodeBlock counts the padding as zero bytes of output.
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

}  // namespace

std::optional<std::string> base64_validate(std::string_view text) {
  if (text.empty()) return std::string("is empty");
  if (text.size() > static_cast<std::size_t>(INT_MAX)) return std::string("is too long");
  if (text.size() % 4 != 0) {
    return "has length " + std::to_string(text.size()) + ", not a multiple of 4";
  }
  std::size_t padding = 0;
  while (padding < 2 && text[text.size() - 1 - padding] == '=') ++padding;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    if (!in_alphabet(text[i])) {
      if (text[i] == '=') return "has '=' padding at offset " + std::to_string(i) + ", before the end";
      return "has a character outside the base64 alphabet at offset " + std::to_string(i);
    }
  }
  return std::nullopt;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (base64_validate(text)) return std::nullopt;
  return decode_validated(text);
}

std::optional<std::string> base64_decode_prefix(std::string_view text, std::size_t n) {
  if (base64_validate(text)) return std::nullopt;
  // Whole 4-character groups cover the first n bytes; the last group may carry the padding.
  const std::size_t chars = std::min(text.size(), (n + 2) / 3 * 4);
  std::string out = decode_validated(text.substr(0, chars));
  if (out.size() > n) out.resize(n);
  return out;
}

}  // namespace sendq::providers::detail
