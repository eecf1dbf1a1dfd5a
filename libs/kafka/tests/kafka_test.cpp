// Producer, consumer and commits against the embedded (mock) cluster.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <stdexcept>
#include <thread>

#include "sendq/kafka/consumer.hpp"
#include "sendq/kafka/embedded_cluster.hpp"
#include "sendq/kafka/producer.hpp"
#include "sendq/kafka/reader.hpp"
#include "sendq/log/logger.hpp"

using namespace sendq;
using namespace std::chrono_literals;

namespace {

struct recording_listener : kafka::rebalance_listener {
  std::atomic<int> assigned{0};
  void on_assigned(const std::vector<kafka::partition_offset>& p) override { assigned += static_cast<int>(p.size()); }
  void on_revoked(const std::vector<kafka::partition_offset>&) override {}
};

std::vector<std::string> consume_n(kafka::consumer& c, std::size_t n, std::vector<kafka::partition_offset>* last = nullptr) {
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
    for (auto& m : c.poll(100, 100ms)) {
      got.emplace_back(m.payload());
      if (last) last->push_back({std::string(m.topic()), m.partition(), m.offset() + 1});
    }
  }
  return got;
}

// Serves `p`'s callbacks until `done()` holds, for up to 15 s; returns done().
template <typename Done>
bool poll_until(kafka::producer& p, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!done() && std::chrono::steady_clock::now() < deadline) p.poll(50ms);
  return done();
}

}  // namespace

TEST(kafka, an_embedded_topic_of_no_partitions_is_an_error_naming_it) {
  // given a topic of no partitions; when the cluster starts, then it says which topic (and the
  // mock cluster it had started is freed: ASan's leak check runs this test too)
  try {
    kafka::embedded_cluster cluster(1, {"empty"}, 0);
    FAIL() << "a topic of no partitions was created";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "embedded kafka: cannot create topic empty: partitions must be at least 1, not 0");
  }
}

TEST(kafka, produces_acknowledged_records_and_consumes_them_in_order) {
  // given
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"t1"}, 1);
  std::mutex mu;
  std::vector<std::pair<long, std::string>> reports;
  kafka::producer p({cluster.bootstrap(), {}}, logger, [&](void* opaque, const std::string& err) {
    std::lock_guard l(mu);
    reports.emplace_back(reinterpret_cast<long>(opaque), err);
  });
  // when
  for (long i = 0; i < 20; ++i) {
    ASSERT_EQ(p.produce("t1", "k", "v" + std::to_string(i), {{"h", "x"}}, reinterpret_cast<void*>(i + 1)), "");
  }
  ASSERT_EQ(p.flush(10s), 0);
  // then every record was acknowledged, with its own opaque
  ASSERT_EQ(reports.size(), 20u);
  for (long i = 0; i < 20; ++i) {
    EXPECT_EQ(reports[i].first, i + 1);
    EXPECT_EQ(reports[i].second, "");
  }
  recording_listener listener;
  kafka::consumer c({cluster.bootstrap(), "g1", {"t1"}, {}}, logger, listener);
  auto got = consume_n(c, 20);
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got[i], "v" + std::to_string(i));
  EXPECT_GE(listener.assigned.load(), 1);
}

TEST(kafka, records_for_several_topics_from_several_threads_reach_their_own_topic) {
  // given two topics, produced to alternately by two threads (each topic's handle is made once
  // and shared)
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"ta", "tb"}, 1);
  std::atomic<int> acked{0}, failed{0};
  kafka::producer p({cluster.bootstrap(), {}}, logger, [&](void*, const std::string& err) {
    (err.empty() ? acked : failed)++;
  });
  // when
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&p, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string topic = (i % 2 == 0) ? "ta" : "tb";
        ASSERT_EQ(p.produce(topic, "k", topic + "-" + std::to_string(t) + "-" + std::to_string(i), {}, nullptr), "");
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(p.flush(10s), 0);
  // then each topic has exactly its own 50 records, each thread's in its order
  EXPECT_EQ(acked.load(), 100);
  EXPECT_EQ(failed.load(), 0);
  for (const std::string topic : {"ta", "tb"}) {
    recording_listener listener;
    kafka::consumer c({cluster.bootstrap(), "g-" + topic, {topic}, {}}, logger, listener);
    auto got = consume_n(c, 50);
    ASSERT_EQ(got.size(), 50u) << topic;
    std::vector<int> next(2, topic == "ta" ? 0 : 1);
    for (const auto& v : got) {
      ASSERT_EQ(v.substr(0, 3), topic + "-") << v;
      const int t = v[3] - '0';
      ASSERT_EQ(v.substr(4), "-" + std::to_string(next[t])) << v;
      next[t] += 2;
    }
  }
}

