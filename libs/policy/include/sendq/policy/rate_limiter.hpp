#pragma once
/// Rate limiter of one provider account, shared by every worker thread that sends for it.
///
/// It hands out send slots: `reserve(now, to)` returns when the caller may send and commits that
/// slot at once, so concurrent callers get successive slots instead of all waking together. The
/// caller waits (asynchronously) until the slot, then sends. Pure: no I/O, no timers, and it
/// never reads a clock; time arrives as `now` (steady_clock) on every call, so tests drive it
/// with plain time points.
///
/// How the limits combine:
///  - each window {limit, per} is a GCRA with emission interval per/limit (rounded up to a
///    nanosecond) and no burst tolerance: consecutive slots of the account are at least that far
///    apart. No interval of length `per` therefore ever holds more than `limit` slots (so a
///    provider counting in fixed or sliding windows is never exceeded), and the long-run rate is
///    exactly the tightest window's. An idle account does not bank a burst.
///  - pacing adds a random gap, uniform in [min_gap, max_gap], before each slot of a backlog.
///  - the per-recipient limit is a GCRA per recipient. A request held back only by its
///    recipient gets a later slot without delaying the account's other recipients: the account
///    keeps the out-of-order slots in a small sorted calendar and fills the gaps before them.
///  - penalize(now, until) moves every new slot to `until` or later; adaptive_slowdown() divides
///    the rate (AIMD), and on_success() wins it back step by step after a cool-down.
///
/// Thread-safety: every member may be called from any thread. One std::mutex guards the state
/// and is held only for the arithmetic of the call (no I/O, no callbacks, no waiting); the only
/// allocation under it is for a recipient not seen before (and growth of the calendar).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sendq/policy/rate_limit_config.hpp"

namespace sendq::policy {

/// A committed send slot.
struct reservation {
  std::chrono::steady_clock::time_point at;  ///< when the caller may send; `now` when at once
  std::uint64_t ticket = 0;                  ///< identifies the slot for release(); opaque
};

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  /// Throws std::invalid_argument naming the problem when `config` is invalid (see validate()).
  /// `seed` seeds the pacing random generator (fixed in tests).
  explicit rate_limiter(rate_limit_config config, std::uint64_t seed = 0x5e17d0c0ffeeULL);

  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  /// Commits the earliest slot at or after `now` that every limit allows for a request to
  /// `recipient` (ignored without a per-recipient limit; may be empty) and returns it.
  reservation reserve(time_point now, std::string_view recipient = {});

  /// reserve(), returned as the wait from `now` (0 when the caller may send at once). Commits
  /// the slot just the same.
  std::chrono::nanoseconds wait_for(time_point now, std::string_view recipient = {});

  /// Gives a slot back when its request will not be sent. Best effort: succeeds (returns true)
  /// for the most recent reservation and for a slot placed out of order for its recipient;
  /// otherwise the slot stays used (the limiter only ever errs on the slow side).
  bool release(const reservation& r);

  /// After a throttle reply with Retry-After: no new slot before `until`. Slots handed out
  /// earlier are not recalled; a caller that woke may check penalized_until() before sending.
  void penalize(time_point now, time_point until);

  /// After a throttle reply without Retry-After: multiplies the rate by slowdown.decrease
  /// (not below slowdown.min_factor); cuts within slowdown.min_cut_gap of the last count once.
  /// Has no effect on an account without windows or pacing.
  void adaptive_slowdown(time_point now);

  /// A request of the account succeeded: once the cool-down since the last cut has passed,
  /// wins back slowdown.increase of the full rate, at most once per slowdown.step_every.
  void on_success(time_point now);

  /// Takes over the state of `previous`, the account's limiter before a configuration change
  /// (reload): no new slot before `previous`'s last one plus this limiter's spacing (its callers
  /// still wait on those slots), its penalty, its slowdown (clamped to this min_factor) and its
  /// recipients' spacing. Call on a limiter no one else uses yet; `previous` may be in use.
  void continue_from(const rate_limiter& previous);

  /// End of the current penalty (a time in the past when none).
  time_point penalized_until() const;
  /// Current fraction of the configured rate, in [slowdown.min_factor, 1].
  double rate_factor() const;
  /// Recipients currently remembered (bounded by max_recipients).
  std::size_t recipients() const;
  /// Out-of-order slots currently in the calendar.
  std::size_t calendar_size() const;
  const rate_limit_config& config() const noexcept { return config_; }

 private:
  struct slot {
    time_point at;
    std::chrono::nanoseconds gap;  // this slot needs at least `gap` after the previous one
    std::uint64_t ticket;
  };
  struct recipient_state {
    std::string name;
    time_point next;  // earliest next slot for this recipient
  };
  using lru_list = std::list<recipient_state>;

  std::chrono::nanoseconds next_gap();  // spacing before a new account slot (rate and pacing)
  lru_list::iterator touch_recipient(time_point now, std::string_view name);
  time_point place(time_point base, time_point earliest, std::chrono::nanoseconds gap, std::uint64_t ticket);

  const rate_limit_config config_;
  const std::chrono::nanoseconds interval_;            // largest emission interval of the windows
  const std::chrono::nanoseconds recipient_interval_;  // of the per-recipient limit (0: none)
  const bool paced_;                                   // windows or pacing configured

  mutable std::mutex mutex_;
  // Account schedule: `tail_` is the latest slot of the in-order part; every slot after it sits
  // in `calendar_`, sorted, each with room before it for its own gap.
  bool has_tail_ = false;
  time_point tail_{};
  std::deque<slot> calendar_;
  time_point penalty_until_ = time_point::min();
  std::mt19937_64 random_;
  // AIMD factor of the rate.
  double factor_ = 1.0;
  time_point last_cut_{};
  bool cut_ = false;
  time_point next_step_at_{};  // earliest next recovery step
  // Recipients, most recently used first; the map's keys view the list's strings.
  lru_list lru_;
  std::unordered_map<std::string_view, lru_list::iterator> recipients_;
  // Undo record of the latest reservation, for release().
  std::uint64_t next_ticket_ = 1;
  std::uint64_t last_ticket_ = 0;
  bool last_in_order_ = false;
  bool last_had_tail_ = false;
  time_point last_prev_tail_{};
  lru_list::iterator last_recipient_{};
  bool last_has_recipient_ = false;
  time_point last_prev_recipient_next_{};
};

}  // namespace sendq::policy
