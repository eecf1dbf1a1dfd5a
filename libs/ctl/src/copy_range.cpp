// sendqctl replay and redrive: copy a range of a topic (by partition/offset or time window) into
// another topic, with filters. Values, and so ids, are kept as they are; what a worker's duplicate
// guard or a provider does with an id sent again is in each command's help.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <iostream>
#include <map>
#include <optional>
#include <stdexcept>
#include <set>
#include <unordered_map>

#include "sendq/core/request_decoder.hpp"
#include "sendq/ctl/commands.hpp"
#include "sendq/kafka/reader.hpp"
#include "sink.hpp"
#include "timestamp_merge.hpp"

namespace sendq::ctl {
namespace {

using namespace std::chrono_literals;

constexpr const char* range_help = R"(
Range (default: the whole topic as it is now):
  --partition P      only partition P (repeatable)
  --start-offset O   first offset (in each selected partition)
  --end-offset O     stop before offset O
  --since TIME       first record at or after TIME
  --until TIME       stop before the first record at or after TIME
                     TIME: epoch ms, UTC 2024-05-01T10:00:00Z, now, or -30s/-15m/-2h/-1d
Common:
  --topic T          destination (default sendq.bulk, the bulk lane, or --config's kafka.bulk_topic;
                     sendq.requests for the live lane)
  --rate N/s|N/m     at most N records per second (or minute; a bare N is per second; default unlimited)
  --dry-run          read, filter and count, produce nothing
  --brokers B        bootstrap servers (default $SENDQ_KAFKA_BROKERS)
  --config FILE      Kafka settings from the worker's TOML file: kafka.brokers (under --brokers
                     and $SENDQ_KAFKA_BROKERS), [kafka.librdkafka] (TLS, SASL; _env/_file), the
                     kafka.*_topic names (the default topics; a topic flag wins);
                     worker.max_request_bytes (default 1 MiB): records up to it are produced
  -X KEY=VALUE       one librdkafka setting (repeatable; wins over --config), e.g. -X debug=broker
  -h, --help
)";

constexpr const char* replay_usage = R"(Usage: sendqctl replay [options]

Copies SendRequests from a topic (default sendq.requests) into --topic, keyed by each request's
ordering key, the value as it is and so its id. A request delivered before IS SENT AGAIN unless
--status leaves it out: the worker's duplicate guard only knows ids its own process ended within
worker.dedupe_window_ms (10 min), and of the providers only sender deduplicates by id. With
--status, the range is read once more first, for its ids, and then the whole results topic for
their latest results: memory grows with the ids in the range, not with the results topic (the
default range, the whole source topic, is read twice).

Filters (repeatable; a record must match every kind given):
  --from-topic T     source topic (default sendq.requests, or --config's; e.g. an archive topic)
  --provider P       only requests for provider P
  --account A        only requests of account A
  --status S         only requests whose latest DeliveryResult has status S (delivered, failed,
                     rejected, expired), read from --results-topic (default sendq.results, or --config's)
)";

constexpr const char* redrive_usage = R"(Usage: sendqctl redrive [options]

Moves DLQ records (default topic sendq.dlq) back: their original bytes are produced to --topic,
keyed by the request's ordering key (the DLQ's key is its id). Kafka is append-only: the DLQ keeps its copy; use --since/--start-offset so that a
later redrive does not repeat this one. Records come back in the order the worker wrote them to
the DLQ (by timestamp, merged across its partitions, which spread one key's records; within a
millisecond by their source offset), which is their key's order unless one of them waited on
sendq.retry (the DLQ topic's message.timestamp.type must be CreateTime, Kafka's default). Up to
about 64 MiB of records wait for the slowest partition; past that the command goes on and says a
key's order may be broken. Stopped early, it says how to resume over every partition in order. Redrive what can pass
now: an expired request keeps its past deadline and ends expired again, an invalid one is rejected
again, and an ambiguous or timeout one may have reached its recipient already.

