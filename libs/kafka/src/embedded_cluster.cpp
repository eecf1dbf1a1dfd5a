#include "sendq/kafka/embedded_cluster.hpp"

#include "rdkafka_handles.hpp"  // rdkafka.h must come before rdkafka_mock.h

#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sendq::kafka {

namespace {
struct destroy_cluster {
  void operator()(rd_kafka_mock_cluster_t* c) const { rd_kafka_mock_cluster_destroy(c); }
};
}  // namespace

struct embedded_cluster::impl {
  detail::kafka_handle owner;  // the mock cluster runs on this handle's thread
  // Declared after its owner, so destroyed first; also when the constructor throws (a topic refused).
  std::unique_ptr<rd_kafka_mock_cluster_t, destroy_cluster> cluster;
  int brokers = 0;
};

embedded_cluster::embedded_cluster(int brokers, const std::vector<std::string>& topics, int partitions)
    : impl_(std::make_unique<impl>()) {
  detail::conf_handle conf(rd_kafka_conf_new());
  detail::set(conf.get(), "log_level", "3");  // the mock is chatty at info level
  char err[512];
  impl_->owner.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.release(), err, sizeof err));
  if (!impl_->owner) throw std::runtime_error(std::string("embedded kafka: ") + err);
  impl_->cluster.reset(rd_kafka_mock_cluster_new(impl_->owner.get(), brokers));
  impl_->brokers = brokers;
  if (!impl_->cluster) throw std::runtime_error("embedded kafka: cannot start the mock cluster");
  for (const auto& t : topics) create_topic(t, partitions);
}

embedded_cluster::~embedded_cluster() = default;

std::string embedded_cluster::bootstrap() const { return rd_kafka_mock_cluster_bootstraps(impl_->cluster.get()); }

void embedded_cluster::fail_next_offset_commits(std::size_t count) {
  constexpr std::int16_t offset_commit_api = 8;  // RD_KAFKAP_OffsetCommit, not in the public headers
  // An error librdkafka does not retry: the commit fails, as one refused mid-rebalance does.
  const std::vector<rd_kafka_resp_err_t> errors(count, RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE);
  rd_kafka_mock_push_request_errors_array(impl_->cluster.get(), offset_commit_api, errors.size(), errors.data());
}

void embedded_cluster::fence_next_heartbeat() {
  constexpr std::int16_t heartbeat_api = 12;  // RD_KAFKAP_Heartbeat
  rd_kafka_mock_push_request_errors(impl_->cluster.get(), heartbeat_api, 1, RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID);
}

void embedded_cluster::refuse_next_produce_for_size() {
  constexpr std::int16_t produce_api = 0;  // RD_KAFKAP_Produce
  rd_kafka_mock_push_request_errors(impl_->cluster.get(), produce_api, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
}

void embedded_cluster::set_brokers_down(bool down) {
  for (std::int32_t id = 1; id <= impl_->brokers; ++id) {  // the mock numbers its brokers from 1
    if (down) {
      rd_kafka_mock_broker_set_down(impl_->cluster.get(), id);
    } else {
      rd_kafka_mock_broker_set_up(impl_->cluster.get(), id);
    }
  }
}

void embedded_cluster::create_topic(const std::string& topic, int partitions) {
  if (partitions < 1) {  // the mock would make a topic no record can go to
    throw std::runtime_error("embedded kafka: cannot create topic " + topic + ": partitions must be at least 1, not " +
                             std::to_string(partitions));
  }
  const auto e = rd_kafka_mock_topic_create(impl_->cluster.get(), topic.c_str(), partitions, 1);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    throw std::runtime_error("embedded kafka: cannot create topic " + topic + ": " + rd_kafka_err2str(e));
  }
}

}  // namespace sendq::kafka