TEST(kafka, a_record_goes_to_the_partition_given_whatever_its_key) {
  // given a topic of 4 partitions, and records of one key (which alone would put them on one)
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"t4"}, 4);
  kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
  // when each is given a partition, and one is left to its key
  for (std::int32_t i = 0; i < 4; ++i) ASSERT_EQ(p.produce("t4", "k", "v" + std::to_string(i), {}, nullptr, i), "");
  ASSERT_EQ(p.produce("t4", "k", "by-key", {}, nullptr), "");
  ASSERT_EQ(p.flush(10s), 0);
  // then each given record is on its partition, and the last on its key's: librdkafka's
  // partitioner takes the CRC-32 of "k", 0x0862575d, modulo 4: 1
  recording_listener listener;
  kafka::consumer c({cluster.bootstrap(), "g-partitions", {"t4"}, {}}, logger, listener);
  std::vector<kafka::partition_offset> where;
  const auto got = consume_n(c, 5, &where);
  ASSERT_EQ(got.size(), 5u);
  std::map<std::string, std::int32_t> partition_of;
  for (std::size_t i = 0; i < got.size(); ++i) partition_of[got[i]] = where[i].partition;
  EXPECT_EQ(partition_of,
            (std::map<std::string, std::int32_t>{{"v0", 0}, {"v1", 1}, {"v2", 2}, {"v3", 3}, {"by-key", 1}}));
  // and the consumer tells how many partitions the topic has (a worker's share of them)
  EXPECT_EQ(c.partition_count("t4", 10s), std::optional<std::size_t>(4));
}

TEST(kafka, a_record_for_an_invalid_topic_name_is_refused_naming_the_topic) {
  // librdkafka refuses a topic handle for a name over 512 bytes (shorter bad names fail later,
  // in the delivery report)
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"t1"}, 1);
  kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
  const std::string err = p.produce(std::string(600, 'x'), "k", "v", {}, nullptr);
  EXPECT_NE(err.find("invalid topic '" + std::string(600, 'x') + "'"), std::string::npos) << err;
  // the producer still works for a valid topic
  EXPECT_EQ(p.produce("t1", "k", "v", {}, nullptr), "");
  EXPECT_EQ(p.flush(10s), 0);
}

TEST(kafka, says_when_a_record_is_over_message_max_bytes) {
  // given a producer that takes at most 2000 bytes a record
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"big"}, 1);
  kafka::producer p({cluster.bootstrap(), {{"message.max.bytes", "2000"}}}, logger, [](void*, const std::string&) {});
  // when a record over it is produced
  const auto err = p.produce("big", "k", std::string(3000, 'x'), {}, nullptr);
  // then the error says so (and is told apart from a full queue, which is worth waiting out)
  EXPECT_TRUE(kafka::is_message_too_large(err)) << err;
  EXPECT_FALSE(kafka::is_message_too_large(""));
  EXPECT_FALSE(kafka::is_message_too_large("Local: Queue full"));
  EXPECT_EQ(p.produce("big", "k", std::string(100, 'x'), {}, nullptr), "");
  EXPECT_EQ(p.flush(10s), 0);
}

