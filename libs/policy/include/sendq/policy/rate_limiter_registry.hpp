#pragma once
/// The rate limiters of all provider accounts, looked up by (provider, account) on every send
/// and replaced as a whole on configuration reload (SIGHUP).
///
/// Thread-safety: find() may run on any number of threads while replace() runs on another; a
/// std::shared_mutex guards the map (shared for find(), exclusive for the swap). A limiter
/// returned by find() stays valid for as long as the caller holds it, even across a replace().
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "sendq/policy/rate_limiter.hpp"

namespace sendq::policy {

/// The limits of one provider account.
struct account_limits {
  std::string provider;       ///< provider id, e.g. "sender"
  std::string account;        ///< account name within the provider
  rate_limit_config limits;   ///< its limits
};

class rate_limiter_registry {
 public:
  /// Builds one limiter per entry. Throws std::invalid_argument on an invalid configuration or
  /// a (provider, account) listed twice. `seed` seeds the limiters' pacing (mixed with the key).
  explicit rate_limiter_registry(std::vector<account_limits> accounts = {}, std::uint64_t seed = 0x5e17d0c0ffeeULL);

  /// The account's limiter, or nullptr when it has no limits configured.
  std::shared_ptr<rate_limiter> find(std::string_view provider, std::string_view account) const;

  /// Installs a new set of accounts. An account whose limits are unchanged keeps its limiter,
  /// and with it its schedule, penalty and slowdown; a changed account gets a new limiter that
  /// goes on after the old one's last slot, with its penalty and slowdown (see
  /// rate_limiter::continue_from); new accounts start fresh;
  /// accounts no longer listed are dropped (holders keep theirs until they let go). Validates
  /// everything first and throws std::invalid_argument without changing anything on error.
  void replace(std::vector<account_limits> accounts);

  /// Accounts with a limiter.
  std::size_t size() const;

  /// Counts the replace() calls that took effect. A caller that holds a limiter across a wait (an
  /// HTTP call) updates it, then compares this with the count it read before find(): when it
  /// moved, it updates the account's limiter of now as well (a 429's penalty must not stay with
  /// the replaced one). It moves before replace() copies the old limiters' state.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  struct key {
    std::string provider;
    std::string account;
  };
  struct key_less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      // As string_views on both sides: tuples of different element types do not compare in clang.
      const std::string_view ap = a.provider, aa = a.account, bp = b.provider, ba = b.account;
      return ap < bp || (ap == bp && aa < ba);
    }
  };
  struct key_view {
    std::string_view provider;
    std::string_view account;
  };
  using map = std::map<key, std::shared_ptr<rate_limiter>, key_less>;

  // A changed account's new limiter and the one it replaces.
  struct carry {
    std::shared_ptr<rate_limiter> fresh;
    std::shared_ptr<rate_limiter> old;
  };
  map build(std::vector<account_limits> accounts, const map* previous, std::vector<carry>* changed = nullptr) const;

  const std::uint64_t seed_;
  mutable std::shared_mutex mutex_;
  map limiters_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace sendq::policy
