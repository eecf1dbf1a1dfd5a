// Fuzz target: the SendRequest decoder, then every step a decoded request goes through before it
// is sent (the provider's build() with an account like the seeds') and the retry-topic round trips
// (a park's members added → decode gives the request with them, and taken out again the original
// bytes; encode_request → decode must give the same request back).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "sendq/core/added_members.hpp"
#include "sendq/core/request_decoder.hpp"
#include "sendq/core/result_encoder.hpp"
#include "sendq/providers/provider.hpp"
#include "seed_accounts.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
  __builtin_printf("round trip broke: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sendq;
  static core::request_decoder decoder;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  core::send_request r;
  if (decoder.decode(bytes, r)) return 0;  // rejected with a failure: fine

  // The decoder's fast pass reads flat objects without a DOM parse: what it passes on raw must
  // still be valid JSON objects with no repeated member name at the top.
  static simdjson::dom::parser dom;
  for (const std::string* raw : {&r.body_json, &r.ext_json, &r.provider_fields_json}) {
    if (raw->empty()) continue;
    simdjson::dom::object obj;
    if (dom.parse(raw->data(), raw->size()).get_object().get(obj)) broken("a raw object is not valid JSON");
    std::vector<std::string_view> keys;
    for (auto field : obj) keys.push_back(field.key);
    std::sort(keys.begin(), keys.end());
    if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) broken("a raw object repeats a member");
  }

  if (const auto p = providers::make_provider(r.provider)) {
    (void)p->build(r, providers::testing::account_for(r.provider));
  }

  // A park: the original with the members the worker adds (attempt, not_before, and created_at
  // when it has none) reads as the request with them whenever the original has neither attempt
  // nor not_before (the worker adds them then without decoding the park again; else it writes its
  // encoding, below), and taking them out again gives the original, byte for byte.
  std::string members = R"("attempt":3,"not_before":1700000000000)";
  if (!r.created_at_ms) members += R"(,"created_at":1690000000000)";
  if (auto added = core::add_members(bytes, members)) {
    if (!r.retry_members_read) {
      core::send_request parked;
      if (decoder.decode(added->value, parked)) broken("a park of a request without attempt or not_before is rejected");
      if (parked.id != r.id || parked.key != r.key || parked.body_json != r.body_json || parked.attempt != 3 ||
          parked.not_before_ms != 1700000000000 || parked.created_at_ms != r.created_at_ms.value_or(1690000000000)) {
        broken("a park's members changed the request");
      }
    }
    std::string original = added->value;
    if (!core::remove_added_members(original, added->header) || original != bytes) broken("a park's original bytes");
  } else {
    broken("a decoded request took no members");
  }

  // The worker's encoding, which it writes to sendq.retry when the members cannot be added.
  std::string again;
  core::encode_request(r, again);
  core::send_request back;
  if (decoder.decode(again, back)) broken("encode_request output rejected by the decoder");
  if (back.id != r.id) broken("id");
  if (back.provider != r.provider) broken("provider");
  if (back.account != r.account) broken("account");
  if (back.type != r.type) broken("type");
  if (back.to != r.to) broken("to");
  if (back.from != r.from) broken("from");
  if (back.key != r.key) broken("key");
  if (back.body_json != r.body_json) broken("body");
  if (back.ext_json != r.ext_json) broken("ext");
  if (back.deadline_ms != r.deadline_ms) broken("deadline_ms");
  if (back.created_at_ms != r.created_at_ms) broken("created_at");
  return 0;
}
