#pragma once
/// The DeliveryResult of CONTRACT.md.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sendq/core/failure.hpp"

namespace sendq::core {

enum class delivery_status { delivered, failed, rejected, expired };
std::string_view to_string(delivery_status s) noexcept;

/// Where the request was read from.
struct source_position {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};

struct delivery_result {
  std::string id;  ///< request id; for undecodable input "<topic>:<partition>:<offset>"
  std::string provider;
  std::string account;
  std::string type;
  std::string to;
  delivery_status status = delivery_status::failed;
  int attempts = 0;
  std::optional<std::string> provider_message_id;  ///< digits kept exactly as the provider sent them
  std::optional<int> http_status;
  std::optional<std::string> provider_code;
  std::optional<failure> error;
  std::optional<std::int64_t> created_at_ms;
  std::int64_t completed_at_ms = 0;
  std::optional<std::int64_t> latency_ms;  ///< completed_at - created_at, when created_at is known
  source_position source;
};

}  // namespace sendq::core
