#include "sendq/config/config.hpp"

#include <gtest/gtest.h>

#include "scratch_dir.hpp"

#include <cstdlib>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

using namespace sendq::config;

namespace {

using sendq::test_support::scratch_dir;


env_lookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(std::string_view toml, std::map<std::string, std::string> env = {}) {
  try {
    parse(toml, env_of(std::move(env)));
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

constexpr std::string_view gewe_account = R"(
[providers.gewe.default]
base_url = "http://127.0.0.1:1"
token = "tok-123456"
app_id = "app"
)";

}  // namespace

TEST(config, defaults_without_a_file) {
  auto c = parse("", env_of({}));
  EXPECT_EQ(c.kafka.brokers, "");
  EXPECT_EQ(c.kafka.requests_topic, "sendq.requests");
  EXPECT_EQ(c.metrics.addr, "127.0.0.1:9464");
  EXPECT_EQ(c.worker.threads, 2);
  EXPECT_TRUE(c.accounts.empty());
}

TEST(config, reads_accounts_and_marks_tokens_as_secrets) {
  auto c = parse(gewe_account, env_of({}));
  ASSERT_EQ(c.accounts.size(), 1u);
  const auto* a = c.find_account("gewe", "default");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->base_url, "http://127.0.0.1:1");
  EXPECT_EQ(a->get("token"), "tok-123456");
  EXPECT_EQ(a->get("app_id"), "app");
  EXPECT_EQ(c.secrets, std::vector<std::string>{"tok-123456"});
}

TEST(config, environment_overrides_the_file) {
  auto c = parse(std::string(gewe_account) + "\n[kafka]\nbrokers = \"k:9092\"\n",
                 env_of({{"SENDQ_KAFKA_BROKERS", ""}, {"SENDQ_GEWE_BASE_URL", "https://gewe.example:8443/api"},
                         {"SENDQ_METRICS_ADDR", "127.0.0.1:0"}, {"SENDQ_WORKER_THREADS", "4"}}));
  EXPECT_EQ(c.kafka.brokers, "");
  EXPECT_EQ(c.find_account("gewe", "default")->base_url, "https://gewe.example:8443/api");
  EXPECT_EQ(c.metrics.addr, "127.0.0.1:0");
  EXPECT_EQ(c.worker.threads, 4);
}

TEST(config, secrets_come_from_environment_variables_and_files) {
  const scratch_dir scratch;
  const std::string path = scratch.path + "/sendq_token";
  std::ofstream(path) << "from-file-token\n";
  auto c = parse(R"(
[providers.gewe.a]
base_url = "http://h"
token_file = ")" + path + R"("
app_id = "x"
[providers.gewe.b]
base_url = "http://h"
token_env = "GEWE_B_TOKEN"
app_id = "y"
)", env_of({{"GEWE_B_TOKEN", "from-env-token"}}));
  EXPECT_EQ(c.find_account("gewe", "a")->get("token"), "from-file-token");
  EXPECT_EQ(c.find_account("gewe", "b")->get("token"), "from-env-token");
  // the values, not their file or variable names, are what the logs redact
  auto secrets = c.secrets;
  std::sort(secrets.begin(), secrets.end());
  EXPECT_EQ(secrets, (std::vector<std::string>{"from-env-token", "from-file-token"}));
}

TEST(config, a_secret_from_a_variable_loses_its_trailing_newline_and_a_control_byte_elsewhere_is_refused) {
  const std::string text = "[providers.gewe.a]\nbase_url = \"http://h\"\napp_id = \"x\"\ntoken_env = \"GEWE_TOKEN\"\n";
  // a variable set from a file (a Kubernetes secret) ends in a newline: dropped, as from token_file
  EXPECT_EQ(parse(text, env_of({{"GEWE_TOKEN", "tok-123\r\n"}})).find_account("gewe", "a")->get("token"), "tok-123");
  // a line break inside would end the X-GEWE-TOKEN header early: refused, naming the key, not the value
  EXPECT_EQ(error_of(text, {{"GEWE_TOKEN", "tok\n123"}}),
            "providers.gewe.a.token: control character 0x0A at byte 3 (a line break or tab in a token or URL?)");
  EXPECT_EQ(error_of("[providers.gewe.a]\nbase_url = \"http://h\"\napp_id = \"x\\t\"\ntoken = \"t\"\n"),
            "providers.gewe.a.app_id: control character 0x09 at byte 1 (a line break or tab in a token or URL?)");
  // but a signing key only feeds the HMAC: any bytes
  const std::string sender = "[providers.sender.a]\nbase_url = \"http://h\"\napi_version = \"01\"\nclient = \"c\"\n"
                             "channel = \"c\"\nversion = \"2.0\"\nsign_algorithm = \"hmac_sha256_sorted\"\n"
                             "sign_secret_env = \"SIGN_KEY\"\n";
  EXPECT_EQ(parse(sender, env_of({{"SIGN_KEY", std::string("k\x01\tz\0y", 6)}})).find_account("sender", "a")->get("sign_secret"),
            std::string("k\x01\tz\0y", 6));
}

