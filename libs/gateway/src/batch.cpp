#include "sendq/gateway/batch.hpp"

#include <simdjson.h>

namespace sendq::gateway {

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
  for (auto element : arr) {
    const std::string where = "[" + std::to_string(i) + "]";
    od::value v;
    if (element.get(v)) return batch_error{where + ": malformed JSON"};
    od::json_type t;
    if (v.type().get(t) || t != od::json_type::object) return batch_error{where + ": must be a SendRequest object"};
    std::string_view raw;
    od::object o;
    if (v.get_object().get(o) || o.raw_json().get(raw)) return batch_error{where + ": malformed JSON"};
    if (++i > max_items) {
      return batch_error{"body: more than " + std::to_string(max_items) +
                         " requests in one batch (gateway.max_batch); split it"};
    }
    out.items.emplace_back(raw);
  }
  if (out.items.empty()) return batch_error{"body: empty array (nothing to send)"};
  return out;
}

}  // namespace sendq::gateway
