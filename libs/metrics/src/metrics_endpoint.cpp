#include "sendq/metrics/metrics_endpoint.hpp"

#include <prometheus/text_serializer.h>

#include "sendq/http/server.hpp"

namespace sendq::metrics {

struct metrics_endpoint::impl {
  std::shared_ptr<prometheus::Registry> registry;
  std::function<std::string()> ready;
  http::server server;

  impl(boost::asio::any_io_executor ex, std::shared_ptr<prometheus::Registry> r, std::function<std::string()> rd)
      : registry(std::move(r)), ready(std::move(rd)), server(ex, {}, [this](const http::server_request& req) {
          return handle(req);
        }) {}

  http::server_response handle(const http::server_request& req) {
    http::server_response res;
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.body = R"({"error":"only GET"})";
    } else if (path == "/metrics") {
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
      res.body = prometheus::TextSerializer().Serialize(registry->Collect());
    } else if (path == "/healthz") {
      res.content_type = "text/plain";
      res.body = "ok\n";
    } else if (path == "/readyz") {
      res.content_type = "text/plain";
      const auto why = ready ? ready() : std::string();
      res.status = why.empty() ? 200 : 503;
      res.body = why.empty() ? "ready\n" : why + "\n";
    } else {
      res.status = 404;
      res.body = R"({"error":"not found: try /metrics, /healthz or /readyz"})";
    }
    return res;
  }
};

metrics_endpoint::metrics_endpoint(boost::asio::any_io_executor ex, std::shared_ptr<prometheus::Registry> registry,
                                   std::function<std::string()> ready)
    : impl_(std::make_unique<impl>(ex, std::move(registry), std::move(ready))) {}

metrics_endpoint::~metrics_endpoint() { stop(); }

void metrics_endpoint::start(const std::string& addr) {
  auto [host, port] = http::parse_host_port(addr, "metrics.addr");
  impl_->server.start(host, port);
}

std::uint16_t metrics_endpoint::port() const { return impl_->server.port(); }

void metrics_endpoint::stop() { impl_->server.stop(); }

}  // namespace sendq::metrics