TEST(kafka, a_consumer_takes_a_message_max_bytes_over_its_own_fetch_max_bytes) {
  // given settings for requests larger than the consumer's 4 MiB fetch (librdkafka refuses a
  // consumer whose fetch.max.bytes is below message.max.bytes)
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"large"}, 1);
  const std::map<std::string, std::string> settings{{"message.max.bytes", "9000000"}};
  kafka::producer p({cluster.bootstrap(), settings}, logger, [](void*, const std::string&) {});
  ASSERT_EQ(p.produce("large", "k", std::string(100000, 'x'), {}, nullptr), "");
  ASSERT_EQ(p.flush(10s), 0);
  // when a consumer is made with them, then it is, and reads the record
  recording_listener listener;
  std::optional<kafka::consumer> c;
  ASSERT_NO_THROW(c.emplace(kafka::consumer_options{cluster.bootstrap(), "g-large", {"large"}, settings}, logger, listener));
  const auto got = consume_n(*c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], std::string(100000, 'x'));
  // and one that sets fetch.max.bytes itself is left to librdkafka, which names both settings
  try {
    kafka::consumer refused({cluster.bootstrap(), "g-large2", {"large"}, {{"message.max.bytes", "9000000"}, {"fetch.max.bytes", "5000000"}}},
                            logger, listener);
    ADD_FAILURE() << "a fetch.max.bytes below message.max.bytes was taken";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("fetch.max.bytes"), std::string::npos) << e.what();
  }
}

TEST(kafka, a_new_consumer_of_the_group_resumes_at_the_committed_offset) {
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"t2"}, 1);
  kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
  for (int i = 0; i < 10; ++i) p.produce("t2", "", "m" + std::to_string(i), {}, nullptr);
  ASSERT_EQ(p.flush(10s), 0);
  {
    recording_listener listener;
    kafka::consumer c({cluster.bootstrap(), "g2", {"t2"}, {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}}}, logger, listener);
    std::vector<kafka::partition_offset> positions;
    auto got = consume_n(c, 10, &positions);
    ASSERT_EQ(got.size(), 10u);
    // commit only up to m4 (next offset 5)
    ASSERT_TRUE(c.commit({{"t2", 0, 5}}, true));
    c.close();
  }
  recording_listener listener;
  kafka::consumer c2({cluster.bootstrap(), "g2", {"t2"}, {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}}}, logger, listener);
  auto got = consume_n(c2, 5);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.front(), "m5");
  EXPECT_EQ(got.back(), "m9");
}

TEST(kafka_statistics, consumer_lag_of_the_fetched_partitions_in_document_order) {
  // the shape of librdkafka's statistics: brokers (skipped), then topics with their partitions,
  // including the internal "-1", one not fetched here ("none") and one with no lag known yet
  const std::string json = R"({"name":"rdkafka#consumer-1","brokers":{"127.0.0.1:9092/1":{"toppars":{"a-0":{"topic":"a","partition":0}}}},
    "topics":{
      "a":{"topic":"a","partitions":{
        "0":{"partition":0,"broker":1,"fetch_state":"active","consumer_lag":5,"lo_offset":0},
        "1":{"partition":1,"fetch_state":"none","consumer_lag":7},
        "2":{"partition":2,"fetch_state":"active","consumer_lag":-1},
        "-1":{"partition":-1,"fetch_state":"none","consumer_lag":-1}}},
      "b\u00e9":{"topic":"b","partitions":{
        "3":{"consumer_lag":0,"fetch_state":"offset-query","partition":3}}}},
    "cgrp":{"state":"up"}})";
  const auto lags = kafka::consumer_lags_from_statistics(json);
  ASSERT_EQ(lags.size(), 2u);
  EXPECT_EQ(lags[0].topic, "a");
  EXPECT_EQ(lags[0].partition, 0);
  EXPECT_EQ(lags[0].lag, 5);
  EXPECT_EQ(lags[1].topic, "b\xc3\xa9");  // keys are unescaped
  EXPECT_EQ(lags[1].partition, 3);
  EXPECT_EQ(lags[1].lag, 0);
}

TEST(kafka_statistics, brokers_up_counts_the_connected_ones_bootstrap_included) {
  EXPECT_EQ(kafka::brokers_up_from_statistics(R"({"name":"rdkafka#producer-1","brokers":{
      "127.0.0.1:9092/bootstrap":{"name":"127.0.0.1:9092/bootstrap","nodeid":-1,"state":"UP"},
      "127.0.0.1:9092/1":{"name":"127.0.0.1:9092/1","nodeid":1,"state":"UP"},
      "127.0.0.1:9093/2":{"name":"127.0.0.1:9093/2","nodeid":2,"state":"DOWN"}},"topics":{}})"),
            2);
  EXPECT_EQ(kafka::brokers_up_from_statistics(R"({"brokers":{"a/1":{"state":"CONNECT"},"b/2":{"state":"INIT"}}})"), 0);
  EXPECT_EQ(kafka::brokers_up_from_statistics(R"({"brokers":{}})"), 0);
  EXPECT_EQ(kafka::brokers_up_from_statistics(R"({"topics":{}})"), -1);
  EXPECT_EQ(kafka::brokers_up_from_statistics("not json"), -1);
}

