#pragma once
/// The gateway's request handling: `POST /v1/messages` (a SendRequest or a JSON array of them)
/// and the legacy `POST /sender/v1/handleBasicMessage`. Validates with the worker's decoder,
/// produces to the requests topic, and answers only after the broker acknowledged every record.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "sendq/core/request_decoder.hpp"
#include "sendq/gateway/record_sink.hpp"
#include "sendq/http/server.hpp"

namespace sendq::log {
class logger;
}
namespace sendq::metrics {
struct gateway_metrics;
}

namespace sendq::gateway {

struct gateway_options {
  std::string topic = "sendq.requests";
  std::size_t max_batch = 1000;         ///< elements of one JSON array
  std::size_t max_in_flight = 20000;    ///< records awaiting their ack, over all requests; beyond: 503
  std::chrono::milliseconds ack_timeout{30000};
  std::vector<std::string> api_keys;    ///< empty = no authentication
  std::string legacy_account = "default";
  std::string host_name;                ///< `foot.host` of legacy replies
  std::size_t max_request_bytes = core::default_max_request_bytes;
};

/// The HTTP server's own refusals (http::server_options::refusal) in the gateway's JSON error
/// shape: 413 `too_large` naming gateway.body_limit_bytes, 503 `busy` (over gateway.max_connections,
/// or stopping; with Retry-After), 400 `bad_request` (malformed HTTP).
http::server_response refusal_reply(unsigned status, std::string_view reason, std::size_t body_limit);

/// Seams for tests: id generator and wall clock.
struct gateway_seams {
  std::function<std::string()> new_id;
  std::function<std::chrono::system_clock::time_point()> now;
};

class gateway {
 public:
  /// `sink` and `metrics` (none: not counted) must outlive the gateway.
  gateway(gateway_options opts, record_sink& sink, log::logger& log, gateway_seams seams = {},
          metrics::gateway_metrics* metrics = nullptr);
  ~gateway();

  /// The server's async handler. Runs on the connection's strand (acks are posted back to it).
  boost::asio::awaitable<http::server_response> handle(http::server_request req);
  /// The server's on_head check, before a body is read: the answer handle() would give to a POST
  /// whose API key is missing or unknown, and to a request with a body for another path or method
  /// (404, 405), which would only be held; nullopt for the rest (keyed POSTs, /healthz's probes,
  /// other requests without a body: handle() answers them and keeps the connection).
  std::optional<http::server_response> check_head(const http::server_request& head) const;

  std::size_t in_flight() const { return in_flight_.load(); }

 private:
  struct produced;
  boost::asio::awaitable<http::server_response> handle_messages(const http::server_request& req);
  /// The reply, and the legacy API's code in it (its HTTP status is always 200).
  boost::asio::awaitable<std::pair<http::server_response, int>> handle_legacy(const http::server_request& req);
  /// Produces `values` (key, value) and waits for their acks; per-record errors ("" = acked),
  /// or nullopt when over max_in_flight (nothing produced).
  boost::asio::awaitable<std::optional<std::vector<std::string>>> produce_all(
      const std::vector<std::pair<std::string, std::string>>& records);
  std::unique_ptr<core::request_decoder> take_decoder();
  void give_back(std::unique_ptr<core::request_decoder> d);
  std::string operation_time() const;

  gateway_options opts_;
  record_sink& sink_;
  log::logger& log_;
  gateway_seams seams_;
  metrics::gateway_metrics* metrics_;
  std::atomic<std::size_t> in_flight_{0};
  std::mutex decoders_mu_;
  std::vector<std::unique_ptr<core::request_decoder>> decoders_;  // one per concurrent use, reused
};

}  // namespace sendq::gateway
