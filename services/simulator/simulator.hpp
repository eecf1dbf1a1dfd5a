#pragma once
/// The simulator's core: routes a request to a provider or the /_sim/ control API, applies faults
/// and records it. Transport-neutral; the server turns a decision into socket actions.
/// Thread-safe: handle() may be called from any I/O thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "fault_rules.hpp"
#include "http_types.hpp"
#include "options.hpp"
#include "providers.hpp"
#include "request_log.hpp"

namespace sendq::simulator {

/// How the server must treat the connection after handle().
enum class transport {
  respond,             ///< write `reply` (after `delay`), keep the connection if the client wants
  reset,               ///< after `delay`, close with TCP RST (SO_LINGER 0) without answering
  hang,                ///< never answer; keep the socket until the client goes away or the server stops
  drop_after_headers,  ///< after `delay`, write only the status line and headers of `reply`, then close
  slow_drip,           ///< write `reply`'s headers, then its body one byte every `interval`
  huge_body,           ///< write `reply` padded with spaces to `bytes` bytes, streamed (never held whole)
  chunked,             ///< write `reply` with Transfer-Encoding: chunked, in several chunks
  close_after_reply,   ///< write `reply` with Connection: close, then close the socket
  http10,              ///< write `reply` as HTTP/1.0 without Content-Length, then close (the body ends at EOF)
};

struct decision {
  transport how = transport::respond;
  std::chrono::milliseconds delay{0};
  http_reply reply;
  std::chrono::milliseconds interval{0};  ///< slow_drip
  std::uint64_t bytes = 0;                ///< huge_body
};

class simulator {
 public:
  using clock = std::function<std::chrono::system_clock::time_point()>;

  simulator(simulator_config cfg, clock now);
  ~simulator();
  simulator(const simulator&) = delete;
  simulator& operator=(const simulator&) = delete;

  /// Decides the answer to one request and records it when it is a provider request.
  decision handle(const http_request& req);

 private:
  decision handle_control(const http_request& req);
  decision handle_provider_request(provider p, const http_request& req);

  const simulator_config cfg_;
  const clock now_;
  // Guards everything below. Held for a whole request (validation takes microseconds) so that
  // records keep arrival order and one JSON parser serves every thread.
  std::mutex mu_;
  std::unique_ptr<simdjson::dom::parser> parser_;
  request_log log_;
  fault_plan faults_;
  std::uint64_t next_seq_ = 1;
  std::uint32_t id_salt_;
};

}  // namespace sendq::simulator
