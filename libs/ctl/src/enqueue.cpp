// sendqctl enqueue: SendRequests from JSONL (a file or stdin), validated with the worker's decoder
// before producing; a summary of what was rejected and why.
#include <unistd.h>

#include <cstdio>
#include <ext/stdio_sync_filebuf.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>

#include "sendq/core/request_decoder.hpp"
#include "sendq/ctl/commands.hpp"
#include "sink.hpp"

namespace sendq::ctl {
namespace {

constexpr const char* usage = R"(Usage: sendqctl enqueue [FILE|-] [options]

Produces SendRequests, one JSON object per line (JSONL), from FILE or stdin ("-" or no FILE).
Each line is validated with the worker's decoder first; invalid lines are not produced and are
summarized at the end (count per error kind, the first ones with their line number and message).

Options:
  --topic T          destination topic (default sendq.requests, or --config's kafka.requests_topic)
  --rate N/s|N/m     at most N records per second (or minute; a bare N is per second; default unlimited)
  --due-timestamps   with --rate, an open-loop load for latency tests: the k-th record is due at
                     start + k/N and its Kafka timestamp is that due time (the worker's created_at
                     for a request without one), so time this command lost on a busy machine
                     counts in the measured latency; records that fell behind go out at once
  --brokers B        bootstrap servers (default $SENDQ_KAFKA_BROKERS)
  --config FILE      Kafka settings from the worker's TOML file: kafka.brokers (under --brokers
                     and $SENDQ_KAFKA_BROKERS), [kafka.librdkafka] (TLS, SASL; _env/_file), the
                     kafka.*_topic names (the default topics; a topic flag wins);
                     worker.max_request_bytes (default 1 MiB): records up to it are produced, larger
                     lines are rejected (too_large)
  -X KEY=VALUE       one librdkafka setting (repeatable; wins over --config), e.g. -X debug=broker
  --show-rejects N   print the first N rejected lines (default 20)
  -h, --help

A line over the producer's message.max.bytes is rejected as too_large like an invalid one.

Exit status: 0 all produced and acknowledged; 3 some lines rejected (the rest produced);
1 Kafka refused or did not acknowledge some records; 2 usage error.
)";

}  // namespace

