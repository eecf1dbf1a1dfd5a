// The pipeline's readiness (/readyz) is asked from the metrics server's thread, which serves it
// before, while and after start() runs on the main thread. Under ThreadSanitizer (the test
// command's tsan stage runs delivery_test) this also checks that it reads nothing start() is
// still writing.
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "sendq/delivery/pipeline.hpp"
#include "sendq/http/client.hpp"
#include "sendq/kafka/embedded_cluster.hpp"
#include "sendq/log/logger.hpp"
#include "sendq/metrics/worker_metrics.hpp"

namespace sendq::delivery {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

TEST(pipeline_readiness, answers_from_another_thread_before_during_and_after_start) {
  config::config cfg;
  cfg.worker.shutdown_grace_ms = 1000;
  kafka::embedded_cluster cluster(1, {cfg.kafka.requests_topic, cfg.kafka.results_topic, cfg.kafka.dlq_topic,
                                      cfg.kafka.retry_topic, cfg.kafka.bulk_topic}, 2);
  log::logger log(log::level::error, true);
  prometheus::Registry registry;
  metrics::worker_metrics metrics(registry, "test", "test");
  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  http::client_options opts;
  opts.one_thread = true;
  http::client client(ioc.get_executor(), opts);
  std::thread io([&] { ioc.run(); });
  {
    pipeline p(cfg, cluster.bootstrap(), log, metrics, {io_shard{ioc.get_executor(), &client}});
    EXPECT_EQ(p.readiness(), "no partitions assigned yet");

    // when: a prober asks from its own thread from before start() until it sees the pipeline ready
    std::set<std::string> answers;  // the prober's own
    std::thread prober([&] {
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      for (;;) {
        auto answer = p.readiness();
        answers.insert(answer);
        if (answer.empty() || std::chrono::steady_clock::now() > deadline) break;
      }
    });
    p.start();
    prober.join();
    // then: ready once the group assigned the partitions, and only the start-up reason before
    EXPECT_EQ(answers.count(""), 1u) << "the group never assigned the partitions";
    for (const auto& a : answers) EXPECT_TRUE(a.empty() || a == "no partitions assigned yet") << a;
    EXPECT_EQ(p.readiness(), "");

    p.stop();
    EXPECT_EQ(p.readiness(), "stopping");
  }
  work.reset();
  io.join();
}

}  // namespace
}  // namespace sendq::delivery
