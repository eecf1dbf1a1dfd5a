#include "sendq/delivery/duplicate_guard.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

using sendq::delivery::duplicate_guard;
using namespace std::chrono_literals;

TEST(duplicate_guard, remembers_ended_ids_for_the_window) {
  duplicate_guard g(10s, 100);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  EXPECT_FALSE(g.seen("a", t0));
  g.remember("a", t0);
  EXPECT_TRUE(g.seen("a", t0 + 9s));
  EXPECT_FALSE(g.seen("b", t0 + 9s));
  EXPECT_FALSE(g.seen("a", t0 + 10s)) << "forgotten after the window";
}

TEST(duplicate_guard, answers_for_either_of_two_keys_in_one_lookup) {
  duplicate_guard g(10s, 100);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  g.remember("pos", t0);
  EXPECT_TRUE(g.seen("id", "pos", t0 + 1s));
  EXPECT_FALSE(g.seen("id", "other", t0 + 1s));
  g.remember("id", t0 + 2s);
  EXPECT_TRUE(g.seen("id", "other", t0 + 3s));
  EXPECT_FALSE(g.seen("pos", "other", t0 + 10s)) << "'pos' forgotten after the window";
  EXPECT_TRUE(g.seen("x", "id", t0 + 10s));
}

// The worker works an id's digest out once at admission and passes it later: the overloads taking
// digests must agree with those taking the ids, both ways.
TEST(duplicate_guard, digests_worked_out_once_stand_for_their_ids) {
  duplicate_guard g(10s, 100);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  const auto id = g.digest_of("id-1");
  const auto pos = g.digest_of("id-1 sendq.requests 3:17");
  EXPECT_EQ(id, g.digest_of("id-1")) << "the same id, the same digest";
  EXPECT_FALSE(id == pos);
  EXPECT_FALSE(g.seen(id, pos, t0));
  g.remember(pos, t0);
  EXPECT_TRUE(g.seen("id-2", "id-1 sendq.requests 3:17", t0 + 1s)) << "remembered by digest, found by string";
  g.remember("id-3", t0 + 2s);
  EXPECT_TRUE(g.seen(g.digest_of("id-4"), g.digest_of("id-3"), t0 + 3s)) << "remembered by string, found by digest";
  EXPECT_FALSE(g.seen(id, g.digest_of("id-4"), t0 + 3s));
  EXPECT_FALSE(g.seen(id, pos, t0 + 10s)) << "forgotten after the window, as by string";
  duplicate_guard off(10s, 0);
  off.remember(id, t0);
  EXPECT_FALSE(off.seen(id, id, t0));
}

TEST(duplicate_guard, stays_within_its_size_bound) {
  duplicate_guard g(1h, 3);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  for (auto id : {"a", "b", "c", "d"}) g.remember(id, t0);
  EXPECT_EQ(g.size(), 3u);
  EXPECT_FALSE(g.seen("a", t0)) << "the oldest goes first";
  EXPECT_TRUE(g.seen("d", t0));
}

TEST(duplicate_guard, is_off_with_zero_ids) {
  duplicate_guard g(1h, 0);
  g.remember("a", duplicate_guard::clock::time_point{});
  EXPECT_FALSE(g.seen("a", duplicate_guard::clock::time_point{}));
}

// The reference vectors (veorq/SipHash vectors.h, vectors_sip128): key 00..0f, message 00..len-1;
// the tag is the two 64-bit halves, each little-endian.
TEST(duplicate_guard, siphash128_matches_the_reference_vectors) {
  const std::array<std::uint64_t, 2> key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  std::string msg;
  for (int i = 0; i < 64; ++i) msg.push_back(static_cast<char>(i));
  auto hex = [](const duplicate_guard::digest& d) {
    std::string out;
    char buf[3];
    for (auto half : {d.lo, d.hi}) {
      for (int i = 0; i < 8; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>((half >> (8 * i)) & 0xff));
        out += buf;
      }
    }
    return out;
  };
  EXPECT_EQ(hex(duplicate_guard::siphash128(std::string_view(msg).substr(0, 0), key)), "a3817f04ba25a8e66df67214c7550293");
  EXPECT_EQ(hex(duplicate_guard::siphash128(std::string_view(msg).substr(0, 7), key)), "a1f1ebbed8dbc153c0b84aa61ff08239");
  EXPECT_EQ(hex(duplicate_guard::siphash128(std::string_view(msg).substr(0, 8), key)), "3b62a9ba6258f5610f83e264f31497b4");
  EXPECT_EQ(hex(duplicate_guard::siphash128(std::string_view(msg).substr(0, 15), key)), "5493e99933b0a8117e08ec0f97cfc3d9");
  EXPECT_EQ(hex(duplicate_guard::siphash128(std::string_view(msg).substr(0, 63), key)), "5150d1772f50834a503e069a973fbd7c");
}

