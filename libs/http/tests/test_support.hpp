#pragma once
// Shared helpers for the http tests: an io_context on its own threads, a way to await a coroutine
// from the test thread with a deadline, and a scriptable loopback HTTP server that counts
// connections.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sendq::http::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

inline constexpr auto nothrow = net::as_tuple(net::use_awaitable);

/// An io_context run by `threads` threads until destruction (which stops it and joins).
class io_runner {
 public:
  explicit io_runner(int threads = 1) : guard_(net::make_work_guard(ioc_)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~io_runner() { stop(); }
  io_runner(const io_runner&) = delete;
  io_runner& operator=(const io_runner&) = delete;

  net::any_io_executor executor() { return ioc_.get_executor(); }

  void stop() {
    guard_.reset();
    ioc_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

/// Runs `aw` on `ex` and waits for its result; throws (failing the test) after `limit`.
template <class T>
T run(net::any_io_executor ex, net::awaitable<T> aw, std::chrono::milliseconds limit = 10s) {
  auto fut = net::co_spawn(ex, std::move(aw), net::use_future);
  if (fut.wait_for(limit) != std::future_status::ready) throw std::runtime_error("coroutine did not finish in time");
  return fut.get();
}

/// Waits until `pred` holds, re-checking whenever `notify()` is called; false after `limit`.
class event_waiter {
 public:
  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, pred);
  }
  void notify() {
    { std::lock_guard lock(mu_); }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

/// A loopback HTTP server on its own thread whose behaviour the test picks.
class test_server {
 public:
  enum class mode {
    echo,                      ///< 200 with the request body, keep-alive
    silent,                    ///< reads the request, never answers, keeps the connection open
    close_after_request,       ///< reads the request, closes without answering
    answer_once_then_close,    ///< per connection: answers the first request, closes on the second
    fixed,                     ///< writes `fixed_reply` verbatim after each request, then closes
    drip,                      ///< writes `fixed_reply`'s head at once, then its body one byte per `delay`
    interim_then_echo,         ///< writes "100 Continue", then after `delay` the echo reply, keep-alive
  };

  explicit test_server(mode m, std::chrono::milliseconds delay = 0ms, std::string fixed_reply = {})
      : mode_(m), delay_(delay), fixed_reply_(std::move(fixed_reply)),
        acceptor_(runner_.executor(), tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    net::co_spawn(acceptor_.get_executor(), accept_loop(), net::detached);
  }
  ~test_server() { runner_.stop(); }

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_.load(); }
  int open_now() const { return open_.load(); }
  int max_open() const { return max_open_.load(); }
  int requests() const { return requests_.load(); }
  /// Waits for a condition on the counters above.
  bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
    return events_.wait_for(pred, limit);
  }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (ec) co_return;
      ++accepted_;
      const int now = ++open_;
      int seen = max_open_.load();
      while (now > seen && !max_open_.compare_exchange_weak(seen, now)) {
      }
      events_.notify();
      net::co_spawn(acceptor_.get_executor(), session(std::move(socket)), net::detached);
    }
  }

  net::awaitable<void> session(tcp::socket socket) {
    co_await serve(socket);
    // Holding the socket open is the point of `silent`.
    if (mode_ == mode::silent) {
      held_.push_back(std::move(socket));
    } else {
      boost::system::error_code ec;
      socket.shutdown(tcp::socket::shutdown_both, ec);
      socket.close(ec);
    }
    --open_;
    events_.notify();
  }

  net::awaitable<void> serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (int n = 0;; ++n) {
      bhttp::request<bhttp::string_body> req;
      auto [ec, read] = co_await bhttp::async_read(socket, buffer, req, nothrow);
      if (ec) co_return;
      ++requests_;
      events_.notify();
      if (mode_ == mode::interim_then_echo) {
        static constexpr std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [iec, in] = co_await net::async_write(socket, net::buffer(interim), nothrow);
        if (iec) co_return;
      }
      if (delay_ > 0ms && mode_ != mode::drip) {
        net::steady_timer timer(socket.get_executor(), delay_);
        co_await timer.async_wait(nothrow);
      }
      switch (mode_) {
        case mode::silent:
        case mode::close_after_request:
          co_return;
        case mode::answer_once_then_close:
          if (n > 0) co_return;
          break;
        case mode::fixed: {
          co_await net::async_write(socket, net::buffer(fixed_reply_), nothrow);
          co_return;
        }
        case mode::drip: {
          const auto head = fixed_reply_.find("\r\n\r\n") + 4;
          auto [hec, hn] = co_await net::async_write(socket, net::buffer(fixed_reply_.data(), head), nothrow);
          for (auto at = head; !hec && at < fixed_reply_.size(); ++at) {
            net::steady_timer timer(socket.get_executor(), delay_);
            co_await timer.async_wait(nothrow);
            std::tie(hec, hn) = co_await net::async_write(socket, net::buffer(fixed_reply_.data() + at, 1), nothrow);
          }
          co_return;
        }
        case mode::echo:
        case mode::interim_then_echo:
          break;
      }
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      res.set(bhttp::field::content_type, "text/plain");
      res.body() = req.body().empty() ? "ok" : req.body();
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, written] = co_await bhttp::async_write(socket, res, nothrow);
      if (wec || !req.keep_alive()) co_return;
    }
  }

  mode mode_;
  std::chrono::milliseconds delay_;
  std::string fixed_reply_;
  io_runner runner_{1};
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::vector<tcp::socket> held_;  // only touched on the runner's single thread
  std::atomic<int> accepted_{0};
  std::atomic<int> open_{0};
  std::atomic<int> max_open_{0};
  std::atomic<int> requests_{0};
  event_waiter events_;
};

/// A port with nothing listening on it (bound, then closed).
inline std::uint16_t unused_port() {
  net::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

}  // namespace sendq::http::testing
