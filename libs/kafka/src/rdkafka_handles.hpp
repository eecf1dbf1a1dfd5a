#pragma once
// RAII for librdkafka's C handles and a checked conf setter.
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

/// The message when rd_kafka_new refused the configuration. librdkafka checks some settings only
/// there (TLS files, SASL mechanisms), and its reason may be terse ("ssl.ca.location failed:
/// error:05880002:x509 certificate routines::system lib", "Unsupported SASL mechanism: BOGUS"):
/// name every passthrough setting the reason mentions (by key, or by a value of 4+ characters),
/// with its value unless it is a secret, and why a file it names cannot be read.
inline std::string creation_error(const std::string& what, const char* err,
                                  const std::map<std::string, std::string>& passthrough) {
  std::string msg = what + ": " + err;
  std::string keys;
  for (const auto& [k, v] : passthrough) {
    const bool secret = k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
                        k.ends_with(".pem") || k == "sasl.oauthbearer.config";
    const bool named = std::strstr(err, k.c_str()) != nullptr ||
                       (!secret && v.size() >= 4 && std::strstr(err, v.c_str()) != nullptr);
    if (!named) continue;
    keys += keys.empty() ? " (" : "; ";
    keys += "kafka.librdkafka." + k;
    if (secret) continue;
    keys += " = \"" + v + "\"";
    // ssl.ca.location, ssl.key.location, ...: librdkafka logs the reason, the exception keeps it.
    if (k.ends_with(".location") && v != "probe" && ::access(v.c_str(), R_OK) != 0) {
      keys += ": ";
      keys += std::strerror(errno);
    }
  }
  if (!keys.empty()) msg += keys + ")";
  return msg;
}

}  // namespace sendq::kafka::detail
