// The pipeline's readiness (/readyz) is asked from the metrics server's thread, which serves it
// before, while and after start() runs on the main thread. Under ThreadSanitizer (the test
// command's tsan stage runs delivery_test) this also checks that it reads nothing start() is
// still writing.
#include <atomic>
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

    std::atomic<bool> probing{true};
    std::set<std::string> answers;  // the prober's own
    std::thread prober([&] {
      while (probing.load()) answers.insert(p.readiness());
    });
    p.start();
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::string ready = p.readiness();
    while (!ready.empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      ready = p.readiness();
    }
    probing = false;
    prober.join();
    EXPECT_EQ(ready, "") << "the group never assigned the partitions";
    EXPECT_EQ(answers, (std::set<std::string>{"", "no partitions assigned yet"}));

    p.stop();
    EXPECT_EQ(p.readiness(), "stopping");
  }
  work.reset();
  io.join();
}

}  // namespace
}  // namespace sendq::delivery
