#pragma once
/// The simulator's HTTP/1.1 server (Boost.Beast, C++20 coroutines). Its own loop rather than
/// sendq::http::server because faults need raw control of the socket: RST, hanging, half replies.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include "simulator.hpp"

namespace sendq::simulator {

struct server_options {
  std::size_t body_limit = 16 * 1024 * 1024;  ///< bytes; larger bodies get 413
  std::chrono::seconds idle_timeout{60};      ///< per request read; also bounds each write
};

class server {
 public:
  /// `sim` must outlive the server. Connections run on strands of `ioc`.
  server(boost::asio::io_context& ioc, simulator& sim, server_options opts);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and listens (port 0 picks one). Throws std::runtime_error naming the address on failure.
  void start(const std::string& host, std::uint16_t port);
  std::uint16_t port() const { return port_; }

  /// Stops accepting and closes every connection, hanging ones included. Any thread.
  void stop();

 private:
  struct connection;

  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> session(std::shared_ptr<connection> c);
  void forget(std::uint64_t id);

  boost::asio::io_context& ioc_;
  simulator& sim_;
  const server_options opts_;
  boost::asio::ip::tcp::acceptor acceptor_;  // on its own strand
  std::uint16_t port_ = 0;

  std::mutex mu_;  // guards the connection registry
  std::map<std::uint64_t, std::weak_ptr<connection>> connections_;
  std::uint64_t next_id_ = 0;
  bool stopped_ = false;
};

}  // namespace sendq::simulator