Filters:
  --dlq-topic T      source topic (default sendq.dlq, or --config's)
  --kind K           only records whose sendq-error-kind header is K (repeatable), e.g.
                     retries_exhausted, http_5xx, timeout, expired, invalid_field
)";

struct range_options {
  std::vector<std::int32_t> partitions;
  std::optional<std::int64_t> start_offset, end_offset, since, until;
  std::string topic;  ///< "" = the bulk topic (common::bulk_topic)
  bool dry_run = false;
  bool in_time_order = false;  // redrive: the partitions merged by timestamp (timestamp_merge)
};

// How much of the source redrive holds to merge its partitions by time: past it, records go
// without waiting for a partition that lags (and the command says a key's order may be broken).
constexpr std::size_t max_merge_bytes = 64u << 20;

bool take_range(args& in, const std::string& a, range_options& r) {
  const auto time = [&] { return time_value(a, in.value(a), now_ms()); };
  if (a == "--partition") {
    const auto p = static_cast<std::int32_t>(in.integer(a, 0, 1 << 20));
    // librdkafka refuses an assignment that names a partition twice, with a vaguer message.
    if (std::find(r.partitions.begin(), r.partitions.end(), p) != r.partitions.end()) {
      throw usage_error("--partition " + std::to_string(p) + ": given twice");
    }
    r.partitions.push_back(p);
  }
  else if (a == "--start-offset") r.start_offset = in.integer(a, 0, INT64_MAX);
  else if (a == "--end-offset") r.end_offset = in.integer(a, 0, INT64_MAX);
  else if (a == "--since") r.since = time();
  else if (a == "--until") r.until = time();
  else if (a == "--topic") r.topic = topic_value(in, a);
  else if (a == "--dry-run") r.dry_run = true;
  else return false;
  return true;
}

// After the options, whatever their order: an inverted range is a mistake, not an empty copy.
void check_range(const range_options& o) {
  check_order(o.start_offset, "--start-offset", o.end_offset, "--end-offset");
  check_order(o.since, "--since", o.until, "--until");
}

// `deleted`, when given, gets a line for each partition where part of the range asked for
// (--start-offset, narrowed by --since, --end-offset and --until) lies below its oldest record:
// those records were deleted (retention) before this copy could read them.
std::vector<kafka::partition_range> resolve(kafka::reader& rd, const std::string& topic, const range_options& o,
                                            std::vector<std::string>* deleted = nullptr) {
  auto parts = rd.partitions(topic, 10s);
  if (!o.partitions.empty()) {
    for (auto p : o.partitions) {
      if (std::find(parts.begin(), parts.end(), p) == parts.end()) {
        throw usage_error("--partition " + std::to_string(p) + ": " + topic + " has no such partition");
      }
    }
    parts = o.partitions;
  }
  const auto marks = rd.watermarks(topic, parts, 10s);  // queried once, shared with the time lookups
  std::vector<std::int64_t> since, until;
  if (o.since) since = rd.offsets_for_time(topic, parts, *o.since, 10s, &marks);
  if (o.until) until = rd.offsets_for_time(topic, parts, *o.until, 10s, &marks);
  std::vector<kafka::partition_range> out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto [low, high] = marks[i];
    // What was asked for, before the oldest record left (low) bounds it.
    std::int64_t asked = o.start_offset.value_or(low), end = high;
    if (o.since && since[i] >= 0) asked = std::max(asked, since[i]);  // else: scan, filtered by timestamp
    if (o.end_offset) end = std::min(end, *o.end_offset);
    if (o.until && until[i] >= 0) end = std::min(end, until[i]);
    if (deleted && asked < low && asked < end) {
      deleted->push_back("partition " + std::to_string(parts[i]) + ": offsets " + std::to_string(asked) + " to " +
                         std::to_string(std::min(low, end) - 1) + " were deleted (retention) before they were read");
    }
    const std::int64_t begin = std::max(asked, low);
    out.push_back({parts[i], begin, std::max(begin, end)});
  }
  return out;
}

// Records are copied as they are; they are decoded only to filter them and to find their key, so
// any size a worker may accept (worker.max_request_bytes is at most 64 MiB) is read.
constexpr std::size_t any_accepted_size = 64u << 20;

