// HTTP/1.1 client: a keep-alive pool per (tls, host, port), one exchange per connection at a time.
//
//   send ──► acquire slot ──► idle connection? ──yes──► exchange ──► complete & keep-alive?
//              │ (wait if the       │ no                  ▲    │         yes: back to the pool
//              │  host is at cap)   ▼                     │    │         no:  close, free slot
//              │                 connect (+TLS) ──────────┘    └─ stale reused connection:
//              ▼                                                  once more on a fresh one
//         timed out: connect failure
//
// Every connection lives on its own strand (its deadline timer must not race its I/O when several
// threads run the io_context); each attempt is co_spawned onto that strand. With
// `one_thread` the io_context's own executor serializes everything: no strand, and a caller
// already on it runs the attempt in place (no co_spawn, no post and resume per request).
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "sendq/http/client.hpp"

namespace sendq::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using steady = std::chrono::steady_clock;

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
constexpr std::string_view user_agent = "sendq/0.1";
constexpr int max_interim_replies = 16;                 ///< 1xx replies skipped before one exchange's final reply
constexpr std::chrono::seconds max_retry_after{86400};  ///< a longer Retry-After is taken as a day

// One deadline per exchange, from a single timer per connection that is re-armed lazily: an
// exchange only moves the deadline, so a request costs no timer operation (Beast's tcp_stream armed
// and cancelled one per read and per write). Past the deadline the socket is closed, which ends the
// pending read or write, and any later one, of that exchange.
class watchdog {
 public:
  explicit watchdog(const net::any_io_executor& ex) : state_(std::make_shared<state>(ex)) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  // May run on another thread than the timer's (client::stop() from the main thread closes idle
  // connections while their fired timer's handler may still run): hence the atomic on_expiry.
  ~watchdog() {
    state_->on_expiry.store(nullptr, std::memory_order_release);
    state_->timer.cancel();
  }

  /// Starts an exchange that must end by `deadline`; `on_expiry` runs if it does not.
  void start(steady::time_point deadline, std::function<void()>* on_expiry) {
    auto& s = *state_;
    s.deadline = deadline;
    s.fired = false;
    s.on_expiry.store(on_expiry, std::memory_order_relaxed);
    if (!s.armed || s.timer.expiry() > deadline) arm(state_);
  }
  /// The exchange ended: an armed timer finds nothing to do and disarms.
  void stop() { state_->deadline = steady::time_point::max(); }
  bool fired() const { return state_->fired; }

 private:
  struct state {
    explicit state(const net::any_io_executor& ex) : timer(ex) {}
    net::steady_timer timer;
    steady::time_point deadline = steady::time_point::max();
    std::atomic<std::function<void()>*> on_expiry{nullptr};  ///< null once the connection is gone
    unsigned generation = 0;                     ///< of the pending wait; an older one is ignored
    bool armed = false;
    bool fired = false;
  };

  static void arm(const std::shared_ptr<state>& s) {
    s->armed = true;
    const unsigned generation = ++s->generation;
    s->timer.expires_at(s->deadline);  // cancels a pending wait, which then sees an old generation
    s->timer.async_wait([s, generation](error_code ec) {
      auto* const on_expiry = s->on_expiry.load(std::memory_order_acquire);
      if (on_expiry == nullptr || generation != s->generation) return;
      s->armed = false;
      if (ec || s->deadline == steady::time_point::max()) return;  // idle: the next exchange arms it
      if (steady::now() < s->deadline) {
        arm(s);  // a later exchange moved the deadline
        return;
      }
      s->fired = true;
      (*on_expiry)();
    });
  }

  std::shared_ptr<state> state_;
};

class connection {
 public:
  using tls_stream = beast::ssl_stream<beast::tcp_stream>;

  explicit connection(const net::any_io_executor& ex) : stream_(std::in_place_index<0>, ex), watchdog_(ex) {}
  connection(const net::any_io_executor& ex, ssl::context& ctx)
      : stream_(std::in_place_index<1>, ex, ctx), watchdog_(ex) {}

