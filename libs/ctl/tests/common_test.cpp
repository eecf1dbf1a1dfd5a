#include "sendq/ctl/common.hpp"
#include "sendq/ctl/commands.hpp"

#include <gtest/gtest.h>

#include "scratch_dir.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using sendq::test_support::scratch_dir;

namespace sendq::ctl {
namespace {

TEST(ctl, rates_read_per_second_and_per_minute) {
  EXPECT_EQ(parse_rate("500/s"), 500.0);
  EXPECT_EQ(parse_rate("500"), 500.0);
  EXPECT_EQ(parse_rate("60/m"), 1.0);
  EXPECT_FALSE(parse_rate("fast"));
  EXPECT_FALSE(parse_rate("-1/s"));
  EXPECT_EQ(parse_rate("2.5/s"), 2.5);
  // plain decimal only: no hex, exponent, infinity or sign
  EXPECT_FALSE(parse_rate("0x10"));
  EXPECT_FALSE(parse_rate("1e-9/s"));
  EXPECT_FALSE(parse_rate("inf"));
  EXPECT_FALSE(parse_rate("+5"));
  EXPECT_FALSE(parse_rate("1.2.3"));
  EXPECT_FALSE(parse_rate("/s"));
}

TEST(ctl, times_read_relative_epoch_and_utc) {
  const std::int64_t now = 1700000000000;
  EXPECT_EQ(parse_time("now", now), now);
  EXPECT_EQ(parse_time("-15m", now), now - 15 * 60000);
  EXPECT_EQ(parse_time("-2h", now), now - 2 * 3600000);
  EXPECT_EQ(parse_time("1699999999000", now), 1699999999000);
  EXPECT_EQ(parse_time("2023-11-14T22:13:20Z", now), 1700000000000);
  EXPECT_EQ(parse_time("2024-02-29T00:00:00Z", now), 1709164800000);
  // a date or time that does not exist is refused, not moved on (to 2 March, 1 March, the next minute)
  EXPECT_FALSE(parse_time("2024-02-31T00:00:00Z", now));
  EXPECT_FALSE(parse_time("2023-02-29T00:00:00Z", now));
  EXPECT_FALSE(parse_time("2024-05-01T23:59:60Z", now));
  EXPECT_FALSE(parse_time("yesterday", now));
  // without its Z, ISO 8601 means local time: refused rather than taken for UTC
  EXPECT_FALSE(parse_time("2023-11-14T22:13:20", now));
  EXPECT_FALSE(parse_time("-5x", now));
  // out of int64's range: refused, not thrown (std::stoll) nor wrapped
  EXPECT_FALSE(parse_time("99999999999999999999", now));
  EXPECT_FALSE(parse_time("-99999999999999999999s", now));
  EXPECT_FALSE(parse_time("-+5s", now));
  // further back than 1970 (n × unit would overflow for this one): from the start
  EXPECT_EQ(parse_time("-999999999999d", now), 0);
  EXPECT_EQ(parse_time("-20000d", now), 0);
}

TEST(ctl, a_time_option_names_itself_and_takes_epoch_seconds_for_the_mistake_they_are) {
  const std::int64_t now = 1700000000000;
  EXPECT_EQ(time_value("--since", "1699999999000", now), 1699999999000);
  EXPECT_EQ(time_value("--since", "0", now), 0);
  EXPECT_EQ(time_value("--until", "-1h", now), now - 3600000);
  const auto error_of = [&](const std::string& text) {
    try {
      time_value("--since", text, now);
    } catch (const usage_error& e) {
      return std::string(e.what());
    }
    return std::string("(taken)");
  };
  EXPECT_EQ(error_of("1714557600"), "--since: '1714557600' looks like epoch seconds; give milliseconds (1714557600000) or "
                                    "another form (epoch milliseconds, 2024-05-01T10:00:00Z in UTC (the Z required), now, -15m)");
  EXPECT_EQ(error_of("yesterday"),
            "--since: 'yesterday' is not a time (epoch milliseconds, 2024-05-01T10:00:00Z in UTC (the Z required), now, -15m)");
  EXPECT_EQ(error_of("2024-05-01T10:00:00"), "--since: '2024-05-01T10:00:00' is not a time (epoch milliseconds, "
                                             "2024-05-01T10:00:00Z in UTC (the Z required), now, -15m)");
}

TEST(ctl, progress_line_shows_bar_rate_and_eta) {
  EXPECT_EQ(progress::line("replay", 50, 100, 1.0), "replay [===============>              ] 50/100  50/s  ETA 1s");
  EXPECT_EQ(progress::line("enqueue", 10, 0, 2.0), "enqueue 10  5/s");
}

TEST(ctl, results_parse_the_fields_the_tools_filter_on) {
  auto r = parse_result(R"({"id":"a","provider":"gewe","account":"default","type":"text","to":"x","status":"failed",)"
                        R"("error":{"kind":"http_5xx","message":"503"},"completed_at":5,"latency_ms":3})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, "a");
  EXPECT_EQ(r->provider, "gewe");
  EXPECT_EQ(r->account, "default");
  EXPECT_EQ(r->type, "text");
  EXPECT_EQ(r->to, "x");
  EXPECT_EQ(r->status, "failed");
  EXPECT_EQ(r->error_kind, "http_5xx");
  EXPECT_EQ(r->error_message, "503");
  EXPECT_EQ(r->completed_at, 5);
  EXPECT_EQ(r->latency_ms, 3);
  EXPECT_FALSE(parse_result("not json"));
}

TEST(ctl, rate_limiter_spaces_records) {
  rate_limiter l(200);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 41; ++i) ASSERT_TRUE(l.acquire());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
}

// At high rates the limiter sleeps a millisecond at a time and hands out the tokens that built up
// meanwhile: the records come in small bursts, but never ahead of the rate overall.
TEST(ctl, rate_limiter_keeps_a_high_rate_while_sleeping_a_millisecond_at_a_time) {
  rate_limiter l(50000);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10001; ++i) ASSERT_TRUE(l.acquire());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(199));
}

}  // namespace
}  // namespace sendq::ctl

