#pragma once
/// The DLQ record of a request that ended without delivery (CONTRACT.md: the original bytes, with
/// headers saying why), and the size bounds that keep it, and the result, writable.
#include <cstddef>
#include <string>
#include <string_view>

#include "sendq/core/delivery_result.hpp"
#include "sendq/kafka/producer.hpp"

namespace sendq::delivery {

/// Headers of the DLQ record of `res`: status, error kind and message, and where the request was
/// read from (sendq-source-topic/-partition/-offset).
kafka::header_list dlq_headers(const core::delivery_result& res);

/// Header added when the original bytes cannot be written to the DLQ (over the producer's or the
/// broker's message.max.bytes): the record then has a null value, and this header says why and
/// how big the original was; the sendq-source-* headers say where it still is.
inline constexpr std::string_view value_omitted_header = "sendq-value-omitted";
void mark_value_omitted(kafka::header_list& headers, std::size_t original_bytes, std::string_view error);

/// A request parked on sendq.retry is written as its original bytes with the members the worker
/// adds (attempt, not_before, created_at) inserted before the closing brace, so that its DLQ
/// record can still be the original bytes. This header of the parked record says where they
/// are: "<offset>:<length>" in its value (no comma: kcat's %h joins headers with commas).
inline constexpr std::string_view added_members_header = "sendq-added-members";
/// Where a parked request was first read from (its original record), carried across parks to its
/// DLQ record; sendq-source-* there say where it was last read from (sendq.retry).
inline constexpr std::string_view origin_topic_header = "sendq-origin-topic";
inline constexpr std::string_view origin_partition_header = "sendq-origin-partition";
inline constexpr std::string_view origin_offset_header = "sendq-origin-offset";

/// The id of a result for a record without a usable one: "<topic>:<partition>:<offset>", cut to
/// its last 128 characters (the contract's id limit; a topic name may have 249).
std::string position_id(std::string_view topic, std::int32_t partition, std::int64_t offset);

/// Longest error message written to a result, a DLQ header or the log. Messages may quote input
/// (a 900 KB `type` value); longer ones are cut at a UTF-8 boundary and say so.
inline constexpr std::size_t max_error_message_bytes = 1024;
void cap_error_message(std::string& message, std::size_t max_bytes = max_error_message_bytes);

}  // namespace sendq::delivery
