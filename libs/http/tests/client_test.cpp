#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sendq/http/client.hpp"
#include "sendq/http/server.hpp"
#include "test_support.hpp"

namespace sendq::http {
namespace {

using namespace testing;  // sendq::http::testing
using mode = test_server::mode;

endpoint ep_of(const std::string& url) {
  auto ep = endpoint::parse(url);
  if (!ep) throw std::runtime_error("bad test URL " + url);
  return *ep;
}

endpoint ep_of(std::uint16_t port) { return ep_of("http://127.0.0.1:" + std::to_string(port)); }

request get(std::string target = "/", std::chrono::milliseconds timeout = 5s) {
  request r;
  r.method = "GET";
  r.target = std::move(target);
  r.timeout = timeout;
  return r;
}

call_result send(io_runner& io, client& c, const endpoint& ep, request req) {
  return run(io.executor(), c.send(ep, std::move(req)));
}

TEST(http_client, roundtrip_delivers_status_body_and_headers) {
  // given
  io_runner io;
  std::string seen_user_agent, seen_host, seen_content_type, seen_token;
  server srv(io.executor(), {}, [&](const server_request& r) {
    seen_user_agent = r.header("user-agent");
    seen_host = r.header("host");
    seen_content_type = r.header("content-type");
    seen_token = r.header("x-token");
    return server_response{201, "text/plain", r.method + " " + r.target + " " + r.body, {{"X-Reply", "yes"}}};
  });
  srv.start("127.0.0.1", 0);
  client c(io.executor(), {});
  request req;
  req.target = "/v1/send?x=1";
  req.body = R"({"a":1})";
  req.headers = {{"X-Token", "secret"}};

  // when
  auto r = send(io, c, ep_of(srv.port()), req);

  // then
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.ok->status, 201u);
  EXPECT_EQ(r.ok->content_type, "text/plain");
  EXPECT_EQ(r.ok->body, R"(POST /v1/send?x=1 {"a":1})");
  EXPECT_FALSE(r.ok->retry_after);
  EXPECT_GT(r.elapsed.count(), 0);
  EXPECT_EQ(seen_user_agent, "sendq/0.1");
  EXPECT_EQ(seen_host, "127.0.0.1:" + std::to_string(srv.port()));
  EXPECT_EQ(seen_content_type, "application/json");
  EXPECT_EQ(seen_token, "secret");
  srv.stop();
}

TEST(http_client, reuses_keep_alive_connection) {
  // given
  io_runner io;
  test_server srv(mode::echo);
  client c(io.executor(), {});
  // when
  for (int i = 0; i < 10; ++i) {
    auto r = send(io, c, ep_of(srv.port()), get());
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.ok->body, "ok");
  }
  // then
  EXPECT_EQ(srv.accepted(), 1);
  EXPECT_EQ(srv.requests(), 10);
}

TEST(http_client, connection_refused_is_a_connect_failure) {
  io_runner io;
  client c(io.executor(), {});
  auto r = send(io, c, ep_of(unused_port()), get());
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::connect) << r.message;
  EXPECT_FALSE(r.message.empty());
}

TEST(http_client, silent_server_times_out_after_write) {
  // given
  io_runner io;
  test_server srv(mode::silent);
  client c(io.executor(), {});
  // when
  auto r = send(io, c, ep_of(srv.port()), get("/", 300ms));
  // then
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::timeout_after_write) << r.message;
  EXPECT_GE(r.elapsed, 300ms);
  EXPECT_LT(r.elapsed, 3s);
}

TEST(http_client, server_closing_after_the_request_is_reset_after_write) {
  io_runner io;
  test_server srv(mode::close_after_request);
  client c(io.executor(), {});
  auto r = send(io, c, ep_of(srv.port()), get());
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::reset_after_write) << r.message;
  EXPECT_EQ(srv.accepted(), 1) << "a fresh connection is never retried";
}

TEST(http_client, never_resends_silently_when_a_reused_connection_closes_after_the_request) {
  // given: every connection answers one request, then reads the next and closes unanswered
  io_runner io;
  test_server srv(mode::answer_once_then_close);
  client c(io.executor(), {});
  ASSERT_TRUE(send(io, c, ep_of(srv.port()), get()).ok);
  // when
  auto r = send(io, c, ep_of(srv.port()), get());
  // then the server may have acted on it: the caller decides (ambiguous), nothing is re-sent
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::reset_after_write) << r.message;
  EXPECT_EQ(srv.accepted(), 1);
}

TEST(http_client, body_over_the_limit_is_body_too_large) {
  io_runner io;
  server srv(io.executor(), {}, [](const server_request&) {
    return server_response{200, "text/plain", std::string(2000, 'x'), {}};
  });
  srv.start("127.0.0.1", 0);
  client_options opts;
  opts.body_limit = 1000;
  client c(io.executor(), opts);
  auto r = send(io, c, ep_of(srv.port()), get());
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::body_too_large) << r.message;
  srv.stop();
}

