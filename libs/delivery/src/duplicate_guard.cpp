#include "sendq/delivery/duplicate_guard.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>

namespace sendq::delivery {
namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct sip_state {
  std::uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  }
};

// One load (the byte loop it replaces was not merged into one by GCC 12 at -O2).
std::uint64_t load_le64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

}  // namespace

// Aumasson & Bernstein's SipHash-2-4, 128-bit output variant (as in the reference siphash.c).
duplicate_guard::digest duplicate_guard::siphash128(std::string_view data, const std::array<std::uint64_t, 2>& key) {
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t len = data.size();
  sip_state s{0x736f6d6570736575ULL ^ key[0], 0x646f72616e646f6dULL ^ key[1], 0x6c7967656e657261ULL ^ key[0],
              0x7465646279746573ULL ^ key[1]};
  s.v1 ^= 0xee;  // 128-bit output
  const std::size_t whole = len - (len % 8);
  for (std::size_t i = 0; i < whole; i += 8) {
    const std::uint64_t m = load_le64(in + i);
    s.v3 ^= m;
    s.round();
    s.round();
    s.v0 ^= m;
  }
  std::uint64_t b = static_cast<std::uint64_t>(len) << 56;
  for (std::size_t i = 0; i < len % 8; ++i) b |= static_cast<std::uint64_t>(in[whole + i]) << (8 * i);
  s.v3 ^= b;
  s.round();
  s.round();
  s.v0 ^= b;
  s.v2 ^= 0xee;
  for (int i = 0; i < 4; ++i) s.round();
  digest d;
  d.lo = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  s.v1 ^= 0xdd;
  for (int i = 0; i < 4; ++i) s.round();
  d.hi = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  return d;
}

// The table is sized for the bound at once (up to presized_ids): doubling it later rehashed every
// digest under the lock, a pause of all I/O threads that reached 7 ms at 131,072 ids (that many
// random writes into a new 8 MB table). A bound over presized_ids still doubles as it fills.
duplicate_guard::duplicate_guard(std::chrono::milliseconds window, std::size_t max_ids)
    : window_(window), max_ids_(max_ids) {
  std::random_device rd;
  for (auto& k : key_) k = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  if (max_ids_ == 0) return;
  // remember() inserts before it expires: max_ids + 1 digests at most, the table at most half full
  const std::size_t most = std::min(max_ids_, presized_ids) + 1;
  std::size_t slots = min_slots;
  while (slots < 2 * most) slots *= 2;
  slots_.assign(slots, digest{});
}

duplicate_guard::digest duplicate_guard::digest_of(std::string_view id) const {
  auto d = siphash128(id, key_);
  if (d.lo == 0 && d.hi == 0) d.hi = 1;  // zero marks a free slot (a 2^-128 chance)
  return d;
}

bool duplicate_guard::contains(const digest& d) const {
  if (slots_.empty()) return false;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = static_cast<std::size_t>(d.lo) & mask;; i = (i + 1) & mask) {
    if (slots_[i] == d) return true;
    if (slots_[i] == digest{}) return false;
  }
}

bool duplicate_guard::insert(const digest& d) {
  if (2 * (count_ + 1) > slots_.size()) grow();
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = static_cast<std::size_t>(d.lo) & mask;; i = (i + 1) & mask) {
    if (slots_[i] == d) return false;
    if (slots_[i] == digest{}) {
      slots_[i] = d;
      ++count_;
      return true;
    }
  }
}

// Backward-shift deletion (Knuth's algorithm R): later members of the probe run move up into the
// hole unless their home slot lies cyclically in (hole, their slot], so no tombstones are needed.
void duplicate_guard::erase(const digest& d) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t hole = static_cast<std::size_t>(d.lo) & mask;
  while (!(slots_[hole] == d)) {
    if (slots_[hole] == digest{}) return;
    hole = (hole + 1) & mask;
  }
  for (std::size_t j = (hole + 1) & mask; !(slots_[j] == digest{}); j = (j + 1) & mask) {
    const std::size_t home = static_cast<std::size_t>(slots_[j].lo) & mask;
    const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = digest{};
  --count_;
}

// Only for a bound over presized_ids: the constructor made the table, so it is never empty here.
void duplicate_guard::grow() {
  std::vector<digest> old = std::move(slots_);
  slots_.assign(2 * old.size(), digest{});
  count_ = 0;
  for (const auto& d : old) {
    if (!(d == digest{})) insert(d);
  }
}

void duplicate_guard::expire(clock::time_point now) {
  while (!order_.empty() && (order_.front().first + window_ <= now || order_.size() > max_ids_)) {
    erase(order_.front().second);
    order_.pop_front();
  }
}

bool duplicate_guard::seen(std::string_view id, clock::time_point now) {
  if (max_ids_ == 0) return false;
  const auto d = digest_of(id);
  std::lock_guard lock(mutex_);
  expire(now);
  return contains(d);
}

bool duplicate_guard::seen(std::string_view id, std::string_view other, clock::time_point now) {
  if (max_ids_ == 0) return false;
  return seen(digest_of(id), digest_of(other), now);
}

bool duplicate_guard::seen(const digest& id, const digest& other, clock::time_point now) {
  if (max_ids_ == 0) return false;
  std::lock_guard lock(mutex_);
  expire(now);
  return contains(id) || contains(other);
}

void duplicate_guard::remember(std::string_view id, clock::time_point now) {
  if (max_ids_ == 0) return;
  remember(digest_of(id), now);
}

void duplicate_guard::remember(const digest& d, clock::time_point now) {
  if (max_ids_ == 0) return;
  std::lock_guard lock(mutex_);
  if (insert(d)) order_.emplace_back(now, d);
  expire(now);
}

std::size_t duplicate_guard::table_slots() const {
  std::lock_guard lock(mutex_);
  return slots_.size();
}

std::size_t duplicate_guard::size() const {
  std::lock_guard lock(mutex_);
  return count_;
}

}  // namespace sendq::delivery
