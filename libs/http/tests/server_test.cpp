#include <atomic>
#include <cstdio>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include "sendq/http/client.hpp"
#include "sendq/http/server.hpp"
#include "test_support.hpp"

namespace sendq::http {
namespace {

using namespace testing;  // sendq::http::testing

// Connects `stream` (expiring after `cap`) to the server on `port` and writes `raw`; what failed, if anything.
net::awaitable<std::optional<std::string>> connect_and_write(beast::tcp_stream& stream, std::uint16_t port,
                                                             const std::string& raw, std::chrono::seconds cap = 5s) {
  stream.expires_after(cap);
  auto [cec] = co_await stream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), nothrow);
  if (cec) co_return "connect failed: " + cec.message();
  auto [wec, written] = co_await net::async_write(stream, net::buffer(raw), nothrow);
  if (wec) co_return "write failed: " + wec.message();
  co_return std::nullopt;
}

// Connects, writes `raw`, and returns everything the server sends until it closes (5 s cap).
net::awaitable<std::string> raw_exchange(std::uint16_t port, std::string raw) {
  beast::tcp_stream stream(co_await net::this_coro::executor);
  if (auto failed = co_await connect_and_write(stream, port, raw)) co_return *failed;
  std::string reply;
  auto [rec, read] = co_await net::async_read(stream, net::dynamic_buffer(reply), nothrow);
  if (rec == beast::error::timeout) co_return "timed out";
  co_return reply;
}

server_response ok_handler(const server_request&) { return {200, "text/plain", "ok", {}}; }

TEST(http_server, lower_cases_header_names_and_passes_the_body) {
  // given
  io_runner io;
  server_request seen;
  server srv(io.executor(), {}, [&](const server_request& r) {
    seen = r;
    return server_response{};
  });
  srv.start("127.0.0.1", 0);
  // when
  auto reply = run(io.executor(), raw_exchange(srv.port(),
                                               "PUT /x HTTP/1.1\r\nHost: a\r\nX-Mixed-Case: V\r\n"
                                               "Connection: close\r\nContent-Length: 3\r\n\r\nabc"));
  // then
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_EQ(seen.method, "PUT");
  EXPECT_EQ(seen.target, "/x");
  EXPECT_EQ(seen.header("x-mixed-case"), "V");
  EXPECT_EQ(seen.body, "abc");
  srv.stop();
}

