// How fast this machine is right now, in about a second and a half. benchmarks/support/alternated_drains.py
// runs it before each drain, to record what the host leaves a shared VM that minute: on the
// project's VM the worker's CPU per delivery moves by up to 2x within minutes
// (benchmarks/results/probe-2026-12-06.md says how far these figures follow it).
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
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

/// Throws "what: <errno's text>"; errno is read first, before anything can change it.
[[noreturn]] void fail(const std::string& what) {
  const int error = errno;
  throw std::runtime_error(what + ": " + std::strerror(error));
}

/// A socket or pipe end, closed when it goes out of scope (or by close()).
struct fd {
  int value = -1;
  explicit fd(int v) : value(v) {}
  fd(const fd&) = delete;
  fd& operator=(const fd&) = delete;
  ~fd() { close(); }
  void close() {
    if (value >= 0) ::close(value);
    value = -1;
  }
};

void send_all(int s, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(s, data, size, MSG_NOSIGNAL);
    if (n < 0) fail("send");
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void recv_all(int s, char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::recv(s, data, size, 0);
    if (n < 0) fail("recv");
    if (n == 0) throw std::runtime_error("recv: the loopback connection closed early");
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

/// Keeps the compiler from moving `value`'s computation across the clock reads around it.
template <typename T>
void keep(T& value) {
  asm volatile("" : "+r"(value) : : "memory");
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

/// Pins the calling thread to `cpu`; 0, or the error (pthread functions return it, not errno).
int pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

[[noreturn]] void fail_pinning(int cpu, int error) {
  throw std::runtime_error("pin a thread to CPU " + std::to_string(cpu) + ": " + std::strerror(error));
}

/// Microseconds per round trip between two threads pinned to two different CPUs (the first two
/// this process may use), each blocked in read() on a pipe until the other writes: two cross-CPU
/// wake-ups. -1 when the process may use only one CPU (then nothing is measured).
double wakeup_us(int round_trips) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) fail("sched_getaffinity");
  int cpus[2] = {-1, -1};
  for (int cpu = 0, found = 0; cpu < CPU_SETSIZE && found < 2; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus[found++] = cpu;
  }
  if (cpus[1] < 0) return -1;
  int ends[2];
  if (::pipe(ends) != 0) fail("pipe");
  fd there_r(ends[0]), there_w(ends[1]);
  if (::pipe(ends) != 0) fail("pipe");
  fd back_r(ends[0]), back_w(ends[1]);
  if (const int error = pin_to(cpus[0])) fail_pinning(cpus[0], error);
  int echo_pin_error = 0;
  // The echo thread reads only there_r and writes only back_w. When either side stops early its
  // end is closed, so the other's read() sees end of file instead of waiting for ever.
  std::thread echo([&] {
    echo_pin_error = pin_to(cpus[1]);
    char c = 0;
    for (int i = 0; i < round_trips; ++i) {
      if (::read(there_r.value, &c, 1) != 1 || ::write(back_w.value, &c, 1) != 1) break;
    }
    back_w.close();
  });
  char c = 'w';
  bool complete = true;
  const auto start = clock_type::now();
  for (int i = 0; i < round_trips && complete; ++i) {
    complete = ::write(there_w.value, &c, 1) == 1 && ::read(back_r.value, &c, 1) == 1;
  }
  const auto elapsed = clock_type::now() - start;
  there_w.close();
  echo.join();
  if (const int error = pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed)) {
    throw std::runtime_error(std::string("restore the CPU affinity: ") + std::strerror(error));
  }
  if (!complete) throw std::runtime_error("the pipe round trips stopped early");
  if (echo_pin_error) fail_pinning(cpus[1], echo_pin_error);
  return std::chrono::duration<double, std::micro>(elapsed).count() / round_trips;
}

/// Nanoseconds per load of a pointer chase through `bytes`: one load per 64-byte line, the lines
/// visited in a random order, so that no prefetcher can guess the next one. One pass first,
/// untimed, to fault the pages in and fill what cache there is. With 4 KB pages the chase also
/// misses the TLB more as `bytes` grows: the figure is the cost of a random load in a working set
/// that size, whichever level it comes from.
double chase_ns(std::size_t bytes, long loads) {
  constexpr std::size_t line_words = 64 / sizeof(std::uint32_t);
  const std::size_t lines = bytes / 64;
  std::vector<std::uint32_t> order(lines);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  // line order[i] points to line order[i + 1], the last to the first: one cycle through every line
  std::vector<std::uint32_t> memory(lines * line_words);
  for (std::size_t i = 0; i < lines; ++i) {
    memory[order[i] * line_words] = order[(i + 1) % lines] * static_cast<std::uint32_t>(line_words);
  }
  std::uint32_t at = 0;
  for (std::size_t i = 0; i < lines; ++i) at = memory[at];
  keep(at);
  const auto start = clock_type::now();
  keep(at);  // the timed chase starts after the clock is read
  for (long i = 0; i < loads; ++i) at = memory[at];
  keep(at);
  return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / static_cast<double>(loads);
}

/// Nanoseconds per step of a dependent xorshift chain: stays in registers.
double compute_ns(long steps) {
  std::uint64_t x = 88172645463325252ull;
  keep(x);  // not a constant the compiler could run the chain on
  const auto start = clock_type::now();
  keep(x);  // and not started before the clock is read
  for (long i = 0; i < steps; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  keep(x);
  return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / static_cast<double>(steps);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::puts(
          "usage: machine_probe\n"
          "How fast this machine is right now (about a second and a half). Prints one line of JSON:\n"
          "  cache_load_ns   ns a load, random chase through 8 MB (the L3 share left to this VM)\n"
          "  memory_load_ns  ns a load, random chase through 64 MB (memory latency)\n"
          "  loopback_us     us a 500/200-byte exchange over loopback TCP, one thread (the kernel path)\n"
          "  wakeup_us       us a round trip between threads on two CPUs over pipes (two wake-ups;\n"
          "                  -1 when this process may use only one CPU)\n"
          "  compute_ns      ns a step of a dependent xorshift chain (the core's own speed)");
      return 0;
    }
    std::fprintf(stderr, "machine_probe: unknown argument '%s' (try --help)\n", argv[i]);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a pipe closed early is an error to report, not a reason to die
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