  beast::tcp_stream& tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream_);
  }
  tls_stream* tls() { return std::get_if<1>(&stream_); }
  net::any_io_executor executor() { return tcp().get_executor(); }

  template <class F>
  auto visit(F&& f) {
    return std::visit(std::forward<F>(f), stream_);
  }

  /// Bounds the next exchange (the tcp_stream's own timer is for connecting only).
  void start_deadline(std::chrono::milliseconds timeout) { watchdog_.start(steady::now() + timeout, &close_); }
  void stop_deadline() { watchdog_.stop(); }
  bool deadline_passed() const { return watchdog_.fired(); }

  beast::flat_buffer buffer;  ///< bytes read past the last response (empty when reusable)
  tcp::endpoint peer;         ///< whom it connected to: a reuse checks it against the caller's address policy
  steady::time_point released_at;  ///< when its last exchange ended (it went back to the pool)

 private:
  std::variant<beast::tcp_stream, tls_stream> stream_;
  std::function<void()> close_ = [this] {
    error_code ignored;
    tcp().socket().close(ignored);
  };
  watchdog watchdog_;  // after close_, which it calls: destroyed first
};

struct failure {
  failure_kind kind;
  std::string message;
};

struct attempt_result {
  std::optional<response> ok;
  failure fail{failure_kind::connect, {}};
  bool reusable = false;  ///< complete response and keep-alive: may go back to the pool
  bool stale = false;     ///< reused connection the server had already closed: safe to retry
};

bool is_ip_literal(const std::string& host) {
  error_code ec;
  (void)net::ip::make_address(host, ec);
  return !ec;
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

// Retry-After as delta-seconds, at most a day (a longer wait is no plan for a message, and ten
// digits of seconds added to a steady_clock time point would overflow it: a caller need not cap it
// first); HTTP-dates and junk are ignored.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty() || v.size() > 10) return std::nullopt;
  std::int64_t seconds = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec != std::errc{} || ptr != v.data() + v.size() || seconds < 0) return std::nullopt;
  return std::chrono::seconds(std::min<std::int64_t>(seconds, max_retry_after.count()));
}

const boost::system::error_category& http_category() {
  static const auto& cat = make_error_code(bhttp::error::end_of_stream).category();
  return cat;
}

// The server closed or reset the connection (as opposed to a timeout or a parse error).
bool is_closed(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::connection_aborted || ec == net::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

failure classify_read_error(const error_code& ec, std::chrono::milliseconds timeout, std::size_t body_limit) {
  if (ec == beast::error::timeout) {
    return {failure_kind::timeout_after_write, "no complete response within " + ms(timeout)};
  }
  if (ec == bhttp::error::body_limit) {
    return {failure_kind::body_too_large, "response body over the limit of " + std::to_string(body_limit) + " bytes"};
  }
  if (is_closed(ec)) {
    return {failure_kind::reset_after_write, "connection closed before a complete response: " + ec.message()};
  }
  if (ec.category() == http_category()) {
    return {failure_kind::bad_response, "unparseable response: " + ec.message()};
  }
  return {failure_kind::reset_after_write, "reading the response failed: " + ec.message()};
}

// The request as written: the head (request line and fields) preformatted in one string and the
// body, sent by one gather write. Beast's serializer wrote a buffer sequence of one piece per field
// and walked it on every write.
struct wire_request {
  std::string method;
  std::string target;
  std::string fields;  ///< "Name: value\r\n" each, framing included
  std::string body;
  std::string head;    ///< request line + fields + empty line, for `target`
  std::optional<std::chrono::steady_clock::time_point> write_by;  ///< request::write_by
  std::optional<std::chrono::steady_clock::time_point> done_by;   ///< request::done_by

  void retarget(std::string t) {
    target = std::move(t);
    head.clear();
    head.reserve(method.size() + target.size() + fields.size() + 13);
    head.append(method).append(" ").append(target).append(" HTTP/1.1\r\n").append(fields).append("\r\n");
  }
};

// Reads a response keeping only what a call_result needs: the status, three fields and the body.
// Beast's response_parser<string_body> stored every field in a list of allocated nodes, searched
// and freed again for each reply. Limits and framing stay basic_parser's.
class reply_parser final : public bhttp::basic_parser<false> {
 public:
  unsigned status = 0;
  std::string content_type;
  std::string retry_after;
  std::string location;
  std::string body;

 private:
  void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int, error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, error_code&) override { status = static_cast<unsigned>(code); }
  void on_field_impl(bhttp::field name, beast::string_view, beast::string_view value, error_code&) override {
    // The first of a repeated field counts, as with Beast's message[field].
    const auto keep_first = [&](std::string& to, bool& seen) {
      if (!seen) to.assign(value.data(), value.size());
      seen = true;
    };
    if (name == bhttp::field::content_type) keep_first(content_type, seen_content_type_);
    if (name == bhttp::field::retry_after) keep_first(retry_after, seen_retry_after_);
    if (name == bhttp::field::location) keep_first(location, seen_location_);
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (length) body.reserve(static_cast<std::size_t>(*length));  // basic_parser checked it against body_limit
  }
  std::size_t on_body_impl(beast::string_view data, error_code&) override {
    body.append(data.data(), data.size());
    return data.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data, error_code&) override {
    body.append(data.data(), data.size());
    return data.size();
  }
  void on_finish_impl(error_code&) override {}

  bool seen_content_type_ = false;
  bool seen_retry_after_ = false;
  bool seen_location_ = false;
};

