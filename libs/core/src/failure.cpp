#include "sendq/core/delivery_result.hpp"
#include "sendq/core/failure.hpp"
#include "sendq/core/send_request.hpp"

namespace sendq::core {

std::optional<std::string> first_control_character(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789ABCDEF";
      return std::string("control character 0x") + hex[c >> 4] + hex[c & 15] + " at byte " + std::to_string(i);
    }
  }
  return std::nullopt;
}

std::string_view to_string(error_kind k) noexcept {
  switch (k) {
    case error_kind::invalid_json: return "invalid_json";
    case error_kind::invalid_field: return "invalid_field";
    case error_kind::unknown_provider: return "unknown_provider";
    case error_kind::unknown_account: return "unknown_account";
    case error_kind::unsupported_type: return "unsupported_type";
    case error_kind::too_large: return "too_large";
    case error_kind::http_4xx: return "http_4xx";
    case error_kind::http_5xx: return "http_5xx";
    case error_kind::timeout: return "timeout";
    case error_kind::connect: return "connect";
    case error_kind::ambiguous: return "ambiguous";
    case error_kind::provider_error: return "provider_error";
    case error_kind::retries_exhausted: return "retries_exhausted";
    case error_kind::expired: return "expired";
    case error_kind::tls: return "tls";
    case error_kind::internal: return "internal";
  }
  return "internal";
}

std::string_view to_string(message_type t) noexcept {
  switch (t) {
    case message_type::text: return "text";
    case message_type::image: return "image";
    case message_type::voice: return "voice";
    case message_type::video: return "video";
    case message_type::location: return "location";
    case message_type::file: return "file";
    case message_type::link: return "link";
    case message_type::template_: return "template";
    case message_type::custom: return "custom";
  }
  return "custom";
}

std::optional<message_type> parse_message_type(std::string_view s) noexcept {
  static constexpr std::pair<std::string_view, message_type> table[] = {
      {"text", message_type::text},         {"image", message_type::image},
      {"voice", message_type::voice},       {"video", message_type::video},
      {"location", message_type::location}, {"file", message_type::file},
      {"link", message_type::link},         {"template", message_type::template_},
      {"custom", message_type::custom},
  };
  for (const auto& [name, t] : table) {
    if (name == s) return t;
  }
  return std::nullopt;
}

std::string_view to_string(delivery_status s) noexcept {
  switch (s) {
    case delivery_status::delivered: return "delivered";
    case delivery_status::failed: return "failed";
    case delivery_status::rejected: return "rejected";
    case delivery_status::expired: return "expired";
  }
  return "failed";
}

}  // namespace sendq::core