TEST(config, refuses_secret_files_that_cannot_be_secrets) {
  const scratch_dir scratch;
  const auto with_token_file = [](const std::string& path) {
    return "[providers.gewe.a]\nbase_url = \"http://h\"\napp_id = \"x\"\ntoken_file = \"" + path + "\"\n";
  };
  // A device would never end (start-up would hang), a directory is a typo, a huge file is not a secret.
  EXPECT_EQ(error_of(with_token_file("/dev/zero")),
            "providers.gewe.a.token_file: '/dev/zero' is not a regular file");
  EXPECT_EQ(error_of(with_token_file("/tmp")), "providers.gewe.a.token_file: '/tmp' is not a regular file");
  const std::string big = scratch.path + "/sendq_big_secret";
  std::ofstream(big) << std::string(65 * 1024, 'x');
  EXPECT_EQ(error_of(with_token_file(big)),
            "providers.gewe.a.token_file: '" + big + "' is larger than 64 KiB, which no secret is");
  EXPECT_EQ(error_of(with_token_file("/nonexistent/token")),
            "providers.gewe.a.token_file: cannot read '/nonexistent/token'");
}

TEST(config, refuses_a_secret_given_twice_in_two_forms) {
  // given a token written in the file and named by an environment variable too
  const std::string text = "[providers.gewe.a]\nbase_url = \"http://h\"\napp_id = \"x\"\ntoken = \"t1\"\n"
                           "token_env = \"GEWE_TOKEN\"\n";
  // when / then neither silently wins
  EXPECT_EQ(error_of(text, {{"GEWE_TOKEN", "t2"}}),
            "providers.gewe.a.token: given twice (directly and as token_file/token_env)");
}

TEST(config, a_provider_setting_may_be_a_boolean) {
  const auto c = parse("[providers.gps.a]\nbase_url = \"http://h\"\ntoken = \"t\"\napp_id = \"1\"\n"
                       "fetch_allow_private = true\n", env_of({}));
  EXPECT_EQ(c.find_account("gps", "a")->get("fetch_allow_private"), "true");
  EXPECT_EQ(error_of("[providers.gps.a]\nbase_url = \"http://h\"\ntoken = \"t\"\napp_id = \"1\"\n"
                     "fetch_max_bytes = \"1MiB\"\n"),
            "providers.gps.a: account a of gps: key \"fetch_max_bytes\" must be an integer of bytes in 1..67108864, "
            "not \"1MiB\"");
}

TEST(config, refuses_an_api_keys_file_that_yields_no_key) {
  const scratch_dir scratch;
  // A gateway without keys takes every caller: a directory (which a stream opens and reads as
  // empty), a missing file or one with only comments must not start it open.
  const auto with_file = [](const std::string& path) { return "[gateway]\napi_keys_file = \"" + path + "\"\n"; };
  EXPECT_EQ(error_of(with_file("/tmp")), "gateway.api_keys_file: '/tmp' is not a regular file");
  EXPECT_EQ(error_of(with_file("/nonexistent/keys")), "gateway.api_keys_file: cannot read '/nonexistent/keys'");
  const std::string empty = scratch.path + "/sendq_no_keys";
  std::ofstream(empty) << "# keys, one a line\n\n   \n";
  EXPECT_EQ(error_of(with_file(empty)), "gateway.api_keys_file: '" + empty +
                                            "' holds no key (one a line; leave the setting out to run without keys)");
  // and a file with keys gives them, comments and blanks left out
  const std::string keys = scratch.path + "/sendq_keys";
  std::ofstream(keys) << "# ops\nk1\n  k2  \n\n";
  EXPECT_EQ(parse(with_file(keys), env_of({})).gateway.api_keys, (std::vector<std::string>{"k1", "k2"}));
}

