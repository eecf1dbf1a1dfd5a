// Small HTTP/1.1 server: one acceptor coroutine, one coroutine per connection, each connection on
// its own strand. Sessions are tracked weakly so stop() can close them without owning them.
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "sendq/http/server.hpp"

namespace sendq::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

constexpr auto nothrow = net::as_tuple(net::use_awaitable);

// A request's share of server_options::max_body_bytes_in_flight, given back when it ends
// (answered, refused, or the connection lost).
class body_reservation {
 public:
  body_reservation() = default;
  body_reservation(const body_reservation&) = delete;
  body_reservation& operator=(const body_reservation&) = delete;
  ~body_reservation() { release(); }

  // Grows this request's share of `held` to `total` bytes if that stays within `limit`, or if
  // nothing else is held (a body alone is always taken, so that one at body_limit is never
  // refused for ever). limit 0 = no limit.
  bool grow_to(std::atomic<std::size_t>& held, std::size_t total, std::size_t limit) {
    if (limit == 0 || total <= bytes_) return true;
    const auto extra = total - bytes_;
    auto now = held.load();
    do {
      if (now != bytes_ && now + extra > limit) return false;
    } while (!held.compare_exchange_weak(now, now + extra));
    held_ = &held;
    bytes_ = total;
    return true;
  }
  void release() {
    if (held_) held_->fetch_sub(bytes_);
    held_ = nullptr;
  }

 private:
  std::atomic<std::size_t>* held_ = nullptr;
  std::size_t bytes_ = 0;
};

struct session {
  explicit session(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  bool busy = false;  // a request read and not yet answered (only touched on the stream's strand)
};

// A refused request's body may still be on its way: closing with it unread would make the kernel
// send a reset, and most clients, still writing, would then never read the refusal. So stop
// sending, then read and drop what comes, for a bounded time and amount, before closing.
net::awaitable<void> discard_then_close(beast::tcp_stream& stream,
                                       std::chrono::milliseconds for_at_most = std::chrono::seconds(2)) {
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(for_at_most);
  std::array<char, 16384> scratch;
  std::size_t dropped = 0;
  while (dropped < (16u << 20)) {
    auto [rec, n] = co_await stream.async_read_some(net::buffer(scratch), nothrow);
    if (rec) break;
    dropped += n;
  }
  stream.close();
}

// The connection's last answer: written (best effort, as the connection is closed either way),
// then the rest of the request dropped (discard_then_close).
net::awaitable<void> answer_then_close(beast::tcp_stream& stream, bhttp::response<bhttp::string_body> res,
                                       std::chrono::milliseconds discard_for = std::chrono::seconds(2)) {
  co_await bhttp::async_write(stream, res, nothrow);
  co_await discard_then_close(stream, discard_for);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bhttp::response<bhttp::string_body> to_wire(server_response r, unsigned version, bool keep_alive) {
  bhttp::response<bhttp::string_body> res;
  res.version(version);
  res.result(r.status);
  if (!r.content_type.empty()) res.set(bhttp::field::content_type, r.content_type);
  for (auto& [name, value] : r.headers) res.insert(name, value);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

server_response plain(unsigned status, std::string body) {
  return server_response{status, "text/plain", std::move(body), {}};
}

}  // namespace

struct server::impl : std::enable_shared_from_this<impl> {
  impl(net::any_io_executor ex, server_options opts, handler h, async_handler ah)
      : ex_(std::move(ex)),
        strand_(net::make_strand(ex_)),
        opts_(opts),
        handler_(std::move(h)),
        async_handler_(std::move(ah)) {}

  void start(const std::string& host, std::uint16_t port) {
    const std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                              std::to_string(port);
    if (acceptor_) throw std::logic_error("http server: start() called twice (" + where + ")");
    error_code ec;
    tcp::endpoint ep;
    const auto address = net::ip::make_address(host, ec);
    if (!ec) {
      ep = tcp::endpoint(address, port);
    } else {
      tcp::resolver resolver(ex_);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec || results.empty()) {
        throw std::runtime_error("http server: cannot resolve " + where + ": " +
                                 (ec ? ec.message() : std::string("no address")));
      }
      ep = results.begin()->endpoint();
    }
    auto acceptor = std::make_unique<tcp::acceptor>(strand_);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("http server: cannot listen on " + where + ": " + ec.message());
    port_ = acceptor->local_endpoint(ec).port();
    acceptor_ = std::move(acceptor);
    net::co_spawn(strand_, accept_loop(shared_from_this()), net::detached);
  }

  void stop(std::chrono::milliseconds drain) {
    std::vector<std::weak_ptr<session>> live;
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      live = std::move(sessions_);
      sessions_.clear();
    }
    // Acceptor and sessions are closed on their own strands, where their I/O runs.
    if (acceptor_) {
      net::post(strand_, [self = shared_from_this()] {
        error_code ec;
        self->acceptor_->close(ec);
      });
    }
    const auto close = [](const std::shared_ptr<session>& s, bool even_busy) {
      net::post(s->stream.get_executor(), [s, even_busy] {
        // On the session's strand, so `busy` is as its coroutine left it: a session answering
        // a request ends after the answer (it sees stopped_), the others now.
        if (s->busy && !even_busy) return;
        error_code ec;
        s->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        s->stream.close();
      });
    };
    const bool wait = drain.count() > 0;
    for (auto& weak : live) {
      if (auto s = weak.lock()) close(s, !wait);
    }
    if (!wait) return;
    const auto deadline = std::chrono::steady_clock::now() + drain;
    const auto all_ended = [&] {
      return std::all_of(live.begin(), live.end(), [](const auto& w) { return w.expired(); });
    };
    while (!all_ended() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto& weak : live) {
      if (auto s = weak.lock()) close(s, true);
    }
  }

