// How fast this machine is right now, in about a second. benchmarks/support/alternated_drains.py
// runs it before each drain, to tell a slow worker from a slow minute of a shared VM: on the
// project's VM the worker's CPU per delivery moves by up to 2x within minutes.
//
//   machine_probe [--help]
//
// Prints one line of JSON:
//   cache_load_ns     dependent loads in a random cycle through 8 MB (one load per cache line):
//                     the share of the host's L3 cache the neighbours leave this VM (about 17 ns a
//                     load when the L3 holds it all, 80-190 ns when it does not)
//   memory_load_ns    the same through 64 MB: memory latency
//   loopback_us       one exchange over a loopback TCP connection, both ends in this thread
//                     (500 bytes out, 200 back: four system calls, two segments): the kernel path
//                     every request and reply of the benchmark takes, without any wake-up
//   wakeup_us         a round trip between two threads on two CPUs over pipes: two wake-ups of a
//                     sleeping thread on the other CPU (on a VM, each may wake a halted vCPU)
//   compute_ns        one step of a dependent xorshift chain: the core's own speed
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

/// A socket closed when it goes out of scope.
struct fd {
  int value = -1;
  explicit fd(int v) : value(v) {}
  fd(const fd&) = delete;
  fd& operator=(const fd&) = delete;
  ~fd() {
    if (value >= 0) ::close(value);
  }
};

