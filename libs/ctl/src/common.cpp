#include "sendq/ctl/common.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <thread>

#include <simdjson.h>

#include "sendq/config/config.hpp"
#include "sendq/core/failure.hpp"

namespace sendq::ctl {

args::args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) argv_.emplace_back(argv[i]);
}

bool args::done() {
  if (i_ < argv_.size()) return false;
  check_value_taken();
  return true;
}

std::string args::next() {
  check_value_taken();
  std::string a = argv_[i_++];
  if (a.starts_with("--")) {
    if (auto eq = a.find('='); eq != std::string::npos) {
      inline_value_ = a.substr(eq + 1);
      a.resize(eq);
    }
  }
  flag_ = a;
  return a;
}

void args::check_value_taken() {
  // "--dry-run=false" would otherwise be a dry run, the "=false" dropped without a word.
  if (inline_value_) {
    const auto v = *std::exchange(inline_value_, std::nullopt);
    throw usage_error(flag_ + " takes no value (given '" + v + "')");
  }
}

std::string args::value(const std::string& name) {
  if (inline_value_) return *std::exchange(inline_value_, std::nullopt);
  if (i_ >= argv_.size()) throw usage_error(name + " needs a value");
  // "--topic --dry-run" would copy for real into a topic named "--dry-run".
  if (argv_[i_].size() > 2 && argv_[i_].starts_with("--")) {
    throw usage_error(name + " needs a value (got the flag '" + argv_[i_] + "'" +
                      (name.starts_with("--") ? "; write " + name + "=" + argv_[i_] + " for a value that starts with --"
                                              : std::string()) +
                      ")");
  }
  return argv_[i_++];
}

std::int64_t args::integer(const std::string& name, std::int64_t min, std::int64_t max) {
  const auto v = value(name);
  std::int64_t n = 0;
  // from_chars, not strtoll: a number past int64 is out of range, not clamped to INT64_MAX.
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < min || n > max) {
    throw usage_error(name + ": '" + v + "' is not an integer within " + std::to_string(min) + ".." + std::to_string(max));
  }
  return n;
}

std::string topic_value(args& in, const std::string& flag) {
  auto v = in.value(flag);
  if (!config::is_topic_name(v)) {
    throw usage_error(flag + ": '" + v + "' is not a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -, not \".\" or \"..\")");
  }
  return v;
}

void check_order(std::optional<std::int64_t> first, const std::string& first_flag, std::optional<std::int64_t> last,
                 const std::string& last_flag) {
  if (first && last && *first > *last) {
    throw usage_error(first_flag + " (" + std::to_string(*first) + ") is after " + last_flag + " (" +
                      std::to_string(*last) + "): the range is inverted and would select nothing");
  }
}

std::optional<double> parse_rate(std::string_view s) {
  double per = 1;
  if (s.ends_with("/s")) {
    s.remove_suffix(2);
  } else if (s.ends_with("/m")) {
    s.remove_suffix(2);
    per = 60;
  }
  // Plain decimal only (strtod would take "0x10", "1e3", "inf" and the locale's separator).
  if (s.empty() || s.find_first_not_of("0123456789.") != std::string_view::npos) return std::nullopt;
  double n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n, std::chars_format::fixed);
  if (ec != std::errc() || end != s.data() + s.size() || !(n >= 0) || !std::isfinite(n)) return std::nullopt;
  return n / per;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {

// Digits only, as a non-negative int64; nullopt when empty, not all digits, or too large.
std::optional<std::int64_t> digits_value(std::string_view s) {
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || s[0] == '-' || s[0] == '+' || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

}  // namespace

std::optional<std::int64_t> parse_time(std::string_view s, std::int64_t now) {
  if (s == "now") return now;
  if (s.size() >= 3 && s[0] == '-') {
    const char unit = s.back();
    const auto n = digits_value(s.substr(1, s.size() - 2));
    const std::int64_t ms = unit == 's' ? 1000 : unit == 'm' ? 60000 : unit == 'h' ? 3600000 : unit == 'd' ? 86400000 : 0;
    if (!n || !ms) return std::nullopt;
    // No Kafka record is older than 1970: further back means "from the start", without overflowing.
    return *n > now / ms ? 0 : now - *n * ms;
  }
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos) return digits_value(s);
  std::tm tm{};
  const std::string text(s);
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  // The Z is required: without it ISO 8601 means local time, which would be taken for UTC without a word.
  if (!end || std::string_view(end) != "Z") return std::nullopt;
  // strptime takes 2024-02-31 and timegm makes it 2 March: a date that does not exist is refused.
  const std::tm asked = tm;
  const auto t = timegm(&tm);
  if (tm.tm_mday != asked.tm_mday || tm.tm_mon != asked.tm_mon || tm.tm_year != asked.tm_year ||
      tm.tm_hour != asked.tm_hour || tm.tm_min != asked.tm_min || tm.tm_sec != asked.tm_sec) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(t) * 1000;
}