TEST(config, refuses_a_kafka_record_limit_too_small_for_the_largest_request) {
  // 1 MiB requests (the default) need 1 MiB + 64 KiB records on sendq.retry.
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"message.max.bytes\" = 1000000\n"),
            "kafka.librdkafka.message.max.bytes: '1000000' must be an integer of at least 1114112 "
            "(worker.max_request_bytes + 64 KiB), or the worker could not re-produce its largest requests to the "
            "retry topic");
  EXPECT_NE(error_of("[kafka.librdkafka]\n\"message.max.bytes\" = \"lots\"\n").find("must be an integer"),
            std::string::npos);
  // Smaller requests make a smaller limit acceptable.
  EXPECT_EQ(error_of("[worker]\nmax_request_bytes = 65536\n[kafka.librdkafka]\n\"message.max.bytes\" = 131072\n"), "");
}

TEST(config, refuses_a_topic_name_kafka_would_refuse_naming_the_key) {
  const std::string rule = " is not a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -, not \".\" or \"..\")";
  EXPECT_EQ(error_of("[kafka]\nresults_topic = \"\"\n"), "kafka.results_topic: ''" + rule);
  EXPECT_EQ(error_of("[kafka]\ndlq_topic = \"dead letters\"\n"), "kafka.dlq_topic: 'dead letters'" + rule);
  EXPECT_EQ(error_of("[kafka]\nretry_topic = \"..\"\n"), "kafka.retry_topic: '..'" + rule);
  EXPECT_EQ(error_of("", {{"SENDQ_KAFKA_REQUESTS_TOPIC", "a/b"}}), "kafka.requests_topic: 'a/b'" + rule);
  EXPECT_EQ(error_of("[kafka]\nbulk_topic = \"" + std::string(250, 'b') + "\"\n"),
            "kafka.bulk_topic: '" + std::string(250, 'b') + "'" + rule);
  EXPECT_EQ(error_of("[gateway]\ntopic = \"t\u00e9\"\n"), "gateway.topic: 't\xc3\xa9'" + rule);
  // the longest and the odd-but-legal names pass
  EXPECT_EQ(error_of("[kafka]\nbulk_topic = \"" + std::string(249, 'b') + "\"\nresults_topic = \"r_1-x.y\"\n"
                     "[gateway]\ntopic = \"...\"\n"),
            "");
}

TEST(config, refuses_what_it_does_not_know_naming_the_key) {
  EXPECT_EQ(error_of("[worker]\nthreds = 2\n"), "worker.threds: unknown key (see docs/configuration.md)");
  EXPECT_EQ(error_of("[wroker]\n"), "wroker: unknown section (known: kafka, worker, metrics, gateway, log, providers)");
  EXPECT_EQ(error_of("[worker]\nthreads = 0\n"), "worker.threads: 0 is outside 1..256");
  EXPECT_EQ(error_of("[worker]\nthreads = \"2\"\n"), "worker.threads: must be an integer");
  // A float, even one far outside any integer's range (fuzz_config: toml++ would cast it, UB).
  EXPECT_EQ(error_of("[worker]\nmax_in_flight = 40e96\n"), "worker.max_in_flight: must be an integer");
  EXPECT_EQ(error_of("[worker]\nthreads = 2.0\n"), "worker.threads: must be an integer");
  EXPECT_EQ(error_of("", {{"SENDQ_WORKER_THREADS", "many"}}), "SENDQ_WORKER_THREADS: 'many' is not an integer within 1..256");
  EXPECT_EQ(error_of("[providers.fax.default]\nbase_url=\"http://h\"\n"),
            "providers.fax: unknown provider (known: sender, gewe, im, gps)");
  EXPECT_NE(error_of("[providers.gewe.default]\nbase_url=\"http://h\"\ntoken=\"t\"\napp_id=\"a\"\ncolour=\"x\"\n")
                .find("providers.gewe.default.colour: unknown key for provider gewe"),
            std::string::npos);
  EXPECT_EQ(error_of("[providers.gewe.default]\ntoken=\"t\"\napp_id=\"a\"\n"),
            "providers.gewe.default.base_url: required (or set SENDQ_GEWE_BASE_URL)");
  // The variable sets a base URL; it cannot make an account without the file's credentials.
  EXPECT_EQ(error_of("[providers.gewe.a]\nbase_url=\"http://h\"\ntoken=\"t\"\napp_id=\"a\"\n",
                     {{"SENDQ_GEWE_BASE_URL", "http://other"}}),
            "SENDQ_GEWE_BASE_URL: the configuration has no [providers.gewe.default] account to set it on (the "
            "account's other keys, such as its credentials, must be in the file)");
  EXPECT_NE(error_of("[providers.gewe.default]\nbase_url=\"http://h\"\napp_id=\"a\"\n").find("providers.gewe.default: account default of gewe: key \"token\" is required"),
            std::string::npos);
  EXPECT_EQ(error_of("[log]\nlevel = \"loud\"\n"), "log.level: 'loud' is not one of debug, info, warn, error");
  EXPECT_EQ(error_of("[worker]\nrate_limit_scope = \"cluster\"\n"),
            "worker.rate_limit_scope: 'cluster' is not one of group, worker");
  EXPECT_NE(error_of("[kafka\n").find("<string>:1"), std::string::npos) << "TOML syntax errors name the line";
}