namespace {

// Parses a command's shared options like each command does; the settled options.
sendq::ctl::common parse_common(std::vector<std::string> words, std::string env_brokers = "") {
  using namespace sendq::ctl;
  std::vector<char*> argv{const_cast<char*>("sendqctl")};
  for (auto& w : words) argv.push_back(w.data());
  common c;
  c.brokers = env_brokers;  // what $SENDQ_KAFKA_BROKERS gives
  args in(static_cast<int>(argv.size()), argv.data(), 1);
  while (!in.done()) {
    const auto a = in.next();
    if (!take_common(in, a, c)) throw usage_error("unknown option '" + a + "'");
  }
  require_brokers(c);
  return c;
}

}  // namespace

TEST(ctl, config_gives_the_workers_kafka_settings_and_x_overrides_them) {
  const scratch_dir scratch;
  // given the worker's file with a SASL_SSL cluster, its password in the environment
  const std::string path = scratch.path + "/sendqctl_kafka.toml";
  std::ofstream(path) << R"([kafka]
brokers = "k1:9093"
[kafka.librdkafka]
"security.protocol" = "sasl_ssl"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "ops"
"sasl.password_env" = "SENDQCTL_TEST_KAFKA_PW"
[providers.gewe.a]
token_env = "NOT_SET_HERE"
)";
  ::setenv("SENDQCTL_TEST_KAFKA_PW", "pw-from-env", 1);
  ::unsetenv("SENDQ_KAFKA_BROKERS");
  // when sendqctl reads it (the providers, which need other secrets, are not read)
  auto c = parse_common({"--config", path});
  // then its clients get the same settings and brokers as the worker
  EXPECT_EQ(c.brokers, "k1:9093");
  EXPECT_EQ(c.librdkafka, (std::map<std::string, std::string>{{"security.protocol", "sasl_ssl"},
                                                              {"sasl.mechanism", "SCRAM-SHA-512"},
                                                              {"sasl.username", "ops"},
                                                              {"sasl.password", "pw-from-env"}}));
  EXPECT_EQ(c.secrets, std::vector<std::string>{"pw-from-env"});
  // and -X wins over the file whatever the order, --brokers and $SENDQ_KAFKA_BROKERS over its brokers
  c = parse_common({"-X", "sasl.username=other", "--config", path, "-X", "debug=broker"}, "env:9092");
  EXPECT_EQ(c.brokers, "env:9092");
  EXPECT_EQ(c.librdkafka.at("sasl.username"), "other");
  EXPECT_EQ(c.librdkafka.at("debug"), "broker");
  EXPECT_EQ(parse_common({"--config", path, "--brokers", "flag:9092"}, "env:9092").brokers, "flag:9092");
  // and mistakes are usage errors that say what is wrong
  ::unsetenv("SENDQCTL_TEST_KAFKA_PW");
  EXPECT_THROW(
      {
        try {
          parse_common({"--config", path});
        } catch (const sendq::ctl::usage_error& e) {
          EXPECT_STREQ(e.what(), "--config: kafka.librdkafka.sasl.password_env: environment variable "
                                 "SENDQCTL_TEST_KAFKA_PW is not set");
          throw;
        }
      },
      sendq::ctl::usage_error);
  EXPECT_THROW(parse_common({"--brokers", "b:1", "-X", "novalue"}), sendq::ctl::usage_error);
  EXPECT_THROW(parse_common({"-X", "a=b"}), sendq::ctl::usage_error);  // no brokers anywhere
}

