#include "request_log.hpp"

#include <vector>

#include "json_text.hpp"

namespace sendq::simulator {

namespace {

/// Faults that answer instead of the provider, so the request never reaches its logic.
bool pre_empts(fault_action a) {
  switch (a) {
    case fault_action::status:
    case fault_action::reset:
    case fault_action::timeout:
    case fault_action::business_error:
    case fault_action::non_json:  // a proxy's page: the provider never saw it
    case fault_action::redirect: return true;
    case fault_action::none:
    case fault_action::latency:
    case fault_action::drop_after_headers:
    // The provider's logic ran; only the way its reply travels misbehaves.
    case fault_action::slow_drip:
    case fault_action::huge_body:
    case fault_action::wrong_content_type:
    case fault_action::chunked:
    case fault_action::close_after_reply:
    case fault_action::http10:
    case fault_action::no_message_id: return false;
  }
  return false;
}

}  // namespace

void request_log::add(const request_record& r) {
  const http_request& req = *r.request;
  std::string j;
  j.reserve(256 + req.body.size() + r.reply.size());
  j += "{\"seq\":" + std::to_string(r.seq) + ",\"time_ms\":" + std::to_string(r.time_ms) + ",\"provider\":\"";
  j += provider_name(r.p);
  j += "\",\"method\":";
  append_json_string(j, req.method);
  j += ",\"path\":";
  append_json_string(j, req.path());
  j += ",\"query\":";
  append_json_string(j, req.query());
  j += ",\"headers\":{";
  // Repeated headers are joined with ", " so that the object has unique keys.
  std::map<std::string_view, std::string> merged;
  std::vector<std::string_view> order;
  for (const auto& [name, value] : req.headers) {
    auto [it, fresh] = merged.try_emplace(name, value);
    if (fresh) {
      order.push_back(name);
    } else {
      it->second += ", " + value;
    }
  }
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i) j += ",";
    append_json_string(j, order[i]);
    j += ":";
    append_json_string(j, merged[order[i]]);
  }
  j += "},\"body\":";
  append_json_string(j, req.body);
  j += r.accepted ? ",\"accepted\":true" : ",\"accepted\":false";
  j += r.valid ? ",\"valid\":true" : ",\"valid\":false";
  j += ",\"fault\":\"";
  j += fault_action_name(r.fault);
  j += "\",\"status\":";
  j += r.status ? std::to_string(*r.status) : "null";
  j += ",\"error\":";
  if (r.error.empty()) {
    j += "null";
  } else {
    append_json_string(j, r.error);
  }
  j += ",\"reply\":";
  append_json_string(j, r.reply);
  j += "}\n";

  if (lines_.size() >= max_) {
    lines_.pop_front();
    ++dropped_;
  }
  lines_.push_back({r.seq, r.p, std::move(j)});

  auto& c = counters_[static_cast<std::size_t>(r.p)];
  ++c.requests;
  if (pre_empts(r.fault)) {
    ++c.faulted;
  } else if (r.accepted) {
    ++c.accepted;
  } else {
    ++c.rejected;
  }
  if (r.fault != fault_action::none) ++c.faults[std::string(fault_action_name(r.fault))];
}

std::string request_log::lines(std::optional<provider> only, std::uint64_t after_seq, std::size_t limit) const {
  std::string out;
  std::size_t n = 0;
  for (const auto& l : lines_) {
    if (n >= limit) break;
    if (l.seq <= after_seq || (only && l.p != *only)) continue;
    out += l.json;
    ++n;
  }
  return out;
}

std::string request_log::stats_json() const {
  std::uint64_t total = 0;
  for (const auto& c : counters_) total += c.requests;
  std::string out = "{\"total\":" + std::to_string(total) + ",\"recorded\":" + std::to_string(lines_.size()) +
                    ",\"dropped\":" + std::to_string(dropped_) + ",\"providers\":{";
  bool first = true;
  for (auto p : all_providers) {
    const auto& c = counters_[static_cast<std::size_t>(p)];
    if (!first) out += ",";
    first = false;
    out += "\"" + std::string(provider_name(p)) + "\":{\"requests\":" + std::to_string(c.requests) +
           ",\"accepted\":" + std::to_string(c.accepted) + ",\"rejected\":" + std::to_string(c.rejected) +
           ",\"faulted\":" + std::to_string(c.faulted) + ",\"faults\":{";
    bool first_fault = true;
    for (const auto& [name, n] : c.faults) {
      if (!first_fault) out += ",";
      first_fault = false;
      out += "\"" + name + "\":" + std::to_string(n);
    }
    out += "}}";
  }
  out += "}}";
  return out;
}

std::size_t request_log::clear() {
  std::size_t n = lines_.size();
  lines_.clear();
  counters_ = {};
  dropped_ = 0;
  return n;
}

}  // namespace sendq::simulator