TEST(http_server, keeps_the_connection_alive_when_asked) {
  // given
  io_runner io;
  server srv(io.executor(), {}, ok_handler);
  srv.start("127.0.0.1", 0);
  // when: two pipelined requests, the second one closing
  auto reply = run(io.executor(), raw_exchange(srv.port(),
                                               "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                                               "GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  // then
  const auto first = reply.find("HTTP/1.1 200 OK");
  ASSERT_NE(first, std::string::npos) << reply;
  EXPECT_NE(reply.find("HTTP/1.1 200 OK", first + 1), std::string::npos) << reply;
  srv.stop();
}

TEST(http_server, rejects_a_body_over_the_limit_with_413) {
  io_runner io;
  server_options opts;
  opts.body_limit = 100;
  server srv(io.executor(), opts, ok_handler);
  srv.start("127.0.0.1", 0);
  // Only the header is sent, so nothing is left unread when the server closes.
  auto reply = run(io.executor(), raw_exchange(srv.port(), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"));
  EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
  srv.stop();
}

TEST(http_server, answers_garbage_with_400) {
  io_runner io;
  server srv(io.executor(), {}, ok_handler);
  srv.start("127.0.0.1", 0);
  auto reply = run(io.executor(), raw_exchange(srv.port(), "NOT HTTP AT ALL\r\n\r\n"));
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  srv.stop();
}

TEST(http_server, answers_its_own_refusals_with_the_refusal_option_when_set) {
  // given a server whose other errors are JSON
  io_runner io;
  server_options opts;
  opts.body_limit = 100;
  opts.refusal = [](unsigned status, std::string_view reason) {
    return server_response{status, "application/json", "{\"status\":" + std::to_string(status) + ",\"why\":\"" + std::string(reason) + "\"}", {}};
  };
  server srv(io.executor(), opts, ok_handler);
  srv.start("127.0.0.1", 0);
  // when a body over the limit, then garbage, arrive
  auto too_large = run(io.executor(), raw_exchange(srv.port(), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"));
  auto garbage = run(io.executor(), raw_exchange(srv.port(), "NOT HTTP AT ALL\r\n\r\n"));
  auto bad_length = run(io.executor(), raw_exchange(srv.port(), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n"));
  auto big_head = run(io.executor(), raw_exchange(srv.port(), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n"));
  // then each is answered by the option, with its status
  EXPECT_EQ(too_large.rfind("HTTP/1.1 413", 0), 0u) << too_large;
  EXPECT_NE(too_large.find("Content-Type: application/json"), std::string::npos) << too_large;
  EXPECT_NE(too_large.find(R"({"status":413,"why":"request body too large"})"), std::string::npos) << too_large;
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400", 0), 0u) << garbage;
  EXPECT_NE(garbage.find(R"({"status":400,"why":"bad version"})"), std::string::npos) << garbage;
  // and each says what was wrong: Beast's words for the part, 431 for a head over the limit
  EXPECT_NE(bad_length.find(R"({"status":400,"why":"bad Content-Length"})"), std::string::npos) << bad_length;
  EXPECT_EQ(big_head.rfind("HTTP/1.1 431", 0), 0u) << big_head;
  EXPECT_NE(big_head.find(R"({"status":431,"why":"request header fields too large"})"), std::string::npos) << big_head;
  srv.stop();
}

TEST(http_server, handler_exception_becomes_500) {
  io_runner io;
  server srv(io.executor(), {}, [](const server_request&) -> server_response { throw std::runtime_error("boom"); });
  srv.start("127.0.0.1", 0);
  auto reply = run(io.executor(), raw_exchange(srv.port(), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(reply.rfind("HTTP/1.1 500", 0), 0u) << reply;
  srv.stop();
}

TEST(http_server, async_handler_answers_after_it_resumes) {
  // given a handler that waits on a timer before answering
  io_runner io;
  server srv(io.executor(), {}, [](server_request r) -> net::awaitable<server_response> {
    net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(20));
    co_await t.async_wait(nothrow);
    co_return server_response{201, "text/plain", "late " + r.body, {}};
  });
  srv.start("127.0.0.1", 0);
  // when
  auto reply = run(io.executor(), raw_exchange(srv.port(),
                                               "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                                               "Content-Length: 1\r\n\r\nx"));
  // then
  EXPECT_EQ(reply.rfind("HTTP/1.1 201", 0), 0u) << reply;
  EXPECT_NE(reply.find("late x"), std::string::npos) << reply;
  srv.stop();
}

TEST(http_server, async_handler_exception_becomes_500) {
  io_runner io;
  server srv(io.executor(), {}, [](server_request) -> net::awaitable<server_response> {
    throw std::runtime_error("boom");
    co_return server_response{};
  });
  srv.start("127.0.0.1", 0);
  auto reply = run(io.executor(), raw_exchange(srv.port(), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(reply.rfind("HTTP/1.1 500", 0), 0u) << reply;
  srv.stop();
}

TEST(http_server, answers_head_without_a_body) {
  io_runner io;
  server srv(io.executor(), {}, ok_handler);
  srv.start("127.0.0.1", 0);
  auto reply = run(io.executor(), raw_exchange(srv.port(), "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("Content-Length: 2\r\n"), std::string::npos) << reply;
  EXPECT_EQ(reply.substr(reply.size() - 4), "\r\n\r\n") << reply;
  srv.stop();
}

TEST(http_server, start_throws_naming_the_address_when_the_port_is_taken) {
  // given
  io_runner io;
  server first(io.executor(), {}, ok_handler);
  first.start("127.0.0.1", 0);
  server second(io.executor(), {}, ok_handler);
  // when / then
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  try {
    second.start("127.0.0.1", first.port());
    ADD_FAILURE() << "bound a taken port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(address), std::string::npos) << e.what();
  }
  first.stop();
}

// Sends one keep-alive request, reports the answer via `answered`, then waits for the close.
net::awaitable<std::string> keep_alive_then_wait(std::uint16_t port, std::promise<void>& answered) {
  beast::tcp_stream stream(co_await net::this_coro::executor);
  if (auto failed = co_await connect_and_write(stream, port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")) co_return *failed;
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  auto [hec, n] = co_await bhttp::async_read(stream, buffer, res, nothrow);
  if (hec) co_return "no answer: " + hec.message();
  answered.set_value();
  char byte = 0;
  auto [rec, read] = co_await stream.async_read_some(net::buffer(&byte, 1), nothrow);
  co_return rec == beast::error::timeout ? "timed out" : "closed";
}

TEST(http_server, stop_closes_open_connections) {
  // given: an idle keep-alive connection
  io_runner io;
  server srv(io.executor(), {}, ok_handler);
  srv.start("127.0.0.1", 0);
  std::promise<void> answered;
  auto waiting = net::co_spawn(io.executor(), keep_alive_then_wait(srv.port(), answered), net::use_future);
  ASSERT_EQ(answered.get_future().wait_for(10s), std::future_status::ready);
  // when
  srv.stop();
  // then: the client sees the close well before the server's idle timeout
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(waiting.get(), "closed");
}

TEST(http_server, answers_413_to_a_client_that_sends_the_whole_body_at_once) {
  // given a client that writes headers and an over-limit body in one go, as most libraries do
  io_runner io;
  server_options opts;
  opts.body_limit = 100;
  server srv(io.executor(), opts, ok_handler);
  srv.start("127.0.0.1", 0);
  const std::string body(1 << 20, 'x');
  // when
  auto reply = run(io.executor(), raw_exchange(srv.port(), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " +
                                                               std::to_string(body.size()) + "\r\n\r\n" + body));
  // then its write completes and it reads the 413 (closed with the body unread, the kernel would
  // reset the connection under the client's write)
  EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply.substr(0, 200);
  srv.stop();
}

TEST(http_server, answers_100_continue_to_a_client_that_waits_for_it) {
  io_runner io;
  server srv(io.executor(), {}, [](const server_request& r) { return server_response{200, "text/plain", "got " + r.body, {}}; });
  srv.start("127.0.0.1", 0);
  auto reply = run(io.executor(), raw_exchange(srv.port(), "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                                                           "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"));
  EXPECT_EQ(reply.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", 0), 0u) << reply;
  EXPECT_NE(reply.find("got hello"), std::string::npos) << reply;
  // and not to an HTTP/1.0 client, which has no such expectation (RFC 9110 10.1.1)
  auto old = run(io.executor(), raw_exchange(srv.port(), "POST / HTTP/1.0\r\nHost: a\r\n"
                                                         "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"));
  EXPECT_EQ(old.rfind("HTTP/1.0 200", 0), 0u) << old;
  EXPECT_NE(old.find("got hello"), std::string::npos) << old;
  srv.stop();
}

TEST(http_server, on_head_refuses_a_request_before_its_body_is_read) {
  // given a check that refuses every head without an "x-key", and a handler that counts bodies
  io_runner io;
  std::atomic<int> handled{0};
  server_options opts;
  opts.body_limit = 4 << 20;
  opts.on_head = [](const server_request& head) -> std::optional<server_response> {
    EXPECT_TRUE(head.body.empty());
    if (head.header("x-key") == "k") return std::nullopt;
    return server_response{401, "text/plain", "no key\n", {}};
  };
  server srv(io.executor(), opts, [&](const server_request& r) {
    ++handled;
    return server_response{200, "text/plain", "len " + std::to_string(r.body.size()), {}};
  });
  srv.start("127.0.0.1", 0);
  const std::string body(2 << 20, 'x');
  const auto post = [&](std::string extra) {
    return "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + extra + "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  // when a request without the key sends a 2 MB body: refused, and the client still reads why
  auto refused = run(io.executor(), raw_exchange(srv.port(), post("")));
  EXPECT_EQ(refused.rfind("HTTP/1.1 401", 0), 0u) << refused.substr(0, 200);
  EXPECT_NE(refused.find("no key"), std::string::npos);
  // then the handler never saw it; one with the key is served whole
  auto served = run(io.executor(), raw_exchange(srv.port(), post("X-Key: k\r\n")));
  EXPECT_NE(served.find("len " + std::to_string(body.size())), std::string::npos) << served.substr(0, 200);
  EXPECT_EQ(handled.load(), 1);
  srv.stop();
}

TEST(http_server, an_answer_to_a_head_request_from_on_head_has_no_body) {
  // given a check that refuses every head with a body of its own
  io_runner io;
  server_options opts;
  opts.on_head = [](const server_request&) -> std::optional<server_response> {
    return server_response{404, "text/plain", "not here\n", {}};
  };
  server srv(io.executor(), opts, ok_handler);
  srv.start("127.0.0.1", 0);
  // when a HEAD request (with a body, so that a check before it matters) is refused
  const auto reply = run(io.executor(), raw_exchange(srv.port(), "HEAD /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"));
  // then the answer has its status and length, and nothing after its head
  EXPECT_EQ(reply.rfind("HTTP/1.1 404", 0), 0u) << reply;
  EXPECT_NE(reply.find("Content-Length: 9"), std::string::npos) << reply;
  EXPECT_EQ(reply.substr(reply.size() - 4), "\r\n\r\n") << reply;
  srv.stop();
}

TEST(http_server, answers_503_over_max_connections) {
  // given a server for one connection, and one open
  io_runner io;
  server_options opts;
  opts.max_connections = 1;
  server srv(io.executor(), opts, ok_handler);
  srv.start("127.0.0.1", 0);
  std::promise<void> answered;
  auto first = net::co_spawn(io.executor(), keep_alive_then_wait(srv.port(), answered), net::use_future);
  ASSERT_EQ(answered.get_future().wait_for(10s), std::future_status::ready);
  // when a second connects
  auto second = run(io.executor(), raw_exchange(srv.port(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  // then it is answered 503 and closed, and the first is still open
  EXPECT_EQ(second.rfind("HTTP/1.1 503", 0), 0u) << second;
  EXPECT_NE(second.find("too many connections"), std::string::npos) << second;
  EXPECT_EQ(first.wait_for(0ms), std::future_status::timeout) << "the first connection was closed too";
  srv.stop();
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(first.get(), "closed");
}

TEST(http_server, a_flood_over_max_connections_is_refused_and_every_refusal_counted_even_those_closed_unanswered) {
  // given a server for one connection, one open, and a refusal that counts itself
  io_runner io;
  server_options opts;
  opts.max_connections = 1;
  std::atomic<int> refusals{0};
  opts.refusal = [&](unsigned status, std::string_view reason) {
    ++refusals;
    return server_response{status, "text/plain", std::string(reason) + "\n", {}};
  };
  server srv(io.executor(), opts, ok_handler);
  srv.start("127.0.0.1", 0);
  std::promise<void> answered;
  auto first = net::co_spawn(io.executor(), keep_alive_then_wait(srv.port(), answered), net::use_future);
  ASSERT_EQ(answered.get_future().wait_for(10s), std::future_status::ready);
  // when 200 more connect at once and hold their connections open (more than the 64 the server
  // answers at once: each answer waits up to 250 ms for its client to finish, so 65 connections
  // within 250 ms, of 200, reach the unanswered ones even on a slow, sanitized build)
  net::io_context client_io;
  std::vector<tcp::socket> flood;
  for (int i = 0; i < 200; ++i) {
    flood.emplace_back(client_io).connect({net::ip::make_address("127.0.0.1"), srv.port()});
  }
  // then every one is refused and counted, though not every one is answered
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (refusals.load() < 200 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  int answered_503 = 0;
  for (auto& socket : flood) {
    std::string got;
    boost::system::error_code ec;
    net::read(socket, net::dynamic_buffer(got), ec);  // to the server's close
    if (got.rfind("HTTP/1.1 503", 0) == 0) ++answered_503;
  }
  EXPECT_EQ(refusals.load(), 200);
  EXPECT_GE(answered_503, 1);
  EXPECT_LT(answered_503, 200) << "every connection was answered: the flood did not reach the unanswered ones";
  EXPECT_EQ(first.wait_for(0ms), std::future_status::timeout) << "the first connection was closed too";
  srv.stop();
}

// A server with room for 3,000 bytes of bodies (4,000 at most each), whose handler holds a body
// starting "slow" for 1.5 s and answers every body with its length.
struct body_budget_server {
  static server_options options() {
    server_options opts;
    opts.body_limit = 4000;
    opts.max_body_bytes_in_flight = 3000;
    return opts;
  }
  io_runner io;
  std::promise<void> started;
  server srv{io.executor(), options(), [this](server_request r) -> net::awaitable<server_response> {
               if (r.body.starts_with("slow")) {
                 started.set_value();
                 net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(1500));
                 co_await t.async_wait(nothrow);
               }
               co_return server_response{200, "text/plain", "len " + std::to_string(r.body.size()), {}};
             }};
  body_budget_server() { srv.start("127.0.0.1", 0); }
  ~body_budget_server() { srv.stop(); }
  // Sends `raw` (a body starting "slow"), and returns once its handler holds it: the future
  // gets the answer, 1.5 s later.
  std::future<std::string> hold(std::string raw) {
    auto held = started.get_future();
    auto answer = net::co_spawn(io.executor(), raw_exchange(srv.port(), std::move(raw)), net::use_future);
    EXPECT_EQ(held.wait_for(10s), std::future_status::ready);
    return answer;
  }
  std::string exchange(std::string raw) { return run(io.executor(), raw_exchange(srv.port(), std::move(raw))); }
};

std::string post_with_length(std::string body) {
  return "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string post_chunked(std::string body) {  // in chunks of 450 bytes
  std::string req = "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t i = 0; i < body.size(); i += 450) {
    const auto part = body.substr(i, 450);
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    req += size + part + "\r\n";
  }
  return req + "0\r\n\r\n";
}

TEST(http_server, answers_503_when_a_body_would_take_the_bodies_held_over_max_body_bytes_in_flight) {
  // given a body of 2,000 bytes held
  body_budget_server s;
  auto slow = s.hold(post_with_length("slow" + std::string(1996, 'x')));
  // when one of 2,000 and one of 900 come
  const auto over = s.exchange(post_with_length(std::string(2000, 'y')));
  const auto fits = s.exchange(post_with_length(std::string(900, 'z')));
  // then the first is answered 503 and closed, naming why, and the second is served
  EXPECT_EQ(over.rfind("HTTP/1.1 503", 0), 0u) << over.substr(0, 200);
  EXPECT_NE(over.find("too much request body in memory"), std::string::npos) << over.substr(0, 200);
  EXPECT_NE(fits.find("len 900"), std::string::npos) << fits.substr(0, 200);
  EXPECT_EQ(slow.wait_for(0ms), std::future_status::timeout) << "the slow request ended early";
  // and once the slow one is answered, its bytes are given back: 2,000 are taken again, and a
  // body over the whole room (3,500 of 4,000 allowed) is taken when it is alone
  ASSERT_EQ(slow.wait_for(10s), std::future_status::ready);
  EXPECT_NE(slow.get().find("len 2000"), std::string::npos);
  const auto again = s.exchange(post_with_length(std::string(2000, 'y')));
  EXPECT_NE(again.find("len 2000"), std::string::npos) << again.substr(0, 200);
  const auto alone = s.exchange(post_with_length(std::string(3500, 'w')));
  EXPECT_NE(alone.find("len 3500"), std::string::npos) << alone.substr(0, 200);
}

TEST(http_server, a_chunked_body_counts_against_max_body_bytes_in_flight_as_it_arrives) {
  // given a chunked body of 2,000 bytes held
  body_budget_server s;
  auto slow = s.hold(post_chunked("slow" + std::string(1996, 'x')));
  // when chunked bodies of 900 and of 1,350 come
  const auto fits = s.exchange(post_chunked(std::string(900, 'z')));
  const auto over = s.exchange(post_chunked(std::string(1350, 'y')));
  // then the first is served (a chunked body no longer reserves the whole body_limit, which
  // would have left no room), and the second is answered 503 once what it sent goes over
  EXPECT_NE(fits.find("len 900"), std::string::npos) << fits.substr(0, 200);
  EXPECT_EQ(over.rfind("HTTP/1.1 503", 0), 0u) << over.substr(0, 200);
  EXPECT_NE(over.find("too much request body in memory"), std::string::npos) << over.substr(0, 200);
  EXPECT_EQ(slow.wait_for(0ms), std::future_status::timeout) << "the slow request ended early";
  // and once the slow one is answered, its bytes are given back: the 1,350 are taken, and a
  // chunked body of 3,600 is taken when it is alone
  ASSERT_EQ(slow.wait_for(10s), std::future_status::ready);
  EXPECT_NE(slow.get().find("len 2000"), std::string::npos);
  const auto again = s.exchange(post_chunked(std::string(1350, 'y')));
  EXPECT_NE(again.find("len 1350"), std::string::npos) << again.substr(0, 200);
  const auto alone = s.exchange(post_chunked(std::string(3600, 'w')));
  EXPECT_NE(alone.find("len 3600"), std::string::npos) << alone.substr(0, 200);
}

TEST(http_server, stop_with_a_drain_answers_the_request_in_progress_and_closes_idle_ones_at_once) {
  // given a request whose handler takes 1.5 s (a broker's ack, say), and an idle keep-alive
  // connection
  io_runner io;
  std::promise<void> started;
  server srv(io.executor(), {}, [&](server_request r) -> net::awaitable<server_response> {
    if (r.method != "POST") co_return server_response{200, "text/plain", "ok", {}};
    started.set_value();
    net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(1500));
    co_await t.async_wait(nothrow);
    co_return server_response{202, "text/plain", "accepted " + r.body, {}};
  });
  srv.start("127.0.0.1", 0);
  std::promise<void> answered;
  auto idle = net::co_spawn(io.executor(), keep_alive_then_wait(srv.port(), answered), net::use_future);
  ASSERT_EQ(answered.get_future().wait_for(10s), std::future_status::ready);
  auto started_future = started.get_future();
  auto busy = net::co_spawn(io.executor(),
                            raw_exchange(srv.port(), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"),
                            net::use_future);
  ASSERT_EQ(started_future.wait_for(10s), std::future_status::ready);
  // when the server stops with a drain of 5 s
  const auto t0 = std::chrono::steady_clock::now();
  auto stopping = std::async(std::launch::async, [&] { srv.stop(5s); });
  // then the idle connection is closed at once, while the request in progress is still running
  ASSERT_EQ(idle.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(idle.get(), "closed");
  EXPECT_EQ(busy.wait_for(0ms), std::future_status::timeout) << "the request in progress was cut off";
  stopping.get();
  const auto took = std::chrono::steady_clock::now() - t0;
  // and the request in progress got its whole answer, as the connection's last, and stop()
  // returned once it was written (not after the whole drain)
  ASSERT_EQ(busy.wait_for(1s), std::future_status::ready);
  const auto reply = busy.get();
  EXPECT_EQ(reply.rfind("HTTP/1.1 202", 0), 0u) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_NE(reply.find("accepted x"), std::string::npos) << reply;
  EXPECT_LT(took, 4s);
}

// Sends a request's head and half its body, waits for `go_on`, sends the rest; what comes back.
net::awaitable<std::string> body_in_two_halves(std::uint16_t port, std::promise<void>& half_sent,
                                               std::shared_future<void> go_on) {
  beast::tcp_stream stream(co_await net::this_coro::executor);
  const std::string first = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nx";
  if (auto failed = co_await connect_and_write(stream, port, first, 10s)) co_return *failed;
  half_sent.set_value();
  while (go_on.wait_for(0ms) != std::future_status::ready) {
    net::steady_timer t(co_await net::this_coro::executor, 10ms);
    co_await t.async_wait(nothrow);
  }
  std::string rest = "y";
  auto [wec, written] = co_await net::async_write(stream, net::buffer(rest), nothrow);
  if (wec) co_return "write failed: " + wec.message();
  std::string reply;
  auto [rec, read] = co_await net::async_read(stream, net::dynamic_buffer(reply), nothrow);
  if (rec == beast::error::timeout) co_return "timed out";
  co_return reply;
}

TEST(http_server, a_request_whose_body_ends_after_stop_is_answered_503_and_not_handled) {
  // given a request whose head came before stop() and whose body comes after it
  io_runner io;
  std::atomic<int> handled{0};
  server srv(io.executor(), {}, [&](const server_request&) {
    ++handled;
    return server_response{202, "text/plain", "accepted", {}};
  });
  srv.start("127.0.0.1", 0);
  std::promise<void> half_sent, stop_began;
  auto exchange = net::co_spawn(io.executor(), body_in_two_halves(srv.port(), half_sent, stop_began.get_future().share()),
                                net::use_future);
  ASSERT_EQ(half_sent.get_future().wait_for(10s), std::future_status::ready);
  std::this_thread::sleep_for(200ms);  // (the server has read the head)
  // when the server stops with a drain, and then the body ends
  auto stopping = std::async(std::launch::async, [&] { srv.stop(5s); });
  std::this_thread::sleep_for(200ms);
  stop_began.set_value();
  // then it is not handled (its caller could never learn what became of it were the drain to end
  // first) but answered, so that its caller sends it again
  ASSERT_EQ(exchange.wait_for(10s), std::future_status::ready);
  const auto reply = exchange.get();
  stopping.get();
  EXPECT_EQ(reply.rfind("HTTP/1.1 503", 0), 0u) << reply;
  EXPECT_NE(reply.find("stopping"), std::string::npos) << reply;
  EXPECT_EQ(handled.load(), 0);
}

TEST(http_server, serves_the_http_client) {
  io_runner io(2);
  server srv(io.executor(), {}, [](const server_request& r) {
    return server_response{200, "application/json", "{\"echo\":\"" + r.body + "\"}", {}};
  });
  srv.start("127.0.0.1", 0);
  client c(io.executor(), {});
  const auto ep = *endpoint::parse("http://127.0.0.1:" + std::to_string(srv.port()));
  for (int i = 0; i < 5; ++i) {
    request req;
    req.body = std::to_string(i);
    auto r = run(io.executor(), c.send(ep, req));
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.ok->content_type, "application/json");
    EXPECT_EQ(r.ok->body, "{\"echo\":\"" + std::to_string(i) + "\"}");
  }
  c.stop();
  srv.stop();
}

}  // namespace
}  // namespace sendq::http
