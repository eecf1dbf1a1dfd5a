// sendq-gateway: HTTP in (POST /v1/messages, legacy POST /sender/v1/handleBasicMessage),
// sendq.requests out, answering after the broker's ack. This file only wires components together.
#include <atomic>
#include <csignal>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "sendq/config/command_line.hpp"
#include "sendq/config/config.hpp"
#include "sendq/gateway/gateway.hpp"
#include "sendq/gateway/kafka_sink.hpp"
#include "sendq/http/server.hpp"
#include "sendq/log/logger.hpp"
#include "sendq/metrics/gateway_metrics.hpp"
#include "sendq/metrics/metrics_endpoint.hpp"

#ifndef SENDQ_VERSION
#define SENDQ_VERSION "0.0.0"
#endif
#ifndef SENDQ_GIT_COMMIT
#define SENDQ_GIT_COMMIT "unknown"
#endif

namespace {

constexpr const char* usage = R"(Usage: sendq-gateway [--config FILE] [--log-level LEVEL]

Accepts SendRequests over HTTP and produces them to Kafka (sendq.requests), answering only after
the broker acknowledged them (idempotent producer, acks=all).

Endpoints:
  POST /v1/messages                      one SendRequest (JSON object) or a JSON array of them;
                                         202 {"id"} / {"ids"}, 400 naming the field, 401, 413, 503
  POST /sender/v1/handleBasicMessage     the legacy sender API (seeds 000/001), its reply shape
  GET  /healthz
  GET  /metrics, /healthz, /readyz on gateway.metrics_addr (default 127.0.0.1:9465)

Options:
  --config FILE      TOML configuration (default: $SENDQ_CONFIG): the worker's file will do. Its
                     [gateway], [kafka], [log] and worker.max_request_bytes apply; [providers]
                     and their secrets are not read (docs/configuration.md).
  --log-level LEVEL  debug, info, warn or error.
  --version, -h/--help

Environment (overrides the file):
  SENDQ_KAFKA_BROKERS      bootstrap servers (required: the gateway has no embedded Kafka;
                           for a local try, run sendq-embedded-kafka --bootstrap-file F)
  SENDQ_GATEWAY_ADDR       host:port to listen on (default 127.0.0.1:8080)
  SENDQ_GATEWAY_METRICS_ADDR  host:port of /metrics (default 127.0.0.1:9465; "" for none)
  SENDQ_GATEWAY_API_KEYS   comma-separated API keys (Authorization: Bearer <key> or X-API-Key)
  SENDQ_GATEWAY_<KEY>      any scalar key of [gateway], e.g. SENDQ_GATEWAY_MAX_BATCH=500

Signals: SIGTERM/SIGINT stop taking requests, answer those in progress (up to
gateway.produce_timeout_ms + 2 s), flush Kafka (up to gateway.produce_timeout_ms), and exit. SIGHUP is logged and ignored:
the gateway does not reload its configuration (restart it).
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace sendq;
  // Before any thread exists: a SIGHUP or a stop during start-up waits for the handlers below,
  // and only the I/O threads take these signals.
  config::hold_stop_signals();
  auto parsed = config::parse_command_line(argc, argv, "sendq-gateway", usage,
                                           std::string(SENDQ_VERSION) + " (" + SENDQ_GIT_COMMIT + ")");
  if (auto* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const auto& cl = std::get<config::command_line>(parsed);
  config::config cfg;
  std::pair<std::string, std::uint16_t> listen;
  try {
    // Not [providers]: their secrets are the worker's (sign_env, token_file...), not set here.
    cfg = config::load(cl, config::process_env(), config::sections::without_providers);
    if (cfg.kafka.brokers.empty()) {
      throw config::config_error(
          "SENDQ_KAFKA_BROKERS (kafka.brokers) is required: the gateway cannot share a worker's in-process "
          "embedded Kafka. Point it at a real cluster, or start one for trying out with "
          "`sendq-embedded-kafka --bootstrap-file F` and use the address it prints for both the worker and the gateway");
    }
    listen = http::parse_host_port(cfg.gateway.addr, "gateway.addr (SENDQ_GATEWAY_ADDR)");
    if (!cfg.gateway.metrics_addr.empty()) {
      (void)http::parse_host_port(cfg.gateway.metrics_addr, "gateway.metrics_addr (SENDQ_GATEWAY_METRICS_ADDR)");
    }
  } catch (const std::exception& e) {
    std::cerr << "sendq-gateway: configuration error: " << e.what() << "\n";
    return 2;
  }
  log::logger logger(*log::parse_level(cfg.log.level), config::json_logs(cfg));
  logger.add_secrets(cfg.secrets);

  try {
    if (cfg.gateway.api_keys.empty()) {
      logger.warn("gateway", "no API keys configured: every caller is accepted "
                             "(set [gateway] api_keys, api_keys_file or SENDQ_GATEWAY_API_KEYS)");
    }
    kafka::producer_options popts;
    popts.brokers = cfg.kafka.brokers;
    popts.librdkafka = cfg.kafka.librdkafka;
    // The ack wait and librdkafka's own delivery timeout agree, so a timed-out answer is final and
    // every record's report comes within the wait (and is counted as the caller was answered). A
    // message.timeout.ms in [kafka.librdkafka], which the workers read too, does not apply here.
    const auto timeout = std::to_string(cfg.gateway.produce_timeout_ms);
    if (const auto it = popts.librdkafka.find("message.timeout.ms"); it != popts.librdkafka.end() && it->second != timeout) {
      logger.info("gateway", "kafka.librdkafka.message.timeout.ms does not apply to the gateway: gateway.produce_timeout_ms does",
                  {{"message.timeout.ms", it->second}, {"produce_timeout_ms", timeout}});
    }
    popts.librdkafka["message.timeout.ms"] = timeout;
    popts.reachability_interval_ms = 1000;  // /readyz says when no broker is reachable
    // After a fatal producer error every record would be refused while the gateway looked live
    // and ready: stop (draining what is under way) and exit 1, for a supervisor to restart it.
    std::atomic<bool> stop_requested{false};
    std::mutex fatal_mu;
    std::string fatal;
    popts.on_fatal = [&](const std::string& why) {
      {
        std::lock_guard lock(fatal_mu);
        fatal = why;
      }
      stop_requested = true;
      stop_requested.notify_all();
    };
    // As the workers' producer: room for a request of worker.max_request_bytes and its key (the
    // librdkafka default, 1000000, is below the default 1 MiB request).
    popts.librdkafka.try_emplace("message.max.bytes", std::to_string(config::producer_message_max_bytes(
                                                          static_cast<std::size_t>(cfg.worker.max_request_bytes))));
    gateway::kafka_sink sink(popts, logger);

    gateway::gateway_options gopts;
    gopts.topic = cfg.gateway.topic.empty() ? cfg.kafka.requests_topic : cfg.gateway.topic;
    gopts.max_batch = static_cast<std::size_t>(cfg.gateway.max_batch);
    gopts.max_in_flight = static_cast<std::size_t>(cfg.gateway.max_in_flight);
    gopts.ack_timeout = std::chrono::milliseconds(cfg.gateway.produce_timeout_ms + 1000);
    gopts.api_keys = cfg.gateway.api_keys;
    gopts.legacy_account = cfg.gateway.legacy_account;
    // The worker's limit: a larger request would only be rejected there (too_large), and one over
    // Kafka's message.max.bytes could never be produced. Refused up front with 413 instead.
    gopts.max_request_bytes = static_cast<std::size_t>(cfg.worker.max_request_bytes);
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    gopts.host_name = host;
    auto registry = std::make_shared<prometheus::Registry>();
    metrics::gateway_metrics gateway_metrics(*registry, SENDQ_VERSION, SENDQ_GIT_COMMIT);
    gateway::gateway gw(gopts, sink, logger, {}, &gateway_metrics);

    boost::asio::io_context ioc(cfg.gateway.threads);
    auto work = boost::asio::make_work_guard(ioc);
    http::server_options sopts;
    sopts.body_limit = static_cast<std::size_t>(cfg.gateway.body_limit_bytes);
    sopts.refusal = [limit = sopts.body_limit, &gateway_metrics](unsigned status, std::string_view reason) {
      gateway_metrics.count_refusal(status, reason);
      return gateway::refusal_reply(status, reason, limit);
    };
    sopts.on_head = [&gw](const http::server_request& head) { return gw.check_head(head); };
    sopts.max_connections = static_cast<std::size_t>(cfg.gateway.max_connections);
    // A body is held until its answer (its records and librdkafka's copies of them too): bounded here.
    sopts.max_body_bytes_in_flight = static_cast<std::size_t>(cfg.gateway.max_body_bytes_in_flight);
    http::server srv(ioc.get_executor(), sopts,
                     http::async_handler([&gw](http::server_request r) { return gw.handle(std::move(r)); }));
    srv.start(listen.first, listen.second);
    // Apart from the callers' port: an SRE's scrape and probes, not the callers' business.
    std::optional<metrics::metrics_endpoint> endpoint;
    if (!cfg.gateway.metrics_addr.empty()) {
      // Not ready while stopping, or while no Kafka broker is reachable: a load balancer then sends
      // callers to a gateway that can take their records (each one here would wait, then 503).
      endpoint.emplace(ioc.get_executor(), registry,
                       [&stop_requested, &sink] { return stop_requested.load() ? std::string("stopping") : sink.unreachable(); });
      try {
        endpoint->start(cfg.gateway.metrics_addr);
      } catch (const std::exception& e) {
        throw std::runtime_error("gateway.metrics_addr (SENDQ_GATEWAY_METRICS_ADDR) " + cfg.gateway.metrics_addr + ": " +
                                 e.what());
      }
      logger.info("gateway", "serving /metrics, /healthz, /readyz",
                  {{"addr", cfg.gateway.metrics_addr.substr(0, cfg.gateway.metrics_addr.rfind(':')) + ":" +
                                std::to_string(endpoint->port())}});
    }
    logger.info("gateway", "listening", {{"addr", listen.first + ":" + std::to_string(srv.port())},
                                         {"topic", gopts.topic}, {"brokers", cfg.kafka.brokers},
                                         {"api_keys", std::to_string(cfg.gateway.api_keys.size())}});

    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      stop_requested = true;
      stop_requested.notify_all();
    });
    // A habit of `systemctl reload` or a stray kill -HUP must not end it at once, without a drain.
    boost::asio::signal_set hangup(ioc, SIGHUP);
    std::function<void()> arm_hangup = [&] {
      hangup.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        logger.warn("gateway", "SIGHUP ignored: the gateway does not reload its configuration; restart it to change it");
        arm_hangup();
      });
    };
    arm_hangup();
    std::vector<std::thread> threads;
    for (int i = 0; i < cfg.gateway.threads; ++i) threads.emplace_back([&ioc] {
      config::take_stop_signals();
      ioc.run();
    });
    stop_requested.wait(false);
    if (std::lock_guard lock(fatal_mu); !fatal.empty()) {
      logger.error("gateway", "the Kafka producer hit a fatal error; stopping", {{"error", fatal}});
    }
    // Requests being produced get their answer first (a client cut off would re-send, and the
    // legacy endpoint gives a re-sent request a new id): as long as their ack wait, and a second.
    const auto drain = gopts.ack_timeout + std::chrono::seconds(1);
    logger.info("gateway", "stopping: answering requests in progress, closing connections, flushing Kafka",
                {{"drain_ms", std::to_string(drain.count())}});
    srv.stop(drain);
    sink.stop(std::chrono::milliseconds(cfg.gateway.produce_timeout_ms));  // acks still post to the strands
    if (endpoint) endpoint->stop();
    work.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
    config::take_stop_signals();  // no thread takes them now: a SIGTERM must still end a stuck exit
    if (std::lock_guard lock(fatal_mu); !fatal.empty()) {
      logger.error("gateway", "fatal: the Kafka producer hit a fatal error: " + fatal);
      return 1;
    }
    logger.info("gateway", "stopped");
  } catch (const std::exception& e) {
    logger.error("gateway", std::string("fatal: ") + e.what());
    return 1;
  }
  return 0;
}
