#pragma once
/// The bulkhead's parks not back yet, by ordering key: while a key has one, its later requests
/// are parked behind it, so that the key's order holds. Each park has a token that its record on
/// the retry topic carries (header `parked_keys::header`); only a record with a token of this
/// process's outstanding parks ends a park, once, however it ends (delivered, skipped as a
/// duplicate, its route removed by a reload). Retries parked for their back-off carry none, and
/// a record read twice, or parked by another process, ends nothing.
///
///   park(k)    → t1       (holds(k): later requests of k are parked too)
///   release(t1) → true    (k's last park is back: holds(k) is false again)
///   release(t1) → false   (already ended)
///
/// It also picks each park's retry partition. A parked record at the head of its partition
/// holds that partition until its account is under its cap again, so parks of different
/// accounts sharing a partition would hold each other back: a healthy account's parks behind
/// a stalled one's (found by the bulkhead test: 21 s instead of 1). So each account with parks
/// out has a partition of its own (its lane) while there are enough: the one with the fewest
/// other accounts' parks in it. A key's parks all go where its first outstanding one went (its
/// order); that one park may sit in another account's lane, which stays that account's.
///
/// Not thread-safe: the pipeline uses it on its Kafka thread only.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sendq::delivery {

class parked_keys {
 public:
  /// The retry-topic header that carries a park's token.
  static constexpr std::string_view header = "sendq-bulkhead-park";

  /// `nonce` sets this process's tokens apart from those of earlier or other workers.
  explicit parked_keys(std::uint64_t nonce = random_nonce()) : prefix_(to_hex(nonce) + "-") {}

  /// A park: the token its record must carry, and the retry partition it must go to (none
  /// when no partitions were given: the producer's partitioner picks).
  struct parked {
    std::string token;
    std::optional<std::int32_t> partition;
  };

  /// True while `key` has a park not ended yet.
  bool holds(const std::string& key) const { return keys_.count(key) != 0; }

  /// Counts a park of `key`, a request of `account`, to one of `partitions` (this worker's own
  /// retry partitions; the pipeline leaves out those paused for a retry not due yet, when it can).
  parked park(const std::string& key, const std::string& account = {},
              const std::vector<std::int32_t>& partitions = {}) {
    parked out{prefix_ + std::to_string(++sequence_), std::nullopt};
    auto& a = accounts_[account];
    if (a.count == 0 && !partitions.empty()) a.lane = least_used(partitions, account);
    ++a.count;
    auto& k = keys_[key];
    // Behind the key's earlier parks, wherever they went; else in the account's lane.
    out.partition = k.count > 0 ? k.partition : a.lane;
    k.partition = out.partition;
    ++k.count;
    if (out.partition) ++in_partition_[*out.partition][account];
    tokens_.emplace(out.token, owner{key, account, out.partition});
    return out;
  }

  /// Ends the park `token` (its record came back, or the park was refused). False, and nothing
  /// changes, for a token that is not one of the outstanding parks.
  bool release(std::string_view token) {
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return false;
    const owner& o = it->second;
    if (auto k = keys_.find(o.key); --k->second.count <= 0) keys_.erase(k);
    if (auto a = accounts_.find(o.account); --a->second.count <= 0) accounts_.erase(a);
    if (o.partition) {
      auto p = in_partition_.find(*o.partition);
      if (auto c = p->second.find(o.account); --c->second <= 0) p->second.erase(c);
      if (p->second.empty()) in_partition_.erase(p);
    }
    tokens_.erase(it);
    return true;
  }

  /// Forgets every park: their records are no longer this process's to read (partitions revoked).
  void clear() {
    tokens_.clear();
    keys_.clear();
    accounts_.clear();
    in_partition_.clear();
  }

  /// Parks not ended yet.
  std::size_t size() const { return tokens_.size(); }

 private:
  static std::uint64_t random_nonce() {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) | rd();
  }
  static std::string to_hex(std::uint64_t v) {
    char s[17];
    std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(v));
    return s;
  }

  // Looks a token up by the string_view of the record's header, without copying it.
  struct token_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  // Of `partitions`, one used by the fewest other accounts (their parks are in it, or it is their
  // lane, maybe before any park of theirs went there); among those, one chosen by the account's
  // hash (spread, and the same one for the same state). Runs once per account that starts parking.
  std::int32_t least_used(const std::vector<std::int32_t>& partitions, const std::string& account) const {
    std::size_t fewest = SIZE_MAX;
    std::vector<std::int32_t> best;
    for (const auto p : partitions) {
      std::unordered_set<std::string_view> users;
      if (const auto it = in_partition_.find(p); it != in_partition_.end()) {
        for (const auto& [name, parks] : it->second) users.insert(name);
      }
      for (const auto& [name, a] : accounts_) {
        if (a.lane == p) users.insert(name);
      }
      const std::size_t n = users.size() - users.count(account);
      if (n < fewest) {
        fewest = n;
        best.clear();
      }
      if (n == fewest) best.push_back(p);
    }
    return best[std::hash<std::string>{}(account) % best.size()];
  }

  struct key_parks {
    long count = 0;
    std::optional<std::int32_t> partition;
  };
  struct account_parks {
    long count = 0;
    std::optional<std::int32_t> lane;  // where its parks go (those of keys without parks out)
  };
  struct owner {
    std::string key;
    std::string account;
    std::optional<std::int32_t> partition;
  };

  std::string prefix_;
  std::uint64_t sequence_ = 0;
  std::unordered_map<std::string, owner, token_hash, std::equal_to<>> tokens_;  // token -> its park
  std::unordered_map<std::string, key_parks> keys_;                             // key -> parks not ended
  std::unordered_map<std::string, account_parks> accounts_;                     // account -> parks not ended
  // partition -> account -> parks in it not ended
  std::unordered_map<std::int32_t, std::unordered_map<std::string, long>> in_partition_;
};

}  // namespace sendq::delivery