namespace sendq::ctl {
namespace {

std::string usage_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const usage_error& e) {
    return e.what();
  }
  return "(no usage error)";
}

TEST(ctl, a_rate_of_zero_is_a_usage_error_naming_rate_not_no_limit) {
  EXPECT_EQ(usage_message([] { parse_common({"--brokers", "b:1", "--rate", "0/s"}); }),
            "--rate: '0/s' must be more than 0 (leave --rate out for no limit)");
  EXPECT_NE(usage_message([] { parse_common({"--brokers", "b:1", "--rate=0"}); }).find("--rate: '0'"), std::string::npos);
  EXPECT_EQ(parse_common({"--brokers", "b:1", "--rate", "0.5/s"}).rate, 0.5);
}

TEST(ctl, topic_options_take_kafka_topic_names_only) {
  // The rule itself is config::is_topic_name's (config_test); here, that the option is refused by name.
  std::vector<std::string> words{"sendqctl", "--dlq-topic", "a b"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  args in(static_cast<int>(argv.size()), argv.data(), 1);
  const auto flag = in.next();
  EXPECT_EQ(usage_message([&] { topic_value(in, flag); }),
            "--dlq-topic: 'a b' is not a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -, not \".\" or \"..\")");
}

TEST(ctl, enqueue_topic_takes_a_kafka_topic_name_only) {
  // given a topic name with a space, checked before any Kafka connection
  std::vector<std::string> words{"sendqctl", "enqueue", "/dev/null", "--brokers", "b:1", "--topic", "a b"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  // when, then refused by the option's name, as every other topic option
  EXPECT_EQ(usage_message([&] { run_enqueue(static_cast<int>(argv.size()), argv.data(), 2); }),
            "--topic: 'a b' is not a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -, not \".\" or \"..\")");
}

TEST(ctl, an_inverted_range_is_a_usage_error_naming_both_options) {
  EXPECT_EQ(usage_message([] { check_order(10, "--start-offset", 5, "--end-offset"); }),
            "--start-offset (10) is after --end-offset (5): the range is inverted and would select nothing");
  EXPECT_EQ(usage_message([] { check_order(5, "--start-offset", 10, "--end-offset"); }), "(no usage error)");
  EXPECT_EQ(usage_message([] { check_order(5, "--since", 5, "--until"); }), "(no usage error)");
  EXPECT_EQ(usage_message([] { check_order(std::nullopt, "--since", 5, "--until"); }), "(no usage error)");
}

TEST(ctl, a_value_given_to_an_option_that_takes_none_is_a_usage_error) {
  // given "--dry-run=false", whose "=false" would otherwise be dropped (a dry run all the same)
  std::vector<std::string> words{"sendqctl", "--dry-run=false", "--from-beginning=no"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  args in(static_cast<int>(argv.size()), argv.data(), 1);
  // when the command takes the first as a flag and asks for the next
  EXPECT_EQ(in.next(), "--dry-run");
  // then the option is named
  EXPECT_EQ(usage_message([&] { in.next(); }), "--dry-run takes no value (given 'false')");
  // and so is the last one, when the command asks whether it is done
  EXPECT_EQ(in.next(), "--from-beginning");
  EXPECT_EQ(usage_message([&] { in.done(); }), "--from-beginning takes no value (given 'no')");
  // and an option that takes a value still takes it after '='
  EXPECT_EQ(parse_common({"--brokers=b:1"}).brokers, "b:1");
}

TEST(ctl, an_option_whose_value_is_missing_does_not_take_the_next_flag) {
  // given "--topic --dry-run": without the check, a real copy into a topic named "--dry-run"
  std::vector<std::string> words{"sendqctl", "--topic", "--dry-run", "--since", "-15m"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  args in(static_cast<int>(argv.size()), argv.data(), 1);
  EXPECT_EQ(in.next(), "--topic");
  // then the option is named, with the way to pass such a value
  EXPECT_EQ(usage_message([&] { in.value("--topic"); }),
            "--topic needs a value (got the flag '--dry-run'; write --topic=--dry-run for a value that starts with --)");
  // and a value with one dash (a relative time) is still a value
  EXPECT_EQ(in.next(), "--dry-run");
  EXPECT_EQ(in.next(), "--since");
  EXPECT_EQ(in.value("--since"), "-15m");
  // and '=' passes one that starts with two
  EXPECT_EQ(parse_common({"--brokers=--b:1"}).brokers, "--b:1");
}

TEST(ctl, an_integer_past_int64_is_out_of_range_not_the_largest_one) {
  std::vector<std::string> words{"sendqctl", "--end-offset", "99999999999999999999", "--count", "-99999999999999999999"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  args in(static_cast<int>(argv.size()), argv.data(), 1);
  EXPECT_EQ(in.next(), "--end-offset");
  EXPECT_EQ(usage_message([&] { in.integer("--end-offset", 0, INT64_MAX); }),
            "--end-offset: '99999999999999999999' is not an integer within 0..9223372036854775807");
  EXPECT_EQ(in.next(), "--count");
  EXPECT_EQ(usage_message([&] { in.integer("--count", 1, 100); }),
            "--count: '-99999999999999999999' is not an integer within 1..100");
}

std::atomic<bool> stop_waiting{false};
bool stop_requested() { return stop_waiting.load(); }

TEST(ctl, rate_limiter_gives_up_soon_after_a_stop_however_slow_the_rate) {
  // given a rate of one a minute, its one token taken
  rate_limiter l(1.0 / 60, &stop_requested);
  ASSERT_TRUE(l.acquire());
  // when a stop comes 300 ms into the wait for the next
  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop_waiting = true;
  });
  const auto start = std::chrono::steady_clock::now();
  const bool got = l.acquire();
  const auto waited = std::chrono::steady_clock::now() - start;
  stopper.join();
  // then it gives up without a token, after the stop rather than a minute later
  EXPECT_FALSE(got);
  EXPECT_GE(waited, std::chrono::milliseconds(290));
  EXPECT_LT(waited, std::chrono::seconds(3));
}

// The open-loop schedule: each record's time is its due time under the rate, start + k / rate,
// however late the sender was, and a stop ends a wait for the next one.
TEST(ctl, schedule_gives_each_record_its_due_time_not_the_time_it_was_sent) {
  schedule s(500);  // one every 2 ms
  const auto first = s.next();
  ASSERT_TRUE(first);
  // a sender that was away for 30 ms: the 15 records due meanwhile keep their own times
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  std::vector<std::int64_t> gaps;
  for (int k = 1; k <= 20; ++k) {
    const auto due = s.next();
    ASSERT_TRUE(due);
    gaps.push_back(*due - *first);
  }
  EXPECT_EQ(gaps, (std::vector<std::int64_t>{2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40}));
}

TEST(ctl, schedule_gives_up_when_stopped_while_waiting_for_the_next_record) {
  stop_waiting = false;
  schedule s(1.0 / 60, &stop_requested);
  ASSERT_TRUE(s.next());  // the first is due at once
  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop_waiting = true;
  });
  EXPECT_FALSE(s.next());  // the second, a minute later, is not waited for
  stopper.join();
  stop_waiting = false;
}

}  // namespace
}  // namespace sendq::ctl
