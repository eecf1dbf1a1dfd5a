// sendq-embedded-kafka: librdkafka's mock cluster as a standalone process, so that workers can be
// stopped, killed and restarted against the same (in-memory, NOT durable) Kafka in tests,
// benchmarks and demos. Production uses a real Kafka cluster.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "sendq/kafka/embedded_cluster.hpp"

namespace {

constexpr const char* usage = R"(Usage: sendq-embedded-kafka [--partitions N] [--brokers N] [--bootstrap-file FILE] [--topic NAME]...
                            [--fail-offset-commits N]

Runs librdkafka's mock Kafka cluster on loopback until SIGINT/SIGTERM and prints its bootstrap
address. It speaks the real Kafka protocol (kcat and any client work), but keeps only about 5 MB
per partition, in memory, and nothing across restarts: it is NOT durable.

Options:
  --partitions N        partitions per topic (default 8)
  --brokers N           mock brokers (default 1)
  --topic NAME[:N]      create this topic, with N partitions if given (repeatable; default:
                        sendq.requests, sendq.results, sendq.dlq, sendq.retry, sendq.bulk)
  --bootstrap-file FILE write the bootstrap address to FILE once listening
  --fail-offset-commits N
                        tests: the first N OffsetCommit requests, from any client, fail with
                        OFFSET_METADATA_TOO_LARGE, an error librdkafka does not retry: the
                        client sees its commit refused, as during a rebalance
  -h, --help            this help

Signals: SIGINT, SIGTERM stop it. SIGUSR1 (tests): the next Heartbeat request, from any client,
fails with FENCED_INSTANCE_ID, a fatal error for a librdkafka consumer. SIGUSR2 (tests): the next
Produce request, from any client, fails with MSG_SIZE_TOO_LARGE, as a real broker refuses a record
over the topic's max.message.bytes (the mock enforces no size limit).
)";

volatile std::sig_atomic_t stop = 0;
volatile std::sig_atomic_t fence = 0;
volatile std::sig_atomic_t refuse_produce = 0;
void on_signal(int) { stop = 1; }
void on_fence(int) { fence = 1; }
void on_refuse_produce(int) { refuse_produce = 1; }

}  // namespace

int main(int argc, char** argv) {
  int partitions = 8;
  int brokers = 1;
  std::string bootstrap_file;
  int fail_offset_commits = 0;
  std::vector<std::pair<std::string, int>> topics;  // name, partitions (0: --partitions)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "sendq-embedded-kafka: " << name << " needs a value (see --help)\n";
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&](const char* name, std::string v) {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1 || n > 1000) {
        std::cerr << "sendq-embedded-kafka: " << name << ": '" << v << "' is not a number within 1..1000\n";
        std::exit(2);
      }
      return static_cast<int>(n);
    };
    if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    } else if (a == "--partitions") {
      partitions = number("--partitions", value("--partitions"));
    } else if (a == "--brokers") {
      brokers = number("--brokers", value("--brokers"));
    } else if (a == "--topic") {
      // Kafka topic names cannot hold ':', so "name:N" is unambiguous.
      auto t = value("--topic");
      const auto colon = t.find(':');
      const int n = colon == std::string::npos ? 0 : number("--topic NAME:N", t.substr(colon + 1));
      if (colon != std::string::npos) t.resize(colon);
      if (t.empty()) {
        std::cerr << "sendq-embedded-kafka: --topic needs a topic name (NAME or NAME:N)\n";
        return 2;
      }
      topics.push_back({t, n});
    } else if (a == "--bootstrap-file") {
      bootstrap_file = value("--bootstrap-file");
    } else if (a == "--fail-offset-commits") {
      fail_offset_commits = number("--fail-offset-commits", value("--fail-offset-commits"));
    } else {
      std::cerr << "sendq-embedded-kafka: unknown option '" << a << "' (see --help)\n";
      return 2;
    }
  }
  if (topics.empty()) {
    for (const char* t : {"sendq.requests", "sendq.results", "sendq.dlq", "sendq.retry", "sendq.bulk"}) {
      topics.push_back({t, 0});
    }
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGUSR1, on_fence);
  std::signal(SIGUSR2, on_refuse_produce);
  // Blocked before librdkafka's threads exist (they inherit the mask), so that a signal is taken
  // by sigsuspend below, never by one of them while this thread is not waiting.
  sigset_t blocked, waiting;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGUSR1);
  sigaddset(&blocked, SIGUSR2);
  sigprocmask(SIG_BLOCK, &blocked, &waiting);
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGTERM);
  sigdelset(&waiting, SIGUSR1);
  sigdelset(&waiting, SIGUSR2);
  try {
    sendq::kafka::embedded_cluster cluster(brokers, {}, partitions);
    for (const auto& [name, n] : topics) cluster.create_topic(name, n > 0 ? n : partitions);
    if (fail_offset_commits > 0) cluster.fail_next_offset_commits(static_cast<std::size_t>(fail_offset_commits));
    const auto bootstrap = cluster.bootstrap();
    if (!bootstrap_file.empty()) {
      // Write then rename, so that readers never see a partial address.
      const auto tmp = bootstrap_file + ".tmp";
      std::ofstream out(tmp);
      if (!(out << bootstrap << "\n" << std::flush) || std::rename(tmp.c_str(), bootstrap_file.c_str()) != 0) {
        throw std::runtime_error("--bootstrap-file: cannot write '" + bootstrap_file + "'");
      }
    }
    std::cout << "embedded Kafka (in memory, NOT durable) bootstrap=" << bootstrap << " partitions=" << partitions
              << std::endl;
    // sigsuspend, not pause(): a signal between the check and the wait would otherwise be lost,
    // and the process would wait for a second one (the signals are blocked from before the
    // cluster's threads start, so only this wait takes them).
    while (!stop) {
      if (fence) {
        fence = 0;
        cluster.fence_next_heartbeat();
        std::cout << "the next Heartbeat request fails with FENCED_INSTANCE_ID" << std::endl;
        continue;
      }
      if (refuse_produce) {
        refuse_produce = 0;
        cluster.refuse_next_produce_for_size();
        std::cout << "the next Produce request fails with MSG_SIZE_TOO_LARGE" << std::endl;
        continue;
      }
      sigsuspend(&waiting);
    }
  } catch (const std::exception& e) {
    std::cerr << "sendq-embedded-kafka: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
