#pragma once
/// librdkafka's in-process mock cluster: the real Kafka protocol on loopback, so kcat and any
/// client can talk to it. NOT durable: it keeps about 5 MB per partition in memory and nothing
/// across restarts. For trying sendq out and for tests; production uses a real cluster.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace sendq::kafka {

class embedded_cluster {
 public:
  /// Starts `brokers` mock brokers and creates `topics` with `partitions` each.
  /// Throws std::runtime_error when librdkafka cannot start it.
  embedded_cluster(int brokers, const std::vector<std::string>& topics, int partitions);
  ~embedded_cluster();
  embedded_cluster(const embedded_cluster&) = delete;
  embedded_cluster& operator=(const embedded_cluster&) = delete;

  /// "127.0.0.1:port,..." for bootstrap.servers.
  std::string bootstrap() const;
  /// Creates another topic (no-op if it exists).
  void create_topic(const std::string& topic, int partitions);
  /// Tests: the next `count` OffsetCommit requests, from any client, fail.
  void fail_next_offset_commits(std::size_t count);
  /// Tests: the next Heartbeat request, from any client, fails with FENCED_INSTANCE_ID, which
  /// librdkafka takes as a fatal consumer error (a static member replaced by a newer instance).
  void fence_next_heartbeat();
  /// Tests: the next Produce request, from any client, fails with MSG_SIZE_TOO_LARGE, as a real
  /// broker refuses a record over the topic's max.message.bytes (the mock enforces no limit).
  void refuse_next_produce_for_size();
  /// Tests: every broker drops its connections and refuses new ones (down), or takes them again.
  void set_brokers_down(bool down);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sendq::kafka
