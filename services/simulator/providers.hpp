#pragma once
/// The four emulated provider APIs: strict validation of what docs/providers.md prescribes and the
/// provider's own success and error replies. Pure functions of the request; no I/O, no shared state.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http_types.hpp"
#include "options.hpp"

namespace simdjson::dom {
class parser;
}

namespace sendq::simulator {

enum class provider { sender, gewe, im, gps };
inline constexpr provider all_providers[] = {provider::sender, provider::gewe, provider::im, provider::gps};

std::string_view provider_name(provider p);

/// The provider owning a path (by its API's prefix: /sender/, /message/, /api/im/, /api/Files/),
/// nullopt for any other path.
std::optional<provider> provider_for_path(std::string_view path);

/// Values a reply needs beyond the request: time and unique-id material.
struct reply_context {
  std::chrono::system_clock::time_point now;
  std::uint64_t seq = 0;      ///< unique per request; ids derive from it
  std::uint32_t id_salt = 0;  ///< random per process (from --seed), mixed into im's _id
  std::string_view host_name = "sendq-simulator";
  bool omit_message_id = false;  ///< the no_message_id fault: a success reply without the provider's id
};

struct provider_outcome {
  http_reply reply;
  bool accepted = false;  ///< true when the provider would have taken the message
  std::string error;      ///< why it was rejected ("" when accepted)
};

/// Validates `req` against provider `p`'s API and builds its reply. `parser` is reused scratch space.
provider_outcome handle_provider(provider p, const http_request& req, const provider_credentials& creds,
                                 const reply_context& ctx, simdjson::dom::parser& parser);

/// The provider's own error reply (HTTP 200) for an injected business error. `code` overrides the
/// default code (sender code 500, gewe ret 500, gps State 8000; ignored for im).
http_reply business_error_reply(provider p, const http_request& req, const reply_context& ctx,
                                std::optional<std::int64_t> code);

/// gewe's newMsgId for sequence number `seq`: a 64-bit value above 2^53 so that clients that read it
/// through a double lose digits.
std::uint64_t gewe_new_msg_id(std::uint64_t seq);

}  // namespace sendq::simulator
