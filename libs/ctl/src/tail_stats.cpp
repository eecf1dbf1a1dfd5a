// sendqctl tail and stats: read DeliveryResults.
#include <unistd.h>

#include <array>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <map>

#include "sendq/core/json_writer.hpp"
#include "sendq/ctl/commands.hpp"
#include "sendq/ctl/common.hpp"
#include "sendq/kafka/reader.hpp"
#include "sendq/log/logger.hpp"

namespace sendq::ctl {
namespace {

using namespace std::chrono_literals;

constexpr const char* tail_usage = R"(Usage: sendqctl tail [options]

Follows DeliveryResults (default topic sendq.results) and prints those that match: a table on a
terminal, the results' JSON lines in a pipe. Stops on Ctrl-C, or after --count.

Options:
  --results-topic T  (default sendq.results, or --config's kafka.results_topic)
  --provider P, --account A, --status S, --kind K   filters (repeatable)
  --from-beginning   start at the oldest result instead of new ones
  --since TIME       start at TIME (epoch ms, 2024-05-01T10:00:00Z, -15m)
  --count N          stop after N matching results
  --idle-exit S      stop when nothing arrived for S seconds
  --json / --table   force the output format
  --brokers B        bootstrap servers (default $SENDQ_KAFKA_BROKERS)
  --config FILE      Kafka settings from the worker's TOML file: kafka.brokers (under --brokers
                     and $SENDQ_KAFKA_BROKERS), [kafka.librdkafka] (TLS, SASL; _env/_file), the
                     kafka.*_topic names (the default topics; a topic flag wins)
  -X KEY=VALUE       one librdkafka setting (repeatable; wins over --config), e.g. -X debug=broker
  -h, --help
)";

constexpr const char* stats_usage = R"(Usage: sendqctl stats [options]

Counts DeliveryResults by provider and status over a time window (results' Kafka timestamps).

Options:
  --results-topic T  (default sendq.results, or --config's kafka.results_topic)
  --since TIME       window start (default -1h); TIME: epoch ms, 2024-05-01T10:00:00Z, now, -15m
  --until TIME       window end (default now)
  --json             one JSON object instead of the table
  --brokers B        bootstrap servers (default $SENDQ_KAFKA_BROKERS)
  --config FILE      Kafka settings from the worker's TOML file: kafka.brokers (under --brokers
                     and $SENDQ_KAFKA_BROKERS), [kafka.librdkafka] (TLS, SASL; _env/_file), the
                     kafka.*_topic names (the default topics; a topic flag wins)
  -X KEY=VALUE       one librdkafka setting (repeatable; wins over --config), e.g. -X debug=broker
  -h, --help
)";

std::string trim(std::string s, std::size_t n) {
  if (s.size() > n) s = s.substr(0, n - 1) + "~";
  return s;
}

std::vector<kafka::partition_range> ranges_from(kafka::reader& rd, const std::string& topic,
                                                std::optional<std::int64_t> since, std::optional<std::int64_t> until,
                                                bool from_beginning, bool follow) {
  const auto parts = rd.partitions(topic, 10s);
  const auto marks = rd.watermarks(topic, parts, 10s);  // queried once, shared with the time lookups
  std::vector<std::int64_t> begins, ends;
  if (since) begins = rd.offsets_for_time(topic, parts, *since, 10s, &marks);
  if (until) ends = rd.offsets_for_time(topic, parts, *until, 10s, &marks);
  std::vector<kafka::partition_range> out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto [low, high] = marks[i];
    // -1 from a time lookup (the mock cluster cannot look up times): scan from the start, filter by timestamp.
    const std::int64_t begin = since ? (begins[i] >= 0 ? begins[i] : low) : from_beginning ? low : high;
    const std::int64_t end = follow ? -1 : until && ends[i] >= 0 ? ends[i] : high;
    out.push_back({parts[i], begin, end});
  }
  return out;
}

}  // namespace

