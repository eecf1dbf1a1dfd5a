// The pipeline's readiness (/readyz) is asked from the metrics server's thread, which serves it
// before, while and after start() runs on the main thread. Under ThreadSanitizer (the test
// command's tsan stage runs delivery_test) this also checks that it reads nothing start() is
// still writing.
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "one_shard_setup.hpp"

namespace sendq::delivery {
namespace {

using namespace std::chrono_literals;

TEST(pipeline_readiness, answers_from_another_thread_before_during_and_after_start) {
  config::config cfg;
  cfg.worker.shutdown_grace_ms = 1000;
  testing::one_shard_setup env(cfg);
  {
    pipeline p(cfg, env.cluster.bootstrap(), env.log, env.metrics, env.shards());
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
}

}  // namespace
}  // namespace sendq::delivery
