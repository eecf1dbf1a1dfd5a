#pragma once
/// The provider interface: build an HTTP call from a SendRequest exactly as the provider's
/// document says, and classify its reply. Pure functions: no I/O, no clocks, no Asio.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sendq/core/failure.hpp"
#include "sendq/core/send_request.hpp"

namespace sendq::providers {

/// One configured account of a provider. `settings` are the provider-specific keys of the
/// account's configuration (strings; secrets already resolved from files/env). Each provider
/// lists the keys it knows in `account_keys()`; others are rejected at start-up.
struct account {
  std::string provider;
  std::string name;      ///< "default", ...
  std::string base_url;  ///< http(s)://host[:port][/prefix]
  std::map<std::string, std::string, std::less<>> settings;
  bool retry_ambiguous = false;  ///< allow retrying ambiguous outcomes for this account
  unsigned follow_redirects = 0;  ///< same-origin redirects followed per attempt (0 = none)
  /// Value of `key`, or `fallback` when the account does not set it.
  std::string_view get(std::string_view key, std::string_view fallback = {}) const;
};

/// The HTTP call a provider wants made. `path_and_query` is relative to the base URL's path.
struct http_call {
  std::string method = "POST";
  std::string path_and_query;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  ///< may hold secrets
  std::string body;
};

/// How a reply (or its absence) ends an attempt.
enum class outcome_class {
  delivered,  ///< the provider accepted it
  retryable,  ///< surely not taken effect: try again later
  ambiguous,  ///< may have taken effect: retry only if the provider/account dedupes
  permanent,  ///< never retry
};
std::string_view to_string(outcome_class c) noexcept;

struct reply_outcome {
  outcome_class cls = outcome_class::permanent;
  /// For delivered; digits kept as sent. Empty when the provider's reply carries no id of its
  /// own (gps): the request id, which the provider stored, is then the message's id.
  std::string provider_message_id;
  /// Delivered, but the reply lacks the usable id of the provider's own that its document shows
  /// (gewe `data.newMsgId`, im `data._id`): what is wrong with it. The body's code says success
  /// (CONTRACT.md), so the request is delivered, with a null provider_message_id and a warning.
  std::string id_problem;
  std::string provider_code;        ///< the body's code (ret / code / State / success)
  core::error_kind kind = core::error_kind::provider_error;  ///< when not delivered
  std::string message;                                       ///< when not delivered
  std::optional<std::chrono::milliseconds> retry_after;      ///< throttling hint
  bool throttled = false;  ///< the provider asked us to slow down (429, Easemob 403 "send reach limit")
};

class provider {
 public:
  virtual ~provider() = default;
  /// "sender", "gewe", "im" or "gps".
  virtual std::string_view name() const noexcept = 0;
  /// Settings keys an account of this provider may have (others are configuration errors).
  virtual std::vector<std::string_view> account_keys() const = 0;
  /// Checks an account at start-up; a message naming the key when it is unusable.
  virtual std::optional<std::string> check_account(const account& a) const = 0;
  /// True when the provider deduplicates by our request id (ambiguous outcomes may be retried).
  virtual bool dedupes_by_request_id() const noexcept = 0;
  /// True when a voice `body.url` must be fetched and inlined as `body.data_base64` before
  /// build() (the worker does it, under the account's fetch_* policy: see media_fetch.hpp).
  virtual bool inlines_media_from_url() const noexcept { return false; }
  /// Validates `r` against the document's limits and builds the call, or a failure
  /// (`rejected`: nothing is sent) naming the field.
  virtual std::variant<http_call, core::failure> build(const core::send_request& r,
                                                       const account& a) const = 0;
  /// Classifies an HTTP reply (any status). `retry_after` is the reply's Retry-After header,
  /// when it had one; it becomes `reply_outcome::retry_after` for 429 and 503. Pure.
  virtual reply_outcome classify(unsigned http_status, std::string_view content_type,
                                 std::string_view body,
                                 std::optional<std::chrono::milliseconds> retry_after) const = 0;
  /// Same, for a reply without a Retry-After header.
  reply_outcome classify(unsigned http_status, std::string_view content_type,
                         std::string_view body) const {
    return classify(http_status, content_type, body, std::nullopt);
  }
};

/// The built-in provider named `name`, or nullptr when there is none of that name.
std::unique_ptr<provider> make_provider(std::string_view name);
/// Names of the built-in providers.
const std::vector<std::string_view>& builtin_provider_names();

}  // namespace sendq::providers