template <class Stream>
net::awaitable<attempt_result> exchange(Stream& stream, connection& c, const wire_request& req, std::size_t body_limit,
                                        bool reused, std::chrono::milliseconds timeout) {
  attempt_result r;
  auto& buffer = c.buffer;
  const std::array<net::const_buffer, 2> out{net::buffer(req.head), net::buffer(req.body)};
  auto [wec, written] = co_await net::async_write(stream, out, nothrow);
  if (wec && c.deadline_passed()) wec = beast::error::timeout;
  if (wec) {
    const bool timed_out = wec == beast::error::timeout;
    r.fail = {timed_out ? failure_kind::timeout_before_write : failure_kind::reset_before_write,
              timed_out ? "request not written within " + ms(timeout) : "writing the request failed: " + wec.message()};
    // Nothing reached the server: retrying a dead pooled connection on a fresh one is safe.
    r.stale = reused && !timed_out;
    co_return r;
  }

  // Interim (1xx) replies come before the final one, unasked too (RFC 9110 §15.2): Beast parses one
  // as a complete message, so each is skipped and the next one read. Taking it for the answer
  // would hand the real reply, still to come, to the next request on this connection.
  std::optional<reply_parser> reply;
  error_code rec;
  for (int interim = 0;; ++interim) {
    reply.emplace();
    reply->body_limit(body_limit);
    if (req.method == "HEAD") reply->skip(true);
    std::tie(rec, std::ignore) = co_await bhttp::async_read(stream, buffer, *reply, nothrow);
    if (rec) break;
    const unsigned status = reply->status;
    if (status < 100 || status >= 200) break;
    if (status == 101 || interim == max_interim_replies) {
      // 101 answers an Upgrade this client never asks for; an endless run of 1xx is not HTTP either.
      r.fail = {failure_kind::bad_response, status == 101 ? "unexpected 101 Switching Protocols"
                                                          : "more than " + std::to_string(max_interim_replies) +
                                                                " interim (1xx) replies"};
      co_return r;  // not stale, not reusable: the connection is closed and the request not retried
    }
  }
  reply_parser& parser = *reply;
  if (rec && c.deadline_passed()) rec = beast::error::timeout;
  if (rec) {
    r.fail = classify_read_error(rec, timeout, body_limit);
    // What did arrive tells a silent server from a slow or oversized reply.
    if (parser.is_header_done()) {
      r.fail.message += " (HTTP " + std::to_string(parser.status);
      if (const auto length = parser.content_length()) {
        r.fail.message += ", Content-Length " + std::to_string(*length);
      } else if (parser.chunked()) {
        r.fail.message += ", chunked";
      }
      if (rec != bhttp::error::body_limit) {
        r.fail.message += ", " + std::to_string(parser.body.size()) + " body bytes received";
      }
      r.fail.message += ")";
    } else if (rec == beast::error::timeout) {
      r.fail.message += " (no response headers)";
    }
    // The request was written: even on a reused connection that closes with no byte back, the
    // server may have acted on it (CONTRACT.md: ambiguous), so this is never retried silently.
    // Idle connections the server closed are already dropped by the peek before reuse.
    r.stale = false;
    co_return r;
  }

  // Beast takes any three digits; RFC 9110 §15 defines 100-599, and a result carries no other.
  if (parser.status > 599 || parser.status < 100) {
    r.fail = {failure_kind::bad_response,
              "status " + std::to_string(parser.status) + " is not an HTTP status (100-599)"};
    r.stale = false;
    co_return r;  // not reusable: the connection is closed
  }
  response resp;
  resp.status = parser.status;
  resp.content_type = std::move(parser.content_type);
  resp.retry_after = parse_retry_after(parser.retry_after);
  resp.location = std::move(parser.location);
  resp.body = std::move(parser.body);
  r.reusable = parser.keep_alive() && !parser.need_eof() && buffer.size() == 0 && !c.deadline_passed();
  r.ok = std::move(resp);
  co_return r;
}

