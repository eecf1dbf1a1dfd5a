#pragma once
/// Failure kinds and the failure value carried on the per-message path.
#include <optional>
#include <string>
#include <string_view>

namespace sendq::core {

/// Stable `error.kind` values of DeliveryResult (CONTRACT.md). Never renumber; add at the end.
enum class error_kind {
  invalid_json,       ///< the message is not a JSON object (or is empty / a tombstone)
  invalid_field,      ///< a field is missing, has the wrong type, or breaks a limit
  unknown_provider,   ///< `provider` names no configured provider
  unknown_account,    ///< `account` names no account of that provider
  unsupported_type,   ///< the provider does not accept this `type`
  too_large,          ///< the message or a field is over a size limit
  http_4xx,           ///< the provider answered a 4xx (permanent)
  http_5xx,           ///< the provider answered a 5xx
  timeout,            ///< no answer in time
  connect,            ///< could not connect (DNS, refused, TLS handshake)
  ambiguous,          ///< may have taken effect; not retried for this provider/account
  provider_error,     ///< the provider's body reported a business error
  retries_exhausted,  ///< every attempt failed with a retryable outcome
  expired,            ///< the deadline passed before delivery
  tls,                ///< certificate or host-name verification failed
  internal,           ///< a bug or resource problem in sendq itself
};

/// The contract's spelling of a kind, e.g. "invalid_field".
std::string_view to_string(error_kind k) noexcept;

/// An expected failure: a stable kind and a message a person can act on, naming the field
/// (for example "body.duration_ms: must be at most 60000 (sender voice: duration <= 60 s)").
struct failure {
  error_kind kind = error_kind::internal;
  std::string message;
};

/// "control character 0x0A at byte 3" for the first byte of `text` below 0x20 or 0x7F (CR, LF,
/// tab, NUL...), else nullopt: where it is, never the text itself (it may be a secret).
std::optional<std::string> first_control_character(std::string_view text);

}  // namespace sendq::core
