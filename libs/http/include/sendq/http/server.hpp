#pragma once
/// A small HTTP/1.1 server (Boost.Beast, coroutines) for sendq's own endpoints: /metrics,
/// /healthz, /readyz, and the gateway. Keep-alive, body limit, timeouts, 100-continue, a check of
/// each request's head before its body, a connection limit, and a drain on stop.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sendq::http {

struct server_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lower-cased
  std::string body;
  std::string_view header(std::string_view lower_name) const;
};

struct server_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct server_options {
  std::size_t body_limit = 1024 * 1024;
  std::chrono::seconds idle_timeout{30};
  /// The answer to a request the server refuses before any handler sees it: 413 (body over
  /// body_limit) or 400 (malformed HTTP), with a short reason. Unset: that reason as text/plain.
  /// Lets a server whose other errors are JSON answer these in the same shape. Also called for
  /// a connection over max_connections closed unanswered (past a few dozen refused at once).
  std::function<server_response(unsigned status, std::string_view reason)> refusal;
  /// Called once a request's head is read (method, target, headers; `body` empty), before its
  /// body is: a response refuses the request there, and its body is read only to be discarded
  /// (e.g. an API key check, so that a caller without a key cannot make the server hold a body).
  /// Called on an I/O thread; it must not block. Unset: every head is taken.
  std::function<std::optional<server_response>(const server_request& head)> on_head;
  /// Connections open at once, at most; one over it is answered 503 and closed. 0 = no limit.
  std::size_t max_connections = 0;
  /// Request bodies held at once (being read or handled), in bytes, at most: a request whose
  /// body would take them over is answered 503 ("too much request body in memory") and closed:
  /// before its body is read when it has a Content-Length, as soon as the part read takes them
  /// over when it is chunked. A request alone is always taken. Without it, max_connections ×
  /// body_limit bounds them. 0 = no limit.
  std::size_t max_body_bytes_in_flight = 0;
};

/// Handler is called on an I/O thread; it must not block.
using handler = std::function<server_response(const server_request&)>;

/// Asynchronous handler: a coroutine run on the connection's strand, for answers that wait on
/// something else (e.g. a broker acknowledgement). It must not block either; the connection reads
/// its next request only after the reply is written.
using async_handler = std::function<boost::asio::awaitable<server_response>(server_request)>;

class server {
 public:
  server(boost::asio::any_io_executor ex, server_options opts, handler h);
  server(boost::asio::any_io_executor ex, server_options opts, async_handler h);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and listens on host:port (port 0 picks one). Throws std::runtime_error with a message
  /// naming the address when it cannot bind (start-up error).
  void start(const std::string& host, std::uint16_t port);
  std::uint16_t port() const;  ///< the bound port
  /// Stops accepting and closes idle connections at once. Requests already read are answered
  /// (with Connection: close) if they finish within `drain`, then every connection is closed.
  /// With `drain` 0 (the default) every connection is closed at once. Blocks for up to `drain`:
  /// not to be called on one of the server's I/O threads with a drain.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds(0));

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// Splits "host:port"; throws std::invalid_argument naming `what` when malformed.
std::pair<std::string, std::uint16_t> parse_host_port(std::string_view addr, std::string_view what);

}  // namespace sendq::http