// Whether a record lies in --since/--until by its timestamp (offset lookups by time are only a
// starting point).
bool in_time_window(const range_options& o, const kafka::message& m) {
  const auto ts = m.timestamp_ms();
  return (!o.since || ts >= *o.since) && (!o.until || ts < *o.until);
}

// Reads `ranges` of `topic` (none given: the whole topic as it is now) to their ends, handing each
// message to `each`. Throws when nothing comes for 60 s (`what` names the read in that error).
template <class Each>
void read_all(const common& c, const std::string& topic, const std::vector<kafka::partition_range>* ranges,
              const std::string& what, Each each) {
  log::logger logger(log::level::warn, false);
  logger.add_secrets(c.secrets);
  kafka::reader rd({c.brokers, c.librdkafka}, logger);
  rd.assign(topic, ranges ? *ranges : resolve(rd, topic, range_options{}));
  auto idle_since = std::chrono::steady_clock::now();
  while (!rd.done()) {
    auto batch = rd.read(1000, 200ms);
    if (!batch.empty()) idle_since = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() - idle_since > 60s) {
      throw std::runtime_error(what + ": no progress for 60 s reading " + topic +
                               " (broker down, no authorization?); nothing copied");
    }
    for (auto& m : batch) each(m);
  }
  // Records deleted (retention) while they were read: what they said is unknown, so nothing is
  // decided from the rest (replay --status would take an older result for the latest).
  if (!rd.gaps().empty()) {
    throw std::runtime_error(what + ": " + topic + " " + rd.gaps().front() +
                             ": the read is incomplete; nothing copied");
  }
}

// Where a DLQ record's request was read from: its first record (sendq-origin-*, for one that
// waited on sendq.retry), else sendq-source-*; an empty source when the headers do not say.
detail::record_source source_of(const kafka::message& m) {
  const auto number = [&m](std::string_view name) -> std::int64_t {
    const auto v = m.header(name);
    std::int64_t n = -1;
    const char* end = v ? v->data() + v->size() : nullptr;
    if (!v || std::from_chars(v->data(), end, n).ptr != end || n < 0) return -1;
    return n;
  };
  for (const std::string_view prefix : {"sendq-origin-", "sendq-source-"}) {
    const std::string p(prefix);
    if (const auto topic = m.header(p + "topic")) {
      return {std::string(*topic), static_cast<std::int32_t>(number(p + "partition")), number(p + "offset")};
    }
  }
  return {};
}