TEST(config, the_example_configuration_in_deploy_is_valid) {
  auto c = load(std::string(SENDQ_SOURCE_DIR) + "/deploy/sendq.example.toml", env_of({}));
  EXPECT_EQ(c.accounts.size(), 4u);
  for (auto p : {"sender", "gewe", "im", "gps"}) EXPECT_NE(c.find_account(p, "default"), nullptr) << p;
}

TEST(config, gateway_section_reads_keys_and_environment_overrides) {
  // given
  const auto c = parse(R"([gateway]
addr = "0.0.0.0:9000"
max_batch = 10
api_keys = ["k1", "k2"]
)", env_of({{"SENDQ_GATEWAY_ADDR", "127.0.0.1:7000"}}));
  // then
  EXPECT_EQ(c.gateway.addr, "127.0.0.1:7000");
  EXPECT_EQ(c.gateway.max_batch, 10);
  EXPECT_EQ(c.gateway.api_keys, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_NE(std::find(c.secrets.begin(), c.secrets.end(), "k2"), c.secrets.end());
  EXPECT_EQ(parse("", env_of({{"SENDQ_GATEWAY_API_KEYS", "a,b"}})).gateway.api_keys,
            (std::vector<std::string>{"a", "b"}));
}

TEST(config, gateway_keys_that_would_leave_none_are_refused) {
  // A variable set to nothing (or only separators, blanks, "#...") would replace the keys with none
  // and open the gateway to every caller.
  for (const std::string v : {"", " , ", "#abc", " ,# x"}) {
    EXPECT_EQ(error_of("[gateway]\napi_keys = [\"k1\"]\n", {{"SENDQ_GATEWAY_API_KEYS", v}}),
              "SENDQ_GATEWAY_API_KEYS: set but holds no key (a comma-separated list; unset it to run without keys or "
              "to use gateway.api_keys)")
        << "'" << v << "'";
  }
  for (const std::string k : {"  ", "#k", " #k"}) {
    EXPECT_EQ(error_of("[gateway]\napi_keys = [\"" + k + "\"]\n"),
              "gateway.api_keys: every key must be a non-empty string, not starting with '#'")
        << "'" << k << "'";
  }
  // and one key among blanks is taken
  EXPECT_EQ(parse("", env_of({{"SENDQ_GATEWAY_API_KEYS", " ,k2, "}})).gateway.api_keys, std::vector<std::string>{"k2"});
}

TEST(config, the_gateways_sections_leave_the_providers_and_their_secrets_unread) {
  // given the worker's file, whose provider secrets come from variables the gateway does not have
  const std::string text = "[gateway]\naddr = \"127.0.0.1:9\"\n[worker]\nmax_request_bytes = 4096\n"
                           "[providers.gewe.default]\nbase_url = \"http://127.0.0.1:1\"\napp_id = \"app\"\n"
                           "token_env = \"GEWE_TOKEN\"\n";
  // when the worker reads it, the unset variable is an error naming it
  EXPECT_EQ(error_of(text), "providers.gewe.default.token_env: environment variable GEWE_TOKEN is not set");
  // then the gateway reads the rest without it, and holds no account
  const auto c = parse(text, env_of({}), "<string>", sections::without_providers);
  EXPECT_EQ(c.gateway.addr, "127.0.0.1:9");
  EXPECT_EQ(c.worker.max_request_bytes, 4096);
  EXPECT_TRUE(c.accounts.empty());
  EXPECT_TRUE(c.secrets.empty());
}

TEST(config, the_worker_reads_the_shared_file_without_the_gateways_api_keys) {
  // given the gateway's keys in a file only its own user may read (here: none at all), and an
  // empty SENDQ_GATEWAY_API_KEYS in the worker's environment
  const std::string text = std::string("[gateway]\napi_keys_file = \"/nonexistent/gateway-keys\"\n") + std::string(gewe_account);
  const std::map<std::string, std::string> env{{"SENDQ_GATEWAY_API_KEYS", ""}};
  // when the gateway reads it, then each is an error naming it
  EXPECT_NE(error_of(text).find("gateway.api_keys_file: cannot read '/nonexistent/gateway-keys'"), std::string::npos);
  EXPECT_NE(error_of("", env).find("SENDQ_GATEWAY_API_KEYS: set but holds no key"), std::string::npos);
  // and the worker, which takes no callers, reads the rest, accounts included
  const auto c = parse(text, env_of(env), "<string>", sections::without_gateway_keys);
  EXPECT_TRUE(c.gateway.api_keys.empty());
  ASSERT_EQ(c.accounts.size(), 1u);
  EXPECT_EQ(c.accounts[0].provider, "gewe");
}

TEST(config, gateway_section_refuses_bad_keys_naming_them) {
  EXPECT_NE(error_of("[gateway]\napi_keys = \"one\"\n").find("gateway.api_keys"), std::string::npos);
  EXPECT_NE(error_of("[gateway]\nlisten = \"x\"\n").find("gateway.listen: unknown key"), std::string::npos);
  EXPECT_NE(error_of("[gateway]\naddr = \"nope\"\n").find("gateway.addr"), std::string::npos);
}

TEST(config, gateway_body_budget_defaults_to_64_mib_and_must_hold_one_body_of_the_limit) {
  EXPECT_EQ(parse("", env_of({})).gateway.max_body_bytes_in_flight, 64 << 20);
  EXPECT_EQ(parse("", env_of({{"SENDQ_GATEWAY_MAX_BODY_BYTES_IN_FLIGHT", "8388608"}})).gateway.max_body_bytes_in_flight,
            8 << 20);
  EXPECT_EQ(error_of("[gateway]\nbody_limit_bytes = 2048\nmax_body_bytes_in_flight = 2047\n"),
            "gateway.max_body_bytes_in_flight: 2047 is less than gateway.body_limit_bytes (2048): it must hold at least "
            "one body of the largest size taken");
}

#include "sendq/config/command_line.hpp"

TEST(command_line, reads_config_and_log_level_and_stops_for_help_and_bad_options) {
  char prog[] = "sendq-x", c[] = "--config", f[] = "/etc/sendq.toml", l[] = "--log-level", d[] = "debug";
  char* good[] = {prog, c, f, l, d};
  auto r = parse_command_line(5, good, "sendq-x", "usage\n", "1.0");
  ASSERT_TRUE(std::holds_alternative<command_line>(r));
  EXPECT_EQ(std::get<command_line>(r).config_path, "/etc/sendq.toml");
  EXPECT_EQ(std::get<command_line>(r).log_level, "debug");
  char h[] = "--help", x[] = "--colour";
  char* help[] = {prog, h};
  char* bad[] = {prog, x};
  char* incomplete[] = {prog, c};
  testing::internal::CaptureStdout();
  EXPECT_EQ(std::get<int>(parse_command_line(2, help, "sendq-x", "usage\n", "1.0")), 0);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "usage\n");
  testing::internal::CaptureStderr();
  EXPECT_EQ(std::get<int>(parse_command_line(2, bad, "sendq-x", "usage\n", "1.0")), 2);
  EXPECT_EQ(std::get<int>(parse_command_line(2, incomplete, "sendq-x", "usage\n", "1.0")), 2);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("unknown or incomplete option '--colour'"), std::string::npos);
  // an empty path, given or from SENDQ_CONFIG, is a mistake rather than a wish for the defaults
  char empty[] = "";
  char* empty_config[] = {prog, c, empty};
  testing::internal::CaptureStderr();
  EXPECT_EQ(std::get<int>(parse_command_line(3, empty_config, "sendq-x", "usage\n", "1.0")), 2);
  ::setenv("SENDQ_CONFIG", "", 1);
  EXPECT_EQ(std::get<int>(parse_command_line(1, good, "sendq-x", "usage\n", "1.0")), 2);
  ::unsetenv("SENDQ_CONFIG");
  const auto said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("sendq-x: --config: empty path"), std::string::npos) << said;
  EXPECT_NE(said.find("sendq-x: SENDQ_CONFIG is set but empty"), std::string::npos) << said;
}

