#include "options.hpp"

#include <charconv>
#include <functional>
#include <map>
#include <stdexcept>
#include <string_view>

#include "sender_sign.hpp"

namespace sendq::simulator {

namespace {

std::uint64_t to_uint(const std::string& flag, std::string_view v, std::uint64_t min, std::uint64_t max) {
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc{} || p != v.data() + v.size() || n < min || n > max) {
    throw std::invalid_argument(flag + ": expected an integer in " + std::to_string(min) + ".." +
                                std::to_string(max) + ", got '" + std::string(v) + "'");
  }
  return n;
}

double to_rate(const std::string& flag, const std::string& v) {
  std::size_t used = 0;
  double d = -1;
  try {
    d = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty() || !(d >= 0.0 && d <= 1.0)) {
    throw std::invalid_argument(flag + ": expected a number in 0..1, got '" + v + "'");
  }
  return d;
}

void parse_listen(options& o, const std::string& v) {
  auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::invalid_argument("--listen: expected HOST:PORT (e.g. 127.0.0.1:0), got '" + v + "'");
  }
  std::string host = v.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  o.listen_host = host;
  o.listen_port = static_cast<std::uint16_t>(to_uint("--listen", std::string_view(v).substr(colon + 1), 0, 65535));
}

}  // namespace

std::string usage() {
  return R"(usage: sendq-simulator [flags]

Emulates the sender, gewe, im and gps provider APIs on one HTTP/1.1 port (see docs/providers.md),
records every provider request and injects faults on demand (control API under /_sim/).

  --listen HOST:PORT          address to bind (default 127.0.0.1:8900; port 0 picks a free one)
  --port-file PATH            write the bound port to PATH once listening
  --threads N                 I/O threads (default 1)
  --sender-api-version V      expected sender query apiVersion (default 01)
  --sender-client V           expected sender query client (default demo-client)
  --sender-channel V          expected sender query channel (default demo-channel)
  --sender-version V          expected sender query version (default 2.0)
  --sender-sign V             expected sender query sign (default demo-sign)
  --sender-sign-secret S      check a computed sign instead: recompute it from the received query
                              and body with secret S and answer code 401 when it differs
  --sender-sign-algorithm A   md5_sorted (default) or hmac_sha256_sorted, with --sender-sign-secret
  --gewe-token V              expected gewe X-GEWE-TOKEN header (default demo-gewe-token)
  --gewe-app-id V             expected gewe appId (default demo-gewe-app)
  --im-appid V                expected im appid (default JH)
  --gps-token V               expected gps Token (default demo-gps-token)
  --gps-app-id V              expected gps AppId (default demo-gps-app)
  --fault-rate R              fraction 0..1 of provider requests given a random retryable fault
                              (503, 429 with Retry-After 1, reset, timeout); default 0
  --seed N                    seed for every random choice (default 1)
  --max-recorded N            recorded requests kept for GET /_sim/requests (default 1000000)
  --body-limit BYTES          largest request body accepted (default 16777216)
  --idle-timeout SECONDS      close connections idle this long (default 60)
  --help                      print this text

Control API: GET|DELETE /_sim/requests, GET /_sim/stats, GET|POST|DELETE /_sim/faults, GET /_sim/health.

Faults: POST /_sim/faults with a JSON array of rules, the first matching one applies:
  {"match": "substring of path?query or body", "action": A, "times": N, "rate": 0..1, "latency_ms": MS, ...}
  status              answer "status" (default 503), "retry_after" seconds as Retry-After
  latency             the normal reply after latency_ms
  reset               close with TCP RST, no answer
  timeout             never answer
  business_error      the provider's error body ("code" to choose it)
  drop_after_headers  the normal status line and headers, then close
  slow_drip           the normal reply, its body one byte every "interval_ms" (default 200)
  huge_body           200, the normal reply padded with spaces to "bytes" (default 67108864), streamed
  non_json            200 text/html, an HTML page
  wrong_content_type  the normal reply with Content-Type text/plain
  chunked             the normal reply with Transfer-Encoding: chunked, in several chunks
  close_after_reply   the normal reply with Connection: close, then close the socket
  http10              the normal reply as HTTP/1.0 without Content-Length, then close
  redirect            "status" (3xx, default 302) with Location "location" (default the same URL)
  no_message_id       the success reply without the provider's message id (sender data.getMessageId,
                      gewe data.newMsgId, im data._id; gps's reply has none)
)";
}

std::optional<options> parse_command_line(const std::vector<std::string>& args) {
  options o;
  auto& c = o.sim.credentials;
  bool algorithm_set = false;
  using setter = std::function<void(const std::string&, const std::string&)>;
  auto str = [](std::string& field) -> setter {
    return [&field](const std::string& flag, const std::string& v) {
      if (v.empty()) throw std::invalid_argument(flag + ": value must not be empty");
      field = v;
    };
  };
  const std::map<std::string, setter> flags = {
      {"--listen", [&](const std::string&, const std::string& v) { parse_listen(o, v); }},
      {"--port-file", str(o.port_file)},
      {"--threads",
       [&](const std::string& f, const std::string& v) { o.threads = static_cast<unsigned>(to_uint(f, v, 1, 64)); }},
      {"--sender-api-version", str(c.sender_api_version)},
      {"--sender-client", str(c.sender_client)},
      {"--sender-channel", str(c.sender_channel)},
      {"--sender-version", str(c.sender_version)},
      {"--sender-sign", str(c.sender_sign)},
      {"--sender-sign-secret", str(c.sender_sign_secret)},
      {"--sender-sign-algorithm",
       [&](const std::string& f, const std::string& v) {
         if (!parse_sender_sign_algorithm(v)) {
           throw std::invalid_argument(f + ": expected md5_sorted or hmac_sha256_sorted, got '" + v + "'");
         }
         c.sender_sign_algorithm = v;
         algorithm_set = true;
       }},
      {"--gewe-token", str(c.gewe_token)},
      {"--gewe-app-id", str(c.gewe_app_id)},
      {"--im-appid", str(c.im_appid)},
      {"--gps-token", str(c.gps_token)},
      {"--gps-app-id", str(c.gps_app_id)},
      {"--fault-rate", [&](const std::string& f, const std::string& v) { o.sim.fault_rate = to_rate(f, v); }},
      {"--seed", [&](const std::string& f, const std::string& v) { o.sim.seed = to_uint(f, v, 0, UINT64_MAX); }},
      {"--max-recorded",
       [&](const std::string& f, const std::string& v) { o.sim.max_recorded = to_uint(f, v, 1, 1ULL << 40); }},
      {"--body-limit",
       [&](const std::string& f, const std::string& v) { o.body_limit = to_uint(f, v, 1024, 1ULL << 32); }},
      {"--idle-timeout", [&](const std::string& f, const std::string& v) {
         o.idle_timeout_s = static_cast<unsigned>(to_uint(f, v, 1, 86400));
       }}};

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") return std::nullopt;
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto it = flags.find(arg);
    if (it == flags.end()) {
      throw std::invalid_argument("unknown flag '" + arg + "' (see --help)");
    }
    if (!has_value) {
      if (i + 1 >= args.size()) throw std::invalid_argument(arg + ": missing value (see --help)");
      value = args[++i];
    }
    it->second(arg, value);
  }
  if (algorithm_set && c.sender_sign_secret.empty()) {
    throw std::invalid_argument("--sender-sign-algorithm: needs --sender-sign-secret");
  }
  return o;
}

}  // namespace sendq::simulator