  static net::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    for (;;) {
      auto [ec, socket] = co_await self->acceptor_->async_accept(net::any_io_executor(net::make_strand(self->ex_)),
                                                                 nothrow);
      if (ec) {
        if (ec == net::error::operation_aborted || !self->acceptor_->is_open()) co_return;
        // e.g. out of file descriptors: back off instead of spinning.
        net::steady_timer pause(self->strand_, std::chrono::milliseconds(50));
        co_await pause.async_wait(nothrow);
        continue;
      }
      auto s = std::make_shared<session>(std::move(socket));
      {
        std::lock_guard lock(self->mu_);
        if (self->stopped_) co_return;
        std::erase_if(self->sessions_, [](const auto& w) { return w.expired(); });
        if (self->opts_.max_connections && self->sessions_.size() >= self->opts_.max_connections) {
          // Over the limit: answered and closed, not held (each connection costs a descriptor,
          // which the process's Kafka clients need too).
          auto ex = s->stream.get_executor();
          net::co_spawn(ex, refuse_connection(self, std::move(s)), net::detached);
          continue;
        }
        self->sessions_.push_back(s);
      }
      auto ex = s->stream.get_executor();
      net::co_spawn(ex, run_session(self, std::move(s)), net::detached);
    }
  }

  server_response refusal(unsigned status, std::string_view reason) const {
    return opts_.refusal ? opts_.refusal(status, reason) : plain(status, std::string(reason) + "\n");
  }

  // Connections over max_connections are not tracked, so their own cost is kept small: a short
  // answer and a short discard, and none at all past a few dozen refusals at once (a flood of
  // connections must not take the descriptors the limit is there to keep).
  // The refusal is made either way, so that a server counting refusals in it counts these too.
  static net::awaitable<void> refuse_connection(std::shared_ptr<impl> self, std::shared_ptr<session> s) {
    auto answer = self->refusal(503, "too many connections");
    if (self->refusing_.fetch_add(1) < 64) {
      s->stream.expires_after(std::chrono::milliseconds(500));
      co_await answer_then_close(s->stream, to_wire(std::move(answer), 11, false), std::chrono::milliseconds(250));
    }
    self->refusing_.fetch_sub(1);
  }

  static net::awaitable<void> run_session(std::shared_ptr<impl> self, std::shared_ptr<session> s) {
    auto& stream = s->stream;
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(self->opts_.body_limit);
      body_reservation body_held;
      stream.expires_after(self->opts_.idle_timeout);
      auto [ec, read] = co_await bhttp::async_read_header(stream, buffer, parser, nothrow);
      if (!ec && self->stopped_.load()) {
        // Stopping: a request that came after stop() is not taken, but answered, so that its
        // client knows to send it again (elsewhere) rather than wonder whether it was taken.
        co_await answer_then_close(stream, to_wire(self->refusal(503, "stopping"), 11, false));
        co_return;
      }
      if (!ec) {
        s->busy = true;
        const auto& head = parser.get();
        if (self->opts_.on_head) {
          server_request req;
          req.method = std::string(head.method_string());
          req.target = std::string(head.target());
          for (const auto& field : head) req.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
          if (auto refused = self->opts_.on_head(req)) {
            auto res = to_wire(std::move(*refused), head.version(), false);
            if (head.method() == bhttp::verb::head) res.body().clear();  // Content-Length stays
            co_await answer_then_close(stream, std::move(res));
            co_return;
          }
        }
        // A body of known length is checked before it is read, so a refused one is never held. A
        // chunked one has no length to check: it is counted as it arrives (below).
        const auto length = parser.content_length();
        const std::size_t body_bytes = length ? static_cast<std::size_t>(std::min<std::uint64_t>(*length, self->opts_.body_limit)) : 0;
        if (!body_held.grow_to(self->body_bytes_, body_bytes, self->opts_.max_body_bytes_in_flight)) {
          co_await answer_then_close(stream, to_wire(self->refusal(503, "too much request body in memory"), head.version(), false));
          co_return;
        }
        // A client that asked to hear first (curl does for bodies over 1 MiB) would otherwise
        // wait its own timeout before it sends the body.
        if (head.version() >= 11 && beast::iequals(head[bhttp::field::expect], "100-continue") && !parser.is_done()) {
          static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
          co_await net::async_write(stream, net::buffer(go_on), nothrow);
        }
        if (parser.chunked() && self->opts_.max_body_bytes_in_flight) {
          bool over = false;
          while (!ec && !parser.is_done() && !over) {
            std::tie(ec, read) = co_await bhttp::async_read_some(stream, buffer, parser, nothrow);
            over = !body_held.grow_to(self->body_bytes_, parser.get().body().size(), self->opts_.max_body_bytes_in_flight);
          }
          if (over) {
            co_await answer_then_close(stream, to_wire(self->refusal(503, "too much request body in memory"), head.version(), false));
            co_return;
          }
        } else {
          std::tie(ec, read) = co_await bhttp::async_read(stream, buffer, parser, nothrow);
        }
      }
      if (ec) {
        // EOF, timeouts, resets and stop() end the session quietly; malformed requests get an answer.
        std::optional<server_response> reject;
        if (ec == bhttp::error::body_limit) {
          reject = self->refusal(413, "request body too large");
        } else if (ec == bhttp::error::header_limit) {
          reject = self->refusal(431, "request header fields too large");
        } else if (ec.category() == make_error_code(bhttp::error::bad_method).category() &&
                   ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
          // Beast's words say which part is wrong: "bad method", "bad Content-Length", "bad chunk".
          reject = self->refusal(400, ec.message());
        }
        if (reject) {
          co_await answer_then_close(stream, to_wire(std::move(*reject), 11, false));
          co_return;
        }
        break;
      }

      // stop() came while the body was read (up to idle_timeout): the drain may end before a
      // handler would answer, so the request is not taken but answered, as above.
      if (self->stopped_.load()) {
        co_await answer_then_close(stream, to_wire(self->refusal(503, "stopping"), parser.get().version(), false));
        co_return;
      }
      auto msg = parser.release();
      server_request req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      for (const auto& field : msg) req.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
      req.body = std::move(msg.body());

      server_response reply;
      try {
        if (self->async_handler_) {
          reply = co_await self->async_handler_(std::move(req));
        } else {
          reply = self->handler_(req);
        }
      } catch (...) {
        // In the server's own error shape (JSON for the gateway); what failed is not the caller's to read.
        reply = self->refusal(500, "internal error");
      }
      std::string().swap(req.body);  // a synchronous handler's request still had it
      body_held.release();
      // Stopping: this answer is the connection's last.
      const bool keep_alive = msg.keep_alive() && !self->stopped_.load();
      auto res = to_wire(std::move(reply), msg.version(), keep_alive);
      if (msg.method() == bhttp::verb::head) res.body().clear();  // Content-Length stays
      stream.expires_after(self->opts_.idle_timeout);
      auto [wec, written] = co_await bhttp::async_write(stream, res, nothrow);
      s->busy = false;
      // stop() may have come during the write: it left this session to end here.
      if (wec || !keep_alive || self->stopped_.load()) break;
    }
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  net::any_io_executor ex_;
  net::any_io_executor strand_;  // the acceptor's
  server_options opts_;
  handler handler_;
  async_handler async_handler_;  // set instead of handler_ for asynchronous handlers
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::atomic<std::uint16_t> port_{0};
  std::mutex mu_;
  std::atomic<bool> stopped_{false};  // written under mu_
  std::vector<std::weak_ptr<session>> sessions_;
  std::atomic<int> refusing_{0};  // connections over max_connections being answered
  std::atomic<std::size_t> body_bytes_{0};  // request bodies held (opts_.max_body_bytes_in_flight)
};

server::server(net::any_io_executor ex, server_options opts, handler h)
    : impl_(std::make_shared<impl>(std::move(ex), opts, std::move(h), async_handler{})) {}

server::server(net::any_io_executor ex, server_options opts, async_handler h)
    : impl_(std::make_shared<impl>(std::move(ex), opts, handler{}, std::move(h))) {}

server::~server() { impl_->stop(std::chrono::milliseconds(0)); }

void server::start(const std::string& host, std::uint16_t port) { impl_->start(host, port); }

std::uint16_t server::port() const { return impl_->port_.load(); }

void server::stop(std::chrono::milliseconds drain) { impl_->stop(drain); }

}  // namespace sendq::http
