#pragma once
// RAII for librdkafka's C handles and a checked conf setter.
#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

namespace sendq::kafka::detail {

struct kafka_deleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
struct partition_list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept { rd_kafka_topic_partition_list_destroy(l); }
};
using kafka_handle = std::unique_ptr<rd_kafka_t, kafka_deleter>;
using conf_handle = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;
using partition_list = std::unique_ptr<rd_kafka_topic_partition_list_t, partition_list_deleter>;

inline void set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw std::runtime_error("kafka.librdkafka." + key + ": " + err);
  }
}

inline void set_all(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& kv) {
  for (const auto& [k, v] : kv) set(conf, k, v);
}

}  // namespace sendq::kafka::detail
