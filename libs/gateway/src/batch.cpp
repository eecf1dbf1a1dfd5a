#include "sendq/gateway/batch.hpp"

#include <simdjson.h>

namespace sendq::gateway {
namespace {

// On-Demand's raw_json() finds an element's end by counting brackets without validating it, so a
// malformed element (`{"id":}`) can swallow what follows and the error surfaces at a later
// element. The first element that is not valid JSON on its own is the one to name.
std::optional<std::size_t> first_malformed(const std::vector<std::string>& items) {
  simdjson::dom::parser parser;
  for (std::size_t i = 0; i < items.size(); ++i) {
    simdjson::dom::element el;
    if (parser.parse(items[i]).get(el)) return i;
  }
  return std::nullopt;
}

}  // namespace

std::variant<batch, batch_error> split_batch(std::string_view body, std::size_t max_items) {
  const auto start = body.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return batch_error{"body: empty (send a SendRequest object or an array of them)"};
  batch out;
  if (body[start] == '{') {
    out.items.emplace_back(body);  // the decoder checks it
    return out;
  }
  if (body[start] != '[') return batch_error{"body: must be a SendRequest object or a JSON array of them"};
  out.is_array = true;
  namespace od = simdjson::ondemand;
  od::parser parser;
  simdjson::padded_string padded(body);
  od::document doc;
  if (parser.iterate(padded).get(doc)) return batch_error{"body: malformed JSON"};
  od::array arr;
  if (doc.get_array().get(arr)) return batch_error{"body: malformed JSON array"};
  std::size_t i = 0;
  const auto element_error = [&](std::string_view what) {
    if (auto k = first_malformed(out.items)) return batch_error{"[" + std::to_string(*k) + "]: malformed JSON", k};
    return batch_error{"[" + std::to_string(i) + "]: " + std::string(what), i};
  };
  for (auto element : arr) {
    od::value v;
    if (element.get(v)) return element_error("malformed JSON");
    od::json_type t;
    if (v.type().get(t) || t != od::json_type::object) return element_error("must be a SendRequest object");
    std::string_view raw;
    od::object o;
    if (v.get_object().get(o) || o.raw_json().get(raw)) return element_error("malformed JSON");
    if (++i > max_items) {
      return batch_error{"body: more than " + std::to_string(max_items) +
                             " requests in one batch (gateway.max_batch); split it",
                         std::nullopt, true};
    }
    out.items.emplace_back(raw);
  }
  // As the decoder refuses a single object followed by more: `[M]]]` or `[M] [1]` is not one array.
  if (!doc.current_location().error()) return batch_error{"body: trailing content after the JSON array"};
  if (out.items.empty()) return batch_error{"body: empty array (nothing to send)"};
  return out;
}

}  // namespace sendq::gateway
