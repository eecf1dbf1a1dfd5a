#include "server.hpp"

#include <algorithm>
#include <iostream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sendq::simulator {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

http_request to_request(const bhttp::request<bhttp::string_body>& req) {
  http_request r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  r.headers.reserve(8);
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    r.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  r.body = req.body();
  return r;
}

bhttp::response<bhttp::string_body> to_response(http_reply reply, unsigned version, bool keep_alive) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(reply.status), version};
  res.set(bhttp::field::server, "sendq-simulator");
  res.set(bhttp::field::content_type, reply.content_type);
  for (auto& [name, value] : reply.headers) res.set(name, value);
  res.body() = std::move(reply.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

/// Status line and headers of `reply` with no body of their own (the caller writes the body).
bhttp::response<bhttp::empty_body> head_of(const http_reply& reply, unsigned version, bool keep_alive) {
  bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(reply.status), version};
  res.set(bhttp::field::server, "sendq-simulator");
  res.set(bhttp::field::content_type, reply.content_type);
  for (auto& [name, value] : reply.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  return res;
}

bool quiet(const beast::error_code& ec) {
  return ec == net::error::operation_aborted || ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
         ec == net::error::eof || ec == net::error::connection_reset || ec == net::error::bad_descriptor;
}

}  // namespace

struct server::connection {
  connection(tcp::socket s, std::uint64_t id_in)
      : stream(std::move(s)), timer(stream.get_executor()), id(id_in) {}

  beast::tcp_stream stream;
  net::steady_timer timer;  // fault latency
  std::uint64_t id;
  bool stopping = false;  // touched only on the connection's strand

  void close() {
    stopping = true;
    beast::error_code ec;
    timer.cancel();
    stream.socket().close(ec);
  }
};

server::server(net::io_context& ioc, simulator& sim, server_options opts)
    : ioc_(ioc), sim_(sim), opts_(opts), acceptor_(net::make_strand(ioc)) {}

server::~server() = default;

void server::start(const std::string& host, std::uint16_t port) {
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  auto where = host + ":" + std::to_string(port);
  if (ec) throw std::runtime_error("--listen: '" + host + "' is not an IP address (use e.g. 127.0.0.1)");
  tcp::endpoint ep{address, port};
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  net::co_spawn(acceptor_.get_executor(), accept_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "sendq-simulator: accept loop failed: " << ex.what() << '\n';
    }
  });
}

void server::stop() {
  std::vector<std::shared_ptr<connection>> open;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    for (auto& [id, weak] : connections_) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  // Each connection is closed on its own strand, where its coroutine runs.
  for (auto& c : open) net::post(c->stream.get_executor(), [c] { c->close(); });
}

void server::forget(std::uint64_t id) {
  std::lock_guard lock(mu_);
  connections_.erase(id);
}

net::awaitable<void> server::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(net::make_strand(ioc_), use_tuple);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
      // Out of descriptors and the like: keep serving the connections we have.
      std::cerr << "sendq-simulator: accept: " << ec.message() << '\n';
      continue;
    }
    std::shared_ptr<connection> c;
    {
      std::lock_guard lock(mu_);
      if (stopped_) co_return;
      c = std::make_shared<connection>(std::move(socket), next_id_++);
      connections_.emplace(c->id, c);
    }
    auto ex = c->stream.get_executor();
    net::co_spawn(ex, session(c), [this, id = c->id](std::exception_ptr e) {
      forget(id);
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::cerr << "sendq-simulator: connection failed: " << ex.what() << '\n';
      }
    });
  }
}