// Peeks at an idle pooled connection: a FIN or RST already received means the server closed it.
// One recv(MSG_PEEK | MSG_DONTWAIT) on the descriptor: toggling the socket's non-blocking mode
// through Asio instead costs three more syscalls per request (and Asio re-enables it on the next
// async operation). Only a TLS connection with unread bytes, which is rare, toggles it (below).
bool looks_alive(connection& c) {
  auto& socket = c.tcp().socket();
  if (!socket.is_open()) return false;
  char byte = 0;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  // n == 0: the server closed it. On plain HTTP, unsolicited bytes (e.g. a 408 before closing) mean
  // the connection is unusable.
  if (n == 0 || c.tls() == nullptr) return false;
  // TLS: the bytes may be a session ticket (TLS 1.3 servers send them after the handshake), or the
  // close_notify alert a server sends before closing an idle connection (nginx, Go, Apache do).
  // Under TLS 1.3 both are encrypted records of the same outer type, so only TLS can tell them
  // apart: a non-blocking read lets it process them. A ticket leaves nothing to read (would_block);
  // close_notify reads as the end of the stream. Rare (idle connections only), so the extra
  // system calls of switching the socket's mode do not matter.
  error_code ec;
  socket.non_blocking(true, ec);
  if (ec) return false;
  std::array<char, 64> sink{};
  const std::size_t got = c.tls()->read_some(net::buffer(sink), ec);
  const bool alive = got == 0 && ec == net::error::would_block;
  error_code ignored;
  socket.non_blocking(false, ignored);
  return alive;
}