TEST(kafka, a_producer_says_when_no_broker_is_reachable_and_when_one_is_again) {
  // given a producer that follows reachability, connected
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"reach"}, 1);
  kafka::producer_options opts{cluster.bootstrap(), {}};
  opts.reachability_interval_ms = 200;
  kafka::producer p(opts, logger, [](void*, const std::string&) {});
  ASSERT_EQ(p.produce("reach", "k", "v", {}, nullptr), "");
  ASSERT_EQ(p.flush(10s), 0);
  EXPECT_EQ(p.unreachable(), "");
  // when the broker goes down, then it says so
  cluster.set_brokers_down(true);
  ASSERT_TRUE(poll_until(p, [&] { return !p.unreachable().empty(); }));
  EXPECT_EQ(p.unreachable().rfind("no Kafka broker reachable for ", 0), 0u) << p.unreachable();
  EXPECT_NE(p.unreachable().find("brokers are down"), std::string::npos) << p.unreachable();
  // and when it is up again, then it is reachable again, with no record produced meanwhile
  cluster.set_brokers_down(false);
  EXPECT_TRUE(poll_until(p, [&] { return p.unreachable().empty(); })) << p.unreachable();
}

TEST(kafka, an_idle_producer_is_reachable_again_without_a_record) {
  // given a producer that follows reachability and has produced nothing (an idle gateway, or
  // one started while Kafka was away: unready, so no caller sends it a record)
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"idle"}, 1);
  kafka::producer_options opts{cluster.bootstrap(), {}};
  opts.reachability_interval_ms = 200;
  kafka::producer p(opts, logger, [](void*, const std::string&) {});
  p.poll(500ms);  // connected (the idempotent producer asks for its id at once)
  // when the broker goes down and comes back, then the producer says so both times
  cluster.set_brokers_down(true);
  ASSERT_TRUE(poll_until(p, [&] { return !p.unreachable().empty(); }));
  cluster.set_brokers_down(false);
  EXPECT_TRUE(poll_until(p, [&] { return p.unreachable().empty(); })) << p.unreachable();
}

TEST(kafka, a_fatal_producer_error_is_handed_to_on_fatal_and_produce_fails_after_it) {
  // given a producer whose owner wants to hear of a fatal error
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"fatal"}, 1);
  std::mutex mu;
  std::vector<std::string> fatal;
  kafka::producer_options opts{cluster.bootstrap(), {}};
  opts.on_fatal = [&](const std::string& why) {
    std::lock_guard lock(mu);
    fatal.push_back(why);
  };
  kafka::producer p(opts, logger, [](void*, const std::string&) {});
  ASSERT_EQ(p.produce("fatal", "k", "v", {}, nullptr), "");
  ASSERT_EQ(p.flush(10s), 0);
  // when librdkafka raises one (as for an idempotent producer's broken sequence)
  p.inject_fatal_error("drill");
  // then the owner hears it, with its cause, and no record is taken any more
  ASSERT_TRUE(poll_until(p, [&] {
    std::lock_guard lock(mu);
    return !fatal.empty();
  }));
  p.poll(200ms);
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(fatal, (std::vector<std::string>{"OUT_OF_ORDER_SEQUENCE_NUMBER: test_fatal_error: drill"}));
  }
  EXPECT_EQ(p.produce("fatal", "k", "v", {}, nullptr), "Local: Fatal error");
}