int run_tail(int argc, char** argv, int first) {
  common c;
  if (const char* b = std::getenv("SENDQ_KAFKA_BROKERS")) c.brokers = b;
  std::string topic;  // "" = common::results_topic (after --config)
  std::vector<std::string> providers, accounts, statuses, kinds;
  bool from_beginning = false;
  std::optional<std::int64_t> since;
  std::int64_t count = -1, idle_exit = -1;
  bool table = isatty(STDOUT_FILENO);
  args in(argc, argv, first);
  while (!in.done()) {
    const auto a = in.next();
    if (a == "-h" || a == "--help") {
      std::cout << tail_usage;
      return 0;
    }
    if (take_common(in, a, c)) continue;
    if (a == "--results-topic") topic = topic_value(in, a);
    else if (a == "--provider") providers.push_back(in.value(a));
    else if (a == "--account") accounts.push_back(in.value(a));
    else if (a == "--status") statuses.push_back(status_value(in, a));
    else if (a == "--kind") kinds.push_back(kind_value(in, a));
    else if (a == "--from-beginning") from_beginning = true;
    else if (a == "--since") {
      since = time_value(a, in.value(a), now_ms());
    } else if (a == "--count") count = in.integer(a, 1, INT64_MAX);
    else if (a == "--idle-exit") idle_exit = in.integer(a, 1, 86400);
    else if (a == "--json") table = false;
    else if (a == "--table") table = true;
    else throw usage_error("unknown option '" + a + "'");
  }
  refuse_rate(c, "tail");
  if (topic.empty()) topic = c.results_topic;
  require_brokers(c);
  stop_on_signals();
  log::logger logger(log::level::warn, false);
  logger.add_secrets(c.secrets);
  kafka::reader rd({c.brokers, c.librdkafka}, logger);
  rd.assign(topic, ranges_from(rd, topic, since, std::nullopt, from_beginning, true));
  if (table) {
    std::cout << std::left << std::setw(34) << "ID" << std::setw(9) << "PROVIDER" << std::setw(10) << "ACCOUNT"
              << std::setw(9) << "TYPE" << std::setw(10) << "STATUS" << std::setw(9) << "LATENCY" << "ERROR\n";
  }
  std::int64_t shown = 0;
  std::size_t gaps_told = 0;
  auto last = std::chrono::steady_clock::now();
  while (!interrupted() && (count < 0 || shown < count)) {
    auto batch = rd.read(500, 200ms);
    // Results deleted (retention) before they were read: said, not skipped in silence.
    for (; gaps_told < rd.gaps().size(); ++gaps_told) std::cerr << "tail: " << topic << " " << rd.gaps()[gaps_told] << "\n";
    if (batch.empty()) {
      if (idle_exit > 0 && std::chrono::steady_clock::now() - last > std::chrono::seconds(idle_exit)) break;
      continue;
    }
    last = std::chrono::steady_clock::now();
    for (auto& m : batch) {
      if (since && m.timestamp_ms() < *since) continue;
      auto r = parse_result(m.payload());
      if (!r || !allowed(providers, r->provider) || !allowed(accounts, r->account) || !allowed(statuses, r->status) ||
          !allowed(kinds, r->error_kind)) {
        continue;
      }
      if (table) {
        std::cout << std::left << std::setw(34) << trim(r->id, 33) << std::setw(9) << r->provider << std::setw(10)
                  << trim(r->account, 9) << std::setw(9) << r->type << std::setw(10) << r->status << std::setw(9)
                  << (r->latency_ms >= 0 ? std::to_string(r->latency_ms) + "ms" : "-")
                  << (r->error_kind.empty() ? "" : r->error_kind + ": " + trim(r->error_message, 60)) << "\n";
      } else {
        std::cout << m.payload() << "\n";
      }
      if (++shown == count) break;
    }
    std::cout.flush();
  }
  return 0;
}

