#pragma once
/// The start-up steps every sendq service shares: `--config FILE`, `--log-level LEVEL`,
/// `--help`, `--version`, `$SENDQ_CONFIG`, then loading the configuration.
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "sendq/config/config.hpp"

namespace sendq::config {

struct command_line {
  std::string config_path;                 ///< --config, else $SENDQ_CONFIG, else "" (defaults)
  std::optional<std::string> log_level;    ///< --log-level, overrides log.level
};

/// Parses argv. Returns the exit code when the program should stop here: 0 after printing
/// `usage` (--help) or "`program` `version`" (--version), 2 after an error naming the option.
std::variant<command_line, int> parse_command_line(int argc, char** argv, std::string_view program,
                                                   std::string_view usage, std::string_view version);

/// load(cl.config_path) with the --log-level override applied. Throws config_error.
config load(const command_line& cl, const env_lookup& env, sections which = sections::all);

/// Whether logs should be JSON lines: log.format json, or auto when stderr is not a terminal.
bool json_logs(const config& c);

/// SIGINT, SIGTERM and SIGHUP go to the I/O threads, which run their handlers. hold_stop_signals()
/// blocks them in the calling thread: main's first step, so that every thread made after it
/// inherits the mask (a signal that comes during start-up waits, instead of SIGHUP's default
/// action ending the process); take_stop_signals() unblocks them: an I/O thread's first step.
/// Otherwise the kernel hands them to any thread: main, blocked in a futex wait (ThreadSanitizer
/// holds a signal back until its thread next enters an intercepted call: a SIGHUP went unhandled),
/// or librdkafka's mock cluster thread, whose poll then fails with EINTR and stops the embedded Kafka.
void hold_stop_signals();
void take_stop_signals();

}  // namespace sendq::config