TEST(duplicate_guard, tells_ids_apart_that_differ_in_one_byte) {
  duplicate_guard g(1h, 1000);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  g.remember("order-000123-sender-text", t0);
  EXPECT_TRUE(g.seen("order-000123-sender-text", t0));
  EXPECT_FALSE(g.seen("order-000124-sender-text", t0));
  EXPECT_FALSE(g.seen("order-000123-sender-tex", t0));
  EXPECT_FALSE(g.seen("", t0));
}

// The table behind the guard (open addressing, ids forgotten by shifting later entries back) is
// churned through a hundred times its size: every id still within the bound must be found, and
// every one forgotten must not, including ones in the same probe runs as those moved.
TEST(duplicate_guard, keeps_exactly_the_latest_ids_while_churning) {
  constexpr std::size_t bound = 400;  // ~40% of the first table: long probe runs wrap around it
  duplicate_guard g(1h, bound);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  auto id = [](std::size_t i) { return "req-" + std::to_string(i); };
  for (std::size_t i = 0; i < 40'000; ++i) {
    g.remember(id(i), t0);
    if (i % 3 == 0) g.remember(id(i), t0);  // remembering twice keeps one entry
    ASSERT_EQ(g.size(), std::min(i + 1, bound)) << "after id " << i;
    if (i % 997 == 0 || i < 2 * bound) {
      for (std::size_t k = (i + 1 > bound ? i + 1 - bound : 0); k <= i; ++k) {
        ASSERT_TRUE(g.seen(id(k), t0)) << id(k) << " forgotten too early, after " << id(i);
      }
      for (std::size_t k = (i + 1 > 2 * bound ? i + 1 - 2 * bound : 0); k + bound <= i; ++k) {
        ASSERT_FALSE(g.seen(id(k), t0)) << id(k) << " still remembered after " << id(i);
      }
    }
  }
}

TEST(duplicate_guard, forgets_by_age_and_remembers_again) {
  duplicate_guard g(10s, 1000);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  for (int i = 0; i < 500; ++i) g.remember("a" + std::to_string(i), t0);
  for (int i = 0; i < 500; ++i) g.remember("b" + std::to_string(i), t0 + 5s);
  EXPECT_TRUE(g.seen("a499", t0 + 9s));
  EXPECT_FALSE(g.seen("a0", t0 + 10s)) << "the first 500 expire together";
  EXPECT_EQ(g.size(), 500u);
  EXPECT_FALSE(g.seen("a499", t0 + 10s));
  EXPECT_TRUE(g.seen("b0", t0 + 10s));
  g.remember("a0", t0 + 10s);
  EXPECT_TRUE(g.seen("a0", t0 + 14s));
  EXPECT_EQ(g.size(), 501u);
}

// The table is made for the bound when the guard is, so that it never doubles (a rehash of every
// digest under the lock, with every I/O thread waiting) while the worker delivers.
TEST(duplicate_guard, makes_its_table_for_the_bound_at_once) {
  duplicate_guard g(1h, 200'000);  // the default dedupe_max_ids
  EXPECT_EQ(g.table_slots(), 524'288u) << "the least power of two over twice 200,001";
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  for (int i = 0; i < 250'000; ++i) g.remember("req-" + std::to_string(i), t0);
  EXPECT_EQ(g.size(), 200'000u);
  EXPECT_EQ(g.table_slots(), 524'288u) << "it grew";
  EXPECT_TRUE(g.seen("req-249999", t0));
  EXPECT_TRUE(g.seen("req-50000", t0));
  EXPECT_FALSE(g.seen("req-49999", t0));

  EXPECT_EQ(duplicate_guard(1h, 100).table_slots(), 1024u);
  EXPECT_EQ(duplicate_guard(1h, 0).table_slots(), 0u) << "off: no table";
  // remember() holds the bound plus one for a moment: the table stays at most half full
  EXPECT_EQ(duplicate_guard(1h, 262'143).table_slots(), 524'288u);
  EXPECT_EQ(duplicate_guard(1h, 262'144).table_slots(), 1'048'576u);
}

// A bound past 500,000 starts with the table for 500,000 (16 MB) and doubles as it fills, keeping
// every id it holds.
TEST(duplicate_guard, grows_past_the_table_made_at_once_for_a_larger_bound) {
  duplicate_guard g(1h, 600'000);
  EXPECT_EQ(g.table_slots(), 1'048'576u);
  const auto t0 = duplicate_guard::clock::time_point{} + 1h;
  for (int i = 0; i < 650'000; ++i) g.remember("req-" + std::to_string(i), t0);
  EXPECT_EQ(g.table_slots(), 2'097'152u) << "doubled once 524,288 ids were held";
  EXPECT_EQ(g.size(), 600'000u);
  for (const int i : {50'000, 50'001, 300'000, 524'288, 649'999}) {
    EXPECT_TRUE(g.seen("req-" + std::to_string(i), t0)) << i;
  }
  EXPECT_FALSE(g.seen("req-49999", t0));
  EXPECT_FALSE(g.seen("req-0", t0));
}
