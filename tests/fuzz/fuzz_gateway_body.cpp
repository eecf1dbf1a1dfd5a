// Fuzz target: what the gateway does with a POST body before it produces anything: the batch
// splitter (one object or an array), the decoder on every element, and the legacy sender API's
// mapping (whose output must itself be a SendRequest the decoder accepts).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "sendq/core/request_decoder.hpp"
#include "sendq/gateway/batch.hpp"
#include "sendq/gateway/legacy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sendq;
  static core::request_decoder decoder;
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  auto split = gateway::split_batch(body, 100);
  if (auto* b = std::get_if<gateway::batch>(&split)) {
    if (b->items.empty() || b->items.size() > 100) std::abort();
    for (const auto& item : b->items) {
      core::send_request r;
      (void)decoder.decode(item, r);
    }
  }

  auto legacy = gateway::legacy_to_send_request(body, "default", "0123456789abcdef0123456789abcdef",
                                                1794999000000);
  if (auto* l = std::get_if<gateway::legacy_request>(&legacy)) {
    core::send_request r;
    if (auto f = decoder.decode(l->send_request_json, r)) {
      // A mapping the decoder then rejects is fine only when it names the field for the caller.
      (void)gateway::legacy_field_message(l->type, f->message);
    } else if (r.id != l->id || r.provider != "sender") {
      std::abort();
    }
  }
  return 0;
}
