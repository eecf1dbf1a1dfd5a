#pragma once
/// Helpers shared by the providers' build() and check_account(): failures that name the
/// field, unit conversions, `provider_fields` and account-key checks, query encoding.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "json_members.hpp"
#include "sendq/core/failure.hpp"
#include "sendq/core/send_request.hpp"
#include "sendq/providers/provider.hpp"

namespace sendq::providers::detail {

/// Every provider call sends JSON in UTF-8 (docs/providers.md).
inline constexpr std::string_view json_content_type = "application/json; charset=utf-8";

inline core::failure invalid_field(std::string message) {
  return {core::error_kind::invalid_field, std::move(message)};
}
inline core::failure too_large(std::string message) {
  return {core::error_kind::too_large, std::move(message)};
}
/// `type: <provider> does not send <type> (it sends <supported>)`.
core::failure unsupported_type(std::string_view provider, core::message_type type,
                               std::string_view supported);

/// Duration rounded up to whole seconds (`ceil_s` of docs/providers.md). `ms` >= 0; no overflow
/// near INT64_MAX.
constexpr std::int64_t ceil_s(std::int64_t ms) noexcept { return ms / 1000 + (ms % 1000 != 0 ? 1 : 0); }

/// The longest `body.duration_ms` any provider is sent: the largest value a 32-bit integer field
/// (what the providers' duration fields are) holds, about 24.8 days.
inline constexpr std::int64_t max_duration_ms = 2147483647;

/// A present `body.duration_ms` from 0 to max_duration_ms, or the failure naming it.
std::optional<core::failure> check_duration(const std::optional<std::int64_t>& duration_ms,
                                            std::string_view who);

/// `value` as a JSON string literal for messages ("\"silk\"").
std::string quoted(std::string_view value);

/// Reads `provider_fields` (raw JSON, "" when absent) into `out`; a name not in `known` is an
/// invalid_field naming `provider_fields.<name>`.
std::optional<core::failure> read_provider_fields(std::string_view provider,
                                                  std::string_view provider_fields_json,
                                                  std::initializer_list<std::string_view> known,
                                                  json_members& out);

/// The whole of `s` as a decimal int64, or nullopt ("", "+1", "1.0", " 1", overflow).
std::optional<std::int64_t> parse_int64(std::string_view s) noexcept;

/// RFC 3986 percent-encoding: unreserved characters kept, every other byte as %XX.
void append_percent_encoded(std::string& out, std::string_view value);

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmm+00:00` (UTC).
std::string format_utc_iso8601(std::int64_t epoch_ms);

/// Start-up check shared by every provider: every key of `a.settings` is in `known`, and every
/// key in `required` is present and non-empty. A message naming the key otherwise.
std::optional<std::string> check_account_keys(const account& a, std::string_view provider,
                                              const std::vector<std::string_view>& known,
                                              std::initializer_list<std::string_view> required);

/// A POST of a JSON body to `path_and_query`.
http_call json_post(std::string path_and_query, std::string body);

}  // namespace sendq::providers::detail
