#include "sendq/delivery/duplicate_guard.hpp"

namespace sendq::delivery {

void duplicate_guard::expire(clock::time_point now) {
  while (!order_.empty() && (order_.front().first + window_ <= now || order_.size() > max_ids_)) {
    ids_.erase(order_.front().second);
    order_.pop_front();
  }
}

bool duplicate_guard::seen(const std::string& id, clock::time_point now) {
  if (max_ids_ == 0) return false;
  std::lock_guard lock(mutex_);
  expire(now);
  return ids_.count(id) != 0;
}

void duplicate_guard::remember(const std::string& id, clock::time_point now) {
  if (max_ids_ == 0) return;
  std::lock_guard lock(mutex_);
  if (ids_.insert(id).second) order_.emplace_back(now, id);
  expire(now);
}

std::size_t duplicate_guard::size() const {
  std::lock_guard lock(mutex_);
  return ids_.size();
}

}  // namespace sendq::delivery
