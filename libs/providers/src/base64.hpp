#pragma once
/// Strict standard base64 (RFC 4648 section 4, with padding). OpenSSL's EVP_DecodeBlock
/// decodes but accepts some invalid input (surrounding whitespace, padding in odd places) and
/// does not strip the padding bytes, so `validate` checks the text first.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sendq::providers::detail {

/// nullopt when `text` is valid padded base64 (non-empty, length a multiple of 4, only the
/// RFC 4648 alphabet, at most two '=' and only at the end); otherwise why it is not.
std::optional<std::string> base64_validate(std::string_view text);

/// The bytes `text` encodes, or nullopt when it is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);

/// The first `n` decoded bytes (fewer when the data is shorter), without decoding the rest:
/// for magic-number checks on large payloads. nullopt when `text` is not valid base64.
std::optional<std::string> base64_decode_prefix(std::string_view text, std::size_t n);

}  // namespace sendq::providers::detail
