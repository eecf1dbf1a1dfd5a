#include "sendq/policy/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sendq::policy {

namespace {

using std::chrono::nanoseconds;

// Emission interval of a window: per/limit, rounded up so that `limit` slots never fit in `per`.
nanoseconds emission_interval(const window& w) {
  auto per = std::chrono::duration_cast<nanoseconds>(w.per).count();
  return nanoseconds((per + w.limit - 1) / w.limit);
}

nanoseconds largest_interval(const std::vector<window>& windows) {
  nanoseconds out{0};
  for (const auto& w : windows) out = std::max(out, emission_interval(w));
  return out;
}

rate_limit_config checked(rate_limit_config config) {
  if (auto problems = validate(config); !problems.empty()) {
    throw std::invalid_argument("rate limit: " + problems);
  }
  return config;
}

}  // namespace

rate_limiter::rate_limiter(rate_limit_config config, std::uint64_t seed)
    : config_(checked(std::move(config))),
      interval_(largest_interval(config_.windows)),
      recipient_interval_(config_.per_recipient ? emission_interval(*config_.per_recipient) : nanoseconds{0}),
      paced_(!config_.windows.empty() || config_.pacing.has_value()),
      random_(seed) {}

nanoseconds rate_limiter::next_gap() {
  auto gap = interval_.count();
  if (config_.pacing) {
    std::uniform_int_distribution<std::int64_t> pick(nanoseconds(config_.pacing->min_gap).count(),
                                                     nanoseconds(config_.pacing->max_gap).count());
    gap = std::max(gap, pick(random_));
  }
  // Slowed down by throttle replies, a long gap could pass what nanoseconds hold: the slow-down
  // stretches it to a year at most, which still holds the account back (an overflow let all through).
  constexpr double year = 365.0 * 86400 * 1e9;
  if (factor_ < 1.0) {
    const double slowed = std::min(year, std::ceil(static_cast<double>(gap) / factor_));
    gap = std::max(gap, static_cast<std::int64_t>(slowed));
  }
  return nanoseconds(gap);
}

rate_limiter::lru_list::iterator rate_limiter::touch_recipient(time_point now, std::string_view name) {
  lru_list::iterator it;
  if (auto found = recipients_.find(name); found != recipients_.end()) {
    it = found->second;
    lru_.splice(lru_.begin(), lru_, it);
  } else {
    // A recipient whose slot has passed holds no state worth keeping; if the map is still full,
    // the least recently used goes even if busy (it may then get a slot early: memory wins).
    while (!lru_.empty() && recipients_.size() >= config_.max_recipients) {
      recipients_.erase(lru_.back().name);
      lru_.pop_back();
    }
    lru_.push_front(recipient_state{std::string(name), time_point::min()});
    it = lru_.begin();
    recipients_.emplace(it->name, it);
  }
  // Sweep a couple of idle recipients from the cold end on every call: amortised O(1), and the
  // map shrinks back once traffic to many recipients stops.
  for (int i = 0; i < 2 && lru_.size() > 1 && lru_.back().next <= now; ++i) {
    recipients_.erase(lru_.back().name);
    lru_.pop_back();
  }
  return it;
}

rate_limiter::time_point rate_limiter::place(time_point base, time_point earliest, nanoseconds gap,
                                             std::uint64_t ticket) {
  auto in_order_next = [&] { return has_tail_ ? std::max(base, tail_ + gap) : base; };
  // Calendar slots with no room left before them for a new slot join the in-order part: the gap
  // they leave is given up (conservative), and the common path stays O(1).
  while (!calendar_.empty() && calendar_.front().at - calendar_.front().gap < in_order_next()) {
    tail_ = calendar_.front().at;
    has_tail_ = true;
    calendar_.pop_front();
  }
  auto next = in_order_next();
  if (earliest <= next) {
    last_in_order_ = true;
    last_had_tail_ = has_tail_;
    last_prev_tail_ = tail_;
    tail_ = next;
    has_tail_ = true;
    return next;
  }
  // Held back by its recipient: take the first gap at or after `earliest` that leaves each
  // neighbour its spacing, without moving the in-order tail (other recipients go first).
  auto it = std::upper_bound(calendar_.begin(), calendar_.end(), earliest,
                             [](time_point t, const slot& s) { return t < s.at; });
  std::optional<time_point> pred;
  if (it != calendar_.begin()) {
    pred = std::prev(it)->at;
  } else if (has_tail_) {
    pred = tail_;
  }
  time_point at = earliest;
  while (true) {
    at = pred ? std::max(earliest, *pred + gap) : earliest;
    if (it == calendar_.end() || it->at - it->gap >= at) break;
    pred = it->at;
    ++it;
  }
  calendar_.insert(it, slot{at, gap, ticket});
  last_in_order_ = false;
  return at;
}