TEST(command_line, applies_the_log_level_override_and_refuses_unknown_levels) {
  command_line cl;
  cl.log_level = "warn";
  EXPECT_EQ(load(cl, env_of({})).log.level, "warn");
  cl.log_level = "loud";
  try {
    load(cl, env_of({}));
    FAIL() << "accepted --log-level loud";
  } catch (const config_error& e) {
    EXPECT_STREQ(e.what(), "--log-level: 'loud' is not one of debug, info, warn, error");
  }
}

TEST(config, follow_redirects_is_an_account_key_from_0_to_10) {
  EXPECT_EQ(parse(gewe_account, env_of({})).find_account("gewe", "default")->follow_redirects, 0u);
  auto c = parse(std::string(gewe_account) + "follow_redirects = 2\n", env_of({}));
  EXPECT_EQ(c.find_account("gewe", "default")->follow_redirects, 2u);
  EXPECT_TRUE(c.find_account("gewe", "default")->settings.count("follow_redirects") == 0);
  for (const char* bad : {"11", "-1", "\"2\"", "true", "2.0", "4e97"}) {
    EXPECT_EQ(error_of(std::string(gewe_account) + "follow_redirects = " + bad + "\n"),
              "providers.gewe.default.follow_redirects: must be an integer in 0..10")
        << bad;
  }
}