int run_stats(int argc, char** argv, int first) {
  common c;
  if (const char* b = std::getenv("SENDQ_KAFKA_BROKERS")) c.brokers = b;
  std::string topic;  // "" = common::results_topic (after --config)
  std::string since_text = "-1h", until_text = "now";
  bool json = false;
  args in(argc, argv, first);
  while (!in.done()) {
    const auto a = in.next();
    if (a == "-h" || a == "--help") {
      std::cout << stats_usage;
      return 0;
    }
    if (take_common(in, a, c)) continue;
    if (a == "--results-topic") topic = topic_value(in, a);
    else if (a == "--since") since_text = in.value(a);
    else if (a == "--until") until_text = in.value(a);
    else if (a == "--json") json = true;
    else throw usage_error("unknown option '" + a + "'");
  }
  refuse_rate(c, "stats");
  if (topic.empty()) topic = c.results_topic;
  require_brokers(c);
  const auto now = now_ms();
  const std::optional<std::int64_t> since = time_value("--since", since_text, now), until = time_value("--until", until_text, now);
  check_order(since, "--since " + since_text, until, "--until " + until_text);
  log::logger logger(log::level::warn, false);
  logger.add_secrets(c.secrets);
  kafka::reader rd({c.brokers, c.librdkafka}, logger);
  const auto ranges = ranges_from(rd, topic, since, until_text == "now" ? std::nullopt : until, false, false);
  std::uint64_t total = 0;
  for (const auto& r : ranges) total += static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.end - r.begin));
  progress bar("stats", total, isatty(STDERR_FILENO));
  rd.assign(topic, ranges);
  static constexpr std::array<std::string_view, 4> statuses{"delivered", "failed", "rejected", "expired"};
  std::map<std::string, std::map<std::string, std::uint64_t>> counts;  // provider → status → n
  auto idle = std::chrono::steady_clock::now();
  while (!rd.done()) {
    auto batch = rd.read(1000, 200ms);
    if (!batch.empty()) idle = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() - idle > 60s) {
      // Counts of part of the window would read as the whole: say so, and print none.
      bar.finish();
      std::cerr << "stats: no progress for 60 s reading " << topic << " (broker down, no authorization?); "
                << "counts would be partial, none printed\n";
      return 1;
    }
    for (auto& m : batch) {
      bar.tick();
      if (m.timestamp_ms() < *since || m.timestamp_ms() >= *until) continue;
      if (auto r = parse_result(m.payload())) ++counts[r->provider.empty() ? "-" : r->provider][r->status];
    }
  }
  bar.finish();
  if (!rd.gaps().empty()) {
    // As for a stall: counts of part of the window would read as the whole.
    for (const auto& gap : rd.gaps()) std::cerr << "stats: " << topic << " " << gap << "\n";
    std::cerr << "stats: counts would be partial, none printed\n";
    return 1;
  }
  if (json) {
    std::cout << "{\"since\":" << *since << ",\"until\":" << *until << ",\"providers\":{";
    bool firstp = true;
    for (const auto& [p, by] : counts) {
      // A provider name is whatever a rejected request carried: escaped, so the output stays JSON.
      std::string name;
      core::json_writer(name).value(p);
      std::cout << (firstp ? "" : ",") << name << ":{";
      bool firsts = true;
      for (const auto& [s, n] : by) {
        std::string status;  // as for providers: whatever a result carried, escaped
        core::json_writer(status).value(s);
        std::cout << (firsts ? "" : ",") << status << ":" << n;
        firsts = false;
      }
      std::cout << "}";
      firstp = false;
    }
    std::cout << "}}\n";
    return 0;
  }
  std::cout << std::left << std::setw(12) << "PROVIDER";
  for (auto s : statuses) std::cout << std::right << std::setw(11) << s;
  std::cout << std::setw(11) << "total" << "\n";
  std::map<std::string, std::uint64_t> column;
  for (const auto& [p, by] : counts) {
    std::cout << std::left << std::setw(12) << p;
    std::uint64_t sum = 0;
    for (auto s : statuses) {
      const auto it = by.find(std::string(s));
      const auto n = it == by.end() ? 0 : it->second;
      column[std::string(s)] += n;
      sum += n;
      std::cout << std::right << std::setw(11) << n;
    }
    column["total"] += sum;
    std::cout << std::setw(11) << sum << "\n";
  }
  std::cout << std::left << std::setw(12) << "all";
  for (auto s : statuses) std::cout << std::right << std::setw(11) << column[std::string(s)];
  std::cout << std::setw(11) << column["total"] << "\n";
  return 0;
}

}  // namespace sendq::ctl
