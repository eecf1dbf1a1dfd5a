#pragma once
// What a pipeline test needs around the pipeline: an embedded Kafka cluster with the worker's
// topics, metrics, and one I/O shard (an io_context run by its own thread, with a one_thread
// HTTP client). Destroyed after the test's pipeline: the shard's thread is joined last.
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <prometheus/registry.h>

#include "sendq/config/config.hpp"
#include "sendq/delivery/pipeline.hpp"
#include "sendq/http/client.hpp"
#include "sendq/kafka/embedded_cluster.hpp"
#include "sendq/log/logger.hpp"
#include "sendq/metrics/worker_metrics.hpp"

namespace sendq::delivery::testing {

class one_shard_setup {
 public:
  explicit one_shard_setup(const config::config& cfg)
      : cluster(1, {cfg.kafka.requests_topic, cfg.kafka.results_topic, cfg.kafka.dlq_topic, cfg.kafka.retry_topic,
                    cfg.kafka.bulk_topic},
                2),
        metrics(registry, "test", "test"),
        client(ioc.get_executor(), one_thread()),
        io([this] { ioc.run(); }) {}
  ~one_shard_setup() {
    work.reset();
    io.join();
  }
  one_shard_setup(const one_shard_setup&) = delete;
  one_shard_setup& operator=(const one_shard_setup&) = delete;

  std::vector<io_shard> shards() { return {io_shard{ioc.get_executor(), &client}}; }

  kafka::embedded_cluster cluster;
  log::logger log{log::level::error, true};
  prometheus::Registry registry;
  metrics::worker_metrics metrics;
  boost::asio::io_context ioc;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work = boost::asio::make_work_guard(ioc);
  http::client client;

 private:
  static http::client_options one_thread() {
    http::client_options opts;
    opts.one_thread = true;
    return opts;
  }
  std::thread io;  // last: started once everything it runs exists
};

}  // namespace sendq::delivery::testing
