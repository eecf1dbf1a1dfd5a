#pragma once
/// Small text helpers shared by the simulator: JSON string escaping, time formats, base64, ISO-8601.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sendq::simulator {

/// Appends `s` as a JSON string literal; invalid UTF-8 bytes become U+FFFD so output is valid JSON.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

/// "YYYY-MM-DD HH:MM:SS" in UTC (sender's foot.operationTime).
std::string format_sql_time(std::chrono::system_clock::time_point t);
/// "YYYY-MM-DDTHH:MM:SS.mmmZ" (im's create_at / update_at).
std::string format_iso_ms(std::chrono::system_clock::time_point t);
std::int64_t unix_seconds(std::chrono::system_clock::time_point t);
std::int64_t unix_millis(std::chrono::system_clock::time_point t);

/// Strict RFC 4648 base64 (standard alphabet, padding required, no whitespace); nullopt if invalid.
std::optional<std::string> decode_base64(std::string_view s);

/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM|-HH:MM]` with plausible field ranges.
bool is_iso8601_datetime(std::string_view s);

/// Decimal integer with optional leading '-', no spaces, fits int64.
std::optional<std::int64_t> parse_int64(std::string_view s);

bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

}  // namespace sendq::simulator
