#pragma once
/// Shared pieces of sendqctl: argument reading, rate limit, progress bar, time specs, result fields.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sendq::ctl {

/// Thrown for usage errors (exit code 2 with the message and "see --help").
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Walks argv of one subcommand. Options are `--name value` or `--name=value`.
class args {
 public:
  args(int argc, char** argv, int first);
  /// True when every argument was taken. Throws usage_error when the last option was given
  /// "--flag=value" but takes no value.
  bool done();
  /// The current argument; advances. Throws usage_error when the previous option was given
  /// "--flag=value" but takes no value (its value was not taken with value()).
  std::string next();
  /// The value of option `name` (already taken by next()); throws usage_error when missing.
  std::string value(const std::string& name);
  std::int64_t integer(const std::string& name, std::int64_t min, std::int64_t max);

 private:
  std::vector<std::string> argv_;
  std::size_t i_ = 0;
  std::optional<std::string> inline_value_;
  std::string flag_;  // the option next() returned last, to name it

  void check_value_taken();
};

/// The value of topic option `flag` (taken by args::next()); throws usage_error naming `flag` when
/// it is not a Kafka topic name.
std::string topic_value(args& in, const std::string& flag);
/// Throws usage_error naming both options when `first` is after `last` (an inverted range, which
/// would select nothing). Either may be absent.
void check_order(std::optional<std::int64_t> first, const std::string& first_flag, std::optional<std::int64_t> last,
                 const std::string& last_flag);

/// "500/s", "500", "30/m" → records per second (0 = unlimited). nullopt when malformed.
std::optional<double> parse_rate(std::string_view s);

/// "now", "-15m" / "-2h" / "-30s" / "-1d" (relative to `now_ms`), epoch milliseconds (digits), or
/// UTC "YYYY-MM-DDTHH:MM:SS[Z]" → epoch ms. nullopt when malformed or out of range;
/// a relative time before 1970 is 0.
std::optional<std::int64_t> parse_time(std::string_view s, std::int64_t now_ms);
/// parse_time of option `flag`'s `text`, or a usage_error naming the flag and the forms it takes.
/// Epoch digits under 10^11 (before 1973 in milliseconds) are refused as epoch seconds, with the
/// value in milliseconds to give instead; 0 stays the epoch itself.
std::int64_t time_value(std::string_view flag, const std::string& text, std::int64_t now_ms);

std::int64_t now_ms();

/// Blocking token bucket for a tool's main loop: acquire() sleeps until a token is free. It sleeps
/// 1 ms at least, so at high rates records leave in small bursts (rate / 1000 at a time), not one
/// per wake-up; the bucket holds up to a tenth of a second's tokens. It looks at `stopped` (by
/// default interrupted(): SIGINT, SIGTERM) at least every 100 ms while it waits, and then gives up:
/// acquire() returns false, and the caller produces nothing more.
bool interrupted() noexcept;  // (with stop_on_signals, below)
class rate_limiter {
 public:
  explicit rate_limiter(double per_second, bool (*stopped)() = &interrupted) : rate_(per_second), stopped_(stopped) {}
  [[nodiscard]] bool acquire();

 private:
  static constexpr double min_sleep_seconds = 0.001;
  static constexpr double max_sleep_seconds = 0.1;
  double rate_;
  bool (*stopped_)();
  double tokens_ = 1;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

/// Open-loop pacing for load tests: the k-th record is due at start + k / rate, whatever happened
/// to the ones before. A sender that fell behind (descheduled on a busy machine) sends what is
/// due at once, and each record's due time is kept, so a latency measured from it counts the
/// sender's own delays instead of hiding them (a token bucket forgets the time it lost).
class schedule {
 public:
  explicit schedule(double per_second, bool (*stopped)() = &interrupted);
  /// Waits until the next record is due (not at all when behind); its due time in epoch ms, or
  /// nullopt when a signal came while it waited.
  [[nodiscard]] std::optional<std::int64_t> next();

