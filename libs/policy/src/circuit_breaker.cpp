#include "sendq/policy/circuit_breaker.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace sendq::policy {

namespace {

circuit_breaker_config checked(circuit_breaker_config c) {
  std::string problems;
  auto add = [&](const char* p) {
    if (!problems.empty()) problems += "; ";
    problems += p;
  };
  if (c.window_calls == 0) add("window_calls must be > 0");
  if (c.min_calls == 0 || c.min_calls > c.window_calls) add("min_calls must be in [1, window_calls]");
  if (!(c.failure_ratio > 0.0 && c.failure_ratio <= 1.0)) add("failure_ratio must be in (0, 1]");
  if (c.open_for.count() <= 0) add("open_for must be > 0");
  if (c.max_open_for < c.open_for) add("max_open_for must be >= open_for");
  if (!(c.backoff >= 1.0)) add("backoff must be >= 1");
  if (c.half_open_probes == 0) add("half_open_probes must be > 0");
  if (c.successes_to_close == 0) add("successes_to_close must be > 0");
  if (c.window_time.count() < 0 || c.probe_timeout.count() <= 0) add("window_time must be >= 0 and probe_timeout > 0");
  if (!problems.empty()) throw std::invalid_argument("circuit breaker: " + problems);
  return c;
}

}  // namespace

std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "unknown";
}

circuit_breaker::circuit_breaker(circuit_breaker_config config)
    : config_(checked(config)), outcomes_(config_.window_calls) {
  publish();
}

permit circuit_breaker::try_acquire(time_point now) {
  // Closed: allowed, in the epoch read. Should the breaker open meanwhile, the call's outcome is
  // ignored as that of any call admitted just before the opening.
  if (const auto word = published_.load(std::memory_order_acquire); (word & 3) == static_cast<std::uint64_t>(breaker_state::closed)) {
    return permit{true, false, std::nullopt, word >> 2};
  }
  std::lock_guard lock(mutex_);
  switch (state_) {
    case breaker_state::closed:
      return permit{true, false, std::nullopt, epoch_};
    case breaker_state::open:
      if (now < open_until_) return permit{false, false, open_until_, epoch_};
      state_ = breaker_state::half_open;
      ++epoch_;
      publish();
      probes_in_flight_ = 0;
      probe_successes_ = 0;
      break;
    case breaker_state::half_open:
      // A probe whose caller never reported back must not block the breaker for ever. A new epoch:
      // should the lost probes report after all, they no longer count, nor free the new probes' slots.
      if (probes_in_flight_ > 0 && now - last_probe_at_ >= config_.probe_timeout) {
        probes_in_flight_ = 0;
        probe_successes_ = 0;
        ++epoch_;
        publish();
      }
      break;
  }
  if (probes_in_flight_ >= config_.half_open_probes) return permit{false, false, std::nullopt, epoch_};
  ++probes_in_flight_;
  last_probe_at_ = now;
  return permit{true, true, std::nullopt, epoch_};
}

void circuit_breaker::record_success(time_point now) { record(now, false, std::nullopt); }
void circuit_breaker::record_failure(time_point now) { record(now, true, std::nullopt); }
void circuit_breaker::record_success(time_point now, const permit& p) { record(now, false, p.epoch); }
void circuit_breaker::record_failure(time_point now, const permit& p) { record(now, true, p.epoch); }

void circuit_breaker::release(const permit& p) {
  std::lock_guard lock(mutex_);
  if (p.probe && p.epoch == epoch_ && state_ == breaker_state::half_open && probes_in_flight_ > 0) --probes_in_flight_;
}

void circuit_breaker::record(time_point now, bool failed, std::optional<std::uint64_t> epoch) {
  // A permit of an older epoch (the breaker opened or closed since) counts for nothing.
  if (epoch && *epoch != published_.load(std::memory_order_acquire) >> 2) return;
  std::lock_guard lock(mutex_);
  if (epoch && *epoch != epoch_) return;
  switch (state_) {
    case breaker_state::closed:
      outcomes_[next_] = outcome{now, failed};
      next_ = (next_ + 1) % outcomes_.size();
      count_ = std::min(count_ + 1, outcomes_.size());
      if (failed && over_threshold(now)) open(now);
      return;
    case breaker_state::open:
      return;  // a call admitted before the breaker opened
    case breaker_state::half_open:
      if (probes_in_flight_ > 0) --probes_in_flight_;
      if (failed) {
        open(now);
      } else if (++probe_successes_ >= config_.successes_to_close) {
        close();
      }
      return;
  }
}

bool circuit_breaker::over_threshold(time_point now) const {
  std::size_t calls = 0;
  std::size_t failures = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    const auto& o = outcomes_[i];
    if (config_.window_time.count() > 0 && now - o.at > config_.window_time) continue;
    ++calls;
    failures += o.failed ? 1 : 0;
  }
  return calls >= config_.min_calls &&
         static_cast<double>(failures) >= config_.failure_ratio * static_cast<double>(calls);
}

void circuit_breaker::open(time_point now) {
  // Each re-open without a close in between waits longer: open_for * backoff^n, capped.
  auto ms = static_cast<double>(config_.open_for.count()) * std::pow(config_.backoff, static_cast<double>(opens_));
  auto period = ms >= static_cast<double>(config_.max_open_for.count())
                    ? config_.max_open_for
                    : std::chrono::milliseconds(static_cast<std::int64_t>(ms));
  ++opens_;
  state_ = breaker_state::open;
  ++epoch_;
  publish();
  open_until_ = now + period;
  count_ = 0;
  next_ = 0;
}

void circuit_breaker::close() {
  state_ = breaker_state::closed;
  ++epoch_;
  publish();
  opens_ = 0;
  count_ = 0;
  next_ = 0;
}

breaker_state circuit_breaker::state() const {
  return static_cast<breaker_state>(published_.load(std::memory_order_acquire) & 3);
}

std::optional<circuit_breaker::time_point> circuit_breaker::open_until() const {
  std::lock_guard lock(mutex_);
  if (state_ != breaker_state::open) return std::nullopt;
  return open_until_;
}

}  // namespace sendq::policy