void send_all(int s, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(s, data, size, 0);
    if (n <= 0) fail("send");
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void recv_all(int s, char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(s, data, size, 0);
    if (n <= 0) fail("recv");
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

/// Microseconds per request/reply exchange over loopback TCP, for about `seconds`. One thread
/// drives both ends (a send on loopback is received before it returns), so that no wake-up or
/// scheduling delay is counted: only the system calls and the TCP stack.
double loopback_us(double seconds) {
  fd listener(::socket(AF_INET, SOCK_STREAM, 0));
  if (listener.value < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // a free port
  socklen_t len = sizeof addr;
  if (::bind(listener.value, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind 127.0.0.1");
  if (::listen(listener.value, 1) != 0) fail("listen");
  if (::getsockname(listener.value, reinterpret_cast<sockaddr*>(&addr), &len) != 0) fail("getsockname");
  fd client(::socket(AF_INET, SOCK_STREAM, 0));
  if (client.value < 0) fail("socket");
  if (::connect(client.value, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("connect");
  fd server(::accept(listener.value, nullptr, nullptr));
  if (server.value < 0) fail("accept");
  const int one = 1;
  for (int s : {client.value, server.value}) {
    if (::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail("TCP_NODELAY");
  }
  std::array<char, 500> request{};
  std::array<char, 200> reply{};
  request.fill('q');
  reply.fill('r');
  std::array<char, 500> buffer{};
  const auto start = clock_type::now();
  const auto until = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  long exchanges = 0;
  do {
    for (int i = 0; i < 100; ++i) {
      send_all(client.value, request.data(), request.size());
      recv_all(server.value, buffer.data(), request.size());
      send_all(server.value, reply.data(), reply.size());
      recv_all(client.value, buffer.data(), reply.size());
    }
    exchanges += 100;
  } while (clock_type::now() < until);
  return std::chrono::duration<double, std::micro>(clock_type::now() - start).count() / static_cast<double>(exchanges);
}

/// Pins the calling thread to `cpu`; false when it cannot (fewer CPUs, a restricted cpuset).
bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

/// Microseconds per round trip between a thread on CPU 0 and one on CPU 1, each blocked in read()
/// on a pipe until the other writes: two cross-CPU wake-ups. Negative when the two CPUs cannot be
/// had (then not measured).
double wakeup_us(int round_trips) {
  int there[2], back[2];
  if (::pipe(there) != 0) fail("pipe");
  if (::pipe(back) != 0) fail("pipe");
  const fd there_r(there[0]), there_w(there[1]), back_r(back[0]), back_w(back[1]);
  if (!pin_to(0)) return -1;
  bool pinned = true;
  std::thread echo([&] {
    pinned = pin_to(1);
    char c = 0;
    for (int i = 0; i < round_trips; ++i) {
      if (::read(there_r.value, &c, 1) != 1) return;
      if (::write(back_w.value, &c, 1) != 1) return;
    }
  });
  char c = 'w';
  const auto start = clock_type::now();
  for (int i = 0; i < round_trips; ++i) {
    if (::write(there_w.value, &c, 1) != 1 || ::read(back_r.value, &c, 1) != 1) {
      echo.detach();
      fail("pipe round trip");
    }
  }
  const double us = std::chrono::duration<double, std::micro>(clock_type::now() - start).count() / round_trips;
  echo.join();
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &all);
  pthread_setaffinity_np(pthread_self(), sizeof all, &all);  // the kernel keeps only the CPUs there are
  return pinned ? us : -1;
}

/// Nanoseconds per load of a pointer chase through `bytes`: one load per 64-byte line, the lines
/// in one random cycle (Sattolo's shuffle), so that no prefetcher can guess the next one. One
/// pass first, untimed, to fault the pages in and fill what cache there is.
double chase_ns(std::size_t bytes, long loads) {
  constexpr std::size_t line_words = 64 / sizeof(std::uint32_t);
  const std::size_t lines = bytes / 64;
  std::vector<std::uint32_t> order(lines);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(42);
  for (std::size_t i = lines - 1; i > 0; --i) {
    std::swap(order[i], order[std::uniform_int_distribution<std::size_t>(0, i - 1)(rng)]);
  }
  // line order[i] points to line order[i + 1]: a single cycle through every line
  std::vector<std::uint32_t> memory(lines * line_words);
  for (std::size_t i = 0; i < lines; ++i) {
    memory[order[i] * line_words] = order[(i + 1) % lines] * static_cast<std::uint32_t>(line_words);
  }
  std::uint32_t at = 0;
  for (std::size_t i = 0; i < lines; ++i) at = memory[at];
  const auto start = clock_type::now();
  for (long i = 0; i < loads; ++i) at = memory[at];
  const double ns = std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / static_cast<double>(loads);
  volatile std::uint32_t keep = at;  // the chase must not be optimised away
  (void)keep;
  return ns;
}

/// Nanoseconds per step of a dependent xorshift chain: stays in registers.
double compute_ns(long steps) {
  std::uint64_t x = 88172645463325252ull;
  const auto start = clock_type::now();
  for (long i = 0; i < steps; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  const double ns = std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / static_cast<double>(steps);
  volatile std::uint64_t keep = x;
  (void)keep;
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::puts(
          "usage: machine_probe\n"
          "How fast this machine is right now (under a second). Prints one line of JSON:\n"
          "  cache_load_ns   ns a load, random chase through 8 MB (the L3 share left to this VM)\n"
          "  memory_load_ns  ns a load, random chase through 64 MB (memory latency)\n"
          "  loopback_us     us a 500/200-byte exchange over loopback TCP, one thread (the kernel path)\n"
          "  wakeup_us       us a round trip between threads on CPUs 0 and 1 over pipes (two wake-ups;\n"
          "                  -1 without two CPUs)\n"
          "  compute_ns      ns a step of a dependent xorshift chain (the core's own speed)");
      return 0;
    }
    std::fprintf(stderr, "machine_probe: unknown argument '%s' (try --help)\n", argv[i]);
    return 2;
  }
  try {
    const double cache = chase_ns(8u << 20, 2'000'000);
    const double memory = chase_ns(64u << 20, 1'000'000);
    const double loopback = loopback_us(0.3);
    const double wakeup = wakeup_us(5'000);
    const double compute = compute_ns(50'000'000);
    std::printf("{\"cache_load_ns\": %.1f, \"memory_load_ns\": %.1f, \"loopback_us\": %.2f, \"wakeup_us\": %.2f, "
                "\"compute_ns\": %.3f}\n",
                cache, memory, loopback, wakeup, compute);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "machine_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
