// Request handling of sendq-gateway. Validation first (nothing is produced for a request with one
// bad element), then produce every record and wait for the broker's acks on the connection's strand.
#include "sendq/gateway/gateway.hpp"

#include <ctime>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "sendq/core/json_writer.hpp"
#include "sendq/core/percent_decode.hpp"
#include "sendq/gateway/auth.hpp"
#include "sendq/gateway/batch.hpp"
#include "sendq/gateway/legacy.hpp"
#include "sendq/kafka/producer.hpp"
#include "sendq/log/logger.hpp"
#include "sendq/metrics/gateway_metrics.hpp"
#include "sendq/providers/provider.hpp"

namespace sendq::gateway {
namespace {

namespace net = boost::asio;
constexpr auto nothrow = net::as_tuple(net::use_awaitable);

http::server_response json(unsigned status, std::string body) {
  return http::server_response{status, "application/json", std::move(body), {}};
}

// {"error":{"kind":..,"message":..[,"index":i]}}
http::server_response error_reply(unsigned status, std::string_view kind, std::string_view message, long index = -1) {
  std::string out;
  core::json_writer w(out);
  w.begin_object().key("error").begin_object().field("kind", kind).field("message", message);
  if (index >= 0) w.field("index", static_cast<std::int64_t>(index));
  w.end_object().end_object();
  out += '\n';
  auto r = json(status, std::move(out));
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

// A record over Kafka's message size limit (the producer's or the broker's message.max.bytes),
// refused at once ("not queued: ...") or in its delivery report: re-sending it cannot help.
bool over_kafka_limit(std::string_view error) {
  constexpr std::string_view not_queued = "not queued: ";
  if (error.starts_with(not_queued)) error.remove_prefix(not_queued.size());
  return kafka::is_message_too_large(error);
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

constexpr std::string_view messages_path = "/v1/messages";
constexpr std::string_view legacy_path = "/sender/v1/handleBasicMessage";
constexpr std::string_view messages_unauthorized =
    "missing or unknown API key (send Authorization: Bearer <key> or X-API-Key)";
constexpr std::string_view legacy_unauthorized =
    "missing or unknown API key (Authorization: Bearer <key>, X-API-Key, or the sign parameter)";

// The legacy endpoint's key: a header, as on /v1/messages, or its `sign` query parameter, so that
// existing callers only change a configured value.
std::string legacy_key(const http::server_request& req) {
  if (const auto key = presented_key(req); !key.empty()) return std::string(key);
  std::string sign;
  const auto q = req.target.find('?');
  std::string_view query = q == std::string::npos ? std::string_view() : std::string_view(req.target).substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    if (pair.starts_with("sign=")) sign = std::string(pair.substr(5));
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  return sign;
}

// A key in `sign` may come percent-encoded (a key with + / = in it, encoded by its caller's URL
// library) or as it is (a literal '+', which decoding would make a space): either matches.
bool legacy_key_accepted(const std::vector<std::string>& keys, const http::server_request& req) {
  const auto key = legacy_key(req);
  if (key_accepted(keys, key)) return true;
  if (key.find('%') == std::string::npos) return false;
  const auto decoded = core::percent_decode(key);
  return decoded && key_accepted(keys, *decoded);
}

// The sender adapter's own limits (seeds 000/001), checked up front so that legacy callers get
// the old API's synchronous errors. Placeholder credentials: only the checks matter here.
std::optional<core::failure> sender_checks(const core::send_request& r) {
  static const auto sender = providers::make_provider("sender");
  providers::account a;
  a.provider = "sender";
  a.name = r.account;
  a.base_url = "http://127.0.0.1";
  a.settings = {{"api_version", "01"}, {"client", "-"}, {"channel", "-"}, {"version", "2.0"}, {"sign", "-"}};
  auto built = sender->build(r, a);
  if (auto* f = std::get_if<core::failure>(&built)) return *f;
  return std::nullopt;
}

}  // namespace

http::server_response refusal_reply(unsigned status, std::string_view reason, std::size_t body_limit) {
  if (status == 413) {
    return error_reply(413, "too_large", "body: over gateway.body_limit_bytes (" + std::to_string(body_limit) + " bytes)");
  }
  if (status == 503 && reason == "too much request body in memory") {
    return error_reply(503, "busy", "body: the request bodies held would go over gateway.max_body_bytes_in_flight; retry later");
  }
  if (status == 431) {
    return error_reply(431, "too_large", "headers: over the 8 KiB the gateway reads for a request's head");
  }
  if (status == 500) {
    return error_reply(500, "internal", "request: the gateway failed to handle it (" + std::string(reason) +
                                            "); send it again");
  }
  if (status == 503) {
    const bool full = reason == "too many connections";
    return error_reply(503, "busy", "connection: " + std::string(reason) + (full ? " (gateway.max_connections)" : "") +
                                        "; retry later");
  }
  return error_reply(status, "bad_request", "request: not valid HTTP/1.1 (" + std::string(reason) + ")");
}

struct gateway::produced {
  explicit produced(net::any_io_executor ex, std::size_t n) : timer(ex), errors(n), ended(n, false), remaining(n) {}
  net::steady_timer timer;
  std::vector<std::string> errors;
  std::vector<bool> ended;  // a report (or a refusal) came for that record: its `errors` slot is final
  std::size_t remaining;    // touched only on the connection's strand
};

gateway::gateway(gateway_options opts, record_sink& sink, log::logger& log, gateway_seams seams,
                 metrics::gateway_metrics* metrics)
    : opts_(std::move(opts)), sink_(sink), log_(log), seams_(std::move(seams)), metrics_(metrics) {
  if (!seams_.new_id) seams_.new_id = [] { return generate_message_id(); };
  if (!seams_.now) seams_.now = [] { return std::chrono::system_clock::now(); };
}

gateway::~gateway() = default;

std::unique_ptr<core::request_decoder> gateway::take_decoder() {
  {
    std::lock_guard lock(decoders_mu_);
    if (!decoders_.empty()) {
      auto d = std::move(decoders_.back());
      decoders_.pop_back();
      return d;
    }
  }
  return std::make_unique<core::request_decoder>(opts_.max_request_bytes);
}

void gateway::give_back(std::unique_ptr<core::request_decoder> d) {
  std::lock_guard lock(decoders_mu_);
  decoders_.push_back(std::move(d));
}

std::string gateway::operation_time() const {
  const std::time_t t = std::chrono::system_clock::to_time_t(seams_.now());
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

namespace {

// The answer to a request that does not reach an endpoint's handler (/healthz, an unknown path, a
// method other than POST), which needs no body: check_head() gives it before the body of one that
// has a body, handle() the others.
std::optional<http::server_response> route_reply(const http::server_request& req) {
  const auto path = path_of(req.target);
  if (path == "/healthz") {
    if (req.method == "GET" || req.method == "HEAD") return http::server_response{200, "text/plain", "ok\n", {}};
    auto r = error_reply(405, "method_not_allowed", "use GET or HEAD");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (path != messages_path && path != legacy_path) {
    return error_reply(404, "not_found", "no such endpoint: POST /v1/messages or POST /sender/v1/handleBasicMessage");
  }
  if (req.method != "POST") {
    auto r = error_reply(405, "method_not_allowed", "use POST");
    r.headers.emplace_back("Allow", "POST");
    return r;
  }
  return std::nullopt;
}

}  // namespace

net::awaitable<http::server_response> gateway::handle(http::server_request req) {
  const auto started = std::chrono::steady_clock::now();
  const auto path = path_of(req.target);
  const auto count = [&](std::string_view endpoint, unsigned code) {
    if (!metrics_) return;
    metrics_->count_request(endpoint, code,
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  if (auto r = route_reply(req)) {
    if (path != "/healthz") count("other", r->status);  // probes are not counted
    co_return std::move(*r);
  }
  if (path == messages_path) {
    auto r = co_await handle_messages(req);
    count("messages", r.status);
    co_return r;
  }
  auto [r, code] = co_await handle_legacy(req);
  count("legacy", static_cast<unsigned>(code));
  co_return std::move(r);
}

std::optional<http::server_response> gateway::check_head(const http::server_request& head) const {
  // Only a POST to an endpoint has its body read (and counted against max_body_bytes_in_flight):
  // another path or method with a body is answered now, so that no caller holds bodies through it.
  // The rest (/healthz, a GET without a body) are left to handle(), which keeps the connection.
  if (auto r = route_reply(head)) {
    const auto length = head.header("content-length");
    const bool has_body = !head.header("transfer-encoding").empty() || (!length.empty() && length != "0");
    if (r->status == 200 || !has_body) return std::nullopt;
    if (metrics_) metrics_->count_early_answer("other", r->status);
    return r;
  }
  const auto path = path_of(head.target);
  if (path == messages_path && !key_accepted(opts_.api_keys, presented_key(head))) {
    if (metrics_) metrics_->count_early_answer("messages", 401);
    return error_reply(401, "unauthorized", messages_unauthorized);
  }
  if (path == legacy_path && !legacy_key_accepted(opts_.api_keys, head)) {
    if (metrics_) metrics_->count_early_answer("legacy", 401);
    return http::server_response{200, "application/json;charset=UTF-8",
                                 legacy_reply(401, legacy_unauthorized, std::nullopt, operation_time(), opts_.host_name), {}};
  }
  return std::nullopt;
}

net::awaitable<std::optional<std::vector<std::string>>> gateway::produce_all(
    const std::vector<std::pair<std::string, std::string>>& records) {
  const std::size_t n = records.size();
  // Reserve the in-flight budget for the whole request up front, or refuse it whole.
  auto before = in_flight_.fetch_add(n);
  if (before + n > opts_.max_in_flight) {
    in_flight_.fetch_sub(n);
    co_return std::nullopt;
  }
  auto ex = co_await net::this_coro::executor;
  auto state = std::make_shared<produced>(ex, n);
  // Counted as each record ends: acknowledged or failed (in its report, or refused at once).
  const auto ended = [this](bool ok) {
    if (!metrics_) return;
    metrics_->records_in_flight.Decrement();
    metrics_->records.Add({{"result", ok ? "acknowledged" : "failed"}}).Increment();
  };
  if (metrics_) metrics_->records_in_flight.Increment(static_cast<double>(n));
  for (std::size_t i = 0; i < n; ++i) {
    auto err = sink_.produce(opts_.topic, records[i].first, records[i].second,
                             [this, state, ex, i, ended](const std::string& error) {
                               in_flight_.fetch_sub(1);
                               ended(error.empty());
                               // Back to the connection's strand, where `state` is read.
                               net::post(ex, [state, i, error] {
                                 state->errors[i] = error;
                                 state->ended[i] = true;
                                 if (--state->remaining == 0) state->timer.cancel();
                               });
                             });
    if (!err.empty()) {
      in_flight_.fetch_sub(1);
      ended(false);
      state->errors[i] = "not queued: " + err;
      state->ended[i] = true;
      --state->remaining;
    }
  }
  if (state->remaining > 0) {
    state->timer.expires_after(opts_.ack_timeout);
    auto [ec] = co_await state->timer.async_wait(nothrow);
    // Cancelled = every ack arrived. Expired: the rest may still be written later. Only those are
    // named: a record already acknowledged must not be reported failed (its caller would send it
    // again).
    if (!ec && state->remaining > 0) {
      auto errors = state->errors;
      for (std::size_t i = 0; i < n; ++i) {
        if (!state->ended[i]) errors[i] = "no broker acknowledgement within " + std::to_string(opts_.ack_timeout.count()) + " ms";
      }
      co_return errors;
    }
  }
  // A copy, not a move: a report that comes after the wait still writes its slot of `state->errors`.
  co_return state->errors;
}

net::awaitable<http::server_response> gateway::handle_messages(const http::server_request& req) {
  if (!key_accepted(opts_.api_keys, presented_key(req))) co_return error_reply(401, "unauthorized", messages_unauthorized);
  auto split = split_batch(req.body, opts_.max_batch);
  if (auto* e = std::get_if<batch_error>(&split)) {
    if (e->too_large) co_return error_reply(413, "too_large", e->message);
    co_return error_reply(400, "invalid_json", e->message, e->index ? static_cast<long>(*e->index) : -1);
  }
  auto& b = std::get<batch>(split);
  // produce_all() reserves a whole request's records at once: a batch larger than the limit could
  // never be admitted, so a 503 would invite retries that cannot succeed.
  if (b.items.size() > opts_.max_in_flight) {
    co_return error_reply(413, "too_large", "body: " + std::to_string(b.items.size()) +
                                                " requests in one batch, more than gateway.max_in_flight (" +
                                                std::to_string(opts_.max_in_flight) + ") can ever hold; split it");
  }

  // Validate everything before producing anything.
  std::vector<std::pair<std::string, std::string>> records;
  std::vector<std::string> ids;
  records.reserve(b.items.size());
  {
    auto decoder = take_decoder();
    core::send_request r;
    for (std::size_t i = 0; i < b.items.size(); ++i) {
      if (auto f = decoder->decode(b.items[i], r)) {
        give_back(std::move(decoder));
        const std::string where = b.is_array ? "[" + std::to_string(i) + "]." : "";
        const unsigned status = f->kind == core::error_kind::too_large ? 413 : 400;
        co_return error_reply(status, core::to_string(f->kind), where + f->message, b.is_array ? static_cast<long>(i) : -1);
      }
      ids.push_back(r.id);
      records.emplace_back(r.key, std::move(b.items[i]));
    }
    give_back(std::move(decoder));
  }

  auto errors = co_await produce_all(records);
  if (!errors) {
    co_return error_reply(503, "overloaded", "too many requests awaiting the broker (gateway.max_in_flight); retry later");
  }
  std::string out;
  core::json_writer w(out);
  std::size_t failed = 0;
  for (const auto& e : *errors) failed += e.empty() ? 0 : 1;
  if (failed == 0) {
    w.begin_object();
    if (b.is_array) {
      w.key("ids").begin_array();
      for (const auto& id : ids) w.value(id);
      w.end_array();
    } else {
      w.field("id", ids.front());
    }
    w.end_object();
    out += '\n';
    co_return json(202, std::move(out));
  }
  // Some records were not acknowledged: name them. Re-sending the whole request is safe: ids are
  // idempotency keys (the worker's duplicate guard, the providers' dedupe). Unless one is over
  // Kafka's size limit: that is the caller's to fix (413), as a body over the decoder's limit is.
  std::optional<std::size_t> too_large;
  for (std::size_t i = 0; i < errors->size() && !too_large; ++i) {
    if (over_kafka_limit((*errors)[i])) too_large = i;
  }
  log_.warn("gateway", "records not acknowledged", {{"failed", std::to_string(failed)}, {"first_error", [&] {
                                                       for (const auto& e : *errors) if (!e.empty()) return std::string_view(e);
                                                       return std::string_view();
                                                     }()}});
  if (too_large) {
    const auto i = *too_large;
    w.begin_object().key("error").begin_object().field("kind", "too_large")
        .field("message", (b.is_array ? "[" + std::to_string(i) + "]." : std::string()) + "message: " +
                              std::to_string(records[i].second.size()) +
                              " bytes is over Kafka's message size limit (message.max.bytes); make it smaller");
    if (b.is_array) w.field("index", static_cast<std::int64_t>(i));
    w.end_object();
  } else {
    w.begin_object().key("error").begin_object().field("kind", "unavailable")
        .field("message", std::to_string(failed) + " of " + std::to_string(errors->size()) +
                              " records were not acknowledged by Kafka; re-send them (ids make it safe)")
        .end_object();
  }
  w.key("failed").begin_array();
  for (std::size_t i = 0; i < errors->size(); ++i) {
    if ((*errors)[i].empty()) continue;
    w.begin_object().field("index", static_cast<std::int64_t>(i)).field("id", ids[i]).field("error", (*errors)[i]).end_object();
  }
  w.end_array().end_object();
  out += '\n';
  auto r = json(too_large ? 413 : 503, std::move(out));
  if (!too_large) r.headers.emplace_back("Retry-After", "1");
  co_return r;
}

net::awaitable<std::pair<http::server_response, int>> gateway::handle_legacy(const http::server_request& req) {
  // The legacy API answers in its own shape with HTTP 200 and the outcome in `code`, as its
  // callers expect. Its `sign` query parameter may carry the API key, so existing callers only
  // change a configured value.
  const auto now = operation_time();
  auto reply = [&](int code, std::string_view message, std::optional<std::string_view> id) {
    return std::pair{http::server_response{200, "application/json;charset=UTF-8",
                                           legacy_reply(code, message, id, now, opts_.host_name), {}},
                     code};
  };
  if (!legacy_key_accepted(opts_.api_keys, req)) co_return reply(401, legacy_unauthorized, std::nullopt);

  const auto created = std::chrono::duration_cast<std::chrono::milliseconds>(seams_.now().time_since_epoch()).count();
  auto mapped = legacy_to_send_request(req.body, opts_.legacy_account, seams_.new_id(), created);
  if (auto* e = std::get_if<legacy_error>(&mapped)) co_return reply(400, e->message, std::nullopt);
  auto& lr = std::get<legacy_request>(mapped);

  std::string key_text;
  {
    auto decoder = take_decoder();
    core::send_request r;
    auto f = decoder->decode(lr.send_request_json, r);
    give_back(std::move(decoder));
    if (!f) f = sender_checks(r);
    // Too large: 413 as on /v1/messages (not a field to fix, and never worth re-sending).
    if (f) co_return reply(f->kind == core::error_kind::too_large ? 413 : 400, legacy_field_message(lr.type, f->message), std::nullopt);
    key_text = r.key;
  }
  std::vector<std::pair<std::string, std::string>> records;  // named: GCC mishandles braced temporaries in co_await
  records.emplace_back(key_text, lr.send_request_json);
  auto errors = co_await produce_all(records);
  if (!errors) co_return reply(503, "busy: too many messages awaiting Kafka, retry later", std::nullopt);
  if (over_kafka_limit(errors->front())) {
    co_return reply(413, "message: " + std::to_string(lr.send_request_json.size()) +
                             " bytes is over Kafka's message size limit (message.max.bytes); make it smaller",
                     std::nullopt);
  }
  if (!errors->front().empty()) {
    log_.warn("gateway", "legacy message not acknowledged", {{"id", lr.id}, {"error", errors->front()}});
    // It may still be written: the id goes back with the 503, so that a caller who sent none can
    // re-send with it and the worker's duplicate guard (and the sender API) see one message.
    co_return reply(503, "not stored (" + errors->front() + "); retry with the same getMessageId (data.getMessageId)", lr.id);
  }
  co_return reply(200, "成功", lr.id);
}

}  // namespace sendq::gateway
