#pragma once
/// The bounded record of provider requests behind GET /_sim/requests and GET /_sim/stats.
/// Not thread-safe: the simulator calls it under its lock.
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "fault_rules.hpp"
#include "http_types.hpp"
#include "providers.hpp"

namespace sendq::simulator {

struct request_record {
  std::uint64_t seq = 0;
  provider p = provider::sender;
  std::int64_t time_ms = 0;  ///< arrival, epoch milliseconds
  const http_request* request = nullptr;  ///< serialized at add(); not kept
  bool accepted = false;  ///< the provider processed and accepted it (false when a fault pre-empted it)
  bool valid = false;     ///< it passed validation (computed even when a fault pre-empted it)
  fault_action fault = fault_action::none;
  std::optional<unsigned> status;  ///< HTTP status answered; nullopt for reset / timeout
  std::string_view error;          ///< validation error, "" when valid
  std::string_view reply;          ///< reply body sent ("" when none)
};

class request_log {
 public:
  explicit request_log(std::size_t max_recorded) : max_(max_recorded) {}

  /// Serializes `r` into one JSON line and updates the counters; drops the oldest line when full.
  void add(const request_record& r);

  /// Recorded lines in arrival order, each ending in '\n': only provider `only` when set, only seq
  /// greater than `after_seq`, at most `limit` lines.
  std::string lines(std::optional<provider> only, std::uint64_t after_seq, std::size_t limit) const;

  /// {"total":N,"recorded":N,"dropped":N,"providers":{"gewe":{"requests":N,"accepted":N,"rejected":N,
  ///  "faulted":N,"faults":{"status":N,...}},...}}
  std::string stats_json() const;

  /// Forgets every line and zeroes every counter; returns how many lines were dropped.
  std::size_t clear();

 private:
  struct line {
    std::uint64_t seq;
    provider p;
    std::string json;
  };
  struct counters {
    std::uint64_t requests = 0, accepted = 0, rejected = 0, faulted = 0;
    std::map<std::string, std::uint64_t, std::less<>> faults;
  };

  std::size_t max_;
  std::deque<line> lines_;
  std::array<counters, 4> counters_{};
  std::uint64_t dropped_ = 0;
};

}  // namespace sendq::simulator
