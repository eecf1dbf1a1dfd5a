#pragma once
/// SendRequest decoder (simdjson On-Demand). One decoder per thread: it owns parser buffers.
#include <cstddef>
#include <memory>
#include <string_view>
#include <variant>

#include "sendq/core/failure.hpp"
#include "sendq/core/send_request.hpp"

namespace sendq::core {

/// Largest accepted SendRequest in bytes (before any provider limit).
inline constexpr std::size_t default_max_request_bytes = 4 * 1024 * 1024;

class request_decoder {
 public:
  explicit request_decoder(std::size_t max_request_bytes = default_max_request_bytes);
  ~request_decoder();
  request_decoder(const request_decoder&) = delete;
  request_decoder& operator=(const request_decoder&) = delete;

  /// Decodes `bytes` into `out` (reusing its storage). On failure returns the kind and a message
  /// naming the field; `out` is then partly filled (id/provider/type/to when they were readable)
  /// so that the result can still name the request. Thread-compatible, not thread-safe.
  std::optional<failure> decode(std::string_view bytes, send_request& out);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sendq::core