TEST(config, kafka_librdkafka_settings_pass_through_with_secrets_from_env_or_file) {
  const scratch_dir scratch;
  // given a SASL_SSL/SCRAM setup whose password comes from the environment, and one from a file
  const std::string path = scratch.path + "/sendq_kafka_password";
  std::ofstream(path) << "file-pw-123\n";
  const std::string text = R"(
[kafka]
brokers = "k1:9093"
[kafka.librdkafka]
"security.protocol" = "sasl_ssl"
"ssl.ca.location" = "/etc/sendq/ca.pem"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "sendq"
"sasl.password_env" = "KAFKA_PW"
"ssl.key.password_file" = ")" + path + R"("
"socket.keepalive.enable" = true
"message.max.bytes" = 2000000
)";
  // when it is read, the variable ending in a newline as a Kubernetes Secret's value may
  auto c = parse(text, env_of({{"KAFKA_PW", "env-pw-456\n"}}));
  // then every setting is there under librdkafka's own name, as a string, the secrets without
  // their trailing newlines (as provider secrets are read)
  const std::map<std::string, std::string> want{
      {"security.protocol", "sasl_ssl"},  {"ssl.ca.location", "/etc/sendq/ca.pem"},
      {"sasl.mechanism", "SCRAM-SHA-512"}, {"sasl.username", "sendq"},
      {"sasl.password", "env-pw-456"},     {"ssl.key.password", "file-pw-123"},
      {"socket.keepalive.enable", "true"}, {"message.max.bytes", "2000000"}};
  EXPECT_EQ(c.kafka.librdkafka, want);
  // and the producers' limit is the one set there; without it, max_request_bytes + 64 KiB
  EXPECT_EQ(producer_max_bytes(c), 2000000u);
  EXPECT_EQ(producer_max_bytes(parse("", env_of({}))), (1u << 20) + 65536u);
  // and both passwords are secrets (redacted from logs), nothing else is
  EXPECT_EQ(c.secrets, (std::vector<std::string>{"env-pw-456", "file-pw-123"}));
  // and sendqctl's kafka-only reading gives the same settings without the other sections' checks
  auto k = parse_kafka_only(text + "[providers.gewe.a]\ntoken_env = \"UNSET\"\n", env_of({{"KAFKA_PW", "env-pw-456"}}));
  EXPECT_EQ(k.kafka.librdkafka, want);
  EXPECT_EQ(k.kafka.brokers, "k1:9093");
  EXPECT_EQ(k.secrets, c.secrets);
  // and worker.max_request_bytes (the tools' producers take records that large), with its range
  // and its variable, the rest of [worker] left to the worker
  EXPECT_EQ(k.worker.max_request_bytes, 1 << 20);
  const std::string worker = "[worker]\nmax_request_bytes = 3000000\nthreads = 999999\nunknown_to_tools = 1\n";
  EXPECT_EQ(parse_kafka_only(worker, env_of({})).worker.max_request_bytes, 3000000);
  EXPECT_EQ(parse_kafka_only(worker, env_of({{"SENDQ_WORKER_MAX_REQUEST_BYTES", "5000000"}})).worker.max_request_bytes, 5000000);
  try {
    parse_kafka_only("[worker]\nmax_request_bytes = 1\n", env_of({}));
    ADD_FAILURE() << "a max_request_bytes under 64 was taken";
  } catch (const config_error& e) {
    EXPECT_EQ(std::string(e.what()), "worker.max_request_bytes: 1 is outside 64..67108864");
  }
}

