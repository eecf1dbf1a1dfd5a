#pragma once
/// Circuit breaker of one provider endpoint or account: stops sending to a provider that keeps
/// failing, then lets a few probe calls find out whether it has recovered.
///
///            failures / outcomes >= failure_ratio, with >= min_calls outcomes
///            among the last window_calls, none older than window_time
///   +--------+ ------------------------------------------------> +------+
///   | closed |                                                   | open | <-------------+
///   +--------+                                                   +------+               |
///       ^                                                           |                   |
///       | successes_to_close                     first try_acquire()|       a probe fails:
///       | probe successes                        at/after open_until|       open again for
///       |                                                           v       open_for * backoff^n
///       |                                                    +-----------+  (n = re-opens since
///       +--------------------------------------------------- | half_open |   closed, capped at
///                                                            +-----------+   max_open_for)
///                                                                   |                   |
///                                                                   +-------------------+
///   While open, try_acquire() refuses at once and says until when. While half_open, at most
///   half_open_probes calls (probes) are out at once; the rest are refused.
///
/// The breaker only counts what it is told: the caller decides which outcomes are failures
/// (retryable or ambiguous transport errors, 5xx, timeouts) and reports nothing for the rest.
/// Pure: no I/O and no clock reads; time arrives as `now` (steady_clock).
///
/// Thread-safety: every member may be called from any thread; a std::mutex guards the state and
/// is held only for the bookkeeping of one call. The state and its epoch are also published in
/// one atomic word, so that state() and try_acquire() while closed (every call of a healthy
/// endpoint, from every I/O thread) take no lock.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

namespace sendq::policy {

enum class breaker_state { closed, open, half_open };

/// "closed", "open" or "half_open".
std::string_view to_string(breaker_state s) noexcept;

struct circuit_breaker_config {
  std::size_t window_calls = 20;                    ///< outcomes considered: the last N ...
  std::chrono::milliseconds window_time{10'000};    ///< ... no older than this (0: no age limit)
  double failure_ratio = 0.5;                       ///< opens when failures / outcomes >= this, in (0, 1]
  std::size_t min_calls = 10;                       ///< ... and there are at least this many outcomes
  std::chrono::milliseconds open_for{5'000};        ///< first open period
  double backoff = 2.0;                             ///< open period multiplier per re-open (>= 1)
  std::chrono::milliseconds max_open_for{60'000};   ///< cap on the open period
  std::size_t half_open_probes = 1;                 ///< probe calls allowed at once when half-open
  std::size_t successes_to_close = 1;               ///< probe successes that close the breaker
  std::chrono::milliseconds probe_timeout{30'000};  ///< a probe not reported by then is presumed lost
};

/// The answer of try_acquire().
struct permit {
  using time_point = std::chrono::steady_clock::time_point;
  bool allowed = false;                   ///< the call may go
  bool probe = false;                     ///< the call is a half-open probe: report its outcome
  std::optional<time_point> open_until;   ///< refused because open: until when (none when
                                          ///< refused because every probe slot is taken)
  std::uint64_t epoch = 0;                ///< state epoch the permit belongs to (for record_*)
  explicit operator bool() const noexcept { return allowed; }
};

class circuit_breaker {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  /// Throws std::invalid_argument naming the problem when `config` is inconsistent.
  explicit circuit_breaker(circuit_breaker_config config = {});

  /// Whether a call may go now. Moves open -> half_open once open_until has passed; in
  /// half_open an allowed call takes a probe slot and its outcome must be reported.
  permit try_acquire(time_point now);
  /// try_acquire(now).allowed.
  bool allow(time_point now) { return try_acquire(now).allowed; }

  /// Reports an outcome. Ignored while open. In half_open it is taken as a probe's outcome.
  void record_success(time_point now);
  void record_failure(time_point now);
  /// Same, for the call admitted by `p`; ignored when the breaker changed state since (so a
  /// slow call admitted while closed is not mistaken for a probe).
  void record_success(time_point now, const permit& p);
  void record_failure(time_point now, const permit& p);
  /// The call admitted by `p` was not made (nothing reached the endpoint): no outcome. A probe's
  /// slot is freed for the next caller; otherwise nothing changes.
  void release(const permit& p);

  /// Current state. `open` is reported until a try_acquire() after open_until.
  breaker_state state() const;
  /// End of the current open period, when open.
  std::optional<time_point> open_until() const;
  const circuit_breaker_config& config() const noexcept { return config_; }

 private:
  struct outcome {
    time_point at;
    bool failed;
  };

  void record(time_point now, bool failed, std::optional<std::uint64_t> epoch);
  bool over_threshold(time_point now) const;
  void open(time_point now);
  void close();
  void publish() noexcept { published_.store(epoch_ << 2 | static_cast<std::uint64_t>(state_), std::memory_order_release); }

  const circuit_breaker_config config_;
  mutable std::mutex mutex_;
  breaker_state state_ = breaker_state::closed;
  std::uint64_t epoch_ = 1;
  std::vector<outcome> outcomes_;  // ring of the last window_calls outcomes (closed state)
  std::size_t next_ = 0;           // ring position of the next outcome
  std::size_t count_ = 0;          // outcomes in the ring
  time_point open_until_{};
  std::size_t opens_ = 0;  // openings since the breaker last closed
  std::size_t probes_in_flight_ = 0;
  std::size_t probe_successes_ = 0;
  time_point last_probe_at_{};
  std::atomic<std::uint64_t> published_{0};  // epoch_ << 2 | state_ (publish(), from the constructor on)
};

}  // namespace sendq::policy
