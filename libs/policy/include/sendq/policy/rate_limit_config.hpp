#pragma once
/// Configuration of one provider account's rate limiter, and the parser for the compact window
/// form used in the TOML file ("100/1s, 6000/1m").
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sendq::policy {

/// At most `limit` requests in any interval of length `per`.
struct window {
  std::uint32_t limit = 0;            ///< requests allowed per `per`; must be > 0
  std::chrono::milliseconds per{0};   ///< window length; must be > 0
  friend bool operator==(const window&, const window&) = default;
};

/// A random gap between consecutive sends of the account, uniform in [min_gap, max_gap]
/// (for accounts that must look like a person typing rather than a program).
struct pacing {
  std::chrono::milliseconds min_gap{0};  ///< shortest gap; >= 0
  std::chrono::milliseconds max_gap{0};  ///< longest gap; >= min_gap
  friend bool operator==(const pacing&, const pacing&) = default;
};

/// AIMD reaction to throttle replies that carry no Retry-After (rate_limiter::adaptive_slowdown).
struct slowdown_config {
  double decrease = 0.5;                          ///< rate multiplier per throttle reply, in (0, 1)
  double min_factor = 1.0 / 64;                   ///< the rate never drops below this fraction
  std::chrono::milliseconds cool_down{30'000};    ///< reduced rate holds this long after the last cut
  double increase = 0.1;                          ///< fraction of the full rate won back per step
  std::chrono::milliseconds step_every{1'000};    ///< at most one recovery step per period (on success)
  std::chrono::milliseconds min_cut_gap{1'000};   ///< cuts closer together count once (same burst)
  friend bool operator==(const slowdown_config&, const slowdown_config&) = default;
};

/// Limits of one provider account. Empty `windows` and no pacing: the account is not paced
/// (a per-recipient limit and penalties still apply).
struct rate_limit_config {
  std::vector<window> windows;                  ///< all must have room for a request to go
  std::optional<window> per_recipient;          ///< limit per recipient (`to`), if any
  std::optional<policy::pacing> pacing;         ///< human-like random gaps, if any
  std::size_t max_recipients = 100'000;         ///< cap on recipients remembered (memory bound)
  slowdown_config slowdown;                     ///< reaction to throttle replies
  friend bool operator==(const rate_limit_config&, const rate_limit_config&) = default;
};

/// A parsed value, or a message naming what is wrong with the input.
template <class T>
struct parse_result {
  std::optional<T> value;  ///< set on success
  std::string error;       ///< set on failure, e.g. `"100/1x": unknown unit "x" (use ms, s, m or h)`
  explicit operator bool() const noexcept { return value.has_value(); }
};

/// Parses a duration: a positive integer and a unit, `ms`, `s`, `m` or `h` ("1s", "250ms", "1m").
parse_result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Parses one window, `<limit>/<duration>`; the duration's number may be left out ("100/s").
parse_result<window> parse_window(std::string_view text);

/// Parses a comma-separated list of windows, e.g. "100/1s, 6000/1m"; spaces are ignored.
parse_result<std::vector<window>> parse_windows(std::string_view text);

/// Problems of a configuration (empty when valid), e.g. "windows[1]: limit must be > 0".
std::string validate(const rate_limit_config& config);

/// The part of an account's limits that one of several processes sharing them takes, when it
/// holds `owned` of `total` parts (a worker's partitions of the requests topic, of all the
/// group's): every window's limit times owned/total, rounded down, so that the processes' limits
/// add up to at most the account's; a window left with less than one request keeps one and
/// stretches its period to match the share (the rate then adds up, but two processes may each
/// send one in the same period). Pacing gaps grow by total/owned. A per-recipient limit is kept:
/// a recipient's requests share a key, so one process has them all. `owned` 0 counts as 1;
/// `owned` >= `total` (or `total` 0) leaves `config` as it is.
rate_limit_config share_of(rate_limit_config config, std::size_t owned, std::size_t total);

}  // namespace sendq::policy
