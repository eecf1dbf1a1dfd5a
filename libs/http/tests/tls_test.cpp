// HTTPS against a loopback TLS server whose certificates the test makes with the openssl CLI.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <gtest/gtest.h>

#include "scratch_dir.hpp"
#include "sendq/http/client.hpp"
#include "test_support.hpp"

namespace sendq::http {
namespace {

using namespace testing;  // sendq::http::testing
namespace ssl = boost::asio::ssl;
namespace fs = std::filesystem;

/// A CA plus two server certificates: `good` for DNS:localhost and IP:127.0.0.1, `dns_only`
/// for DNS:localhost alone.
class certificates {
 public:
  certificates() {
    const std::string ec_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh("openssl req -x509 " + ec_key + " -keyout ca.key -out ca.pem -days 2 -subj '/CN=sendq test CA'");
    sh("openssl req " + ec_key + " -keyout server.key -out server.csr -subj '/CN=localhost'");
    make_cert("good", "subjectAltName=DNS:localhost,IP:127.0.0.1");
    make_cert("dns_only", "subjectAltName=DNS:localhost");
  }
  std::string path(const std::string& name) const { return (dir() / name).string(); }

 private:
  void sh(const std::string& cmd) const {
    const std::string full = "cd '" + scratch_.path + "' && " + cmd + " >/dev/null 2>&1";
    if (std::system(full.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
  }
  void make_cert(const std::string& name, const std::string& san) const {
    std::ofstream(dir() / (name + ".ext")) << san << "\n";
    sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out " + name +
       ".pem -extfile " + name + ".ext");
  }

  sendq::test_support::scratch_dir scratch_;  // removed with the certificates
  fs::path dir() const { return scratch_.path; }
};

/// What a tls_server does 50 ms after each reply, while the client's connection is idle.
enum class when_idle {
  nothing,
  /// closes it the way nginx closes an idle one: a TLS close_notify, then (its own not answered
  /// within 300 ms) the TCP close
  close,
  /// sends it a TLS 1.3 session ticket, as servers may at any time after the handshake
  send_session_ticket,
};

/// A keep-alive HTTPS server answering "ok" to everything, on its own thread.
class tls_server {
 public:
  tls_server(const certificates& certs, const std::string& cert, when_idle idle = when_idle::nothing)
      : idle_(idle),
        acceptor_(runner_.executor(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    ctx_.use_certificate_chain_file(certs.path(cert + ".pem"));
    ctx_.use_private_key_file(certs.path("server.key"), ssl::context::pem);
    net::co_spawn(acceptor_.get_executor(), accept_loop(), net::detached);
  }
  ~tls_server() { runner_.stop(); }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_.load(); }
  /// when_idle::close: connections whose close_notify was sent, and those closed since.
  int notified() const { return notified_.load(); }
  int closed() const { return closed_.load(); }
  /// when_idle::send_session_ticket: tickets written to an idle connection.
  int tickets() const { return tickets_.load(); }
  /// Waits until `pred` (of the counts above) holds; false after `limit`.
  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
    return events_.wait_for(pred, limit);
  }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (ec) co_return;
      ++accepted_;
      net::co_spawn(acceptor_.get_executor(), session(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> session(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), ctx_);
    beast::get_lowest_layer(stream).expires_after(10s);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, nothrow);
    if (hec) co_return;  // expected when the client rejects our certificate
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      auto [rec, read] = co_await bhttp::async_read(stream, buffer, req, nothrow);
      if (rec) co_return;
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      res.body() = "ok";
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, written] = co_await bhttp::async_write(stream, res, nothrow);
      if (wec) co_return;
      if (idle_ == when_idle::nothing) continue;
      net::steady_timer idle(stream.get_executor(), 50ms);
      co_await idle.async_wait(nothrow);
      if (idle_ == when_idle::send_session_ticket) {
        // OpenSSL queues the ticket and writes it at the next handshake step. That step has to go
        // through Asio: SSL_do_handshake called directly leaves the record in Asio's memory BIO,
        // and nothing reaches the socket until the next reply.
        if (SSL_new_session_ticket(stream.native_handle()) != 1) co_return;
        auto [tec] = co_await stream.async_handshake(ssl::stream_base::server, nothrow);
        if (tec) co_return;
        ++tickets_;
        events_.notify();
      }
      if (idle_ == when_idle::close) {
        beast::get_lowest_layer(stream).expires_after(300ms);
        // Sends close_notify at once, then waits for the client's, which an idle client never sends.
        // Counted by a handler posted now: it runs once the operation has started, as it is awaited
        // just below, and that start writes close_notify (Asio tries a send at once).
        net::post(stream.get_executor(), [this] {
          ++notified_;
          events_.notify();
        });
        co_await stream.async_shutdown(nothrow);
        beast::get_lowest_layer(stream).close();
        ++closed_;
        events_.notify();
        co_return;
      }
    }
  }

  when_idle idle_;
  ssl::context ctx_{ssl::context::tls_server};
  io_runner runner_{1};
  tcp::acceptor acceptor_;
  std::atomic<int> accepted_{0};
  std::atomic<int> notified_{0};
  std::atomic<int> closed_{0};
  std::atomic<int> tickets_{0};
  event_waiter events_;
};