TEST(config, kafka_librdkafka_refuses_unusable_settings_naming_them) {
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"sasl.password_env\" = \"KAFKA_PW\"\n"),
            "kafka.librdkafka.sasl.password_env: environment variable KAFKA_PW is not set");
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"sasl.password_file\" = \"/nonexistent/pw\"\n"),
            "kafka.librdkafka.sasl.password_file: cannot read '/nonexistent/pw'");
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"sasl.password\" = \"a\"\n\"sasl.password_env\" = \"KAFKA_PW\"\n",
                     {{"KAFKA_PW", "b"}}),
            "kafka.librdkafka.sasl.password: given twice (directly and as _file/_env)");
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"ssl.ca.location\" = [\"a\"]\n"),
            "kafka.librdkafka.ssl.ca.location: must be a string, integer or boolean");
  EXPECT_EQ(error_of("[kafka]\nlibrdkafka = [\"security.protocol=ssl\"]\n"),
            "kafka.librdkafka: must be a table of librdkafka settings ([kafka.librdkafka], \"key\" = value)");
}
TEST(config, kafka_librdkafka_refuses_settings_that_would_undo_the_workers_guarantees) {
  // auto-commit would commit offsets before the results are acknowledged
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"enable.auto.commit\" = true\n"),
            "kafka.librdkafka.enable.auto.commit: 'true' is not allowed: the worker stores and commits each offset "
            "itself, once the request's result is acknowledged (at-least-once); leave it out");
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"enable.auto.offset.store\" = \"True\"\n"),
            "kafka.librdkafka.enable.auto.offset.store: 'True' is not allowed: the worker stores and commits each "
            "offset itself, once the request's result is acknowledged (at-least-once); leave it out");
  // the group has its own key
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"group.id\" = \"other\"\n"),
            "kafka.librdkafka.group.id: set the consumer group with kafka.group_id (SENDQ_KAFKA_GROUP_ID)");
  // a cooperative assignor, alone or first, would leave the worker fetching nothing
  for (const std::string strategy : {"cooperative-sticky", "cooperative-sticky,range", "COOPERATIVE-STICKY"}) {
    EXPECT_EQ(error_of("[kafka.librdkafka]\n\"partition.assignment.strategy\" = \"" + strategy + "\"\n"),
              "kafka.librdkafka.partition.assignment.strategy: '" + strategy +
                  "' is not supported: the worker's rebalancing is eager (all partitions revoked, then assigned); "
                  "use range, roundrobin or both (librdkafka's default is range,roundrobin)");
  }
  // a record acknowledged by the leader alone may be lost after its request's offset is committed
  EXPECT_EQ(error_of("[kafka.librdkafka]\nacks = 1\n"),
            "kafka.librdkafka.acks: '1' is not allowed: a result, retry or DLQ record must be on every in-sync "
            "replica before its request's offset is committed (at-least-once); use all (-1) or leave it out");
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"request.required.acks\" = \"0\"\n").rfind(
                "kafka.librdkafka.request.required.acks: '0' is not allowed", 0),
            0u);
  // what keeps them is taken
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"enable.auto.commit\" = false\n\"enable.auto.offset.store\" = \"false\"\n"
                     "\"partition.assignment.strategy\" = \"roundrobin\"\nacks = \"all\"\n\"request.required.acks\" = -1\n"),
            "");
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"enable.auto.commit\" = 0\n\"enable.auto.offset.store\" = \"F\"\n"), "");
  // a partition without a committed offset read from its end would skip its requests
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"auto.offset.reset\" = \"latest\"\n"),
            "kafka.librdkafka.auto.offset.reset: 'latest' is not allowed: a partition without a committed offset must be "
            "read from its oldest request, or the requests written before the worker first fetched it would get no "
            "result; use earliest or leave it out");
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"auto.offset.reset\" = \"Earliest\"\n"), "");
  // one static member id in a shared file is every process's; from each process's environment it is its own
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"group.instance.id\" = \"w1\"\n").rfind(
                "kafka.librdkafka.group.instance.id: a literal value is shared by every worker that reads this file", 0),
            0u);
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"group.instance.id_env\" = \"POD\"\n", {{"POD", "sendq-worker-0"}}), "");
  EXPECT_EQ(error_of("[kafka.librdkafka]\n\"transactional.id\" = \"t\"\n").rfind(
                "kafka.librdkafka.transactional.id: not supported", 0),
            0u);
}

