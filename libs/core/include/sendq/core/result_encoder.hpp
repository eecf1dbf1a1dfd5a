#pragma once
/// DeliveryResult and SendRequest JSON encoders.
#include <string>

#include "sendq/core/delivery_result.hpp"
#include "sendq/core/send_request.hpp"

namespace sendq::core {

/// Appends the DeliveryResult JSON of `r` to `out` (no trailing newline).
void encode_result(const delivery_result& r, std::string& out);

/// encode_result's two ways, public so that tests can hold them to the same bytes:
/// - in one pass, keys as literals, when no string needs an escape and they total at most 3.5 KB
///   (nearly every result); false, with nothing written, otherwise;
bool encode_plain_result(const delivery_result& r, std::string& out);
/// - through json_writer, escaping each string.
void encode_result_escaping(const delivery_result& r, std::string& out);

/// Appends the SendRequest JSON of `r` to `out`, with `attempt` and `not_before` when set
/// (used for `sendq.retry`). Passthrough objects are written back byte for byte.
void encode_request(const send_request& r, std::string& out);

}  // namespace sendq::core
