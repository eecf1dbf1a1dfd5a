#include "reply_classifier.hpp"

namespace sendq::providers::detail {

status_verdict verdict_of(unsigned http_status) noexcept {
  switch (http_status) {
    case 408:
    case 429:
    case 503:
      return status_verdict::retryable;
    case 500:
    case 502:
    case 504:
      return status_verdict::ambiguous;
    // The server says it cannot do this at all (a wrong path or method, an HTTP version it does
    // not speak): the next try would get the same answer.
    case 501:
    case 505:
      return status_verdict::server_error;
  }
  if (http_status >= 200 && http_status < 300) return status_verdict::body_decides;
  if (http_status >= 400 && http_status < 500) return status_verdict::client_error;
  // Any other 5xx (507, a CDN's 520-524, ...) is a server failing like 500 does: the request may
  // have been taken or not, and the circuit breaker counts it.
  if (http_status >= 500 && http_status < 600) return status_verdict::ambiguous;
  return status_verdict::unexpected;
}

std::string excerpt(std::string_view body, std::size_t max) {
  if (body.size() <= max) return std::string(body);
  // Do not cut a UTF-8 sequence in half: back up to the start of a character.
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80) --n;
  return std::string(body.substr(0, n)) + "...";
}

std::optional<reply_outcome> classify_status(std::string_view provider, unsigned http_status,
                                             std::string_view body,
                                             std::optional<std::chrono::milliseconds> retry_after) {
  reply_outcome out;
  const std::string head =
      std::string(provider) + " answered HTTP " + std::to_string(http_status);
  const std::string quoted = body.empty() ? std::string() : ": " + excerpt(body);
  // Exhaustive on purpose: a new verdict must be decided here (no default).
  switch (verdict_of(http_status)) {
    case status_verdict::body_decides:
      return std::nullopt;
    case status_verdict::retryable:
      out.cls = outcome_class::retryable;
      out.kind = http_status == 503 ? core::error_kind::http_5xx : core::error_kind::http_4xx;
      // Retry-After is defined for 429 and 503 (RFC 9110 10.2.3); 408 has none.
      if (http_status != 408 && retry_after) out.retry_after = retry_after;
      out.throttled = http_status == 429;
      out.message = head + " (not taken; retryable";
      if (out.retry_after) out.message += ", Retry-After " + std::to_string(out.retry_after->count()) + " ms";
      out.message += ")";
      return out;
    case status_verdict::ambiguous:
      out.cls = outcome_class::ambiguous;
      out.kind = core::error_kind::ambiguous;
      out.message = head + " (the message may have been taken)" + quoted;
      return out;
    case status_verdict::client_error:
      out.cls = outcome_class::permanent;
      out.kind = core::error_kind::http_4xx;
      out.message = head + quoted;
      return out;
    case status_verdict::server_error:
      out.cls = outcome_class::permanent;
      out.kind = core::error_kind::http_5xx;
      out.message = head + quoted;
      return out;
    case status_verdict::unexpected:
      out.cls = outcome_class::permanent;
      out.kind = core::error_kind::provider_error;
      out.message = head + ", which is neither success nor an error status" + quoted;
      return out;
  }
  return out;
}

reply_outcome delivered(std::string provider_message_id, std::string provider_code) {
  reply_outcome out;
  out.cls = outcome_class::delivered;
  out.provider_message_id = std::move(provider_message_id);
  out.provider_code = std::move(provider_code);
  return out;
}

reply_outcome delivered_without_id(std::string provider_code, std::string problem) {
  reply_outcome out = delivered(std::string(), std::move(provider_code));
  out.id_problem = std::move(problem);
  return out;
}

reply_outcome business_error(std::string provider_code, std::string message) {
  reply_outcome out;
  out.cls = outcome_class::permanent;
  out.kind = core::error_kind::provider_error;
  out.provider_code = std::move(provider_code);
  out.message = std::move(message);
  return out;
}

reply_outcome malformed_reply(std::string_view provider, std::string_view content_type,
                              std::string_view what) {
  // Only a 2xx reply gets here (classify_status took the others): the provider may well have
  // taken the request and answered with what a proxy or a broken release made of the body, so
  // the request may have taken effect: ambiguous (CONTRACT.md), not a permanent refusal.
  reply_outcome out;
  out.cls = outcome_class::ambiguous;
  out.kind = core::error_kind::ambiguous;
  out.message = std::string(provider) + " reply unusable: " + std::string(what);
  if (!content_type.empty()) out.message += " (Content-Type " + std::string(content_type) + ")";
  return out;
}

}  // namespace sendq::providers::detail
