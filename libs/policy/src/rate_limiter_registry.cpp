#include "sendq/policy/rate_limiter_registry.hpp"

#include <functional>
#include <mutex>
#include <stdexcept>
#include <tuple>

namespace sendq::policy {

rate_limiter_registry::rate_limiter_registry(std::vector<account_limits> accounts, std::uint64_t seed)
    : seed_(seed), limiters_(build(std::move(accounts), nullptr)) {}

rate_limiter_registry::map rate_limiter_registry::build(std::vector<account_limits> accounts, const map* previous,
                                                        std::vector<carry>* changed) const {
  map out;
  for (auto& a : accounts) {
    if (out.find(key_view{a.provider, a.account}) != out.end()) {
      throw std::invalid_argument("rate limit: account " + a.provider + "/" + a.account + " is listed twice");
    }
    std::shared_ptr<rate_limiter> limiter;
    std::shared_ptr<rate_limiter> before;
    if (previous) {
      if (auto it = previous->find(key_view{a.provider, a.account}); it != previous->end()) {
        if (it->second->config() == a.limits) {
          limiter = it->second;
        } else {
          before = it->second;
        }
      }
    }
    if (!limiter) {
      if (auto problems = validate(a.limits); !problems.empty()) {
        throw std::invalid_argument("rate limit of " + a.provider + "/" + a.account + ": " + problems);
      }
      // Different accounts get different pacing sequences from one seed.
      auto h = std::hash<std::string>{}(a.provider) * 31 + std::hash<std::string>{}(a.account);
      limiter = std::make_shared<rate_limiter>(std::move(a.limits), seed_ ^ h);
      if (before && changed) changed->push_back({limiter, std::move(before)});
    }
    out.emplace(key{std::move(a.provider), std::move(a.account)}, std::move(limiter));
  }
  return out;
}

std::shared_ptr<rate_limiter> rate_limiter_registry::find(std::string_view provider, std::string_view account) const {
  std::shared_lock lock(mutex_);
  auto it = limiters_.find(key_view{provider, account});
  return it == limiters_.end() ? nullptr : it->second;
}

void rate_limiter_registry::replace(std::vector<account_limits> accounts) {
  // Build outside the exclusive lock (lookups go on meanwhile); only one replace() at a time is
  // expected (the reload thread), and a concurrent one would only see slightly older state.
  map previous;
  {
    std::shared_lock lock(mutex_);
    previous = limiters_;
  }
  std::vector<carry> changed;
  auto next = build(std::move(accounts), &previous, &changed);
  std::unique_lock lock(mutex_);
  // Before the copies below: a holder of an old limiter that updates it after its copy was taken
  // is then sure to see the move (it took that limiter's lock after continue_from() released it).
  generation_.fetch_add(1, std::memory_order_release);
  // Deliveries still waiting on an old limiter's slots would otherwise run in parallel with the
  // new one's, and its penalty would be dropped. Under the lock (find() waits), so that only a
  // caller that had just looked up the old limiter can still take a slot of it afterwards.
  for (auto& [fresh, old] : changed) fresh->continue_from(*old);
  limiters_.swap(next);
  // `next` (the old map) is destroyed after the lock is released.
  lock.unlock();
}

std::size_t rate_limiter_registry::size() const {
  std::shared_lock lock(mutex_);
  return limiters_.size();
}

}  // namespace sendq::policy
