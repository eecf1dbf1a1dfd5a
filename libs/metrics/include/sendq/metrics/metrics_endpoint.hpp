#pragma once
/// Serves /metrics (Prometheus text format), /healthz (alive) and /readyz (ready to work).
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

namespace sendq::metrics {

class metrics_endpoint {
 public:
  /// `ready` is called on an I/O thread for /readyz: an empty string means ready, else the reason.
  metrics_endpoint(boost::asio::any_io_executor ex, std::shared_ptr<prometheus::Registry> registry,
                   std::function<std::string()> ready);
  ~metrics_endpoint();
  /// Listens on "host:port" (port 0 picks one). Throws std::runtime_error when it cannot bind.
  void start(const std::string& addr);
  std::uint16_t port() const;
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sendq::metrics
