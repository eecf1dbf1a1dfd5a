#include "sendq/delivery/dead_letter.hpp"

#include <algorithm>

namespace sendq::delivery {

std::string position_id(std::string_view topic, std::int32_t partition, std::int64_t offset) {
  std::string id = std::string(topic) + ":" + std::to_string(partition) + ":" + std::to_string(offset);
  constexpr std::size_t max_id = 128;
  if (id.size() > max_id) id.erase(0, id.size() - max_id);  // the partition and offset are kept
  return id;
}

kafka::header_list dlq_headers(const core::delivery_result& res) {
  const std::string_view kind = res.error ? core::to_string(res.error->kind) : "";
  return {
      {"sendq-status", std::string(core::to_string(res.status))},
      {"sendq-error-kind", std::string(kind)},
      {"sendq-error-message", res.error ? res.error->message : ""},
      {"sendq-source-topic", res.source.topic},
      {"sendq-source-partition", std::to_string(res.source.partition)},
      {"sendq-source-offset", std::to_string(res.source.offset)},
  };
}

void mark_value_omitted(kafka::header_list& headers, std::size_t original_bytes, std::string_view error) {
  // A request that waited on sendq.retry was first read from its origin: the original is there.
  const bool parked = std::any_of(headers.begin(), headers.end(), [](const auto& h) { return h.first == origin_topic_header; });
  headers.emplace_back(std::string(value_omitted_header),
                       "the original value (" + std::to_string(original_bytes) + " bytes) is too large to copy here (" +
                           std::string(error) + "); it is at " + (parked ? "sendq-origin" : "sendq-source") +
                           "-topic/-partition/-offset");
}

void cap_error_message(std::string& message, std::size_t max_bytes) {
  if (message.size() <= max_bytes) return;
  constexpr std::string_view marker = "... (cut)";
  std::size_t cut = max_bytes > marker.size() ? max_bytes - marker.size() : 0;
  // Back up to the start of a UTF-8 sequence (never cut a character in two).
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
  message.resize(cut);
  message += marker;
}

}  // namespace sendq::delivery