net::awaitable<void> server::session(std::shared_ptr<connection> c) {
  beast::flat_buffer buffer;
  auto& stream = c->stream;
  bool keep_open = true;
  while (keep_open && !c->stopping) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(opts_.body_limit);
    stream.expires_after(opts_.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
    if (!ec && beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
      std::tie(ec, n) = co_await bhttp::async_write(stream, cont, use_tuple);
    }
    if (!ec && !parser.is_done()) {
      stream.expires_after(opts_.idle_timeout);
      std::tie(ec, n) = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
    }
    if (ec) {
      // Say why on protocol errors; closed or idle connections just end.
      if (!quiet(ec) && !c->stopping && ec != bhttp::error::partial_message) {
        unsigned status = ec == bhttp::error::body_limit ? 413 : 400;
        http_reply r;
        r.status = status;
        r.body = "{\"error\":\"" + std::string(status == 413 ? "body too large" : "bad request") + "\"}";
        auto res = to_response(std::move(r), 11, false);
        stream.expires_after(opts_.idle_timeout);
        co_await bhttp::async_write(stream, res, use_tuple);
      }
      break;
    }

    auto req = parser.release();
    decision d = sim_.handle(to_request(req));
    if (d.delay.count() > 0) {
      c->timer.expires_after(d.delay);
      auto [wait_ec] = co_await c->timer.async_wait(use_tuple);
      if (wait_ec || c->stopping) break;
    }

    switch (d.how) {
      case transport::respond: {
        auto res = to_response(std::move(d.reply), req.version(), req.keep_alive());
        stream.expires_after(opts_.idle_timeout);
        auto [write_ec, written] = co_await bhttp::async_write(stream, res, use_tuple);
        keep_open = !write_ec && res.keep_alive();
        break;
      }
      case transport::reset: {
        // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        beast::error_code ignored;
        stream.socket().set_option(net::socket_base::linger(true, 0), ignored);
        stream.socket().close(ignored);
        co_return;
      }
      case transport::hang: {
        // Keep reading (and discarding) until the client closes or stop() closes the socket.
        stream.expires_never();
        std::array<char, 4096> scratch{};
        for (;;) {
          auto [read_ec, got] = co_await stream.socket().async_read_some(net::buffer(scratch), use_tuple);
          if (read_ec) co_return;
        }
      }
      case transport::slow_drip: {
        // The headers at once, then the body byte by byte: each read of the client gets data
        // well within an idle timer, so only a deadline for the whole reply ends it.
        auto res = to_response(std::move(d.reply), req.version(), req.keep_alive());
        bhttp::response_serializer<bhttp::string_body> sr{res};
        stream.expires_after(opts_.idle_timeout);
        auto [write_ec, written] = co_await bhttp::async_write_header(stream, sr, use_tuple);
        const std::string& body = res.body();
        bool complete = !write_ec;
        for (std::size_t i = 0; complete && i < body.size(); ++i) {
          c->timer.expires_after(d.interval);
          auto [wait_ec] = co_await c->timer.async_wait(use_tuple);
          if (wait_ec || c->stopping) {
            complete = false;
            break;
          }
          stream.expires_after(opts_.idle_timeout);
          std::tie(write_ec, written) = co_await net::async_write(stream, net::buffer(body.data() + i, 1), use_tuple);
          complete = !write_ec;
        }
        keep_open = complete && res.keep_alive();
        break;
      }
      case transport::huge_body: {
        // Content-Length `bytes`: the reply, then spaces (valid JSON whitespace), 64 KiB at a time.
        auto res = head_of(d.reply, req.version(), req.keep_alive());
        res.content_length(d.bytes);
        bhttp::response_serializer<bhttp::empty_body> sr{res};
        stream.expires_after(opts_.idle_timeout);
        auto [write_ec, written] = co_await bhttp::async_write_header(stream, sr, use_tuple);
        const std::string& reply = d.reply.body;
        std::uint64_t left = d.bytes;
        if (!write_ec) {
          const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, reply.size()));
          std::tie(write_ec, written) = co_await net::async_write(stream, net::buffer(reply.data(), n), use_tuple);
          left -= n;
        }
        static const std::string padding(64 * 1024, ' ');
        while (!write_ec && left > 0 && !c->stopping) {
          const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, padding.size()));
          stream.expires_after(opts_.idle_timeout);
          std::tie(write_ec, written) = co_await net::async_write(stream, net::buffer(padding.data(), n), use_tuple);
          left -= n;
        }
        // A client that stops reading closes the connection: the writes above fail and it ends.
        keep_open = !write_ec && left == 0 && res.keep_alive();
        break;
      }
      case transport::chunked: {
        // The same reply in (up to) four chunks, each written on its own (HTTP/1.0 has no chunks:
        // such a client gets the reply as usual).
        if (req.version() < 11) {
          auto res = to_response(std::move(d.reply), req.version(), req.keep_alive());
          stream.expires_after(opts_.idle_timeout);
          auto [write_ec, written] = co_await bhttp::async_write(stream, res, use_tuple);
          keep_open = !write_ec && res.keep_alive();
          break;
        }
        auto res = head_of(d.reply, req.version(), req.keep_alive());
        res.chunked(true);
        bhttp::response_serializer<bhttp::empty_body> sr{res};
        stream.expires_after(opts_.idle_timeout);
        auto [write_ec, written] = co_await bhttp::async_write_header(stream, sr, use_tuple);
        const std::string& body = d.reply.body;
        const std::size_t step = std::max<std::size_t>(1, (body.size() + 3) / 4);
        for (std::size_t at = 0; !write_ec && at < body.size(); at += step) {
          const auto part = net::buffer(body.data() + at, std::min(step, body.size() - at));
          stream.expires_after(opts_.idle_timeout);
          std::tie(write_ec, written) = co_await net::async_write(stream, bhttp::make_chunk(part), use_tuple);
        }
        if (!write_ec) {
          std::tie(write_ec, written) = co_await net::async_write(stream, bhttp::make_chunk_last(), use_tuple);
        }
        keep_open = !write_ec && res.keep_alive();
        break;
      }
      case transport::close_after_reply: {
        auto res = to_response(std::move(d.reply), req.version(), false);  // Connection: close
        stream.expires_after(opts_.idle_timeout);
        co_await bhttp::async_write(stream, res, use_tuple);
        keep_open = false;
        break;
      }
      case transport::http10: {
        // HTTP/1.0 without Content-Length: the body is everything up to the close.
        bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(d.reply.status), 10};
        res.set(bhttp::field::server, "sendq-simulator");
        res.set(bhttp::field::content_type, d.reply.content_type);
        for (auto& [name, value] : d.reply.headers) res.set(name, value);
        res.body() = std::move(d.reply.body);
        res.keep_alive(false);
        stream.expires_after(opts_.idle_timeout);
        co_await bhttp::async_write(stream, res, use_tuple);
        keep_open = false;
        break;
      }
      case transport::drop_after_headers: {
        auto res = to_response(std::move(d.reply), req.version(), false);
        bhttp::response_serializer<bhttp::string_body> sr{res};
        stream.expires_after(opts_.idle_timeout);
        co_await bhttp::async_write_header(stream, sr, use_tuple);
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.socket().close(ignored);
        co_return;
      }
    }
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

}  // namespace sendq::simulator
