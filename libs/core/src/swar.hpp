#pragma once
// Eight bytes at a time ("SWAR"): the byte tests the decoder's scans and the JSON writer's escape
// check share. Private to libs/core.
#include <cstdint>
#include <cstring>

namespace sendq::core::swar {

constexpr std::uint64_t ones = 0x0101010101010101ULL;
constexpr std::uint64_t highs = 0x8080808080808080ULL;

inline std::uint64_t load8(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// 0x80 in each byte of `w` below `n` (n <= 0x80): exact up to and including the lowest such byte.
constexpr std::uint64_t bytes_below(std::uint64_t w, unsigned char n) { return (w - ones * n) & ~w & highs; }

// 0x80 in each byte of `w` equal to `c`, exact up to and including the lowest such byte (a byte
// above it may be marked wrongly by the borrow, which callers never look past). Bytes >= 0x80
// that differ from `c` are never marked.
constexpr std::uint64_t bytes_equal(std::uint64_t w, char c) {
  return bytes_below(w ^ (ones * static_cast<unsigned char>(c)), 1);
}

}  // namespace sendq::core::swar