TEST(config, a_topic_in_two_roles_is_refused_naming_both_keys) {
  // a worker reading its own results as requests would answer each with another, for ever
  EXPECT_EQ(error_of("[kafka]\nresults_topic = \"sendq.requests\"\n"),
            "kafka.results_topic: 'sendq.requests' is kafka.requests_topic too; each of the five topics has one role");
  EXPECT_EQ(error_of("", {{"SENDQ_KAFKA_BULK_TOPIC", "sendq.retry"}}),
            "kafka.bulk_topic: 'sendq.retry' is kafka.retry_topic too; each of the five topics has one role");
  EXPECT_EQ(error_of("[gateway]\ntopic = \"sendq.dlq\"\n"),
            "gateway.topic: 'sendq.dlq' is kafka.dlq_topic; the gateway produces requests (to kafka.requests_topic, "
            "kafka.bulk_topic or a topic of its own)");
  EXPECT_EQ(error_of("[gateway]\ntopic = \"sendq.bulk\"\n"), "");
}

TEST(config, back_off_and_shutdown_grace_must_fit_the_settings_they_depend_on) {
  EXPECT_EQ(error_of("[worker]\nretry_backoff_ms = 1000\nmax_retry_backoff_ms = 500\n"),
            "worker.max_retry_backoff_ms: 500 is below worker.retry_backoff_ms (1000), the first back-off it caps");
  EXPECT_EQ(error_of("[worker]\nretry_backoff_ms = 0\nmax_retry_backoff_ms = 0\n"), "");
  // the drain does not poll Kafka: past max.poll.interval.ms the group evicts the worker
  EXPECT_EQ(error_of("[worker]\nshutdown_grace_ms = 300000\n"),
            "worker.shutdown_grace_ms: 300000 is not below the consumer's max.poll.interval.ms (300000): the group "
            "would evict the worker during its drain and refuse its final commit");
  EXPECT_EQ(error_of("[worker]\nshutdown_grace_ms = 400000\n[kafka.librdkafka]\n\"max.poll.interval.ms\" = 600000\n"), "");
}


TEST(config, is_topic_name_follows_kafkas_rule) {
  EXPECT_TRUE(is_topic_name("sendq.bulk"));
  EXPECT_TRUE(is_topic_name("A-z_0.9"));
  EXPECT_TRUE(is_topic_name(std::string(249, 't')));
  EXPECT_FALSE(is_topic_name(std::string(250, 't')));
  EXPECT_FALSE(is_topic_name(""));
  EXPECT_FALSE(is_topic_name("."));
  EXPECT_FALSE(is_topic_name(".."));
  EXPECT_FALSE(is_topic_name("bad topic"));
  EXPECT_FALSE(is_topic_name("a/b"));
}

TEST(config, the_producers_take_any_accepted_request_with_room_for_its_key_and_headers) {
  EXPECT_EQ(producer_message_max_bytes(64), 1000000u);  // never below librdkafka's default
  EXPECT_EQ(producer_message_max_bytes(1 << 20), (1u << 20) + 64 * 1024);
  EXPECT_GT(producer_message_max_bytes(64u << 20), 64u << 20);
}

TEST(config, kafka_embedded_is_auto_or_never) {
  EXPECT_EQ(parse("", env_of({})).kafka.embedded, "auto");
  EXPECT_EQ(parse("[kafka]\nembedded = \"never\"\n", env_of({})).kafka.embedded, "never");
  EXPECT_EQ(parse("", env_of({{"SENDQ_KAFKA_EMBEDDED", "never"}})).kafka.embedded, "never");
  EXPECT_EQ(error_of("[kafka]\nembedded = \"no\"\n"), "kafka.embedded: 'no' is not one of auto, never");
}

TEST(config, names_the_key_of_an_empty_group_id_or_legacy_account) {
  EXPECT_EQ(error_of("[kafka]\ngroup_id = \"\"\n"), "kafka.group_id: must not be empty (the consumer group the workers share)");
  EXPECT_EQ(error_of("", {{"SENDQ_KAFKA_GROUP_ID", ""}}), "kafka.group_id: must not be empty (the consumer group the workers share)");
  EXPECT_EQ(error_of("[gateway]\nlegacy_account = \"\"\n"),
            "gateway.legacy_account: must not be empty (the account legacy API requests are sent on)");
}

TEST(config, a_configuration_path_that_is_not_a_regular_file_is_refused) {
  const auto dir = std::filesystem::temp_directory_path().string();
  try {
    (void)load(dir, env_of({}));
    ADD_FAILURE() << "a directory was read as a configuration file";
  } catch (const config_error& e) {
    EXPECT_EQ(std::string(e.what()), dir + ": the configuration file is not a regular file");
  }
  try {
    (void)load("/nonexistent/sendq.toml", env_of({}));
    ADD_FAILURE() << "a missing file was read";
  } catch (const config_error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/sendq.toml: cannot open the configuration file");
  }
}
