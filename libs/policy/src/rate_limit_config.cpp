#include "sendq/policy/rate_limit_config.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace sendq::policy {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Reads the leading decimal digits of `s` into `out`; returns how many characters were used
// (0 when there are none or the value does not fit).
std::size_t read_number(std::string_view s, std::uint64_t& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{}) return 0;
  return static_cast<std::size_t>(ptr - s.data());
}

template <class T>
parse_result<T> fail(std::string message) {
  return {std::nullopt, std::move(message)};
}

// `count` in `unit` as milliseconds, or nothing for an unknown unit or an overflow.
std::optional<std::chrono::milliseconds> to_ms(std::uint64_t count, std::string_view unit) {
  std::uint64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1'000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    return std::nullopt;
  }
  // Cap far below the overflow of steady_clock nanoseconds (~292 years).
  constexpr std::uint64_t max_ms = std::uint64_t{1} << 40;  // ~34 years
  if (count > max_ms / scale) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(count * scale));
}

parse_result<std::chrono::milliseconds> parse_duration_impl(std::string_view text, bool number_optional) {
  auto s = trim(text);
  if (s.empty()) return fail<std::chrono::milliseconds>("empty duration (expected e.g. \"1s\")");
  std::uint64_t count = 1;
  auto used = read_number(s, count);
  if (used == 0) {
    if (!number_optional || (s.front() >= '0' && s.front() <= '9')) {
      return fail<std::chrono::milliseconds>("duration " + quoted(s) + ": expected a positive integer and a unit, e.g. \"1s\"");
    }
    count = 1;
  }
  auto unit = s.substr(used);
  if (count == 0) return fail<std::chrono::milliseconds>("duration " + quoted(s) + ": must be > 0");
  if (unit.empty()) return fail<std::chrono::milliseconds>("duration " + quoted(s) + ": missing unit (use ms, s, m or h)");
  if (unit != "ms" && unit != "s" && unit != "m" && unit != "h") {
    return fail<std::chrono::milliseconds>("duration " + quoted(s) + ": unknown unit " + quoted(unit) + " (use ms, s, m or h)");
  }
  auto ms = to_ms(count, unit);
  if (!ms) return fail<std::chrono::milliseconds>("duration " + quoted(s) + ": too long");
  return {*ms, {}};
}

}  // namespace

parse_result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  return parse_duration_impl(text, false);
}

parse_result<window> parse_window(std::string_view text) {
  auto s = trim(text);
  if (s.empty()) return fail<window>("empty rate (expected e.g. \"100/1s\")");
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return fail<window>("rate " + quoted(s) + ": missing \"/\" (expected e.g. \"100/1s\")");
  auto limit_text = trim(s.substr(0, slash));
  std::uint64_t limit = 0;
  auto used = read_number(limit_text, limit);
  if (used == 0 || used != limit_text.size() || limit == 0 || limit > std::numeric_limits<std::uint32_t>::max()) {
    return fail<window>("rate " + quoted(s) + ": limit " + quoted(limit_text) + " is not a positive integer below 2^32");
  }
  auto per = parse_duration_impl(s.substr(slash + 1), true);
  if (!per) return fail<window>("rate " + quoted(s) + ": " + per.error);
  return {window{static_cast<std::uint32_t>(limit), *per.value}, {}};
}

parse_result<std::vector<window>> parse_windows(std::string_view text) {
  std::vector<window> out;
  if (trim(text).empty()) return fail<std::vector<window>>("empty rate list (expected e.g. \"100/1s, 6000/1m\")");
  while (true) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    auto w = parse_window(item);
    if (!w) return fail<std::vector<window>>(std::move(w.error));
    out.push_back(*w.value);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return {std::move(out), {}};
}

std::string validate(const rate_limit_config& config) {
  std::string problems;
  auto add = [&](const std::string& p) {
    if (!problems.empty()) problems += "; ";
    problems += p;
  };
  auto check = [&](const window& w, const std::string& name) {
    if (w.limit == 0) add(name + ": limit must be > 0");
    if (w.per.count() <= 0) add(name + ": per must be > 0");
  };
  for (std::size_t i = 0; i < config.windows.size(); ++i) check(config.windows[i], "windows[" + std::to_string(i) + "]");
  if (config.per_recipient) check(*config.per_recipient, "per_recipient");
  if (config.pacing) {
    if (config.pacing->min_gap.count() < 0) add("pacing: min_gap must be >= 0");
    if (config.pacing->max_gap < config.pacing->min_gap) add("pacing: max_gap must be >= min_gap");
  }
  if (config.per_recipient && config.max_recipients == 0) add("max_recipients must be > 0");
  const auto& s = config.slowdown;
  if (!(s.decrease > 0.0 && s.decrease < 1.0)) add("slowdown.decrease must be in (0, 1)");
  if (!(s.min_factor > 0.0 && s.min_factor <= 1.0)) add("slowdown.min_factor must be in (0, 1]");
  if (!(s.increase > 0.0 && s.increase <= 1.0)) add("slowdown.increase must be in (0, 1]");
  if (s.cool_down.count() < 0 || s.step_every.count() < 0 || s.min_cut_gap.count() < 0) {
    add("slowdown durations must be >= 0");
  }
  return problems;
}

rate_limit_config share_of(rate_limit_config config, std::size_t owned, std::size_t total) {
  owned = std::max<std::size_t>(owned, 1);
  if (total == 0 || owned >= total) return config;
  for (auto& w : config.windows) {
    const std::uint64_t share = std::uint64_t{w.limit} * owned / total;
    if (share >= 1) {
      w.limit = static_cast<std::uint32_t>(share);
    } else {
      // One request per period × total / (limit × owned), rounded up.
      const auto scaled = static_cast<std::uint64_t>(w.per.count()) * total;
      const auto parts = std::uint64_t{w.limit} * owned;
      // At most the longest period a limit may be written with (~34 years), far from the overflow
      // of nanoseconds that the limiter computes in.
      w.per = std::chrono::milliseconds(std::min<std::uint64_t>((scaled + parts - 1) / parts, std::uint64_t{1} << 40));
      w.limit = 1;
    }
  }
  if (config.pacing) {
    const auto grow = [&](std::chrono::milliseconds gap) {
      return std::chrono::milliseconds(static_cast<std::int64_t>(std::min<std::uint64_t>(
          (static_cast<std::uint64_t>(gap.count()) * total + owned - 1) / owned, std::uint64_t{1} << 40)));
    };
    config.pacing->min_gap = grow(config.pacing->min_gap);
    config.pacing->max_gap = grow(config.pacing->max_gap);
  }
  return config;
}

}  // namespace sendq::policy