TEST(kafka_statistics, anything_else_gives_no_lag) {
  EXPECT_TRUE(kafka::consumer_lags_from_statistics("").empty());
  EXPECT_TRUE(kafka::consumer_lags_from_statistics("not json").empty());
  EXPECT_TRUE(kafka::consumer_lags_from_statistics(R"({"name":"x"})").empty());
  EXPECT_TRUE(kafka::consumer_lags_from_statistics(R"({"topics":[1,2]})").empty());
  EXPECT_TRUE(kafka::consumer_lags_from_statistics(R"({"topics":{"a":{"partitions":{"0":{"partition":"zero"}}}}})").empty());
  // cut short, inside a string or between values: simdjson refuses the whole document, so not even
  // the partition read before the cut is reported
  EXPECT_TRUE(kafka::consumer_lags_from_statistics(
                  R"({"topics":{"a":{"partitions":{"0":{"partition":0,"consumer_lag":4},"1":{"partition":1,"consu)")
                  .empty());
  EXPECT_TRUE(kafka::consumer_lags_from_statistics(
                  R"({"topics":{"a":{"partitions":{"0":{"partition":0,"consumer_lag":4},"1":{"partition":1,"consumer_lag":)")
                  .empty());
  // and the whole of it is read
  const auto whole = kafka::consumer_lags_from_statistics(
      R"({"topics":{"a":{"partitions":{"0":{"partition":0,"consumer_lag":4},"1":{"partition":1,"consumer_lag":6}}}}})");
  ASSERT_EQ(whole.size(), 2u);
  EXPECT_EQ((std::tuple{whole[0].topic, whole[0].partition, whole[0].lag}), (std::tuple{std::string("a"), 0, std::int64_t{4}}));
  EXPECT_EQ((std::tuple{whole[1].topic, whole[1].partition, whole[1].lag}), (std::tuple{std::string("a"), 1, std::int64_t{6}}));
}

TEST(kafka_statistics, a_consumer_reports_the_lag_of_its_partitions_from_librdkafkas_own_statistics) {
  // given 30 records on a two-partition topic
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"t1"}, 2);
  kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
  for (int i = 0; i < 30; ++i) ASSERT_EQ(p.produce("t1", "key-" + std::to_string(i), "v", {}, nullptr), "");
  ASSERT_EQ(p.flush(10s), 0);
  std::mutex mu;
  std::vector<kafka::partition_lag> last;
  recording_listener listener;
  kafka::consumer_options opts{cluster.bootstrap(), "g-lag", {"t1"}, {{"statistics.interval.ms", "100"}}};
  opts.on_lag = [&](const std::vector<kafka::partition_lag>& lags) {
    std::lock_guard l(mu);
    if (!lags.empty()) last = lags;
  };
  kafka::consumer c(opts, logger, listener);
  // when it has joined and committed offset 0 of both partitions (librdkafka's consumer_lag
  // counts from the committed offset: none means no lag known)
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (listener.assigned.load() < 2 && std::chrono::steady_clock::now() < deadline) (void)c.poll(1, 50ms);
  ASSERT_EQ(listener.assigned.load(), 2);
  ASSERT_TRUE(c.commit({{"t1", 0, 0}, {"t1", 1, 0}}, true));
  std::int64_t total = 0;
  std::vector<kafka::partition_lag> seen;
  while (std::chrono::steady_clock::now() < deadline) {
    (void)c.poll(100, 50ms);
    std::lock_guard l(mu);
    seen = last;
    total = 0;
    for (const auto& lag : seen) total += lag.lag;
    if (seen.size() == 2 && total == 30) break;
  }
  // then both partitions of t1 are reported, their lags adding up to the 30 records
  ASSERT_EQ(seen.size(), 2u);
  std::vector<int> partitions;
  for (const auto& lag : seen) {
    EXPECT_EQ(lag.topic, "t1");
    partitions.push_back(lag.partition);
  }
  std::sort(partitions.begin(), partitions.end());
  EXPECT_EQ(partitions, (std::vector<int>{0, 1}));
  EXPECT_EQ(total, 30);
}

