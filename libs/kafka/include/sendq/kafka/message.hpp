#pragma once
/// A consumed Kafka message. Owns the librdkafka message, so payload views stay valid without a copy.
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sendq::kafka {

struct message_deleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};

class message {
 public:
  message() = default;
  explicit message(rd_kafka_message_t* m) : m_(m) {}

  std::string_view topic() const { return rd_kafka_topic_name(m_->rkt); }
  std::int32_t partition() const { return m_->partition; }
  std::int64_t offset() const { return m_->offset; }
  /// Empty for tombstones (null value) and empty values alike.
  std::string_view payload() const {
    return m_->payload ? std::string_view(static_cast<const char*>(m_->payload), m_->len) : std::string_view();
  }
  std::string_view key() const {
    return m_->key ? std::string_view(static_cast<const char*>(m_->key), m_->key_len) : std::string_view();
  }
  /// Producer or log-append time in epoch ms; -1 when the broker gave none.
  std::int64_t timestamp_ms() const {
    rd_kafka_timestamp_type_t type;
    return rd_kafka_message_timestamp(m_.get(), &type);
  }
  /// The last header named `name`, or nullopt (a header with a null value reads as "").
  std::optional<std::string_view> header(std::string_view name) const {
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m_.get(), &hdrs) || !hdrs) return std::nullopt;
    const std::string n(name);
    const void* value = nullptr;
    std::size_t size = 0;
    if (rd_kafka_header_get_last(hdrs, n.c_str(), &value, &size)) return std::nullopt;
    return value ? std::string_view(static_cast<const char*>(value), size) : std::string_view();
  }
  explicit operator bool() const { return static_cast<bool>(m_); }

 private:
  std::unique_ptr<rd_kafka_message_t, message_deleter> m_;
};

/// A partition position to commit: the offset of the next message to read.
struct partition_offset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

/// True when `m` is of one of `partitions` (their offsets are not looked at): a message of a
/// revoked partition is dropped, not admitted.
inline bool in_partitions(const message& m, const std::vector<partition_offset>& partitions) {
  for (const auto& p : partitions) {
    if (p.partition == m.partition() && p.topic == m.topic()) return true;
  }
  return false;
}

}  // namespace sendq::kafka
