#pragma once
/// How many requests the worker admits at once: worker.max_in_flight while its I/O threads keep up,
/// less (down to worker.min_in_flight) while they fall behind.
///
/// Why: past what the providers' round trips need, more requests in flight do not deliver more;
/// they only queue inside the worker, and on a saturated machine that queue makes each delivery
/// dearer (more memory touched per delivery, fewer cache hits), so the worker slows down and the
/// queue grows further (benchmarks/results/profile-2026-12-04.md, §2). Slow providers leave the I/O
/// threads idle, so the limit stays at the maximum that their round trips need.
///
/// The signal is how long new work waits for an I/O thread (from the Kafka thread's post to the
/// handler running). Once per window: a mean wait over `behind` cuts the limit by an eighth
/// (multiplicative decrease); otherwise, if the limit was reached in the window, it grows by
/// max/64 (additive increase), back to the maximum in about five seconds.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace sendq::policy {

struct admission_limit_options {
  long max_limit = 4096;                       ///< worker.max_in_flight
  long min_limit = 1024;                       ///< worker.min_in_flight (max_limit: never lowered)
  std::chrono::microseconds behind{2000};     ///< mean wait for an I/O thread that counts as behind
  std::chrono::milliseconds window{100};
};

class admission_limit {
 public:
  explicit admission_limit(admission_limit_options opts) noexcept;

  /// Any thread: new work waited `waited` for its I/O thread.
  void record_wait(std::chrono::nanoseconds waited) noexcept;
  /// One thread (the Kafka thread), often: the limit to admit up to now, recomputed when a window
  /// has passed. `in_flight` is the number admitted and not finished.
  long update(std::chrono::steady_clock::time_point now, long in_flight) noexcept;
  /// Any thread: the current limit.
  long limit() const noexcept { return limit_.load(std::memory_order_relaxed); }
  /// Any thread: the mean wait of the last window that had any (for the metrics).
  std::chrono::nanoseconds last_mean_wait() const noexcept {
    return std::chrono::nanoseconds(last_mean_ns_.load(std::memory_order_relaxed));
  }

 private:
  admission_limit_options opts_;
  std::atomic<long> limit_;
  std::atomic<std::int64_t> wait_sum_ns_{0};
  std::atomic<std::int64_t> wait_count_{0};
  std::atomic<std::int64_t> last_mean_ns_{0};
  std::chrono::steady_clock::time_point window_end_{};
  long peak_in_flight_ = 0;
};

}  // namespace sendq::policy
