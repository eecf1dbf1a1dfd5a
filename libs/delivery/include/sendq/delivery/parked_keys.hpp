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
/// Not thread-safe: the pipeline uses it on its Kafka thread only.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sendq::delivery {

class parked_keys {
 public:
  /// The retry-topic header that carries a park's token.
  static constexpr std::string_view header = "sendq-bulkhead-park";

  /// `nonce` sets this process's tokens apart from those of earlier or other workers.
  explicit parked_keys(std::uint64_t nonce = random_nonce()) : prefix_(to_hex(nonce) + "-") {}

  /// True while `key` has a park not ended yet.
  bool holds(const std::string& key) const { return counts_.count(key) != 0; }

  /// Counts a park of `key`. Returns the token its parked record must carry.
  std::string park(const std::string& key) {
    std::string token = prefix_ + std::to_string(++sequence_);
    tokens_.emplace(token, key);
    ++counts_[key];
    return token;
  }

  /// Ends the park `token` (its record came back, or the park was refused). False, and nothing
  /// changes, for a token that is not one of the outstanding parks.
  bool release(std::string_view token) {
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return false;
    if (auto c = counts_.find(it->second); --c->second <= 0) counts_.erase(c);
    tokens_.erase(it);
    return true;
  }

  /// Forgets every park: their records are no longer this process's to read (partitions revoked).
  void clear() {
    tokens_.clear();
    counts_.clear();
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

  std::string prefix_;
  std::uint64_t sequence_ = 0;
  std::unordered_map<std::string, std::string, token_hash, std::equal_to<>> tokens_;  // token -> key
  std::unordered_map<std::string, long> counts_;                                      // key -> parks not ended
};

}  // namespace sendq::delivery