reservation rate_limiter::reserve(time_point now, std::string_view recipient) {
  std::lock_guard lock(mutex_);
  auto base = std::max(now, penalty_until_);
  auto earliest = base;
  const bool limited_recipient = recipient_interval_.count() > 0 && !recipient.empty();
  lru_list::iterator rec;
  if (limited_recipient) {
    rec = touch_recipient(now, recipient);
    earliest = std::max(earliest, rec->next);
  }
  auto ticket = next_ticket_++;
  time_point at = earliest;
  if (paced_) {
    at = place(base, earliest, next_gap(), ticket);
  } else {
    last_in_order_ = false;
  }
  last_ticket_ = ticket;
  last_has_recipient_ = limited_recipient;
  if (limited_recipient) {
    last_recipient_ = rec;
    last_prev_recipient_next_ = rec->next;
    rec->next = at + recipient_interval_;
  }
  return reservation{at, ticket};
}

std::chrono::nanoseconds rate_limiter::wait_for(time_point now, std::string_view recipient) {
  auto r = reserve(now, recipient);
  return std::max(nanoseconds{0}, r.at - now);
}

bool rate_limiter::release(const reservation& r) {
  std::lock_guard lock(mutex_);
  if (r.ticket == 0) return false;
  const bool latest = r.ticket == last_ticket_;
  bool released = false;
  // An out-of-order slot can always go: removing it only widens the gap between its neighbours.
  auto [first, last] = std::equal_range(calendar_.begin(), calendar_.end(), slot{r.at, {}, 0},
                                        [](const slot& a, const slot& b) { return a.at < b.at; });
  for (auto it = first; it != last; ++it) {
    if (it->ticket == r.ticket) {
      calendar_.erase(it);
      released = true;
      break;
    }
  }
  // The latest in-order slot can be undone; an earlier one has later slots spaced from it.
  if (!released && latest && last_in_order_) {
    tail_ = last_prev_tail_;
    has_tail_ = last_had_tail_;
    released = true;
  }
  if (latest && last_has_recipient_) {
    // No reserve() since this one, so the recipient has not been evicted.
    last_recipient_->next = last_prev_recipient_next_;
    released = true;
  }
  if (latest) last_ticket_ = 0;
  return released;
}

void rate_limiter::penalize(time_point now, time_point until) {
  std::lock_guard lock(mutex_);
  if (until > now) penalty_until_ = std::max(penalty_until_, until);
}

void rate_limiter::continue_from(const rate_limiter& previous) {
  if (&previous == this) return;
  std::scoped_lock lock(mutex_, previous.mutex_);
  // The old schedule's last slot, in order or out of order: new slots are spaced from it, so that
  // the callers still waiting on old slots and those of this limiter never add up above the rate.
  std::optional<time_point> last;
  if (previous.has_tail_) last = previous.tail_;
  if (!previous.calendar_.empty()) last = std::max(last.value_or(time_point::min()), previous.calendar_.back().at);
  if (last && (!has_tail_ || tail_ < *last)) {
    tail_ = *last;
    has_tail_ = true;
  }
  penalty_until_ = std::max(penalty_until_, previous.penalty_until_);
  // A slowdown is the provider's word too: a reload does not win the rate back.
  if (paced_ && previous.factor_ < factor_) {
    factor_ = std::max(config_.slowdown.min_factor, previous.factor_);
    cut_ = previous.cut_;
    last_cut_ = previous.last_cut_;
    next_step_at_ = previous.next_step_at_;
  }
  if (recipient_interval_.count() == 0 || previous.recipient_interval_.count() == 0) return;
  // Each recipient's next slot from its last one, at this limiter's spacing (most recent first,
  // as many as this limiter remembers).
  for (const auto& r : previous.lru_) {
    if (recipients_.size() >= config_.max_recipients) break;
    if (r.next == time_point::min() || recipients_.count(r.name)) continue;  // none reserved (released)
    lru_.push_back(recipient_state{r.name, r.next - previous.recipient_interval_ + recipient_interval_});
    recipients_.emplace(lru_.back().name, std::prev(lru_.end()));
  }
}

void rate_limiter::adaptive_slowdown(time_point now) {
  std::lock_guard lock(mutex_);
  if (!paced_) return;
  const auto& s = config_.slowdown;
  // Replies to requests sent before the cut arrive together; they are one signal, not several.
  if (cut_ && now - last_cut_ < s.min_cut_gap) return;
  factor_ = std::max(s.min_factor, factor_ * s.decrease);
  cut_ = true;
  last_cut_ = now;
  next_step_at_ = now + s.cool_down;
}

void rate_limiter::on_success(time_point now) {
  std::lock_guard lock(mutex_);
  if (factor_ >= 1.0 || now < next_step_at_) return;
  factor_ = std::min(1.0, factor_ + config_.slowdown.increase);
  next_step_at_ = now + config_.slowdown.step_every;
}

rate_limiter::time_point rate_limiter::penalized_until() const {
  std::lock_guard lock(mutex_);
  return penalty_until_;
}

double rate_limiter::rate_factor() const {
  std::lock_guard lock(mutex_);
  return factor_;
}

std::size_t rate_limiter::recipients() const {
  std::lock_guard lock(mutex_);
  return recipients_.size();
}

std::size_t rate_limiter::calendar_size() const {
  std::lock_guard lock(mutex_);
  return calendar_.size();
}

}  // namespace sendq::policy