class http_client_tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new certificates(); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  static call_result get(io_runner& io, client& c, const std::string& url) {
    const auto ep = endpoint::parse(url);
    if (!ep) throw std::runtime_error("bad URL " + url);
    request req;
    req.method = "GET";
    req.target = "/";
    return run(io.executor(), c.send(*ep, req));
  }

  static std::string url(const std::string& host, std::uint16_t port) {
    return "https://" + host + ":" + std::to_string(port);
  }

  static certificates* certs_;
};

certificates* http_client_tls::certs_ = nullptr;

TEST_F(http_client_tls, succeeds_and_reuses_the_connection_when_the_ca_is_trusted) {
  // given
  io_runner io;
  tls_server srv(*certs_, "good");
  client_options opts;
  opts.ca_file = certs_->path("ca.pem");
  client c(io.executor(), opts);
  // when
  for (const char* host : {"127.0.0.1", "127.0.0.1", "127.0.0.1"}) {
    auto r = get(io, c, url(host, srv.port()));
    // then
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.ok->body, "ok");
  }
  EXPECT_EQ(srv.accepted(), 1);
}

TEST_F(http_client_tls, a_checked_reuse_keeps_a_healthy_connection) {
  // given: every reuse checked (the peek at an idle TLS connection must not take a healthy one for a
  // closed one)
  io_runner io;
  tls_server srv(*certs_, "good");
  client_options opts;
  opts.ca_file = certs_->path("ca.pem");
  opts.reuse_unchecked_within = 0ms;
  client c(io.executor(), opts);
  // when
  for (int i = 0; i < 3; ++i) {
    auto r = get(io, c, url("127.0.0.1", srv.port()));
    // then
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.ok->body, "ok");
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(srv.accepted(), 1);
}

TEST_F(http_client_tls, a_session_ticket_that_arrives_while_the_connection_is_idle_does_not_retire_it) {
  // given: every reuse checked, and a server that sends a session ticket to each idle connection:
  // bytes the reuse check finds waiting, which only a TLS read tells from a close_notify
  io_runner io;
  tls_server srv(*certs_, "good", when_idle::send_session_ticket);
  client_options opts;
  opts.ca_file = certs_->path("ca.pem");
  opts.reuse_unchecked_within = 0ms;
  client c(io.executor(), opts);
  for (int i = 1; i <= 3; ++i) {
    auto r = get(io, c, url("127.0.0.1", srv.port()));
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.ok->body, "ok");
    // when: the ticket was written to the idle connection (and loopback had a margin to deliver it)
    ASSERT_TRUE(srv.wait_for([&] { return srv.tickets() == i; })) << "ticket " << i;
    std::this_thread::sleep_for(30ms);
  }
  auto last = get(io, c, url("127.0.0.1", srv.port()));
  // then: every request went out on the first connection
  ASSERT_TRUE(last.ok) << last.message;
  EXPECT_EQ(srv.accepted(), 1);
}

