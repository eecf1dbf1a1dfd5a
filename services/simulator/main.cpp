// sendq-simulator: emulates the four provider APIs on one port for tests and benchmarks.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "options.hpp"
#include "server.hpp"
#include "simulator.hpp"

namespace {

/// Written to a temporary name then renamed, so a test polling the file never reads half of it.
void write_port_file(const std::string& path, std::uint16_t port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
    if (!out) throw std::runtime_error("--port-file: cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("--port-file: cannot rename " + tmp + " to " + path + ": " + ec.message());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sendq::simulator;
  std::optional<options> opts;
  try {
    opts = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "sendq-simulator: " << e.what() << '\n';
    return 2;
  }
  if (!opts) {
    std::cout << usage();
    return 0;
  }

  boost::asio::io_context ioc(static_cast<int>(opts->threads));
  simulator sim(opts->sim, [] { return std::chrono::system_clock::now(); });
  server srv(ioc, sim, server_options{opts->body_limit, std::chrono::seconds(opts->idle_timeout_s)});
  // Signals are caught before the port file appears, so a test may send SIGTERM as soon as it reads it.
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    std::cerr << "sendq-simulator: stopping on signal " << sig << std::endl;
    srv.stop();
  });
  try {
    srv.start(opts->listen_host, opts->listen_port);
    if (!opts->port_file.empty()) write_port_file(opts->port_file, srv.port());
  } catch (const std::exception& e) {
    std::cerr << "sendq-simulator: " << e.what() << '\n';
    return 1;
  }
  std::cerr << "sendq-simulator: listening on " << opts->listen_host << ':' << srv.port() << " (threads "
            << opts->threads << ", fault-rate " << opts->sim.fault_rate << ", seed " << opts->sim.seed << ")"
            << std::endl;

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < opts->threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  std::cerr << "sendq-simulator: stopped" << std::endl;
  return 0;
}
