#pragma once
/// The HTTP-status rules shared by every provider (docs/providers.md, "Common to every provider")
/// and the outcome builders the providers' body parsers use. Pure functions.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "sendq/providers/provider.hpp"

namespace sendq::providers::detail {

/// What the HTTP status alone says about an attempt.
enum class status_verdict {
  body_decides,  ///< 2xx: the provider's body decides
  retryable,     ///< 408, 429, 503: surely not taken effect
  ambiguous,     ///< 500, 502, 504: may have taken effect
  client_error,  ///< any other 4xx: permanent
  server_error,  ///< 501, 505: permanent
  unexpected,    ///< 1xx, 3xx or not an HTTP status at all: permanent
};

status_verdict verdict_of(unsigned http_status) noexcept;

/// The outcome the status decides, or nullopt for a 2xx (the body decides). `retry_after` is
/// kept for 429 and 503 only. Messages name `provider` and quote the start of `body`.
std::optional<reply_outcome> classify_status(std::string_view provider, unsigned http_status,
                                             std::string_view body,
                                             std::optional<std::chrono::milliseconds> retry_after);

/// Delivered, with the provider's id (as its text) and code.
reply_outcome delivered(std::string provider_message_id, std::string provider_code);

/// Delivered (the body's code says so), but without a usable id of the provider's: `problem` says
/// why (reply_outcome::id_problem).
reply_outcome delivered_without_id(std::string provider_code, std::string problem);

/// A business error the provider reported in a 2xx body: permanent `provider_error`.
reply_outcome business_error(std::string provider_code, std::string message);

/// A 2xx body that is not the documented reply: `ambiguous` (the request may have taken effect),
/// saying what is wrong.
reply_outcome malformed_reply(std::string_view provider, std::string_view content_type,
                              std::string_view what);

/// At most `max` bytes of `body` for a message, with "..." when cut.
std::string excerpt(std::string_view body, std::size_t max = 200);

}  // namespace sendq::providers::detail
