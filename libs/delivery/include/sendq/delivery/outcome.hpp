#pragma once
/// What a failed HTTP exchange (no response) means for delivery. Pure; see CONTRACT.md
/// "Outcome classes".
#include "sendq/http/client.hpp"
#include "sendq/providers/provider.hpp"

namespace sendq::delivery {

/// Maps a transport failure to an outcome: before the request was written → retryable;
/// after → ambiguous (it may have taken effect); certificate problems → permanent.
providers::reply_outcome classify_transport(http::failure_kind kind, std::string_view message);

/// Whether an outcome should be tried again, given the provider and account.
bool should_retry(const providers::reply_outcome& o, const providers::provider& p, const providers::account& a);

}  // namespace sendq::delivery