// The mock answers -1 to every time lookup: what the reader makes of that is checked here, and the
// records' own timestamps, which the tools filter on past such an answer.
TEST(kafka_reader, a_time_lookup_the_mock_cannot_answer_reads_the_partition_whose_last_record_is_newer) {
  // given 3 records before and 3 after a point in time
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"r1"}, 2);
  kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.produce("r1", "k", "before" + std::to_string(i), {{"kind", "a"}}, nullptr), "");
  ASSERT_EQ(p.flush(10s), 0);
  std::this_thread::sleep_for(20ms);  // timestamps are milliseconds: separate the two groups
  const auto cut = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.produce("r1", "k", "after" + std::to_string(i), {{"kind", "b"}}, nullptr), "");
  ASSERT_EQ(p.flush(10s), 0);
  kafka::reader r({cluster.bootstrap(), {}}, logger);
  const auto parts = r.partitions("r1", 5s);
  ASSERT_EQ(parts.size(), 2u);
  // when looking up the cut: -1 (unknown) for the partition whose last record is newer, which the
  // caller reads from its low watermark; the empty one's high watermark (nothing newer there)
  const auto begins = r.offsets_for_time("r1", parts, cut, 5s);
  std::vector<kafka::partition_range> ranges;
  std::vector<std::int64_t> expected_begins;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto [low, high] = r.watermarks("r1", parts[i], 5s);
    expected_begins.push_back(high > low ? -1 : high);
    ranges.push_back({parts[i], begins[i] >= 0 ? begins[i] : low, high});
  }
  EXPECT_EQ(begins, expected_begins);
  r.assign("r1", ranges);
  std::vector<std::tuple<std::string, std::string, bool>> got;  // payload, kind, at or after the cut
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!r.done() && std::chrono::steady_clock::now() < deadline) {
    for (auto& m : r.read(100, 100ms)) got.emplace_back(std::string(m.payload()), std::string(m.header("kind").value_or("(none)")), m.timestamp_ms() >= cut);
  }
  // then the six records of the one key's partition, in order, with their headers and timestamps
  // on either side of the cut, and the reader is done
  EXPECT_TRUE(r.done());
  using row = std::tuple<std::string, std::string, bool>;
  EXPECT_EQ(got, (std::vector<row>{{"before0", "a", false}, {"before1", "a", false}, {"before2", "a", false},
                                   {"after0", "b", true}, {"after1", "b", true}, {"after2", "b", true}}));
  // and a time after every record gives each partition's high watermark (nothing to read), not
  // -1: on a real cluster, a scan of the whole partition (the mock answers -1 to every time)
  const auto later = r.offsets_for_time("r1", parts, cut + 3'600'000, 5s);
  std::vector<std::int64_t> highs;
  for (const auto part : parts) highs.push_back(r.watermarks("r1", part, 5s).second);
  EXPECT_EQ(later, highs);
  EXPECT_EQ(highs[0] + highs[1], 6);
  // and watermarks the caller passes are used, not queried again: the same answer from the real
  // ones; partitions the caller saw empty give their high watermark as given (0), unread
  std::vector<std::pair<std::int64_t, std::int64_t>> marks;
  for (const auto part : parts) marks.push_back(r.watermarks("r1", part, 5s));
  EXPECT_EQ(r.offsets_for_time("r1", parts, cut + 3'600'000, 5s, &marks), highs);
  const std::vector<std::pair<std::int64_t, std::int64_t>> empty(parts.size(), {0, 0});
  EXPECT_EQ(r.offsets_for_time("r1", parts, cut, 5s, &empty), (std::vector<std::int64_t>{0, 0}));
  // a count that does not match the partitions is the caller's mistake, named
  marks.pop_back();
  EXPECT_THROW(r.offsets_for_time("r1", parts, cut, 5s, &marks), std::invalid_argument);
}

TEST(kafka_reader, a_range_whose_records_were_deleted_meanwhile_is_a_gap_not_an_early_end) {
  // given a partition the mock cluster has trimmed (it keeps about 5 MB): its oldest records are gone
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"trim"}, 1);
  kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
  std::mt19937 random(7);  // values that do not compress: the mock counts the bytes it stores
  for (int i = 0; i < 1'000; ++i) {
    std::string value(10'000, ' ');
    for (auto& c : value) c = static_cast<char>('!' + random() % 90);
    ASSERT_EQ(p.produce("trim", "k", value, {}, nullptr), "");
  }
  ASSERT_EQ(p.flush(30s), 0);
  kafka::reader r({cluster.bootstrap(), {}}, logger);
  const auto [low, high] = r.watermarks("trim", 0, 5s);
  ASSERT_GT(low, 0) << "the mock kept every record: nothing to test";
  ASSERT_EQ(high, 1'000);
  // when a range is read from before the oldest record left (as a slow replay finds it)
  r.assign("trim", {{0, 0, high}});
  std::size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!r.done() && std::chrono::steady_clock::now() < deadline) got += r.read(100, 100ms).size();
  // then the reader stops there and says so, instead of jumping to the end as if the range were read
  EXPECT_TRUE(r.done());
  EXPECT_EQ(got, 0u);
  ASSERT_EQ(r.gaps().size(), 1u);
  EXPECT_EQ(r.gaps()[0].rfind("partition 0: the record at offset 0 is no longer on the broker (", 0), 0u) << r.gaps()[0];
  // and a range of what is left reads whole, with no gap
  kafka::reader whole({cluster.bootstrap(), {}}, logger);
  whole.assign("trim", {{0, low, high}});
  got = 0;
  while (!whole.done() && std::chrono::steady_clock::now() < deadline + 20s) got += whole.read(100, 100ms).size();
  EXPECT_EQ(got, static_cast<std::size_t>(high - low));
  EXPECT_TRUE(whole.gaps().empty());
  // and a followed partition (tail) notes the gap and goes on from the oldest record left
  kafka::reader follower({cluster.bootstrap(), {}}, logger);
  follower.assign("trim", {{0, 0, -1}});
  std::vector<kafka::message> first;
  const auto follow_deadline = std::chrono::steady_clock::now() + 20s;
  while (first.empty() && std::chrono::steady_clock::now() < follow_deadline) first = follower.read(1, 100ms);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.front().offset(), low);
  ASSERT_EQ(follower.gaps().size(), 1u);
  EXPECT_NE(follower.gaps()[0].find("going on from the oldest record left"), std::string::npos) << follower.gaps()[0];
}

