// Route gates are made only for configured routes: a request naming a provider or account that
// is not configured is rejected, and a gate kept for each distinct bad name would grow without
// bound.
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "one_shard_setup.hpp"
#include "sendq/kafka/producer.hpp"

namespace sendq::delivery {
namespace {

using namespace std::chrono_literals;

std::string text_request(const std::string& id, const std::string& provider, const std::string& account) {
  return R"({"id":")" + id + R"(","provider":")" + provider + R"(","account":")" + account +
         R"(","type":"text","to":"wx-)" + id + R"(","body":{"text":"hi"}})";
}

TEST(pipeline_route_gates, are_made_for_configured_routes_only) {
  // given: one configured gewe account (its endpoint refuses connections: the request ends fast)
  config::config cfg;
  cfg.worker.shutdown_grace_ms = 1000;
  cfg.worker.max_attempts = 1;
  cfg.accounts.push_back({"gewe", "default", "http://127.0.0.1:1", {{"token", "t"}, {"app_id", "a"}}});
  testing::one_shard_setup env(cfg);
  auto& metrics = env.metrics;
  {
    pipeline p(cfg, env.cluster.bootstrap(), env.log, metrics, env.shards());
    p.start();

    // when: one request for the configured route and 40 naming accounts and providers that are not
    int acked = 0;
    kafka::producer producer({env.cluster.bootstrap(), {}}, env.log, [&](void*, const std::string& err) {
      EXPECT_EQ(err, "");
      ++acked;
    });
    constexpr int unknown = 40;
    ASSERT_EQ(producer.produce(cfg.kafka.requests_topic, "k-ok", text_request("ok", "gewe", "default"), {}, nullptr), "");
    for (int i = 0; i < unknown; ++i) {
      const auto id = "bad-" + std::to_string(i);
      const auto request = i % 2 ? text_request(id, "gewe", "nope-" + std::to_string(i))
                                 : text_request(id, "nope-" + std::to_string(i), "default");
      ASSERT_EQ(producer.produce(cfg.kafka.requests_topic, "k-" + id, request, {}, nullptr), "");
    }
    ASSERT_EQ(producer.flush(30s), 0);
    producer.poll(0ms);
    EXPECT_EQ(acked, unknown + 1);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while ((metrics.requests_consumed.Value() < unknown + 1 || p.unfinished() > 0) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(metrics.requests_consumed.Value(), unknown + 1);
    ASSERT_EQ(p.unfinished(), 0);

    // then: each ended (rejected or failed) and only the configured route has a gate
    EXPECT_EQ(metrics.delivery_counter("unknown", "unknown", "rejected", "unknown_provider").Value(), unknown / 2);
    EXPECT_EQ(metrics.delivery_counter("unknown", "unknown", "rejected", "unknown_account").Value(), unknown / 2);
    EXPECT_EQ(p.route_gates(), 1u);
    p.stop();
  }
}

}  // namespace
}  // namespace sendq::delivery
