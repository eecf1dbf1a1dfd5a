// A name lookup slower than connect_timeout. Asio runs getaddrinfo on a thread of its own and
// cannot stop one that has started, so the client waits on its deadline instead (client.cpp,
// connect). This file stands in for a DNS server that answers late: it defines getaddrinfo for
// the whole test binary and delays the names under `.slow-lookup.test` only; every other name
// goes to the next getaddrinfo as it is. The executable's definition is found first: before
// libc's, and before a sanitizer's (GCC's runtimes are shared libraries, loaded after the
// executable, whose wrapper RTLD_NEXT then still reaches; a static runtime's is a weak alias).
#include <dlfcn.h>
#include <netdb.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "sendq/http/client.hpp"
#include "test_support.hpp"

namespace {

std::atomic<int> lookup_delay_ms{0};
std::atomic<int> slow_lookups_started{0};
std::atomic<int> slow_lookups_ended{0};

constexpr std::string_view slow_suffix = ".slow-lookup.test";

bool is_slow_name(const char* node) {
  if (node == nullptr) return false;
  const std::string_view name(node);
  return name.size() > slow_suffix.size() && name.ends_with(slow_suffix);
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
  using lookup_fn = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static const auto next = reinterpret_cast<lookup_fn>(dlsym(RTLD_NEXT, "getaddrinfo"));
  if (next == nullptr) return EAI_FAIL;
  if (!is_slow_name(node)) return next(node, service, hints, res);
  ++slow_lookups_started;
  std::this_thread::sleep_for(std::chrono::milliseconds(lookup_delay_ms.load()));
  const int rc = next("127.0.0.1", service, hints, res);
  ++slow_lookups_ended;
  return rc;
}

namespace sendq::http {
namespace {

using namespace testing;  // sendq::http::testing

endpoint slow_name_endpoint(std::uint16_t port) {
  auto ep = endpoint::parse("http://api.slow-lookup.test:" + std::to_string(port));
  if (!ep) throw std::runtime_error("bad test URL");
  return *ep;
}

request get_root() {
  request r;
  r.method = "GET";
  r.target = "/";
  r.timeout = 10s;
  return r;
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A server that answers, behind a name whose lookup takes `delay`, and a client with `connect_timeout`.
struct slow_name_setup {
  slow_name_setup(std::chrono::milliseconds connect_timeout, std::chrono::milliseconds delay)
      : srv(test_server::mode::echo), c(io.executor(), options(connect_timeout)) {
    slow_lookups_started = 0;
    slow_lookups_ended = 0;
    lookup_delay_ms = static_cast<int>(delay.count());
  }
  static client_options options(std::chrono::milliseconds connect_timeout) {
    client_options o;
    o.connect_timeout = connect_timeout;
    return o;
  }
  call_result get(std::optional<std::chrono::steady_clock::time_point> done_by = std::nullopt) {
    auto r = get_root();
    r.done_by = done_by;
    return run(io.executor(), c.send(slow_name_endpoint(srv.port()), std::move(r)));
  }

  io_runner io;
  test_server srv;
  client c;
};

TEST(http_client_lookup, a_lookup_slower_than_connect_timeout_fails_the_call_without_waiting_for_it) {
  // given: a lookup of 3 s and a 200 ms connect_timeout
  slow_name_setup s(200ms, 3000ms);

  // when
  auto r = s.get();

  // then: a connect failure naming the host and the lookup, returned while the lookup still runs
  const int ended_when_failed = slow_lookups_ended.load();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::connect) << r.message;
  EXPECT_EQ(r.message, "resolving api.slow-lookup.test timed out");
  EXPECT_EQ(slow_lookups_started.load(), 1);
  EXPECT_EQ(ended_when_failed, 0);
  EXPECT_EQ(s.srv.accepted(), 0);

  // and the late answer changes nothing: the same client connects once names resolve again
  ASSERT_TRUE(wait_until([] { return slow_lookups_ended.load() == 1; }, 30s));
  lookup_delay_ms = 0;
  auto again = s.get();
  ASSERT_TRUE(again.ok) << again.message;
  EXPECT_EQ(again.ok->status, 200u);
  EXPECT_EQ(s.srv.accepted(), 1);
}

TEST(http_client_lookup, a_call_whose_done_by_comes_during_the_lookup_ends_then_unsent) {
  // given a 10 s connect_timeout, a lookup of 2 s, and a call that must be done within 200 ms
  slow_name_setup s(10s, 2000ms);
  // when
  auto r = s.get(std::chrono::steady_clock::now() + 200ms);
  // then it ends at its limit, nothing written, saying why
  const int ended_when_failed = slow_lookups_ended.load();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.kind, failure_kind::timeout_before_write) << r.message;
  EXPECT_EQ(r.message, "deadline reached before the request was written (resolving api.slow-lookup.test timed out)");
  EXPECT_EQ(ended_when_failed, 0);
  EXPECT_EQ(s.srv.accepted(), 0);
  ASSERT_TRUE(wait_until([] { return slow_lookups_ended.load() == 1; }, 30s));
}

TEST(http_client_lookup, a_slow_lookup_within_connect_timeout_connects) {
  slow_name_setup s(10s, 300ms);

  auto r = s.get();

  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.ok->status, 200u);
  EXPECT_EQ(slow_lookups_ended.load(), 1);
  EXPECT_EQ(s.srv.accepted(), 1);
}

}  // namespace
}  // namespace sendq::http
