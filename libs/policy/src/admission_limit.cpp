#include "sendq/policy/admission_limit.hpp"

#include <algorithm>
#include <utility>

namespace sendq::policy {

admission_limit::admission_limit(admission_limit_options opts) noexcept : opts_(opts), limit_(opts.max_limit) {
  opts_.max_limit = std::max<long>(1, opts_.max_limit);
  opts_.min_limit = std::clamp<long>(opts_.min_limit, 1, opts_.max_limit);
  limit_.store(opts_.max_limit);
}

void admission_limit::record_wait(std::chrono::nanoseconds waited) noexcept {
  wait_sum_ns_.fetch_add(waited.count(), std::memory_order_relaxed);
  wait_count_.fetch_add(1, std::memory_order_relaxed);
}

long admission_limit::update(std::chrono::steady_clock::time_point now, long in_flight) noexcept {
  long limit = limit_.load(std::memory_order_relaxed);
  peak_in_flight_ = std::max(peak_in_flight_, in_flight);
  if (now < window_end_) return limit;
  const bool first = window_end_ == std::chrono::steady_clock::time_point{};
  window_end_ = now + opts_.window;
  const auto count = wait_count_.exchange(0, std::memory_order_relaxed);
  const auto sum = wait_sum_ns_.exchange(0, std::memory_order_relaxed);
  const long peak = std::exchange(peak_in_flight_, 0);
  if (first || count == 0 || opts_.min_limit == opts_.max_limit) return limit;  // nothing to go by
  const auto mean = sum / count;
  last_mean_ns_.store(mean, std::memory_order_relaxed);
  if (mean > std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.behind).count()) {
    limit = std::max(opts_.min_limit, limit - std::max<long>(1, limit / 8));
  } else if (peak >= limit - limit / 8) {
    // Only a limit that was reached is raised: an idle worker's says nothing about load.
    limit = std::min(opts_.max_limit, limit + std::max<long>(1, opts_.max_limit / 64));
  }
  limit_.store(limit, std::memory_order_relaxed);
  return limit;
}

}  // namespace sendq::policy
