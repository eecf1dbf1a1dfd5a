#pragma once
/// The acknowledgements a record still waits for from Kafka (its result and DLQ record, or its
/// retry record), and the records that may only end after it: a duplicate of a delivered request
/// is not sent, and it must not end (its offset done) before the first copy's result is
/// acknowledged. After a rebalance the two copies are in different generations of their
/// partition, so the first copy's unfinished offset would no longer hold the commit back.
///
///   expect(1)                 one record to acknowledge
///   follow(d) → waiting       d is held; it ends with the record
///   acknowledge() → true      the last one: end the record, then take_followers()
///   follow(e) → ended_before  nothing left to wait for: end e now
///
/// No lock: follow() takes a count of its own while it adds the follower, so the count cannot
/// reach zero, and the followers cannot be read, until it has added it. follow() is called by one
/// thread at a time; acknowledge() by any.
#include <atomic>
#include <utility>
#include <vector>

namespace sendq::delivery {

template <class Follower>
class pending_acks {
 public:
  enum class follow_result {
    waiting,       ///< held: take_followers() gives it back after the last acknowledgement
    ended_before,  ///< nothing was left to acknowledge: the caller ends the follower itself
    last,          ///< held, and the acknowledgements all came in meanwhile: the caller ends the record
  };

  /// Sets how many acknowledgements the record waits for, before any can arrive.
  void expect(int n) { count_.store(n); }

  /// One acknowledgement. True when it was the last: the caller ends the record.
  bool acknowledge() { return count_.fetch_sub(1) == 1; }

  follow_result follow(Follower f) {
    int n = count_.load();
    while (n > 0 && !count_.compare_exchange_weak(n, n + 1)) {
    }
    if (n == 0) return follow_result::ended_before;
    followers_.push_back(std::move(f));
    return acknowledge() ? follow_result::last : follow_result::waiting;
  }

  /// The held followers, once the last acknowledgement came in (by whoever ends the record).
  std::vector<Follower> take_followers() { return std::exchange(followers_, {}); }

 private:
  std::atomic<int> count_{0};
  std::vector<Follower> followers_;
};

}  // namespace sendq::delivery