ssl::context make_tls_context(const client_options& opts) {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  if (!opts.verify_peer) {
    ctx.set_verify_mode(ssl::verify_none);
    return ctx;
  }
  ctx.set_verify_mode(ssl::verify_peer);
  error_code ec;
  if (!opts.ca_file.empty()) {
    ctx.load_verify_file(opts.ca_file, ec);
    if (ec) {
      throw std::runtime_error("http client: cannot load CA file '" + opts.ca_file + "': " + ec.message() +
                               " (set ca_file to a readable PEM bundle, or leave it empty for the system store)");
    }
  } else {
    ctx.set_default_verify_paths(ec);
    if (ec) throw std::runtime_error("http client: cannot load the system CA store: " + ec.message());
  }
  return ctx;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// Same fields as Beast's message with prepare_payload(): our defaults (Host, User-Agent,
// Content-Type), each replaced when the caller sets that name; the caller's fields in their
// order; Content-Length when there is a body or the method carries one.
wire_request build_request(const endpoint& ep, request& req) {
  wire_request w;
  w.method = std::move(req.method);
  const auto callers = [&](std::string_view name) {
    return std::any_of(req.headers.begin(), req.headers.end(), [&](const auto& h) { return beast::iequals(h.first, name); });
  };
  w.fields.reserve(128);
  if (!callers("host")) append_field(w.fields, "Host", ep.authority());
  if (!callers("user-agent")) append_field(w.fields, "User-Agent", user_agent);
  if (!req.body.empty() && !req.content_type.empty() && !callers("content-type")) {
    append_field(w.fields, "Content-Type", req.content_type);
  }
  for (const auto& [name, value] : req.headers) {
    // Framing is ours to set.
    if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding")) continue;
    append_field(w.fields, name, value);
  }
  if (!req.body.empty() || w.method == "POST" || w.method == "PUT" || w.method == "OPTIONS") {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, req.body.size()).ptr;
    append_field(w.fields, "Content-Length", std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  w.body = std::move(req.body);
  w.write_by = req.write_by;
  w.done_by = req.done_by;
  w.retarget(req.target.empty() ? std::string("/") : std::move(req.target));
  return w;
}

}  // namespace

struct client::impl : std::enable_shared_from_this<impl> {
  /// A caller waiting for a slot. On the client's own thread (`on_client_thread`) the wait is one
  /// timer: its expiry is the wait limit, and release() cancels it to hand the slot over. A channel
  /// and a timer per wait cost about 6,000 instructions a delivery when several routes share a
  /// host. Callers on other threads wait on a channel, as a timer must not be cancelled from a
  /// thread other than the one waiting on it.
  struct waiter {
    waiter(const net::any_io_executor& ex, bool on_client_thread) : timer(ex) {
      if (!on_client_thread) signal.emplace(ex, 1);
    }
    net::steady_timer timer;
    std::optional<net::experimental::concurrent_channel<void(error_code)>> signal;
    std::unique_ptr<connection> conn;  ///< handed over with the slot; null = open a new one
    bool granted = false;              ///< (under mu_) a release handed this waiter the slot
  };

  struct host_pool {
    std::vector<std::unique_ptr<connection>> idle;  ///< back = most recently used
    std::size_t open = 0;                           ///< idle + busy + connecting, <= max_connections_per_host
    std::deque<std::shared_ptr<waiter>> waiters;    ///< FIFO of callers waiting for a slot
  };

  /// One of a host's max_connections_per_host slots, with the connection that occupies it (if
  /// any yet). Gives the slot back on destruction.
  class lease {
   public:
    lease(std::shared_ptr<impl> owner, host_pool* pool, std::unique_ptr<connection> conn)
        : conn(std::move(conn)), owner_(std::move(owner)), pool_(pool) {}
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { release(false); }

    void release(bool reusable) {
      if (owner_) owner_->release(*pool_, std::move(conn), reusable);
      owner_.reset();
    }

    std::unique_ptr<connection> conn;

   private:
    std::shared_ptr<impl> owner_;
    host_pool* pool_;
  };

  impl(net::any_io_executor ex, client_options opts)
      : ex_(std::move(ex)), opts_(std::move(opts)), tls_ctx_(make_tls_context(opts_)) {
    if (opts_.max_connections_per_host == 0) {
      throw std::invalid_argument("http client: max_connections_per_host must be at least 1");
    }
  }

  host_pool& pool_for(const endpoint& ep) {
    std::lock_guard lock(mu_);
    return pools_[std::make_tuple(ep.tls, ep.host, ep.port)];
  }

  /// Takes an idle connection or a free slot; waits (up to `wait_limit`) while the host is at cap.
  /// `on_client_thread`: the caller runs on the one thread of a `one_thread` client.
  net::awaitable<std::variant<std::unique_ptr<lease>, failure>> acquire(host_pool& pool,
                                                                         std::chrono::milliseconds wait_limit,
                                                                         bool on_client_thread) {
    std::unique_ptr<connection> conn;
    std::shared_ptr<waiter> w;
    std::vector<std::unique_ptr<connection>> expired;  // closed outside the lock
    const auto now = steady::now();
    {
      std::lock_guard lock(mu_);
      take_expired(pool, now, expired);
      if (!pool.idle.empty()) {
        conn = std::move(pool.idle.back());
        pool.idle.pop_back();
      } else if (pool.open < opts_.max_connections_per_host) {
        ++pool.open;
      } else {
        w = std::make_shared<waiter>(ex_, on_client_thread);
        pool.waiters.push_back(w);
      }
    }
    expired.clear();  // closed now, not after a wait for a slot
    const auto no_free_connection = [&] {
      return failure{failure_kind::connect, "no free connection within " + ms(wait_limit) +
                                                " (max_connections_per_host=" +
                                                std::to_string(opts_.max_connections_per_host) + ")"};
    };
    if (w && on_client_thread) {
      // Nothing runs on this thread between the push above and this wait, so no release can
      // cancel the timer before it is waited on.
      w->timer.expires_after(wait_limit);
      co_await w->timer.async_wait(nothrow);
      {
        // Cancelled or expired, what counts is whether a release handed over the slot (it may
        // have, after the expiry and before this resumed).
        std::lock_guard lock(mu_);
        if (!w->granted) {
          pool.waiters.erase(std::find(pool.waiters.begin(), pool.waiters.end(), w));
        }
      }
      if (!w->granted) co_return no_free_connection();
      conn = std::move(w->conn);
    } else if (w) {
      auto& timer = w->timer;
      timer.expires_after(wait_limit);
      // Whoever removes the waiter from the queue (a release or this timer) owns signalling it.
      timer.async_wait([self = shared_from_this(), &pool, w](error_code ec) {
        if (ec) return;
        {
          std::lock_guard lock(self->mu_);
          auto it = std::find(pool.waiters.begin(), pool.waiters.end(), w);
          if (it == pool.waiters.end()) return;
          pool.waiters.erase(it);
        }
        w->signal->try_send(net::error::timed_out);
      });
      auto [ec] = co_await w->signal->async_receive(nothrow);
      timer.cancel();
      if (ec) co_return no_free_connection();
      conn = std::move(w->conn);
    }
    // Not idle past idle_timeout (take_expired, or just released to this waiter): a quick peek tells
    // whether the server closed it meanwhile.
    if (conn && (w ? steady::now() : now) - conn->released_at >= opts_.reuse_unchecked_within && !looks_alive(*conn)) {
      conn.reset();  // keep the slot, connect afresh
    }
    co_return std::make_unique<lease>(shared_from_this(), &pool, std::move(conn));
  }

  // (under mu_) Moves the idle connections released more than idle_timeout ago into `out`, their
  // slots freed: servers close such connections about then. The front of the idle list was
  // released longest ago (reuse takes from the back).
  void take_expired(host_pool& pool, steady::time_point now, std::vector<std::unique_ptr<connection>>& out) {
    while (!pool.idle.empty() && now - pool.idle.front()->released_at > opts_.idle_timeout) {
      out.push_back(std::move(pool.idle.front()));
      pool.idle.erase(pool.idle.begin());
      --pool.open;
    }
  }

  void release(host_pool& pool, std::unique_ptr<connection> conn, bool reusable) {
    std::unique_ptr<connection> to_close;  // closed outside the lock
    std::vector<std::unique_ptr<connection>> expired;  // idle past idle_timeout, closed outside the lock
    std::shared_ptr<waiter> next;
    const auto now = steady::now();
    if (conn && reusable) conn->released_at = now;
    {
      std::lock_guard lock(mu_);
      if (!reusable || stopped_) to_close = std::move(conn);
      take_expired(pool, now, expired);
      if (!pool.waiters.empty()) {
        // The slot passes to the next waiter, with the connection when it is reusable.
        next = std::move(pool.waiters.front());
        pool.waiters.pop_front();
        next->conn = std::move(conn);
        next->granted = true;
      } else if (conn && pool.idle.size() < opts_.max_idle_per_host) {
        pool.idle.push_back(std::move(conn));
      } else {
        if (conn) to_close = std::move(conn);
        --pool.open;
      }
    }
    if (!next) return;
    if (next->signal) {
      next->signal->try_send(error_code{});
    } else {
      // The waiter's timer is only touched on the client's thread: in place when this release
      // runs there too (always, in the worker), posted there otherwise.
      net::dispatch(ex_, [next] { next->timer.cancel(); });
    }
  }

  // `cut_at`: the caller's time limit (write_by, done_by), when it comes before connect_timeout.
  net::awaitable<std::optional<failure>> connect(connection& c, const endpoint& ep,
                                                 const std::function<bool(const std::string&)>& allow,
                                                 std::optional<steady::time_point> cut_at) {
    const auto deadline = cut_at ? std::min(*cut_at, steady::now() + opts_.connect_timeout) : steady::now() + opts_.connect_timeout;
    std::vector<tcp::endpoint> targets;
    error_code ec;
    const auto address = net::ip::make_address(ep.host, ec);
    if (!ec) {
      targets.emplace_back(address, ep.port);
    } else {
      // The resolver has no deadline of its own, and cancelling it does not stop a getaddrinfo
      // that has started (Asio runs it on a thread of its own): this waits on a timer instead,
      // which the lookup's handler cancels when it ends first. A lookup still running at the
      // deadline is left to end on its own; its handler only touches `lookup`, which it owns.
      // Both run on this connection's strand, like this coroutine.
      struct pending_lookup {
        explicit pending_lookup(const net::any_io_executor& ex) : resolver(ex), timer(ex) {}
        tcp::resolver resolver;
        net::steady_timer timer;
        bool done = false;
        error_code ec;
        tcp::resolver::results_type results;
      };
      auto lookup = std::make_shared<pending_lookup>(co_await net::this_coro::executor);
      lookup->timer.expires_at(deadline);
      lookup->resolver.async_resolve(ep.host, std::to_string(ep.port),
                                     [lookup](error_code e, tcp::resolver::results_type r) {
                                       lookup->done = true;
                                       lookup->ec = e;
                                       lookup->results = std::move(r);
                                       lookup->timer.cancel();
                                     });
      co_await lookup->timer.async_wait(nothrow);
      if (!lookup->done) {
        lookup->resolver.cancel();  // one not started yet is dropped
        co_return failure{failure_kind::connect, "resolving " + ep.host + " timed out"};
      }
      if (lookup->ec) co_return failure{failure_kind::connect, "resolving " + ep.host + " failed: " + lookup->ec.message()};
      for (const auto& entry : lookup->results) targets.push_back(entry.endpoint());
    }
    if (allow) {
      std::erase_if(targets, [&](const tcp::endpoint& t) { return !allow(t.address().to_string()); });
      if (targets.empty()) {
        co_return failure{failure_kind::connect, "every address of " + ep.host + " is refused by the address policy"};
      }
    }

    auto& tcp_layer = c.tcp();
    tcp_layer.expires_at(deadline);  // covers connect and the TLS handshake
    auto [cec, connected] = co_await tcp_layer.async_connect(targets, nothrow);
    if (cec) {
      co_return failure{failure_kind::connect, cec == beast::error::timeout
                                                   ? "connect to " + ep.authority() + " timed out after " +
                                                         ms(opts_.connect_timeout)
                                                   : "connect to " + ep.authority() + " failed: " + cec.message()};
    }
    tcp_layer.socket().set_option(tcp::no_delay(true), ec);
    c.peer = connected;

    if (auto* tls = c.tls()) {
      // SNI must not carry an IP literal (RFC 6066).
      if (!is_ip_literal(ep.host) && SSL_set_tlsext_host_name(tls->native_handle(), ep.host.c_str()) != 1) {
        co_return failure{failure_kind::tls, "cannot set TLS SNI host name"};
      }
      if (opts_.verify_peer) {
        // Asio's check fails without saying why; record it so the error message can.
        const int mismatch = is_ip_literal(ep.host) ? X509_V_ERR_IP_ADDRESS_MISMATCH : X509_V_ERR_HOSTNAME_MISMATCH;
        tls->set_verify_callback(
            [check = ssl::host_name_verification(ep.host), mismatch](bool preverified, ssl::verify_context& ctx) {
              const bool ok = check(preverified, ctx);
              if (preverified && !ok) X509_STORE_CTX_set_error(ctx.native_handle(), mismatch);
              return ok;
            });
      }
      auto [hec] = co_await tls->async_handshake(ssl::stream_base::client, nothrow);
      if (hec) {
        // A handshake the server did not finish in time, or cut off, is like a failed connect: nothing
        // was sent, and the next try may well succeed. What TLS itself refused (a certificate, a
        // protocol or cipher mismatch) will be refused again.
        if (hec == beast::error::timeout || is_closed(hec)) {
          co_return failure{failure_kind::connect,
                            "TLS handshake with " + ep.authority() +
                                (hec == beast::error::timeout ? " timed out after " + ms(opts_.connect_timeout)
                                                              : " cut off by the server: " + hec.message())};
        }
        std::string why = hec.message();
        const long verify = SSL_get_verify_result(tls->native_handle());
        if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
        co_return failure{failure_kind::tls, "TLS handshake with " + ep.authority() + " failed: " + why};
      }
    }
    co_return std::nullopt;
  }

  // Runs on the connection's strand.
  net::awaitable<attempt_result> attempt(connection& c, const endpoint& ep, const wire_request& req, bool reused,
                                         std::chrono::milliseconds timeout, std::size_t body_limit,
                                         const std::function<bool(const std::string&)>& allow) {
    std::optional<steady::time_point> cut_at = req.write_by;
    if (req.done_by && (!cut_at || *req.done_by < *cut_at)) cut_at = req.done_by;
    if (!reused) {
      if (auto f = co_await connect(c, ep, allow, cut_at)) {
        attempt_result r;
        r.fail = std::move(*f);
        // Cut short by the caller's limit rather than connect_timeout: nothing was sent.
        if (cut_at && steady::now() >= *cut_at && r.fail.kind == failure_kind::connect) {
          r.fail = {failure_kind::timeout_before_write,
                    "deadline reached before the request was written (" + r.fail.message + ")"};
        }
        co_return r;
      }
    }
    if (cut_at && steady::now() >= *cut_at) {
      // The wait for a connection, or the connect, took the caller's deadline: nothing is sent,
      // and the connection, unused, may serve the next caller.
      attempt_result r;
      r.fail = {failure_kind::timeout_before_write, "deadline reached before the request was written"};
      r.reusable = true;
      co_return r;
    }
    c.tcp().expires_never();  // its timer bounded the connect; the exchange has the connection's own
    if (req.done_by) {
      timeout = std::min(timeout, std::max(std::chrono::ceil<std::chrono::milliseconds>(*req.done_by - steady::now()),
                                           std::chrono::milliseconds(1)));
    }
    c.start_deadline(timeout);
    auto r = co_await c.visit([&](auto& stream) { return exchange(stream, c, req, body_limit, reused, timeout); });
    c.stop_deadline();
    co_return r;
  }

  // `self` (a parameter, so kept in the coroutine's frame) keeps the pool alive while suspended.
  net::awaitable<call_result> send(std::shared_ptr<impl> self, endpoint ep, request req) {
    (void)self;
    const auto start = steady::now();
    call_result out;
    const auto timeout = req.timeout;
    if (auto why = unsendable(req)) {
      out.kind = failure_kind::invalid_request;
      out.message = "request not sent: " + *why;
      out.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start);
      co_return out;
    }
    wire_request wire = build_request(ep, req);
    host_pool& pool = pool_for(ep);
    // On the client's single-threaded io_context already: its connections' I/O may run right here.
    const bool in_place = opts_.one_thread && (co_await net::this_coro::executor) == ex_;

    auto acquired = co_await acquire(pool, timeout, in_place);
    if (auto* f = std::get_if<failure>(&acquired)) {
      // Nothing was written either way; when the caller's deadline is what ended the wait, say so
      // as the attempt below would (the caller tells its own deadline from the endpoint's faults).
      const bool deadline = wire.write_by && steady::now() >= *wire.write_by;
      out.kind = deadline ? failure_kind::timeout_before_write : f->kind;
      out.message = deadline ? "deadline reached while waiting for a free connection (" + f->message + ")"
                             : std::move(f->message);
    } else {
      auto& slot = *std::get<std::unique_ptr<lease>>(acquired);
      if (slot.conn && req.allow_address) {
        // The pool is per host, not per address policy: a connection opened for a caller with a
        // looser policy (or none) must pass this caller's before it carries the request.
        if (!req.allow_address(slot.conn->peer.address().to_string())) slot.conn.reset();  // connect afresh
      }
      // Redirect hops share the first exchange's deadline.
      const auto deadline = steady::now() + timeout;
      unsigned redirects = 0;
      for (int attempt_no = 0;; ++attempt_no) {
        auto hop_timeout = timeout;
        if (redirects > 0) {
          hop_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
          if (hop_timeout <= std::chrono::milliseconds(0)) {
            // Nothing was sent to the new location yet.
            out.kind = failure_kind::timeout_before_write;
            out.message = "no time left within " + ms(timeout) + " to follow redirect " + std::to_string(redirects);
            slot.release(slot.conn != nullptr);
            break;
          }
        }
        const bool reused = slot.conn != nullptr;
        if (!reused) {
          const net::any_io_executor conn_ex = opts_.one_thread ? ex_ : net::any_io_executor(net::make_strand(ex_));
          slot.conn = ep.tls ? std::make_unique<connection>(conn_ex, tls_ctx_) : std::make_unique<connection>(conn_ex);
        }
        const std::size_t body_limit = req.body_limit ? req.body_limit : opts_.body_limit;
        attempt_result r;
        if (in_place) {
          r = co_await attempt(*slot.conn, ep, wire, reused, hop_timeout, body_limit, req.allow_address);
        } else {
          r = co_await net::co_spawn(slot.conn->executor(),
                                     attempt(*slot.conn, ep, wire, reused, hop_timeout, body_limit, req.allow_address),
                                     net::use_awaitable);
        }
        if (r.stale && attempt_no == 0) {
          slot.conn.reset();  // once more, on a fresh connection in the same slot
          continue;
        }
        if (r.ok && redirects < req.max_redirects && is_followable_redirect(r.ok->status)) {
          if (auto next = same_origin_target(ep, wire.target, r.ok->location)) {
            // Same origin, so the same pool and slot: the connection too when it may be reused.
            ++redirects;
            wire.retarget(std::move(*next));
            if (!r.reusable) slot.conn.reset();
            attempt_no = -1;
            continue;
          }
        }
        if (r.ok) {
          r.ok->redirects = redirects;
          out.ok = std::move(r.ok);
        } else {
          out.kind = r.fail.kind;
          out.message = std::move(r.fail.message);
        }
        slot.release(r.reusable);
        break;
      }
    }
    out.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start);
    co_return out;
  }

  void stop() {
    std::vector<std::unique_ptr<connection>> to_close;
    std::lock_guard lock(mu_);
    stopped_ = true;
    for (auto& [key, pool] : pools_) {
      pool.open -= pool.idle.size();
      for (auto& c : pool.idle) to_close.push_back(std::move(c));
      pool.idle.clear();
    }
  }

  net::any_io_executor ex_;
  client_options opts_;
  ssl::context tls_ctx_;  // before pools_: connections hold references into it
  std::mutex mu_;
  std::map<std::tuple<bool, std::string, std::uint16_t>, host_pool> pools_;
  bool stopped_ = false;
};

client::client(net::any_io_executor ex, client_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts))) {}

client::~client() { impl_->stop(); }

net::awaitable<call_result> client::send(const endpoint& ep, request req) {
  // Not a coroutine itself: one frame less per call.
  return impl_->send(impl_, ep, std::move(req));
}

void client::stop() { impl_->stop(); }

}  // namespace sendq::http