TEST(http_client, non_http_reply_is_bad_response) {
  io_runner io;
  test_server srv(mode::fixed, 0ms, "SMTP ready\r\n\r\n");
  client c(io.executor(), {});
  auto r = send(io, c, ep_of(srv.port()), get());
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::bad_response) << r.message;
}

TEST(http_client, parses_retry_after_seconds_and_ignores_dates) {
  // given
  io_runner io;
  server srv(io.executor(), {}, [](const server_request& r) {
    const std::string value = r.target == "/date" ? "Wed, 21 Oct 2015 07:28:00 GMT" : " 7 ";
    return server_response{503, "application/json", "{}", {{"Retry-After", value}}};
  });
  srv.start("127.0.0.1", 0);
  client c(io.executor(), {});
  // when
  auto seconds = send(io, c, ep_of(srv.port()), get("/seconds"));
  auto date = send(io, c, ep_of(srv.port()), get("/date"));
  // then
  ASSERT_TRUE(seconds.ok) << seconds.message;
  EXPECT_EQ(seconds.ok->status, 503u);
  EXPECT_EQ(seconds.ok->retry_after, std::chrono::seconds(7));
  ASSERT_TRUE(date.ok) << date.message;
  EXPECT_FALSE(date.ok->retry_after);
  srv.stop();
}

TEST(http_client, response_without_keep_alive_is_not_pooled) {
  io_runner io;
  test_server srv(mode::fixed, 0ms, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
  client c(io.executor(), {});
  for (int i = 0; i < 3; ++i) {
    auto r = send(io, c, ep_of(srv.port()), get());
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(r.ok->body, "ok");
  }
  EXPECT_EQ(srv.accepted(), 3);
}

// Runs `lanes` coroutines, each sending `per_lane` requests one after another.
int send_in_lanes(io_runner& io, client& c, const endpoint& ep, int lanes, int per_lane) {
  std::atomic<int> ok{0};
  std::vector<std::future<void>> done;
  for (int lane = 0; lane < lanes; ++lane) {
    done.push_back(net::co_spawn(
        io.executor(),
        [&]() -> net::awaitable<void> {
          for (int i = 0; i < per_lane; ++i) {
            auto r = co_await c.send(ep, get());
            if (r.ok && r.ok->status == 200) ++ok;
          }
        },
        net::use_future));
  }
  for (auto& f : done) {
    if (f.wait_for(30s) != std::future_status::ready) throw std::runtime_error("lanes did not finish in time");
  }
  return ok.load();
}

TEST(http_client, concurrent_requests_from_two_threads_all_succeed) {
  // given
  io_runner io(2);
  test_server srv(mode::echo);
  client c(io.executor(), {});
  // when: 200 requests, 16 in flight
  const int ok = send_in_lanes(io, c, ep_of(srv.port()), 16, 200 / 16 + 1);
  // then
  EXPECT_EQ(ok, 16 * (200 / 16 + 1));
  EXPECT_LE(srv.accepted(), 16);
}

TEST(http_client, respects_max_connections_per_host) {
  // given: a slow server, so that callers pile up behind the cap
  io_runner io(2);
  test_server srv(mode::echo, 5ms);
  client_options opts;
  opts.max_connections_per_host = 4;
  client c(io.executor(), opts);
  // when
  const int ok = send_in_lanes(io, c, ep_of(srv.port()), 16, 4);
  // then
  EXPECT_EQ(ok, 64);
  EXPECT_LE(srv.max_open(), 4);
  EXPECT_LE(srv.accepted(), 4);
}

TEST(http_client, waiting_for_a_free_connection_is_bounded_by_the_timeout) {
  // given: the only connection is stuck on a silent server
  io_runner io;
  test_server srv(mode::silent);
  client_options opts;
  opts.max_connections_per_host = 1;
  client c(io.executor(), opts);
  const auto ep = ep_of(srv.port());  // send() holds a reference until it completes
  auto first = net::co_spawn(io.executor(), c.send(ep, get("/", 600ms)), net::use_future);
  ASSERT_TRUE(srv.wait_for([&] { return srv.requests() == 1; }));
  // when
  auto second = send(io, c, ep, get("/", 100ms));
  // then
  ASSERT_FALSE(second.ok);
  EXPECT_EQ(second.kind, failure_kind::connect) << second.message;
  EXPECT_LT(second.elapsed, 1s);
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(first.get().kind, failure_kind::timeout_after_write);
}

TEST(http_client, stop_closes_idle_connections) {
  // given
  io_runner io;
  test_server srv(mode::echo);
  client c(io.executor(), {});
  ASSERT_TRUE(send(io, c, ep_of(srv.port()), get()).ok);
  ASSERT_EQ(srv.open_now(), 1);
  // when
  c.stop();
  // then
  EXPECT_TRUE(srv.wait_for([&] { return srv.open_now() == 0; }));
}

}  // namespace
}  // namespace sendq::http