// Reads every range, hands each message to `keep`, produces the kept ones under the key `key_of`
// gives (the ordering key: the destination's partitioning keeps each key's order). `prepare` gets
// the ranges first, as they were resolved (an open end is the end when the copy began), to read
// what the filters need. Returns the exit code: 1 when a record was refused, not acknowledged, or
// not read at all (a stall, or records deleted by retention before they were read: reader::gaps).
template <class Keep, class KeyOf, class Prepare>
int copy(const common& c, const std::string& from, const range_options& o, const std::string& verb, Keep keep,
         KeyOf key_of, Prepare prepare) {
  log::logger logger(log::level::warn, false);
  logger.add_secrets(c.secrets);
  kafka::reader rd({c.brokers, c.librdkafka}, logger);
  std::vector<std::string> deleted;
  const auto ranges = resolve(rd, from, o, &deleted);
  prepare(ranges);
  std::uint64_t total = 0;
  for (const auto& r : ranges) total += static_cast<std::uint64_t>(r.end - r.begin);
  std::optional<detail::sink> out;
  if (!o.dry_run) out.emplace(kafka::producer_options{c.brokers, producer_settings(c)}, c.rate, logger);
  progress bar(verb, total, c.progress);
  std::uint64_t read = 0, matched = 0, refused = 0;
  std::string first_refusal;
  std::map<std::string, std::uint64_t> skipped;
  // Per partition, the first offset not yet handled: where a stopped copy goes on from.
  std::map<std::int32_t, std::int64_t> next_offset;
  for (const auto& r : ranges) next_offset[r.partition] = r.begin;
  rd.assign(from, ranges);
  // The DLQ is keyed by id, so one key's records are spread over its partitions: merged by their
  // timestamps (when the worker wrote them), they go back in the order the worker ended them.
  std::optional<detail::timestamp_merge<kafka::message>> merge;
  std::vector<std::int32_t> merged;  // the partitions with records to read
  std::int64_t last_copied_ms = -1;  // the timestamp of the last record handled, for a resume
  if (o.in_time_order) {
    for (const auto& r : ranges) {
      if (r.begin < r.end) merged.push_back(r.partition);
    }
    merge.emplace(merged, max_merge_bytes);
  }
  auto idle_since = std::chrono::steady_clock::now();
  bool stopped_early = false;
  bool cut_by_signal = false;  // stopped early by a signal (not by a stall)
  stop_on_signals();
  while (!rd.done()) {
    if (interrupted()) {
      stopped_early = cut_by_signal = true;  // (records the merge holds were not copied: the offsets below say so)
      break;
    }
    auto batch = rd.read(500, 200ms);
    if (!batch.empty()) idle_since = std::chrono::steady_clock::now();
    if (merge) {
      for (auto& m : batch) {
        auto source = source_of(m);  // (before the message is moved)
        merge->add(std::move(m), std::move(source));
      }
      batch.clear();
      for (const auto p : merged) {
        if (!rd.reading(p)) merge->done(p);  // at its end, or ended short of it (retention)
      }
      while (auto m = merge->next()) batch.push_back(std::move(*m));
    }
    if (batch.empty()) {
      if (std::chrono::steady_clock::now() - idle_since > 60s) {
        std::cerr << verb << ": no progress for 60 s reading " << from << " (broker down, no authorization?); "
                  << "stopping early\n";
        stopped_early = true;
        break;
      }
      continue;
    }
    for (auto& m : batch) {
      ++read;
      std::string why;
      if (!in_time_window(o, m)) {
        ++skipped["outside the time window"];
      } else if (keep(m, why)) {
        ++matched;
        if (out) {
          const std::string origin = std::string(m.topic()) + "/" + std::to_string(m.partition()) + "/" + std::to_string(m.offset());
          // Refused outright (e.g. over message.max.bytes): counted, and the exit status says so.
          if (auto err = out->produce(o.topic, key_of(m), m.payload(), {{"sendq-" + verb + "-from", origin}});
              err == detail::interrupted_error || err == detail::stalled_error) {
            --matched;  // not produced: the summary below says the copy stopped, and goes on from it
            stopped_early = true;  // (the reader may have fetched the whole range: rd.done())
            if (err == detail::interrupted_error) {
              cut_by_signal = true;
            } else {
              std::cerr << verb << ": " << err << "; stopping early\n";
            }
            break;
          } else if (!err.empty()) {
            if (refused++ == 0) first_refusal = origin + ": " + err;
          }
        }
      } else {
        ++skipped[why];
      }
      next_offset[m.partition()] = m.offset() + 1;
      last_copied_ms = m.timestamp_ms();
      bar.tick();
    }
    if (stopped_early) break;  // a stalled producer: the rest of the range is not read either
  }
  const bool ok = !out || out->finish(60s);
  bar.finish();
  std::cerr << verb << ": read " << read << " records of " << from << ", " << matched << " matched";
  for (const auto& [why, n] : skipped) std::cerr << ", " << n << " skipped (" << why << ")";
  if (o.dry_run) {
    std::cerr << "; --dry-run: nothing produced (would produce " << matched << " to " << o.topic << ")\n";
  } else {
    std::cerr << "; produced " << out->acked() << " to " << o.topic << "\n";
  }
  std::cout << (o.dry_run ? "would " : "") << verb << " " << matched << "\n";
  if (refused) std::cerr << "Kafka refused " << refused << " records (first: " << first_refusal << ")\n";
  if (merge && merge->overflowed()) {
    std::cerr << verb << ": over " << (max_merge_bytes >> 20) << " MiB of " << from << " waited for a partition behind "
              << "the others, and went on without it: from there, a key's order was not always kept\n";
  }
  if (!ok) std::cerr << "Kafka did not acknowledge " << out->failed() << " records (" << out->first_error() << ")\n";
  if (stopped_early) {
    std::int64_t left = 0;  // by offsets: a record read but not produced (the signal came as it waited) counts
    for (const auto& r : ranges) left += std::max<std::int64_t>(0, r.end - next_offset[r.partition]);
    std::cerr << verb << ": " << (interrupted() ? "interrupted: " : "") << left
              << " records of the range were not copied: the copy is incomplete; run it again from where it stopped\n";
    // Where each partition goes on from: known only when Kafka acknowledged every record produced
    // (an unacknowledged one lies before the offset reached), and of no use after a dry run.
    if (!ok) {
      std::cerr << verb << ": Kafka did not acknowledge every record produced, so where the copy stopped is not known: "
                << "run it again over the whole range (what was written is then written again: a worker skips an id "
                << "that ended within its dedupe_window_ms; for older ones, replay's --status can leave out the ones "
                << "delivered)\n";
    } else if (!o.dry_run) {
      for (const auto& r : ranges) {
        if (const auto at = next_offset[r.partition]; at < r.end) {
          std::cerr << verb << ": partition " << r.partition << ": not copied from offset " << at
                    << " (the range ends before " << r.end << "); resume with --partition " << r.partition
                    << " --start-offset " << at << " --end-offset " << r.end << " and the same filters\n";
        }
      }
      // Partition by partition, the rest would go back one partition after another: each key's
      // order is kept by one run over all of them, from where the time order stopped.
      if (merge && last_copied_ms >= 0 && !merge->overflowed()) {
        // A second back from the earliest record not copied: two writers' records can reach one
        // partition a millisecond or so out of time order.
        const auto held = merge->earliest_held_ms();
        const std::int64_t since = std::min(last_copied_ms, held.value_or(last_copied_ms)) - 1000;
        std::cerr << verb << ": to keep each key's order, resume instead over every partition with --since " << since
                  << " and the same filters (the records of the second after it already copied are copied again; "
                  << "a worker skips an id that ended within its dedupe_window_ms)\n";
      }
    }
  }
  for (const auto& gap : deleted) std::cerr << verb << ": " << from << " " << gap << ": the copy is incomplete\n";
  for (const auto& gap : rd.gaps()) std::cerr << verb << ": " << from << " " << gap << ": the copy is incomplete\n";
  // A signal that came once the range was read (while the producer flushed, which it lets finish)
  // cut nothing short.
  if (cut_by_signal) return exit_interrupted;
  return refused || !ok || stopped_early || !rd.gaps().empty() || !deleted.empty() ? 1 : 0;
}

}  // namespace

