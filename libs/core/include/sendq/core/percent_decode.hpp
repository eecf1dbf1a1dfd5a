#pragma once
/// Percent-decoding of a URL query component, for the gateway's legacy `sign` and the provider
/// simulator's query parameters.
#include <optional>
#include <string>
#include <string_view>

namespace sendq::core {

/// Each %XX becomes its byte and '+' a space (as servlet containers read a query); nullopt when a
/// '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace sendq::core