 private:
  double rate_;
  bool (*stopped_)();
  std::uint64_t count_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::int64_t start_epoch_ms_;
};

/// "[=====>    ] 5000/10000  1234/s  ETA 4s" on stderr, redrawn at most 10 times a second,
/// only when stderr is a terminal. `total` 0 = unknown (no bar, no ETA).
class progress {
 public:
  progress(std::string label, std::uint64_t total, bool enabled);
  void set_total(std::uint64_t total) { total_ = total; }
  void tick(std::uint64_t n = 1);
  void finish();
  /// The line for `done` of `total` after `elapsed` (pure; tests).
  static std::string line(std::string_view label, std::uint64_t done, std::uint64_t total, double elapsed_s);

 private:
  std::string label_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  bool enabled_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
};

/// The fields of a DeliveryResult that the tools filter and count on.
struct result_fields {
  std::string id, provider, account, type, to, status, error_kind, error_message;
  std::int64_t completed_at = 0;
  std::int64_t latency_ms = -1;
};
/// nullopt when `json` is not a DeliveryResult object.
std::optional<result_fields> parse_result(std::string_view json);

/// True when `list` is empty or holds `v`.
bool allowed(const std::vector<std::string>& list, std::string_view v);

/// Every command's shared options.
struct common {
  std::string brokers;  ///< --brokers, default $SENDQ_KAFKA_BROKERS, else --config's kafka.brokers
  double rate = 0;      ///< --rate, per second (0 = unlimited)
  bool progress = false;  ///< stderr is a terminal
  /// librdkafka settings of every client the command makes: --config's [kafka.librdkafka], then -X.
  std::map<std::string, std::string> librdkafka;
  std::vector<std::string> secrets;  ///< passwords among them: redacted from log lines
  std::string config_brokers;        ///< --config's kafka.brokers
  std::map<std::string, std::string> x_settings;  ///< -X KEY=VALUE
  /// --config's worker.max_request_bytes (else the worker's default): what enqueue accepts, and
  /// with the record's headroom the producers' message.max.bytes (unless -X or --config set it).
  std::size_t max_request_bytes = 1 << 20;
  /// The topics a command defaults to: sendq's own names, or --config's kafka.*_topic (with their
  /// SENDQ_KAFKA_*_TOPIC overrides), so that a deployment that renamed them is read and written
  /// where its workers are. A --topic-style flag wins.
  std::string requests_topic = "sendq.requests", results_topic = "sendq.results", dlq_topic = "sendq.dlq",
              bulk_topic = "sendq.bulk";
};

/// librdkafka settings for the command's producer: `c.librdkafka`, with message.max.bytes raised to
/// take a record of max_request_bytes (as the worker's and the gateway's producers do).
std::map<std::string, std::string> producer_settings(const common& c);
/// Takes the shared option `a` if it is one (--brokers, --rate, --config, -X); false otherwise.
/// --config reads the file's [kafka] section and worker.max_request_bytes (config::load_kafka_only).
bool take_common(args& in, const std::string& a, common& c);
/// The value of --status: one of delivered, failed, rejected, expired (else usage_error).
std::string status_value(args& in, const std::string& a);
/// The value of --kind: one of the contract's error kinds (else usage_error naming them).
std::string kind_value(args& in, const std::string& a);
/// usage_error when --rate was given to `command`, which produces nothing.
void refuse_rate(const common& c, std::string_view command);
/// SIGINT and SIGTERM from now on set interrupted() (a command then stops reading, flushes what
/// it produced and prints its summary); a second one ends the process at once.
void stop_on_signals();
bool interrupted() noexcept;
/// Exit status of a command stopped by stop_on_signals (128 + SIGINT, as a shell reports it).
inline constexpr int exit_interrupted = 130;
/// After the options: settles brokers (--brokers, $SENDQ_KAFKA_BROKERS, then --config's) and the
/// librdkafka settings (-X over --config); throws usage_error when there is no broker.
void require_brokers(common& c);

}  // namespace sendq::ctl