std::int64_t time_value(std::string_view flag, const std::string& text, std::int64_t now) {
  const auto t = parse_time(text, now);
  const std::string forms = "epoch milliseconds, 2024-05-01T10:00:00Z in UTC (the Z required), now, -15m";
  if (!t) throw usage_error(std::string(flag) + ": '" + text + "' is not a time (" + forms + ")");
  const bool digits = text.find_first_not_of("0123456789") == std::string::npos;
  if (digits && *t > 0 && *t < 100'000'000'000) {
    throw usage_error(std::string(flag) + ": '" + text + "' looks like epoch seconds; give milliseconds (" + text +
                      "000) or another form (" + forms + ")");
  }
  return *t;
}

bool rate_limiter::acquire() {
  if (rate_ <= 0) return !stopped_();
  for (;;) {
    if (stopped_()) return false;
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(std::max(1.0, rate_ / 10), tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
    last_ = now;
    if (tokens_ >= 1) {
      tokens_ -= 1;
      return true;
    }
    // Sleep at least a millisecond and let tokens build up meanwhile: at 18,000/s a sleep per
    // record was a context switch per record, and the paced producer used 0.8 of a core. At most
    // a tenth of a second: at 1/m, Ctrl-C would otherwise wait up to a minute.
    std::this_thread::sleep_for(std::clamp(std::chrono::duration<double>((1 - tokens_) / rate_),
                                           std::chrono::duration<double>(min_sleep_seconds),
                                           std::chrono::duration<double>(max_sleep_seconds)));
  }
}

schedule::schedule(double per_second, bool (*stopped)())
    : rate_(per_second),
      stopped_(stopped),
      start_epoch_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count()) {}

std::optional<std::int64_t> schedule::next() {
  const auto offset = std::chrono::duration<double>(static_cast<double>(count_) / rate_);
  const auto due = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(offset);
  for (;;) {
    if (stopped_()) return std::nullopt;
    const auto now = std::chrono::steady_clock::now();
    if (now >= due) break;
    // At least a millisecond, as rate_limiter: the records due meanwhile then go out together,
    // each with its own due time. At most a tenth of a second, for Ctrl-C.
    std::this_thread::sleep_for(std::clamp<std::chrono::steady_clock::duration>(
        due - now, std::chrono::milliseconds(1), std::chrono::milliseconds(100)));
  }
  ++count_;
  return start_epoch_ms_ + static_cast<std::int64_t>(std::llround(offset.count() * 1000));
}

progress::progress(std::string label, std::uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled) {}

