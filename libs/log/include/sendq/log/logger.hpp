#pragma once
/// Structured logging: one JSON line per event (or a readable line on a terminal), with level,
/// component and fields. Every configured secret is redacted from every line. Thread-safe.
#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sendq::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };
std::optional<level> parse_level(std::string_view s);

using field = std::pair<std::string_view, std::string_view>;

class logger {
 public:
  /// `json` false writes "time LEVEL component: message key=value ..." lines.
  logger(level min, bool json, std::FILE* out = stderr);

  /// Strings that must never appear in a log line (tokens, signs); replaced by "[redacted]".
  void add_secrets(const std::vector<std::string>& secrets);
  void set_level(level min) { min_ = min; }
  bool enabled(level l) const { return l >= min_; }

  void write(level l, std::string_view component, std::string_view message,
             std::initializer_list<field> fields = {});
  void debug(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) { if (enabled(level::debug)) write(level::debug, c, m, f); }
  void info(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) { if (enabled(level::info)) write(level::info, c, m, f); }
  void warn(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) { if (enabled(level::warn)) write(level::warn, c, m, f); }
  void error(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) { if (enabled(level::error)) write(level::error, c, m, f); }

 private:
  std::string redact(std::string line) const;
  level min_;
  bool json_;
  std::FILE* out_;
  std::vector<std::string> secrets_;
  std::mutex mutex_;
};

}  // namespace sendq::log
