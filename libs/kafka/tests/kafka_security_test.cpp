// [kafka.librdkafka] passthrough: TLS and SASL settings reach every librdkafka handle sendq makes
// (the worker's consumer and producer, the gateway's producer, sendqctl's reader and producer).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "sendq/kafka/consumer.hpp"
#include "sendq/kafka/embedded_cluster.hpp"
#include "sendq/kafka/producer.hpp"
#include "sendq/kafka/reader.hpp"
#include "sendq/log/logger.hpp"

using namespace sendq;
using namespace std::chrono_literals;
using settings = std::map<std::string, std::string>;

namespace {

struct no_listener : kafka::rebalance_listener {
  void on_assigned(const std::vector<kafka::partition_offset>&) override {}
  void on_revoked(const std::vector<kafka::partition_offset>&) override {}
};

enum class handle { consumer, producer, reader };
const char* name_of(handle h) { return h == handle::consumer ? "consumer" : h == handle::producer ? "producer" : "reader"; }

// Creates the handle with `passthrough`; "" when it was created, else what was thrown.
std::string creation_error(handle h, const settings& passthrough, const std::string& brokers = "127.0.0.1:1") {
  log::logger logger(log::level::error, false, stderr);
  no_listener listener;
  try {
    switch (h) {
      case handle::consumer: kafka::consumer({brokers, "g", {"t"}, passthrough, {}}, logger, listener); break;
      case handle::producer: kafka::producer({brokers, passthrough}, logger, [](void*, const std::string&) {}); break;
      case handle::reader: kafka::reader({brokers, passthrough}, logger); break;
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

constexpr handle every_handle[] = {handle::consumer, handle::producer, handle::reader};

// A log file the logger writes (and flushes) line by line, read back whole.
struct captured_log {
  std::string path;
  std::FILE* file;
  captured_log() {
    char tmpl[] = "/tmp/sendq_kafka_log_XXXXXX";
    const int fd = ::mkstemp(tmpl);
    path = tmpl;
    file = ::fdopen(fd, "w");
  }
  ~captured_log() {
    std::fclose(file);
    std::remove(path.c_str());
  }
  std::string text() const {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool wait_for(const std::string& s, std::chrono::seconds limit, const std::function<void()>& pump) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (text().find(s) != std::string::npos) return true;
      pump();
    }
    return text().find(s) != std::string::npos;
  }
};

}  // namespace

TEST(kafka_passthrough, a_value_librdkafka_refuses_fails_creation_naming_the_key) {
  for (auto h : every_handle) {
    const auto err = creation_error(h, {{"security.protocol", "bogus"}});
    EXPECT_NE(err.find("kafka.librdkafka.security.protocol"), std::string::npos) << name_of(h) << ": " << err;
    EXPECT_NE(err.find("bogus"), std::string::npos) << name_of(h) << ": " << err;
  }
}

TEST(kafka_passthrough, tls_settings_reach_every_handle) {
  // given TLS with a CA file that does not exist
  const settings tls{{"security.protocol", "ssl"}, {"ssl.ca.location", "/nonexistent/ca.pem"}};
  for (auto h : every_handle) {
    // when the handle is made, then it is refused (librdkafka builds its TLS context at creation),
    // naming the setting, its value and why the file is unusable
    const auto err = creation_error(h, tls);
    EXPECT_NE(err.find(std::string("kafka ") + name_of(h)), std::string::npos) << err;
    EXPECT_NE(err.find("ssl.ca.location failed"), std::string::npos) << name_of(h) << ": " << err;
    EXPECT_NE(err.find("kafka.librdkafka.ssl.ca.location = \"/nonexistent/ca.pem\": No such file or directory"),
              std::string::npos)
        << name_of(h) << ": " << err;
    // and the same CA without TLS is not looked at: so security.protocol got there too
    EXPECT_EQ(creation_error(h, {{"security.protocol", "plaintext"}, {"ssl.ca.location", "/nonexistent/ca.pem"}}), "")
        << name_of(h);
  }
}

TEST(kafka_passthrough, the_documented_sasl_ssl_scram_setup_is_accepted_by_this_librdkafka) {
  // docs/configuration.md's example: this librdkafka build has TLS and SCRAM (a build without
  // them refuses security.protocol = sasl_ssl or the mechanism at creation).
  const settings scram{{"security.protocol", "sasl_ssl"},
                       {"sasl.mechanism", "SCRAM-SHA-512"},
                       {"sasl.username", "sendq"},
                       {"sasl.password", "pw"}};
  for (auto h : every_handle) EXPECT_EQ(creation_error(h, scram), "") << name_of(h);
  // and a mechanism librdkafka does not know is refused at creation, naming the setting
  for (auto h : every_handle) {
    const auto err = creation_error(h, {{"security.protocol", "sasl_plaintext"}, {"sasl.mechanism", "BOGUS"}});
    EXPECT_NE(err.find("Unsupported SASL mechanism: BOGUS (kafka.librdkafka.sasl.mechanism = \"BOGUS\")"),
              std::string::npos)
        << name_of(h) << ": " << err;
  }
}

// librdkafka 2.0.2's mock cluster (the embedded Kafka) speaks neither TLS nor SASL: it answers
// ApiVersions without SaslHandshake. So no test here can authenticate; what can be shown is that
// the SASL settings reach the connection: the client tries the PLAIN handshake and says why not.
TEST(kafka_passthrough, sasl_settings_reach_the_connection_of_the_consumer_and_the_producer) {
  kafka::embedded_cluster cluster(1, {"t"}, 1);
  const settings sasl{{"security.protocol", "sasl_plaintext"},
                      {"sasl.mechanism", "PLAIN"},
                      {"sasl.username", "sendq"},
                      {"sasl.password", "pw"}};
  const std::string refused = "SASL Handshake not supported by broker (required by mechanism PLAIN)";
  {
    captured_log out;
    log::logger logger(log::level::error, false, out.file);
    kafka::producer p({cluster.bootstrap(), sasl}, logger, [](void*, const std::string&) {});
    ASSERT_EQ(p.produce("t", "k", "v", {}, nullptr), "");
    EXPECT_TRUE(out.wait_for(refused, 15s, [&] { p.poll(100ms); })) << out.text();
  }
  {
    captured_log out;
    log::logger logger(log::level::error, false, out.file);
    no_listener listener;
    kafka::consumer c({cluster.bootstrap(), "g", {"t"}, sasl, {}}, logger, listener);
    EXPECT_TRUE(out.wait_for(refused, 15s, [&] { c.poll(1, 100ms); })) << out.text();
    c.close();
  }
  {
    // control: without the SASL settings the same cluster takes the record
    log::logger logger(log::level::error, false, stderr);
    kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
    ASSERT_EQ(p.produce("t", "k", "v", {}, nullptr), "");
    EXPECT_EQ(p.flush(10s), 0);
  }
}
