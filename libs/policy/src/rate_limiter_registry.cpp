#include "sendq/policy/rate_limiter_registry.hpp"

#include <functional>
#include <mutex>
#include <stdexcept>
#include <tuple>

namespace sendq::policy {

rate_limiter_registry::rate_limiter_registry(std::vector<account_limits> accounts, std::uint64_t seed)
    : seed_(seed), limiters_(build(std::move(accounts), nullptr)) {}

rate_limiter_registry::map rate_limiter_registry::build(std::vector<account_limits> accounts,
                                                        const map* previous) const {
  map out;
  for (auto& a : accounts) {
    if (out.find(key_view{a.provider, a.account}) != out.end()) {
      throw std::invalid_argument("rate limit: account " + a.provider + "/" + a.account + " is listed twice");
    }
    std::shared_ptr<rate_limiter> limiter;
    if (previous) {
      if (auto it = previous->find(key_view{a.provider, a.account});
          it != previous->end() && it->second->config() == a.limits) {
        limiter = it->second;
      }
    }
    if (!limiter) {
      if (auto problems = validate(a.limits); !problems.empty()) {
        throw std::invalid_argument("rate limit of " + a.provider + "/" + a.account + ": " + problems);
      }
      // Different accounts get different pacing sequences from one seed.
      auto h = std::hash<std::string>{}(a.provider) * 31 + std::hash<std::string>{}(a.account);
      limiter = std::make_shared<rate_limiter>(std::move(a.limits), seed_ ^ h);
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
  auto next = build(std::move(accounts), &previous);
  std::unique_lock lock(mutex_);
  limiters_.swap(next);
  // `next` (the old map) is destroyed after the lock is released.
  lock.unlock();
}

std::size_t rate_limiter_registry::size() const {
  std::shared_lock lock(mutex_);
  return limiters_.size();
}

}  // namespace sendq::policy
