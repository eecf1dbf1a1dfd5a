#include "sendq/delivery/outcome.hpp"

namespace sendq::delivery {

using providers::outcome_class;

providers::reply_outcome classify_transport(http::failure_kind kind, std::string_view message) {
  providers::reply_outcome o;
  o.message = std::string(to_string(kind)) + ": " + std::string(message);
  switch (kind) {
    case http::failure_kind::connect:
      o.cls = outcome_class::retryable;
      o.kind = core::error_kind::connect;
      break;
    case http::failure_kind::reset_before_write:
      o.cls = outcome_class::retryable;
      o.kind = core::error_kind::connect;
      break;
    case http::failure_kind::timeout_before_write:
      o.cls = outcome_class::retryable;
      o.kind = core::error_kind::timeout;
      break;
    case http::failure_kind::tls:
      // A certificate that does not verify will not verify on the next try either.
      o.cls = outcome_class::permanent;
      o.kind = core::error_kind::tls;
      break;
    case http::failure_kind::reset_after_write:
      o.cls = outcome_class::ambiguous;
      o.kind = core::error_kind::ambiguous;
      break;
    case http::failure_kind::timeout_after_write:
      o.cls = outcome_class::ambiguous;
      o.kind = core::error_kind::timeout;
      break;
    case http::failure_kind::invalid_request:
      // Nothing was written, and the same request would be refused the same way again.
      o.cls = outcome_class::permanent;
      o.kind = core::error_kind::invalid_field;
      break;
    case http::failure_kind::body_too_large:
    case http::failure_kind::bad_response:
      // The provider answered, so it saw the request; we cannot tell how it ended.
      o.cls = outcome_class::ambiguous;
      o.kind = core::error_kind::ambiguous;
      break;
  }
  return o;
}

bool should_retry(const providers::reply_outcome& o, const providers::provider& p, const providers::account& a) {
  switch (o.cls) {
    case outcome_class::delivered:
    case outcome_class::permanent:
      return false;
    case outcome_class::retryable:
      return true;
    case outcome_class::ambiguous:
      return p.dedupes_by_request_id() || a.retry_ambiguous;
  }
  return false;
}

}  // namespace sendq::delivery