int run_replay(int argc, char** argv, int first) {
  common c;
  if (const char* b = std::getenv("SENDQ_KAFKA_BROKERS")) c.brokers = b;
  c.progress = isatty(STDERR_FILENO);
  range_options o;
  std::string from, results_topic;  // "" = the defaults of common (after --config)
  std::vector<std::string> providers, accounts, statuses;
  args in(argc, argv, first);
  while (!in.done()) {
    const auto a = in.next();
    if (a == "-h" || a == "--help") {
      std::cout << replay_usage << range_help;
      return 0;
    }
    if (take_common(in, a, c) || take_range(in, a, o)) continue;
    if (a == "--from-topic") from = topic_value(in, a);
    else if (a == "--results-topic") results_topic = topic_value(in, a);
    else if (a == "--provider") providers.push_back(in.value(a));
    else if (a == "--account") accounts.push_back(in.value(a));
    else if (a == "--status") statuses.push_back(status_value(in, a));
    else throw usage_error("unknown option '" + a + "'");
  }
  check_range(o);
  if (from.empty()) from = c.requests_topic;
  if (results_topic.empty()) results_topic = c.results_topic;
  if (o.topic.empty()) o.topic = c.bulk_topic;
  require_brokers(c);

  core::request_decoder decoder(any_accepted_size);
  core::send_request req;
  const auto keep_request = [&](const kafka::message& m, std::string& why) {
    if (decoder.decode(m.payload(), req)) {
      why = "not a valid SendRequest";
      return false;
    }
    if (!allowed(providers, req.provider)) return why = "provider", false;
    if (!allowed(accounts, req.account)) return why = "account", false;
    return true;
  };
  // With --status: the latest result of each id of the range decides. Only the range's ids are
  // held (their status is "" until a result is read), so memory grows with the range, not with
  // the results topic.
  std::unordered_map<std::string, std::string> status_of;
  const auto read_statuses = [&](const std::vector<kafka::partition_range>& ranges) {
    if (statuses.empty()) return;
    std::string why;
    read_all(c, from, &ranges, "replay --status", [&](const kafka::message& m) {
      if (in_time_window(o, m) && keep_request(m, why)) status_of.try_emplace(req.id);
    });
    if (status_of.empty()) return;  // nothing in the range to look up
    read_all(c, results_topic, nullptr, "replay --status", [&](const kafka::message& m) {
      if (auto r = parse_result(m.payload())) {
        if (auto it = status_of.find(r->id); it != status_of.end()) it->second = std::move(r->status);
      }
    });
  };
  return copy(c, from, o, "replay", [&](const kafka::message& m, std::string& why) {
    if (!keep_request(m, why)) return false;
    if (!statuses.empty()) {
      auto it = status_of.find(req.id);
      if (it == status_of.end() || it->second.empty()) return why = "no result", false;
      if (!allowed(statuses, it->second)) return why = "status", false;
    }
    return true;
  }, [&](const kafka::message&) {
    // The ordering key of the request keep() has just decoded (copy() asks right after it): the
    // source may be keyed otherwise (the DLQ by id, records produced without a key).
    return req.key;
  }, read_statuses);
}

