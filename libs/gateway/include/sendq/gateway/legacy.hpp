#pragma once
/// The legacy sender API of seeds 000/001 (`POST /sender/v1/handleBasicMessage`), kept for
/// existing callers: its body becomes a SendRequest for provider `sender`, and answers use that
/// API's own reply shape. Pure functions (no I/O); thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace sendq::gateway {

/// A legacy body turned into a SendRequest.
struct legacy_request {
  std::string id;          ///< getMessageId, or the generated one
  std::string type;        ///< SendRequest type ("voice", ...)
  std::string send_request_json;
};

/// Why a legacy body was refused; `message` names the legacy field (e.g. "messageInfo.duration: ...").
struct legacy_error {
  std::string message;
};

/// Maps `{messageType, from, to, messageInfo, ext, getMessageId}` to a SendRequest for provider
/// `sender` and `account`. `generated_id` is used when getMessageId is absent or empty;
/// `created_at_ms` becomes the request's created_at. Voice and video messageInfo are normalized
/// (seconds → ms) so that the worker's sender adapter sends back exactly the same messageInfo.
std::variant<legacy_request, legacy_error> legacy_to_send_request(std::string_view body, std::string_view account,
                                                                 std::string_view generated_id,
                                                                 std::int64_t created_at_ms);

/// Rewrites a decoder/provider message about a SendRequest field ("body.duration_ms: ...") to name
/// the legacy field ("messageInfo.duration: ...") for a request of SendRequest type `type`.
std::string legacy_field_message(std::string_view type, std::string_view message);

/// The seed's reply: `{"code":..,"message":..,"data":{"getMessageId":..}|null,"page":null,
/// "foot":{"operationTime":"YYYY-MM-DD HH:MM:SS","servicePhone":"400800400","host":..}}`.
std::string legacy_reply(int code, std::string_view message, std::optional<std::string_view> message_id,
                         std::string_view operation_time, std::string_view host);

/// 32 lowercase hex characters from a CSPRNG (a uuid without dashes, as the seed's ids look).
std::string generate_message_id();

}  // namespace sendq::gateway
