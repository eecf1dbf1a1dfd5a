// sendq-worker: consumes SendRequests from Kafka, delivers them to providers, produces results.
// This file only wires components together (see docs/architecture.md).
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "sendq/config/command_line.hpp"
#include "sendq/config/config.hpp"
#include "sendq/delivery/pipeline.hpp"
#include "sendq/http/client.hpp"
#include "sendq/http/server.hpp"
#include "sendq/kafka/embedded_cluster.hpp"
#include "sendq/log/logger.hpp"
#include "sendq/metrics/metrics_endpoint.hpp"
#include "sendq/metrics/worker_metrics.hpp"

#ifndef SENDQ_VERSION
#define SENDQ_VERSION "0.0.0"
#endif
#ifndef SENDQ_GIT_COMMIT
#define SENDQ_GIT_COMMIT "unknown"
#endif

namespace {

constexpr const char* usage = R"(Usage: sendq-worker [--config FILE] [--log-level LEVEL]

Consumes SendRequests from Kafka (topic sendq.requests), delivers each to its provider's HTTP API,
and produces one DeliveryResult per request to sendq.results (failures also to sendq.dlq).

Options:
  --config FILE      TOML configuration (default: $SENDQ_CONFIG, else built-in defaults).
                     Every key is documented in docs/configuration.md.
  --log-level LEVEL  debug, info, warn or error (overrides log.level).
  --version          Print the version and exit.
  -h, --help         Print this help and exit.

Environment (overrides the file):
  SENDQ_KAFKA_BROKERS      bootstrap servers; unset or empty starts the embedded Kafka
                           (librdkafka's mock cluster: in memory, ~5 MB per partition, NOT durable),
                           unless SENDQ_KAFKA_EMBEDDED=never: then a configuration error (exit 2)
  SENDQ_SENDER_BASE_URL, SENDQ_GEWE_BASE_URL, SENDQ_IM_BASE_URL, SENDQ_GPS_BASE_URL
                           base URL of each provider's default account (defined in the file)
  SENDQ_METRICS_ADDR       host:port serving /metrics, /healthz and /readyz (default 127.0.0.1:9464)
  SENDQ_<SECTION>_<KEY>    any scalar key, e.g. SENDQ_WORKER_THREADS=4

Signals: SIGTERM/SIGINT stop taking work, finish in-flight requests within
worker.shutdown_grace_ms, commit, and exit; a second one stops waiting for the requests in flight
(what finished is committed, the rest redelivered). SIGHUP reloads provider accounts and rate limits
from the same file (an invalid file is refused and the running configuration stays).
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace sendq;
  // Before any thread exists: a reload (systemd's ExecReload sends SIGHUP) or a stop during
  // start-up waits for the handlers below, and only the I/O threads take these signals.
  config::hold_stop_signals();
  auto parsed = config::parse_command_line(argc, argv, "sendq-worker", usage,
                                           std::string(SENDQ_VERSION) + " (" + SENDQ_GIT_COMMIT + ")");
  if (auto* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const auto& cl = std::get<config::command_line>(parsed);

  config::config cfg;
  try {
    cfg = config::load(cl, config::process_env(), config::sections::without_gateway_keys);
    // Checked here, not when the endpoint starts after Kafka and the pipeline: a configuration
    // error exits 2, which systemd does not restart.
    if (!cfg.metrics.addr.empty()) (void)http::parse_host_port(cfg.metrics.addr, "metrics.addr (SENDQ_METRICS_ADDR)");
    if (cfg.kafka.brokers.empty() && cfg.kafka.embedded == "never") {
      throw config::config_error(
          "kafka.brokers (SENDQ_KAFKA_BROKERS) is empty, and kafka.embedded (SENDQ_KAFKA_EMBEDDED) is \"never\": "
          "set the cluster's bootstrap servers (the embedded Kafka is in memory, not durable, and no other "
          "client would see its topics)");
    }
  } catch (const std::exception& e) {
    std::cerr << "sendq-worker: configuration error: " << e.what() << "\n";
    return 2;
  }
  log::logger logger(*log::parse_level(cfg.log.level), config::json_logs(cfg));
  logger.add_secrets(cfg.secrets);

  try {
    // Kafka: the configured cluster, or the embedded one.
    std::optional<kafka::embedded_cluster> embedded;
    std::string brokers = cfg.kafka.brokers;
    if (brokers.empty()) {
      embedded.emplace(1, std::vector<std::string>{cfg.kafka.requests_topic, cfg.kafka.results_topic, cfg.kafka.dlq_topic,
                                                   cfg.kafka.retry_topic, cfg.kafka.bulk_topic},
                       cfg.kafka.embedded_partitions);
      brokers = embedded->bootstrap();
      logger.warn("worker", "started the embedded Kafka (librdkafka mock cluster: in memory, about 5 MB per partition, "
                            "lost on exit; NOT durable — set SENDQ_KAFKA_BROKERS for a real cluster)",
                  {{"bootstrap", brokers}, {"partitions", std::to_string(cfg.kafka.embedded_partitions)}});
      if (!cfg.kafka.embedded_bootstrap_file.empty()) {
        // Whatever waits for the file would otherwise wait for ever.
        std::ofstream out(cfg.kafka.embedded_bootstrap_file);
        if (!(out << brokers << "\n" << std::flush)) {
          throw std::runtime_error("kafka.embedded_bootstrap_file (SENDQ_KAFKA_EMBEDDED_BOOTSTRAP_FILE): cannot write '" +
                                   cfg.kafka.embedded_bootstrap_file + "'");
        }
      }
    }
    if (cfg.accounts.empty()) {
      logger.warn("worker", "no provider accounts configured: every request will be rejected "
                            "(define [providers.<provider>.<account>] in the configuration file)");
    }

    // One io_context per I/O thread (each run by that thread alone), each with its own HTTP
    // connection pool: a delivery stays on one thread from start to result. The first also serves
    // /metrics and the signals.
    const auto thread_count = static_cast<std::size_t>(cfg.worker.threads);
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts;
    std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    for (std::size_t i = 0; i < thread_count; ++i) {
      contexts.push_back(std::make_unique<boost::asio::io_context>(1));
      work.push_back(boost::asio::make_work_guard(*contexts.back()));
    }
    auto& ioc = *contexts.front();

    auto registry = std::make_shared<prometheus::Registry>();
    metrics::worker_metrics worker_metrics(*registry, SENDQ_VERSION, SENDQ_GIT_COMMIT);

    http::client_options http_opts;
    http_opts.connect_timeout = std::chrono::milliseconds(cfg.worker.connect_timeout_ms);
    // The per-host cap is shared out between the threads' pools (at least one connection each).
    http_opts.max_connections_per_host =
        std::max<std::size_t>(1, static_cast<std::size_t>(cfg.worker.max_connections_per_host) / thread_count);
    http_opts.ca_file = cfg.worker.ca_file;
    http_opts.one_thread = true;
    std::vector<std::unique_ptr<http::client>> http_clients;
    std::vector<delivery::io_shard> shards;
    for (auto& c : contexts) {
      http_clients.push_back(std::make_unique<http::client>(c->get_executor(), http_opts));
      shards.push_back({c->get_executor(), http_clients.back().get()});
    }

    delivery::pipeline pipeline(cfg, brokers, logger, worker_metrics, std::move(shards));

    std::optional<metrics::metrics_endpoint> endpoint;
    if (!cfg.metrics.addr.empty()) {
      endpoint.emplace(ioc.get_executor(), registry, [&pipeline] { return pipeline.readiness(); });
      try {
        endpoint->start(cfg.metrics.addr);
      } catch (const std::exception& e) {
        // Name the setting, as configuration errors do (the port is in use, or not ours to take).
        throw std::runtime_error("metrics.addr (SENDQ_METRICS_ADDR) " + cfg.metrics.addr + ": " + e.what());
      }
      logger.info("worker", "serving /metrics, /healthz, /readyz",
                  {{"addr", cfg.metrics.addr.substr(0, cfg.metrics.addr.rfind(':')) + ":" + std::to_string(endpoint->port())}});
    }

    std::atomic<bool> stop_requested{false};
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    // The first signal drains; a second (an operator's second Ctrl-C) stops waiting for the
    // requests in flight: what finished is committed, the rest is redelivered after a restart.
    std::function<void()> arm_signals = [&] {
      signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
        if (!stop_requested.exchange(true)) {
          logger.info("worker", "signal received: draining", {{"signal", name}});
          stop_requested.notify_all();
        } else {
          logger.warn("worker", "second signal: not waiting for the requests in flight (they will be redelivered)",
                      {{"signal", name}});
          pipeline.hurry();
        }
        arm_signals();
      });
    };
    arm_signals();

    // SIGHUP: reload accounts and rate limits; a bad file is refused and the old one stays.
    boost::asio::signal_set hangup(ioc, SIGHUP);
    std::size_t running_accounts = cfg.accounts.size();
    std::function<void()> arm_hangup = [&] {
      hangup.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        try {
          auto next = config::load(cl, config::process_env(), config::sections::without_gateway_keys);
          // An emptied file (a truncating editor, a bad deploy) would otherwise reload as no
          // accounts at all, and every request from then on would end rejected.
          if (next.accounts.empty() && running_accounts > 0) {
            throw config::config_error("it has no provider accounts, where the running one has " +
                                       std::to_string(running_accounts) + " (restart the worker to run with none)");
          }
          logger.add_secrets(next.secrets);
          pipeline.reload(next);
          running_accounts = next.accounts.size();
          worker_metrics.config_reloads.Add({{"result", "ok"}}).Increment();
          logger.info("worker", "configuration reloaded (accounts and rate limits)",
                      {{"accounts", std::to_string(next.accounts.size())}, {"file", cl.config_path}});
        } catch (const std::exception& e) {
          worker_metrics.config_reloads.Add({{"result", "error"}}).Increment();
          logger.error("worker", "configuration reload refused; keeping the running configuration",
                       {{"error", e.what()}, {"file", cl.config_path}});
        }
        arm_hangup();
      });
    };
    arm_hangup();

    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < contexts.size(); ++i) {
      threads.emplace_back([&c = contexts[i], i] {
        pthread_setname_np(pthread_self(), ("sendq-io-" + std::to_string(i)).c_str());  // for top -H and perf
        config::take_stop_signals();
        c->run();
      });
    }
    const auto stop_threads = [&] {
      work.clear();
      for (auto& c : contexts) c->stop();
      for (auto& t : threads) t.join();
      config::take_stop_signals();  // no thread takes them now: a SIGTERM must still end a stuck exit
    };

    try {
      pipeline.start([&](const std::string&) {  // logged by the pipeline; main exits 1 below
        stop_requested = true;
        stop_requested.notify_all();
      });  // throws when librdkafka refuses [kafka.librdkafka] (e.g. an unreadable ssl.ca.location)
    } catch (...) {
      // Stop the I/O threads before the error unwinds: destroying a joinable std::thread would
      // abort the process without saying why.
      stop_threads();
      throw;
    }
    logger.info("worker", "consuming", {{"topic", cfg.kafka.requests_topic}, {"group", cfg.kafka.group_id},
                                        {"results", cfg.kafka.results_topic}, {"dlq", cfg.kafka.dlq_topic},
                                        {"accounts", std::to_string(cfg.accounts.size())},
                                        {"threads", std::to_string(cfg.worker.threads)}});

    stop_requested.wait(false);
    pipeline.stop();  // needs the I/O threads running to finish in-flight work
    if (endpoint) endpoint->stop();
    for (auto& c : http_clients) c->stop();
    stop_threads();
    const long left = pipeline.unfinished();
    if (left > 0) logger.warn("worker", "stopped with requests unfinished; they will be redelivered", {{"count", std::to_string(left)}});
    // Kafka refused a record for good, or the consumer hit a fatal error: exit 1, said last.
    const auto why = pipeline.failure();
    if (!why.empty()) logger.error("worker", "fatal: " + why);
    const int status = why.empty() ? 0 : 1;
    if (left > 0) {
      // Deliveries given up at the grace period still hold librdkafka messages, and destroying
      // the consumer would wait for them for ever. Everything durable is done (results flushed,
      // finished offsets committed; the rest is redelivered), so leave without destructors.
      std::fflush(nullptr);
      std::_Exit(status);
    }
    if (status != 0) return status;
    logger.info("worker", "stopped");
  } catch (const std::exception& e) {
    logger.error("worker", std::string("fatal: ") + e.what());
    return 1;
  }
  return 0;
}