int run_redrive(int argc, char** argv, int first) {
  common c;
  if (const char* b = std::getenv("SENDQ_KAFKA_BROKERS")) c.brokers = b;
  c.progress = isatty(STDERR_FILENO);
  range_options o;
  std::string from;  // "" = common::dlq_topic (after --config)
  std::vector<std::string> kinds;
  args in(argc, argv, first);
  while (!in.done()) {
    const auto a = in.next();
    if (a == "-h" || a == "--help") {
      std::cout << redrive_usage << range_help;
      return 0;
    }
    if (take_common(in, a, c) || take_range(in, a, o)) continue;
    if (a == "--dlq-topic") from = topic_value(in, a);
    else if (a == "--kind") kinds.push_back(kind_value(in, a));
    else throw usage_error("unknown option '" + a + "'");
  }
  check_range(o);
  if (from.empty()) from = c.dlq_topic;
  if (o.topic.empty()) o.topic = c.bulk_topic;
  require_brokers(c);
  o.in_time_order = true;
  core::request_decoder decoder(any_accepted_size);
  core::send_request req;
  return copy(c, from, o, "redrive", [&](const kafka::message& m, std::string& why) {
    // The DLQ record of a request too large to copy has a null value and this header
    // (delivery/dead_letter.hpp): there are no bytes to send again.
    if (m.header("sendq-value-omitted")) return why = "original bytes not kept", false;
    const auto kind = m.header("sendq-error-kind");
    if (!allowed(kinds, kind.value_or(""))) return why = "kind", false;
    return true;
  }, [&](const kafka::message& m) {
    // A DLQ record is keyed by the request's id (CONTRACT.md); sendq.bulk, like sendq.requests, by
    // the ordering key, which the request itself gives (by default provider:to). Undecodable ones
    // keep their key: the worker rejects them again wherever they land.
    if (decoder.decode(m.payload(), req)) return std::string(m.key());
    return req.key;
  }, [](const std::vector<kafka::partition_range>&) {});
}

}  // namespace sendq::ctl
