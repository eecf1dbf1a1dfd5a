#pragma once
/// DeliveryResult and SendRequest JSON encoders.
#include <string>

#include "sendq/core/delivery_result.hpp"
#include "sendq/core/send_request.hpp"

namespace sendq::core {

/// Appends the DeliveryResult JSON of `r` to `out` (no trailing newline).
void encode_result(const delivery_result& r, std::string& out);

/// The same JSON through json_writer, escaping each string: what encode_result falls back to when
/// a string needs an escape. Public so that tests can hold the two to the same bytes.
void encode_result_escaping(const delivery_result& r, std::string& out);

/// Appends the SendRequest JSON of `r` to `out`, with `attempt` and `not_before` when set
/// (used for `sendq.retry`). Passthrough objects are written back byte for byte.
void encode_request(const send_request& r, std::string& out);

}  // namespace sendq::core