std::string progress::line(std::string_view label, std::uint64_t done, std::uint64_t total, double elapsed_s) {
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0;
  char buf[160];
  if (total == 0) {
    std::snprintf(buf, sizeof buf, "%.*s %llu  %.0f/s", static_cast<int>(label.size()), label.data(),
                  static_cast<unsigned long long>(done), rate);
    return buf;
  }
  constexpr int width = 30;
  const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<std::size_t>(filled), '=');
  if (filled < width) bar += '>';
  bar.resize(width, ' ');
  std::string eta = "--";
  if (rate > 0 && done <= total) {
    const auto left = static_cast<long long>(std::ceil(static_cast<double>(total - done) / rate));
    eta = left >= 3600 ? std::to_string(left / 3600) + "h" + std::to_string(left % 3600 / 60) + "m"
          : left >= 60 ? std::to_string(left / 60) + "m" + std::to_string(left % 60) + "s"
                       : std::to_string(left) + "s";
  }
  std::snprintf(buf, sizeof buf, "%.*s [%s] %llu/%llu  %.0f/s  ETA %s", static_cast<int>(label.size()), label.data(),
                bar.c_str(), static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), rate, eta.c_str());
  return buf;
}

void progress::tick(std::uint64_t n) {
  done_ += n;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::fprintf(stderr, "\r\033[K%s", line(label_, done_, total_, std::chrono::duration<double>(now - start_).count()).c_str());
}

void progress::finish() {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  std::fprintf(stderr, "\r\033[K%s\n", line(label_, done_, total_, std::chrono::duration<double>(now - start_).count()).c_str());
}

std::optional<result_fields> parse_result(std::string_view json) {
  namespace od = simdjson::ondemand;
  thread_local od::parser parser;  // one per thread: it owns its buffers
  simdjson::padded_string padded(json);
  auto doc = parser.iterate(padded);
  od::object obj;
  if (doc.get_object().get(obj)) return std::nullopt;
  result_fields r;
  for (auto member : obj) {
    std::string_view key;
    if (member.unescaped_key().get(key)) return std::nullopt;
    od::value v;
    if (member.value().get(v)) return std::nullopt;
    std::string_view s;
    if (key == "id" || key == "provider" || key == "account" || key == "type" || key == "to" || key == "status") {
      if (v.get_string().get(s)) continue;
      std::string& target = key == "id" ? r.id : key == "provider" ? r.provider : key == "account" ? r.account
                            : key == "type" ? r.type : key == "to" ? r.to : r.status;
      target = std::string(s);
    } else if (key == "error") {
      od::object e;
      if (v.get_object().get(e)) continue;
      for (auto em : e) {
        std::string_view ek, ev;
        if (em.unescaped_key().get(ek) || em.value().get_string().get(ev)) continue;
        if (ek == "kind") r.error_kind = std::string(ev);
        if (ek == "message") r.error_message = std::string(ev);
      }
    } else if (key == "completed_at" || key == "latency_ms") {
      std::int64_t n = 0;
      if (v.get_int64().get(n)) continue;
      (key == "completed_at" ? r.completed_at : r.latency_ms) = n;
    }
  }
  if (r.id.empty() || r.status.empty()) return std::nullopt;
  return r;
}

bool allowed(const std::vector<std::string>& list, std::string_view v) {
  return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
}