TEST_F(http_client_tls, a_pooled_connection_the_server_closed_with_close_notify_is_replaced) {
  // First with the close_notify there and the TCP close not yet (it comes 300 ms later), then with both.
  for (const bool tcp_closed : {false, true}) {
    const char* const when = tcp_closed ? "after the TCP close" : "after the close_notify, before the TCP close";
    // given: a server that closes a connection 50 ms after its reply
    io_runner io;
    tls_server srv(*certs_, "good", when_idle::close);
    client_options opts;
    opts.ca_file = certs_->path("ca.pem");
    client c(io.executor(), opts);
    auto first = get(io, c, url("127.0.0.1", srv.port()));
    ASSERT_TRUE(first.ok) << first.message;
    // when: the next request comes after that close (waited for, not guessed: the machine may be slow)
    ASSERT_TRUE(srv.wait_for([&] { return (tcp_closed ? srv.closed() : srv.notified()) == 1; })) << when;
    std::this_thread::sleep_for(30ms);  // close_notify written: a margin for loopback to deliver it
    auto second = get(io, c, url("127.0.0.1", srv.port()));
    // then: it went out on a new connection, not into the closed one (which ends `ambiguous`)
    ASSERT_TRUE(second.ok) << when << ": " << second.message;
    EXPECT_EQ(second.ok->body, "ok");
    EXPECT_EQ(srv.accepted(), 2) << when;
  }
}

TEST_F(http_client_tls, a_handshake_the_server_never_answers_is_a_retryable_connect_failure) {
  // given: a server that takes the connection and says nothing
  io_runner io;
  test_server srv(test_server::mode::silent);
  client_options opts;
  opts.ca_file = certs_->path("ca.pem");
  opts.connect_timeout = 300ms;
  client c(io.executor(), opts);
  // when
  auto r = get(io, c, url("127.0.0.1", srv.port()));
  // then: `connect` (retryable: nothing was sent), not `tls` (permanent)
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::connect) << r.message;
  EXPECT_NE(r.message.find("TLS handshake with 127.0.0.1:" + std::to_string(srv.port()) + " timed out after 300ms"),
            std::string::npos)
      << r.message;
}

TEST_F(http_client_tls, a_handshake_the_server_cuts_off_is_a_retryable_connect_failure) {
  // given: a server that closes the connection on the first bytes it cannot read as HTTP
  io_runner io;
  test_server srv(test_server::mode::close_after_request);
  client_options opts;
  opts.ca_file = certs_->path("ca.pem");
  client c(io.executor(), opts);
  // when
  auto r = get(io, c, url("127.0.0.1", srv.port()));
  // then
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::connect) << r.message;
  EXPECT_NE(r.message.find("cut off by the server"), std::string::npos) << r.message;
}

TEST_F(http_client_tls, verifies_a_host_name_against_its_dns_san) {
  io_runner io;
  tls_server srv(*certs_, "good");
  client_options opts;
  opts.ca_file = certs_->path("ca.pem");
  client c(io.executor(), opts);
  auto r = get(io, c, url("localhost", srv.port()));
  ASSERT_TRUE(r.ok) << r.message;
}

TEST_F(http_client_tls, fails_with_tls_when_the_ca_is_not_trusted) {
  io_runner io;
  tls_server srv(*certs_, "good");
  client c(io.executor(), {});  // system store only
  auto r = get(io, c, url("127.0.0.1", srv.port()));
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::tls) << r.message;
}

TEST_F(http_client_tls, fails_with_tls_when_the_host_name_does_not_match) {
  // given: a certificate for DNS:localhost only, reached as 127.0.0.1
  io_runner io;
  tls_server srv(*certs_, "dns_only");
  client_options opts;
  opts.ca_file = certs_->path("ca.pem");
  client c(io.executor(), opts);
  // when
  auto r = get(io, c, url("127.0.0.1", srv.port()));
  // then
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::tls) << r.message;
}

TEST_F(http_client_tls, a_missing_ca_file_is_a_start_up_error) {
  io_runner io;
  client_options opts;
  opts.ca_file = certs_->path("does-not-exist.pem");
  EXPECT_THROW(client(io.executor(), opts), std::runtime_error);
}

}  // namespace
}  // namespace sendq::http