// librdkafka 2.0.2 stops fetching once its queue holds queued.min.messages and, unless woken, looks
// again only a second later. poll() restarts such a fetch itself once the queue is empty. Here the
// limit is 100 messages and the test reads more slowly than the broker fetches, pausing 20 ms after
// each batch, so the queue fills up and stops the fetch before every batch: the drain of 6,000
// stops and restarts dozens of times (without the restart each stop would last up to a second,
// and the deadline would pass). Every record must still come exactly once, each partition in
// offset order, with partition 0 paused for a while in the middle.
TEST(kafka, restarts_a_fetch_stopped_by_a_full_queue_without_skipping_or_repeating_a_record) {
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"full"}, 4);
  // Small record sets: the mock broker answers a fetch with whole ones.
  kafka::producer p({cluster.bootstrap(), {{"batch.num.messages", "20"}}}, logger, [](void*, const std::string&) {});
  constexpr int total = 6000;
  for (int i = 0; i < total; ++i) {
    ASSERT_EQ(p.produce("full", "key-" + std::to_string(i % 97), "v" + std::to_string(i), {}, nullptr), "");
  }
  ASSERT_EQ(p.flush(10s), 0);
  recording_listener listener;
  kafka::consumer c({cluster.bootstrap(), "g-full", {"full"}, {{"queued.min.messages", "100"}}}, logger, listener);

  std::map<std::int32_t, std::vector<std::int64_t>> offsets;  // per partition, in the order polled
  std::set<std::string> values;
  std::size_t polled = 0;
  bool paused = false;
  bool resumed = false;
  std::size_t polled_at_pause = 0;
  // Done in a few seconds; 90 s for an ASan build among eight tests at a time (4,515 in 30 s once).
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (polled < total && std::chrono::steady_clock::now() < deadline) {
    const auto batch = c.poll(500, 100ms);
    for (const auto& m : batch) {
      ++polled;
      offsets[m.partition()].push_back(m.offset());
      values.emplace(m.payload());
    }
    std::this_thread::sleep_for(20ms);  // slower than the fetches: the queue fills to its limit
    // Halfway, partition 0 is paused while 1,500 records of the others are read, then resumed.
    if (!paused && !resumed && polled >= total / 2) {
      c.pause({{"full", 0, 0}});
      paused = true;
      polled_at_pause = polled;
    } else if (paused && (polled >= polled_at_pause + 1500 || batch.empty())) {
      c.resume({{"full", 0, 0}});
      paused = false;
      resumed = true;
    }
  }
  EXPECT_TRUE(resumed);
  EXPECT_EQ(polled, static_cast<std::size_t>(total));
  EXPECT_EQ(values.size(), static_cast<std::size_t>(total));
  std::size_t sum = 0;
  for (const auto& [partition, offs] : offsets) {
    for (std::size_t k = 0; k < offs.size(); ++k) {
      ASSERT_EQ(offs[k], static_cast<std::int64_t>(k)) << "partition " << partition << " at its record " << k;
    }
    sum += offs.size();
  }
  EXPECT_EQ(sum, static_cast<std::size_t>(total));
  EXPECT_GE(c.fetch_restarts(), 10u);
}