int run_enqueue(int argc, char** argv, int first) {
  common c;
  if (const char* b = std::getenv("SENDQ_KAFKA_BROKERS")) c.brokers = b;
  std::optional<std::string> file;
  std::string topic;  // "" = common::requests_topic (after --config)
  std::int64_t show = 20;
  bool due_timestamps = false;
  args in(argc, argv, first);
  while (!in.done()) {
    const auto a = in.next();
    if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    }
    if (take_common(in, a, c)) continue;
    if (a == "--topic") {
      topic = topic_value(in, a);
    } else if (a == "--due-timestamps") {
      due_timestamps = true;
    } else if (a == "--show-rejects") {
      show = in.integer(a, 0, 1000000);
    } else if (!a.starts_with("--") || a == "-") {
      // One input only: silently reading just the last of several would drop the others.
      if (file) throw usage_error("one FILE only (got '" + *file + "' and '" + a + "'); concatenate them or use -");
      file = a;
    } else {
      throw usage_error("unknown option '" + a + "'");
    }
  }
  if (topic.empty()) topic = c.requests_topic;
  require_brokers(c);
  if (due_timestamps && c.rate <= 0) throw usage_error("--due-timestamps: needs --rate (the times are due under it)");

  std::ifstream f;
  // A pipe or FIFO is read through stdio, as stdin is: a read waiting on it then ends at a signal
  // (std::ifstream's would go on waiting), so Ctrl-C stops the command there too.
  std::unique_ptr<FILE, int (*)(FILE*)> pipe_file(nullptr, &std::fclose);
  std::optional<__gnu_cxx::stdio_sync_filebuf<char>> pipe_buf;
  std::optional<std::istream> pipe_input;
  std::istream* input = &std::cin;
  FILE* input_stdio = stdin;  // what `input` reads through, when stdio (a pipe, a FIFO, stdin)
  std::uint64_t total = 0;
  if (file && *file != "-") {
    // A directory opens as a stream on Linux and then reads as empty: refuse it like a missing file.
    std::error_code ec;
    if (std::filesystem::is_directory(*file, ec)) throw usage_error("cannot read '" + *file + "': is a directory");
    if (std::filesystem::is_regular_file(*file, ec)) {
      f.open(*file);
      if (!f) throw usage_error("cannot read '" + *file + "'");
      // Count lines first so that the bar has an ETA, in a regular file only: a pipe or FIFO
      // (<(zcat ...), /dev/stdin) cannot be read twice, and its one pass is the requests.
      for (std::string line; std::getline(f, line);) total += line.empty() ? 0 : 1;
      f.clear();
      f.seekg(0);
      if (!f) throw std::runtime_error("cannot read '" + *file + "' again after counting its lines");
      input = &f;
      input_stdio = nullptr;
    } else {
      pipe_file.reset(std::fopen(file->c_str(), "r"));
      if (!pipe_file) throw usage_error("cannot read '" + *file + "'");
      pipe_buf.emplace(pipe_file.get());
      pipe_input.emplace(&*pipe_buf);
      input = &*pipe_input;
      input_stdio = pipe_file.get();
    }
  }

  log::logger logger(log::level::warn, false);
  logger.add_secrets(c.secrets);
  detail::sink out({c.brokers, producer_settings(c)}, c.rate, logger, due_timestamps);
  core::request_decoder decoder(c.max_request_bytes);  // the worker's limit: a larger line would only be rejected there
  core::send_request r;
  progress bar("enqueue", total, isatty(STDERR_FILENO));
  std::map<std::string, std::uint64_t> rejected_by_kind;
  std::vector<std::string> examples;
  std::uint64_t lineno = 0, rejected = 0, refused = 0;
  std::string first_refusal;
  stop_on_signals();
  bool not_produced = false;
  bool stalled = false;  // Kafka took nothing for 60 s: the lines from lineno + 1 on were not produced
  for (std::string line; !interrupted() && std::getline(*input, line);) {
    if (interrupted()) {  // a read cut short by the signal may have given half a line: not taken
      not_produced = true;
      break;
    }
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = [&] { return "line " + std::to_string(lineno) + (r.id.empty() ? "" : " (id " + r.id + ")"); };
    auto failure = decoder.decode(line, r);
    if (!failure) {
      auto err = out.produce(topic, r.key, line, {});
      if (err == detail::interrupted_error) {  // waiting for room in a full queue: not produced
        --lineno;
        not_produced = true;
        break;
      }
      if (err == detail::stalled_error) {
        --lineno;
        stalled = true;
        break;
      }
      // Over the producer's message.max.bytes: no retry can help, so it is a rejected line
      // (the decoder's own limit is larger). Any other refusal is Kafka's, counted apart.
      if (kafka::is_message_too_large(err)) {
        failure = core::failure{core::error_kind::too_large, "message: " + std::to_string(line.size()) +
                                                                 " bytes refused by the Kafka producer (" + err +
                                                                 "; its message.max.bytes)"};
      } else if (!err.empty()) {
        if (refused++ == 0) first_refusal = where() + ": not produced: " + err;
      }
    }
    if (failure) {
      ++rejected;
      ++rejected_by_kind[std::string(core::to_string(failure->kind))];
      if (examples.size() < static_cast<std::size_t>(show)) {
        examples.push_back(where() + ": " + std::string(core::to_string(failure->kind)) + ": " + failure->message);
      }
    }
    bar.tick();
  }
  const bool ok = out.finish(std::chrono::seconds(60));
  bar.finish();

  std::cerr << "enqueued " << out.acked() << " of " << (out.sent() + rejected + refused) << " requests to " << topic;
  if (rejected) {
    std::cerr << "; rejected " << rejected << " (";
    bool firstk = true;
    for (const auto& [k, n] : rejected_by_kind) {
      std::cerr << (firstk ? "" : ", ") << k << " " << n;
      firstk = false;
    }
    std::cerr << ")";
  }
  std::cerr << "\n";
  for (const auto& e : examples) std::cerr << "  rejected " << e << "\n";
  if (rejected > examples.size()) std::cerr << "  ... and " << (rejected - examples.size()) << " more\n";
  if (refused) std::cerr << "Kafka refused " << refused << " records (first: " << first_refusal << ")\n";
  if (!ok) {
    std::cerr << "Kafka did not acknowledge " << out.failed() << " records"
              << (out.first_error().empty() ? "" : " (" + out.first_error() + ")") << "\n";
  }
  // A signal that came after the end of the input (while the producer flushed, which it lets
  // finish) cut nothing short. A stdio read it cut short reads as an end to the stream, but
  // leaves stdio's error flag, not its end-of-file flag.
  const bool input_ended = input_stdio ? std::feof(input_stdio) != 0 : input->eof();
  if (not_produced || (interrupted() && !input_ended)) {
    std::cerr << "interrupted after line " << lineno << ": the lines after it were not read\n";
    return exit_interrupted;
  }
  if (stalled) {
    std::cerr << "enqueue: " << detail::stalled_error << "; stopped after line " << lineno
              << ": the lines after it were not produced\n";
    return 1;
  }
  if (refused || !ok) return 1;
  return rejected ? 3 : 0;
}

}  // namespace sendq::ctl
