#pragma once
/// HTTP/1.1 client with a keep-alive connection pool per host (Boost.Beast, C++20 coroutines).
/// Beast and Asio internals stay in src/; this header only needs Asio's awaitable.
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>

namespace sendq::http {

/// A parsed base URL: http(s)://host[:port][/base/path]. Path has no trailing slash.
struct endpoint {
  bool tls = false;
  std::string host;
  std::uint16_t port = 0;
  std::string base_path;  ///< "" or "/prefix"
  /// Parses `url`; nullopt with `error` set when it is not an absolute http(s) URL.
  static std::optional<endpoint> parse(std::string_view url, std::string* error = nullptr);
  std::string authority() const;  ///< host[:port] as sent in the Host header
};

using header_list = std::vector<std::pair<std::string, std::string>>;

struct request {
  std::string method = "POST";
  std::string target;  ///< path + query, already including endpoint.base_path
  std::string content_type = "application/json";
  header_list headers;  ///< extra headers (values may be secrets: never logged)
  std::string body;
  std::chrono::milliseconds timeout{10000};  ///< whole exchange after the connection is ready
  /// When set, the request is not written at or after this time (the caller's deadline): a wait
  /// for a pooled connection, or a connect, that reaches it ends as timeout_before_write, nothing
  /// sent, its message saying the deadline was reached.
  std::optional<std::chrono::steady_clock::time_point> write_by;
  /// When set, the whole call ends by this time: the connect (cut short of connect_timeout, as
  /// timeout_before_write) and the exchange (within `timeout`, as a timeout). For calls whose
  /// every part has one budget (the worker's media fetch); the wait for a pooled connection is
  /// bounded by `timeout`, so set that to the time left too.
  std::optional<std::chrono::steady_clock::time_point> done_by;
  std::size_t body_limit = 0;  ///< response body cap in bytes; 0 = the client's body_limit
  /// Redirects (301, 302, 307, 308) to the same origin (scheme, host, port) followed at most this
  /// many times, re-sending the same method, headers and body, within `timeout` for all hops.
  /// Others (303, another origin, none left) come back as the 3xx response. 0 = never follow.
  unsigned max_redirects = 0;
  /// When set, only resolved addresses it accepts are connected to (SSRF guard for URLs that
  /// producers chose); a host with none left fails as `connect`.
  std::function<bool(const std::string& ip)> allow_address;
};

struct response {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  std::optional<std::chrono::seconds> retry_after;  ///< Retry-After in seconds (at most 86,400), when sent
  std::string location;    ///< the Location header, as sent ("" when absent)
  unsigned redirects = 0;  ///< redirects followed to get this response
};

/// Whether `status` is a redirect the client may follow with the same method and body.
bool is_followable_redirect(unsigned status) noexcept;

/// Where a redirect's `location` leads when it stays on `ep`'s origin (scheme, host and port):
/// the new target (path and query; relative references resolved against `current_target`).
/// nullopt for another origin or a value that is not a usable URL reference.
std::optional<std::string> same_origin_target(const endpoint& ep, std::string_view current_target,
                                              std::string_view location);

/// Why no response came back. `*_before_write`: the request surely did not reach the server;
/// `*_after_write`: it may have.
enum class failure_kind {
  connect,              ///< resolve or TCP connect failed or timed out, or the TLS handshake timed out or was cut off
  tls,                  ///< TLS refused the server: certificate/host-name verification, protocol or cipher
  reset_before_write,   ///< connection lost before the request was fully written
  timeout_before_write,  ///< write did not finish in time
  reset_after_write,    ///< connection closed/reset while waiting for the response
  timeout_after_write,  ///< no (complete) response in time
  body_too_large,       ///< the response is over the body limit
  bad_response,         ///< not parseable as HTTP/1.x
  /// Not sent at all: the method, target or a header could not go on the wire as they are (a
  /// control character, CR or LF where they would end the line: request smuggling).
  invalid_request,
};

/// Why `req` cannot be written as HTTP/1.1 (names the part), or nullopt when it can: the method and
/// header names must be tokens, the target free of spaces and control characters, header values
/// free of CR, LF and NUL. The client checks this before any connection is used.
std::optional<std::string> unsendable(const request& req);
std::string_view to_string(failure_kind k) noexcept;

struct call_result {
  std::optional<response> ok;  ///< set on success (any HTTP status)
  failure_kind kind = failure_kind::connect;  ///< meaningful when !ok
  std::string message;                        ///< human-readable, no secrets
  std::chrono::microseconds elapsed{0};
};

struct client_options {
  std::chrono::milliseconds connect_timeout{3000};
  std::size_t max_connections_per_host = 256;  ///< open connections per host; callers wait beyond
  /// Idle keep-alive connections kept per host; a connection released beyond it is closed. By
  /// default every connection opened is kept (max_connections_per_host bounds them): a lower cap
  /// closes, each time a load swing ends, connections the next swing opens again (at 30,000
  /// requests/s that was up to 1,200 new connections a second, and the latency bursts with them).
  std::size_t max_idle_per_host = std::numeric_limits<std::size_t>::max();
  /// A connection idle longer than this is closed, at the next release of a connection to its host
  /// (no timer: a host nobody calls keeps its connections until the next call). Shorter than the
  /// keep-alive timeout of most servers, so that the close is ours and not a race with theirs.
  std::chrono::milliseconds idle_timeout{20000};
  std::size_t body_limit = 1024 * 1024;      ///< response body cap in bytes
  std::string ca_file;                       ///< PEM CA bundle; "" = system store
  bool verify_peer = true;                   ///< never off in production
  /// A pooled connection idle longer than this is checked (one non-blocking recv with MSG_PEEK)
  /// for a close by the server before it is reused. One released more recently is reused as it
  /// is: servers close idle connections after seconds, and announce other closes in their reply.
  /// Under load nearly every reuse comes sooner (the pool hands out the last released first), so
  /// this spares a system call per request. 0: check every reuse.
  std::chrono::microseconds reuse_unchecked_within{1000};
  /// The executor's io_context is run by exactly one thread. Connections then need no strand, and
  /// a call made from a coroutine on that executor runs its exchange in place instead of hopping
  /// onto a strand and back (the worker gives each I/O thread its own io_context and client).
  bool one_thread = false;
};

/// Thread-safe: send() may be called from any thread (with `one_thread`, calls from other
/// executors are run on the client's).
class client {
 public:
  client(boost::asio::any_io_executor ex, client_options opts);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends `req` to `ep`, reusing a pooled connection when one is idle. Never throws for
  /// network or protocol errors: they come back as failure kinds.
  boost::asio::awaitable<call_result> send(const endpoint& ep, request req);

  /// Closes idle connections; in-flight calls finish on their own timeouts.
  void stop();

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace sendq::http