// librdkafka keeps an application's pause on a partition across a revoke and a re-assignment; a
// consumer must start a new assignment unpaused, or a partition paused when a rebalance came (at
// capacity, say) would never be read again.
TEST(kafka, a_partition_paused_when_a_rebalance_comes_is_read_again_once_reassigned) {
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"rb"}, 2);
  kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
  const kafka::consumer_options opts{cluster.bootstrap(), "g-rb", {"rb"}, {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "200"}}};
  recording_listener la;
  kafka::consumer a(opts, logger, la);
  const auto until = [](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return done();
  };
  ASSERT_TRUE(until([&] { a.poll(10, 50ms); return a.assigned_count() == 2; }));
  a.pause({});  // the whole assignment, as the worker does at capacity
  recording_listener lb;
  kafka::consumer b(opts, logger, lb);
  ASSERT_TRUE(until([&] {
    a.poll(10, 20ms);
    b.poll(10, 20ms);
    return a.assigned_count() == 1 && b.assigned_count() == 1;
  }));
  for (int i = 0; i < 40; ++i) ASSERT_EQ(p.produce("rb", "key-" + std::to_string(i), "r" + std::to_string(i), {}, nullptr), "");
  ASSERT_EQ(p.flush(10s), 0);
  std::set<std::string> by_a;
  std::set<std::string> by_b;
  EXPECT_TRUE(until([&] {
    for (auto& m : a.poll(50, 20ms)) by_a.emplace(m.payload());
    for (auto& m : b.poll(50, 20ms)) by_b.emplace(m.payload());
    return by_a.size() + by_b.size() == 40;
  }));
  EXPECT_FALSE(by_a.empty()) << "the partition consumer a had paused was not read after the rebalance";
  EXPECT_FALSE(by_b.empty());
  std::set<std::string> all(by_a);
  all.insert(by_b.begin(), by_b.end());
  EXPECT_EQ(all.size(), 40u);
}

// An asynchronous commit reports its failure only through librdkafka's commit callback: the
// consumer passes the refused positions on, so that they are committed again.
TEST(kafka, reports_the_positions_of_a_refused_asynchronous_commit_so_they_can_be_committed_again) {
  log::logger logger(log::level::error, false);
  kafka::embedded_cluster cluster(1, {"cf"}, 1);
  kafka::producer p({cluster.bootstrap(), {}}, logger, [](void*, const std::string&) {});
  for (int i = 0; i < 10; ++i) p.produce("cf", "", "m" + std::to_string(i), {}, nullptr);
  ASSERT_EQ(p.flush(10s), 0);
  std::vector<kafka::partition_offset> failed;
  {
    recording_listener listener;
    kafka::consumer_options opts{cluster.bootstrap(), "g-cf", {"cf"}, {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}}};
    opts.on_commit_failed = [&](const std::vector<kafka::partition_offset>& f) { failed.insert(failed.end(), f.begin(), f.end()); };
    kafka::consumer c(opts, logger, listener);
    ASSERT_EQ(consume_n(c, 10).size(), 10u);
    // given the broker refuses the next commit
    cluster.fail_next_offset_commits(1);
    // when all ten are committed asynchronously
    ASSERT_TRUE(c.commit({{"cf", 0, 10}}, false));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (failed.empty() && std::chrono::steady_clock::now() < deadline) c.poll(10, 20ms);
    // then the failure names the position
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].topic, "cf");
    EXPECT_EQ(failed[0].partition, 0);
    EXPECT_EQ(failed[0].offset, 10);
    // and committed again, it holds: the group's next member starts after m9
    ASSERT_TRUE(c.commit(failed, true));
    c.close();
  }
  EXPECT_EQ(failed.size(), 1u) << "a successful commit is not reported as failed";
  p.produce("cf", "", "m10", {}, nullptr);
  ASSERT_EQ(p.flush(10s), 0);
  recording_listener listener;
  kafka::consumer c2({cluster.bootstrap(), "g-cf", {"cf"}, {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}}}, logger, listener);
  EXPECT_EQ(consume_n(c2, 1), std::vector<std::string>{"m10"});
}
