// sendqctl: operator tools around sendq's topics. This file only dispatches to libs/ctl.
#include <iostream>
#include <string>

#include "sendq/ctl/commands.hpp"
#include "sendq/ctl/common.hpp"

namespace {

constexpr const char* usage = R"(Usage: sendqctl COMMAND [options]   (sendqctl COMMAND --help for each)

Commands:
  enqueue   produce SendRequests from a JSONL file or stdin, validated first, with a rejects summary
  replay    copy a range of a topic (offsets or time window) into sendq.bulk, with filters
  redrive   move DLQ records back (all, or by error kind) into sendq.bulk
  tail      follow sendq.results with filters (table on a terminal, JSON lines in a pipe)
  stats     counts of results by provider and status over a time window

Every command takes --brokers (default $SENDQ_KAFKA_BROKERS); producing ones take --rate N/s or N/m.
A TLS or SASL cluster: --config FILE reads the worker's [kafka] section (brokers and the
[kafka.librdkafka] settings, secrets from _env/_file) and worker.max_request_bytes (default 1 MiB:
records up to it are produced, enqueue rejects longer lines as too_large); -X KEY=VALUE sets one
librdkafka setting.
A progress bar with rate and ETA is drawn on stderr when it is a terminal.
--version prints the version. Exit status: 0 done, 1 Kafka refused or did not acknowledge
something (or a read failed, or records of the range were deleted by retention before they were
read: named by partition and offset), 2 a usage error, 3 enqueue rejected some lines, 130 enqueue, replay
or redrive interrupted (SIGINT/SIGTERM: what was read is flushed and summarized first, with the
offset each partition's copy goes on from; a second signal ends it at once; one that comes after the whole input
or range was read, while Kafka acknowledges it, cuts nothing short and changes no status). tail stops on
SIGINT/SIGTERM with 0.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace sendq::ctl;
  if (argc < 2) {
    std::cerr << usage;
    return 2;
  }
  if (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::cout << usage;
    return 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::cout << "sendqctl " << SENDQ_VERSION << " (" << SENDQ_GIT_COMMIT << ")\n";
    return 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "enqueue") return run_enqueue(argc, argv, 2);
    if (cmd == "replay") return run_replay(argc, argv, 2);
    if (cmd == "redrive") return run_redrive(argc, argv, 2);
    if (cmd == "tail") return run_tail(argc, argv, 2);
    if (cmd == "stats") return run_stats(argc, argv, 2);
    std::cerr << "sendqctl: unknown command '" << cmd << "' (see --help)\n";
    return 2;
  } catch (const usage_error& e) {
    std::cerr << "sendqctl " << cmd << ": " << e.what() << " (see sendqctl " << cmd << " --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sendqctl " << cmd << ": " << e.what() << "\n";
    return 1;
  }
}
