#pragma once
/// The typed SendRequest of CONTRACT.md, as the decoder produces it.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sendq::core {

/// `type` of a SendRequest. `template_` is spelled "template" on the wire.
enum class message_type { text, image, voice, video, location, file, link, template_, custom };

std::string_view to_string(message_type t) noexcept;
/// Parses the wire spelling; nullopt for anything else.
std::optional<message_type> parse_message_type(std::string_view s) noexcept;

/// Normalized body (CONTRACT.md "Normalized bodies"). Which fields are set depends on `type`;
/// the decoder checks the normalized shape, providers check their own limits.
/// Sizes are bytes, durations milliseconds.
struct message_body {
  std::optional<std::string> text;          ///< text
  std::optional<std::string> url;           ///< image, voice, video, file
  std::optional<std::string> name;          ///< image, voice, video, file
  std::optional<std::string> data_base64;   ///< voice: inline audio
  std::optional<std::string> format;        ///< voice: mp3, silk or amr
  std::optional<std::string> thumb_url;     ///< video
  std::optional<std::string> thumb_name;    ///< video
  std::optional<std::string> title;         ///< video
  std::optional<std::string> description;   ///< video
  std::optional<std::string> address;       ///< location
  std::optional<std::int64_t> size;         ///< bytes
  std::optional<std::int64_t> thumb_size;   ///< bytes
  std::optional<std::int64_t> duration_ms;  ///< milliseconds
  std::optional<std::int64_t> width;        ///< pixels
  std::optional<std::int64_t> height;       ///< pixels
  std::optional<double> lat;                ///< location, degrees
  std::optional<double> lng;                ///< location, degrees
};

/// A decoded SendRequest. Owns all its strings. `*_json` members hold the raw JSON text of
/// passthrough objects exactly as the producer wrote them ("" when absent).
struct send_request {
  std::string id;
  std::string provider;
  std::string account = "default";
  message_type type = message_type::text;
  bool type_read = false;  ///< `type` was in the request and one of the types (else `type` is the default)
  std::string from;
  std::string to;
  std::string key;  ///< ordering key; the decoder fills the default provider + ":" + to
  message_body body;
  std::string body_json;             ///< raw `body` object
  std::string ext_json;              ///< raw `ext` object, "" when absent
  std::string provider_fields_json;  ///< raw `provider_fields` object, "" when absent
  std::optional<std::int64_t> deadline_ms;    ///< epoch ms
  std::optional<std::int64_t> created_at_ms;  ///< epoch ms
  std::optional<int> max_attempts;
  int attempt = 0;                            ///< retries already made (sendq.retry only)
  std::optional<std::int64_t> not_before_ms;  ///< epoch ms (sendq.retry only)
  /// `attempt` or `not_before` was in the request (a park cannot add them to its bytes then).
  bool retry_members_read = false;
};

}  // namespace sendq::core
