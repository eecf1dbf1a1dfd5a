#include "sendq/config/command_line.hpp"

#include <pthread.h>
#include <unistd.h>

#include <csignal>

#include <cstdlib>
#include <iostream>

namespace sendq::config {

std::variant<command_line, int> parse_command_line(int argc, char** argv, std::string_view program,
                                                   std::string_view usage, std::string_view version) {
  command_line cl;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    }
    if (a == "--version") {
      std::cout << program << " " << version << "\n";
      return 0;
    }
    if ((a == "--config" || a == "--log-level") && i + 1 < argc) {
      (a == "--config" ? cl.config_path : cl.log_level.emplace()) = argv[++i];
      if (a == "--config" && cl.config_path.empty()) {
        std::cerr << program << ": --config: empty path (leave --config out to run on the built-in defaults)\n";
        return 2;
      }
      continue;
    }
    std::cerr << program << ": unknown or incomplete option '" << a << "' (see --help)\n";
    return 2;
  }
  if (cl.config_path.empty()) {
    if (const char* p = std::getenv("SENDQ_CONFIG")) {
      // Set but empty is a mistake (an unset variable in a compose file, say), not a wish for the
      // built-in defaults: a worker on those has no accounts and would reject every request.
      if (!*p) {
        std::cerr << program << ": SENDQ_CONFIG is set but empty (unset it to run on the built-in defaults)\n";
        return 2;
      }
      cl.config_path = p;
    }
  }
  return cl;
}

config load(const command_line& cl, const env_lookup& env, sections which) {
  auto c = load(cl.config_path, env, which);
  if (cl.log_level) {
    const auto& l = *cl.log_level;
    if (l != "debug" && l != "info" && l != "warn" && l != "error") {
      throw config_error("--log-level: '" + l + "' is not one of debug, info, warn, error");
    }
    c.log.level = l;
  }
  return c;
}

bool json_logs(const config& c) { return c.log.format == "json" || (c.log.format == "auto" && !isatty(STDERR_FILENO)); }

namespace {
void mask_stop_signals(int how) {
  sigset_t set;
  sigemptyset(&set);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  pthread_sigmask(how, &set, nullptr);
}
}  // namespace

void hold_stop_signals() { mask_stop_signals(SIG_BLOCK); }
void take_stop_signals() { mask_stop_signals(SIG_UNBLOCK); }

}  // namespace sendq::config
