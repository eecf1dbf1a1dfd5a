#pragma once
/// Splits a `POST /v1/messages` body into SendRequest texts: one object, or a JSON array of them.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sendq::gateway {

struct batch_error {
  std::string message;  ///< names the element, e.g. "[3]: must be a SendRequest object"
  std::optional<std::size_t> index;  ///< 0-based element at fault; none for the body as a whole
  bool too_large = false;  ///< more elements than allowed (not malformed: split the batch)
};

/// Each element's raw JSON text (copied), in order. `is_array` tells a batch from a single request.
struct batch {
  std::vector<std::string> items;
  bool is_array = false;
};

/// At most `max_items` elements; an empty array is an error.
std::variant<batch, batch_error> split_batch(std::string_view body, std::size_t max_items);

}  // namespace sendq::gateway
