#pragma once
/// The worker's configuration: a plain struct with defaults, read from one TOML file plus
/// environment overrides, validated once at start-up (docs/configuration.md lists every key).
#include <functional>
#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sendq/policy/rate_limiter_registry.hpp"
#include "sendq/providers/provider.hpp"

namespace sendq::config {

/// Thrown at start-up with a message that says which key is wrong and how to fix it.
struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Room a produced record needs beyond the request bytes it carries (headers, result fields,
/// record overhead): the worker's producer limit is max_request_bytes plus this.
inline constexpr std::size_t kafka_record_headroom_bytes = 64 * 1024;

/// The producers' message.max.bytes (the worker's and the gateway's, unless kafka.librdkafka sets
/// it): a record carries up to a whole accepted request, plus its key and headers. Never below
/// librdkafka's default (1000000).
inline std::size_t producer_message_max_bytes(std::size_t max_request_bytes) {
  return max_request_bytes + kafka_record_headroom_bytes > 1000000 ? max_request_bytes + kafka_record_headroom_bytes
                                                                   : 1000000;
}

struct kafka_config {
  std::string brokers;                       ///< "" = start the embedded (mock, non-durable) cluster
  std::string group_id = "sendq-worker";     ///< consumer group
  std::string requests_topic = "sendq.requests";
  std::string results_topic = "sendq.results";
  std::string dlq_topic = "sendq.dlq";
  std::string retry_topic = "sendq.retry";   ///< long retry waits (consumed too; paused until due)
  std::string bulk_topic = "sendq.bulk";     ///< replays and re-drives: a bounded share, live traffic first
  int embedded_partitions = 8;               ///< partitions per topic on the embedded cluster
  std::string embedded_bootstrap_file;       ///< write the embedded bootstrap address here ("" = don't)
  /// "auto": no brokers starts the embedded cluster; "never": no brokers is a configuration error
  /// (production units set it, so a lost broker setting cannot run a worker on a private mock).
  std::string embedded = "auto";
  /// Passed through to librdkafka as is (TLS, SASL, tuning) by every client: the worker's consumer
  /// and producer, the gateway's producer, sendqctl. `<key>_file` / `<key>_env` are resolved.
  std::map<std::string, std::string> librdkafka;
};

struct worker_config {
  int threads = 2;                  ///< I/O threads running deliveries
  int max_in_flight = 4096;         ///< requests held in memory at once (consumed, no result yet)
  int request_timeout_ms = 10000;   ///< one HTTP exchange, after the connection is ready
  int connect_timeout_ms = 3000;    ///< resolve + connect + TLS handshake
  int max_attempts = 3;             ///< default retry budget (a request's max_attempts overrides)
  int retry_backoff_ms = 200;       ///< first back-off; doubles per attempt, with jitter
  int max_retry_backoff_ms = 5000;  ///< back-off cap
  int max_request_bytes = 1 << 20;  ///< larger messages are rejected (too_large)
  int commit_interval_ms = 200;     ///< how often finished offsets are committed
  int shutdown_grace_ms = 10000;    ///< on SIGTERM, how long in-flight work may take
  int max_connections_per_host = 256;  ///< open HTTP connections per provider host
  int account_max_in_flight = 2048;  ///< bulkhead: records one provider account may hold in memory
  int bulk_share_percent = 20;      ///< share of max_in_flight and of each rate limit for kafka.bulk_topic
  int retry_topic_threshold_ms = 30000;  ///< back-offs longer than this go through kafka.retry_topic
  int dedupe_window_ms = 600000;    ///< ids that ended within this window are not sent again
  int dedupe_max_ids = 200000;      ///< at most this many ids remembered (0 = guard off)
  int max_request_age_ms = 600000;  ///< a request held longer (stuck) ends failed instead of blocking
  std::string ca_file;              ///< PEM bundle for provider HTTPS ("" = system store)
  /// "group": each account's rate limits are the whole consumer group's, and a worker takes the
  /// share of them that its share of the requests topic's partitions is; "worker": each worker
  /// applies them whole.
  std::string rate_limit_scope = "group";
};

struct metrics_config {
  std::string addr = "127.0.0.1:9464";  ///< host:port of /metrics, /healthz, /readyz ("" = off)
};

/// The gateway (sendq-gateway): HTTP in, `sendq.requests` out. The worker checks it (a bad value
/// stops it) but does not use it.
struct gateway_config {
  std::string addr = "127.0.0.1:8080";  ///< host:port to listen on (SENDQ_GATEWAY_ADDR)
  std::string metrics_addr = "127.0.0.1:9465";  ///< /metrics, /healthz, /readyz; "" = none (SENDQ_GATEWAY_METRICS_ADDR)
  int threads = 2;                       ///< I/O threads
  int body_limit_bytes = 4 << 20;        ///< larger request bodies get 413
  int max_batch = 1000;                  ///< SendRequests in one JSON array, at most
  int max_in_flight = 20000;             ///< records produced and not yet acknowledged; beyond: 503 (a batch larger than this: 413)
  int produce_timeout_ms = 30000;        ///< broker acknowledgement wait (also librdkafka message.timeout.ms)
  int max_connections = 512;             ///< client connections open at once; one more is answered 503 and closed
  int max_body_bytes_in_flight = 64 << 20;  ///< request bodies held at once (read or awaiting acks); one more: 503
  std::string topic;                     ///< "" = kafka.requests_topic
  std::vector<std::string> api_keys;     ///< accepted keys; empty (and no file) = no authentication
  std::string api_keys_file;             ///< one key per line (# comments); added to api_keys
  std::string legacy_account = "default";  ///< account of SendRequests made by the legacy sender endpoint
};

struct log_config {
  std::string level = "info";   ///< debug, info, warn, error
  std::string format = "auto";  ///< json, text, or auto (text on a terminal, else json)
};

struct config {
  kafka_config kafka;
  worker_config worker;
  metrics_config metrics;
  gateway_config gateway;
  log_config log;
  std::vector<providers::account> accounts;  ///< every configured provider account
  /// Rate limits of the accounts that have any (rate_limit, recipient_rate_limit, pacing keys).
  std::vector<policy::account_limits> limits;
  /// Setting values that are secrets (tokens, signs): the logger redacts them wherever they appear.
  std::vector<std::string> secrets;
  /// The account `provider`/`name`, or nullptr.
  const providers::account* find_account(std::string_view provider, std::string_view name) const;
};

/// Looks up an environment variable; injected so that tests need no real environment.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;
env_lookup process_env();

/// Which sections load() reads of the file the worker and the gateway share. The gateway calls no
/// provider: it neither needs nor should hold the providers' secrets (their `<key>_env` variables
/// and `<key>_file` files are the worker's), so it leaves [providers] unread and unchecked. The
/// worker leaves out the gateway's API keys (SENDQ_GATEWAY_API_KEYS, gateway.api_keys_file, which
/// only the gateway's user may be able to read).
enum class sections { all, without_providers, without_gateway_keys };

/// Reads `path` ("" = no file: defaults only), applies environment overrides
/// (SENDQ_KAFKA_BROKERS, SENDQ_<PROVIDER>_BASE_URL, SENDQ_METRICS_ADDR, SENDQ_<SECTION>_<KEY>,
/// SENDQ_GATEWAY_API_KEYS as a comma-separated list),
/// resolves `<key>_file` / `<key>_env` secrets, and validates. Throws config_error.
config load(const std::string& path, const env_lookup& env, sections which = sections::all);

/// The worker's producer's message.max.bytes: what [kafka.librdkafka] sets (load() checked it is
/// an integer of at least max_request_bytes + 64 KiB), else producer_message_max_bytes().
std::size_t producer_max_bytes(const config& c);

/// Kafka's rule for topic names: 1 to 249 of `A-Z a-z 0-9 . _ -`, not "." or "..".
bool is_topic_name(std::string_view name);

/// Same, from TOML text (tests).
config parse(std::string_view toml_text, const env_lookup& env, std::string_view source_name = "<string>",
             sections which = sections::all);

/// Only the [kafka] section (brokers, topics, [kafka.librdkafka]) of `path` with its environment
/// overrides, and the secrets among its settings, plus worker.max_request_bytes; the rest is
/// neither read nor checked.
/// For tools (sendqctl) that reach the same cluster as the worker. Throws config_error.
config load_kafka_only(const std::string& path, const env_lookup& env);
config parse_kafka_only(std::string_view toml_text, const env_lookup& env, std::string_view source_name = "<string>");

}  // namespace sendq::config
