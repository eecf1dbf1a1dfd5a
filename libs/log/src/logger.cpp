#include "sendq/log/logger.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "sendq/core/json_writer.hpp"

namespace sendq::log {
namespace {

std::string_view name_of(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

std::string timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

std::optional<level> parse_level(std::string_view s) {
  if (s == "debug") return level::debug;
  if (s == "info") return level::info;
  if (s == "warn") return level::warn;
  if (s == "error") return level::error;
  return std::nullopt;
}

logger::logger(level min, bool json, std::FILE* out) : min_(min), json_(json), out_(out) {}

void logger::add_secrets(const std::vector<std::string>& secrets) {
  std::lock_guard lock(mutex_);
  for (const auto& s : secrets) {
    // Shorter strings would redact ordinary text; a reload adds the same secrets again.
    if (s.size() >= 4 && std::find(secrets_.begin(), secrets_.end(), s) == secrets_.end()) secrets_.push_back(s);
  }
}

std::string logger::redact(std::string line) const {
  for (const auto& s : secrets_) {
    for (auto pos = line.find(s); pos != std::string::npos; pos = line.find(s, pos)) {
      line.replace(pos, s.size(), "[redacted]");
    }
  }
  return line;
}

void logger::write(level l, std::string_view component, std::string_view message,
                   std::initializer_list<field> fields) {
  std::string line;
  line.reserve(128);
  if (json_) {
    core::json_writer w(line);
    w.begin_object();
    w.field("ts", timestamp());
    w.field("level", name_of(l));
    w.field("component", component);
    w.field("msg", message);
    for (const auto& [k, v] : fields) w.field(k, v);
    w.end_object();
  } else {
    line += timestamp();
    line += ' ';
    line += name_of(l);
    line += ' ';
    line += component;
    line += ": ";
    line += message;
    for (const auto& [k, v] : fields) {
      line += ' ';
      line += k;
      line += '=';
      line += v;
    }
  }
  line += '\n';
  std::lock_guard lock(mutex_);
  line = redact(std::move(line));
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace sendq::log