bool take_common(args& in, const std::string& a, common& c) {
  if (a == "--brokers") {
    c.brokers = in.value(a);
    return true;
  }
  if (a == "--rate") {
    const auto v = in.value(a);
    auto r = parse_rate(v);
    if (!r) throw usage_error("--rate: '" + v + "' is not a rate such as 500/s");
    // 0 would mean no limit at all: leave --rate out for that.
    if (*r <= 0) throw usage_error("--rate: '" + v + "' must be more than 0 (leave --rate out for no limit)");
    c.rate = *r;
    return true;
  }
  if (a == "--config") {
    const auto path = in.value(a);
    try {
      // The worker's file: the same brokers and the same TLS/SASL settings, secrets resolved.
      // An empty $SENDQ_KAFKA_BROKERS means the embedded Kafka to the worker; to a tool, nothing.
      auto env = [process = config::process_env()](const std::string& name) -> std::optional<std::string> {
        auto v = process(name);
        if (name == "SENDQ_KAFKA_BROKERS" && v && v->empty()) return std::nullopt;
        return v;
      };
      auto k = config::load_kafka_only(path, env);
      c.config_brokers = k.kafka.brokers;
      c.max_request_bytes = static_cast<std::size_t>(k.worker.max_request_bytes);
      c.librdkafka = std::move(k.kafka.librdkafka);
      c.secrets = std::move(k.secrets);
      c.requests_topic = k.kafka.requests_topic;
      c.results_topic = k.kafka.results_topic;
      c.dlq_topic = k.kafka.dlq_topic;
      c.bulk_topic = k.kafka.bulk_topic;
    } catch (const config::config_error& e) {
      throw usage_error("--config: " + std::string(e.what()));
    }
    return true;
  }
  if (a == "-X") {
    const auto kv = in.value(a);
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw usage_error("-X: '" + kv + "' is not KEY=VALUE (a librdkafka setting)");
    c.x_settings[kv.substr(0, eq)] = kv.substr(eq + 1);
    return true;
  }
  return false;
}

std::string status_value(args& in, const std::string& a) {
  auto s = in.value(a);
  if (s != "delivered" && s != "failed" && s != "rejected" && s != "expired") {
    throw usage_error(a + ": '" + s + "' is not one of delivered, failed, rejected, expired");
  }
  return s;
}

std::string kind_value(args& in, const std::string& a) {
  auto k = in.value(a);
  std::string known;
  for (int i = 0; i <= static_cast<int>(core::error_kind::internal); ++i) {
    const auto name = core::to_string(static_cast<core::error_kind>(i));
    if (k == name) return k;
    known += (known.empty() ? "" : ", ") + std::string(name);
  }
  throw usage_error(a + ": '" + k + "' is not an error kind (" + known + ")");
}

void refuse_rate(const common& c, std::string_view command) {
  if (c.rate > 0) throw usage_error("--rate: " + std::string(command) + " produces nothing (--rate is for enqueue, replay, redrive)");
}

namespace {
volatile std::sig_atomic_t stop_signal = 0;
void on_stop_signal(int) {
  stop_signal = 1;
  // async-signal-safe; the next one, of either kind, is not waited on
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}
}  // namespace

void stop_on_signals() {
  // Without SA_RESTART: a read waiting on a terminal or a pipe returns (EINTR), so that a command
  // blocked on its input stops too.
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() noexcept { return stop_signal != 0; }

std::map<std::string, std::string> producer_settings(const common& c) {
  auto out = c.librdkafka;
  out.try_emplace("message.max.bytes", std::to_string(config::producer_message_max_bytes(c.max_request_bytes)));
  // Under the tools' 60 s wait for acknowledgements (librdkafka's default is 300 s): a record
  // reported as not acknowledged has then failed, not still in flight to be written later. A
  // --config file's value is the workers' and does not apply; -X (either name) does.
  if (!c.x_settings.contains("message.timeout.ms") && !c.x_settings.contains("delivery.timeout.ms")) {
    out.erase("delivery.timeout.ms");
    out["message.timeout.ms"] = "55000";
  }
  return out;
}

void require_brokers(common& c) {
  if (c.brokers.empty()) c.brokers = c.config_brokers;
  for (const auto& [k, v] : c.x_settings) {
    c.librdkafka[k] = v;
    if ((k.find("password") != std::string::npos || k.find("secret") != std::string::npos) && !v.empty()) {
      c.secrets.push_back(v);
    }
  }
  if (c.brokers.empty()) {
    throw usage_error("no Kafka: pass --brokers HOST:PORT, set SENDQ_KAFKA_BROKERS, or --config a file with kafka.brokers");
  }
}

}  // namespace sendq::ctl
