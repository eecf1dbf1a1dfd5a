// Fuzz target: every provider's reply classifier, with any status, content type and body.
// Input layout: byte 0 picks the provider, bytes 1-2 the HTTP status, byte 3 the content type and
// whether a Retry-After came; the rest is the body.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "sendq/providers/provider.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sendq::providers;
  static const std::array<std::unique_ptr<provider>, 4> all = {
      make_provider("sender"), make_provider("gewe"), make_provider("im"), make_provider("gps")};
  static constexpr std::array<std::string_view, 5> content_types = {
      "application/json", "application/json; charset=utf-8", "text/xml", "text/html", ""};
  if (size < 4) return 0;
  const provider& p = *all[data[0] % all.size()];
  // Mostly 200 (the body decides), sometimes any status 100-599.
  const unsigned status = (data[1] & 0x80) ? 100u + ((data[1] << 8 | data[2]) % 500u) : 200u;
  const std::string_view content_type = content_types[(data[3] & 0x7f) % content_types.size()];
  std::optional<std::chrono::milliseconds> retry_after;
  if (data[3] & 0x80) retry_after = std::chrono::milliseconds(data[2] * 1000);
  const std::string_view body(reinterpret_cast<const char*>(data) + 4, size - 4);

  const reply_outcome o = p.classify(status, content_type, body, retry_after);
  // Invariants every caller relies on.
  if (o.cls == outcome_class::delivered && status / 100 != 2) std::abort();
  if (o.cls != outcome_class::delivered && o.message.empty()) std::abort();
  if (o.retry_after && o.cls != outcome_class::retryable) std::abort();
  // A reply lacking the provider's id is delivered without one, never with half of one.
  if (!o.id_problem.empty() && (o.cls != outcome_class::delivered || !o.provider_message_id.empty())) std::abort();
  return 0;
}
