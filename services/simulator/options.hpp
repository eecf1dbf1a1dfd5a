#pragma once
/// Configuration of sendq-simulator: what each emulated provider expects, faults, recording.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sendq::simulator {

/// What the emulated providers require of each request (the account's credentials in sendq).
struct provider_credentials {
  std::string sender_api_version = "01";        ///< sender query `apiVersion`
  std::string sender_client = "demo-client";    ///< sender query `client`
  std::string sender_channel = "demo-channel";  ///< sender query `channel`
  std::string sender_version = "2.0";           ///< sender query `version`
  std::string sender_sign = "demo-sign";        ///< sender query `sign` (when no secret is set)
  /// When set, `sign` must be computed with this secret and `sender_sign_algorithm` over the
  /// other query values and the body (docs/providers.md); `sender_sign` is then ignored.
  std::string sender_sign_secret;
  std::string sender_sign_algorithm = "md5_sorted";  ///< md5_sorted or hmac_sha256_sorted
  std::string gewe_token = "demo-gewe-token";   ///< gewe header `X-GEWE-TOKEN`
  std::string gewe_app_id = "demo-gewe-app";    ///< gewe body `appId`
  std::string im_appid = "JH";                  ///< im body `appid`
  std::string gps_token = "demo-gps-token";     ///< gps body `Token`
  std::string gps_app_id = "demo-gps-app";      ///< gps body `AppId`
};

/// State-independent behaviour of the simulator core (no sockets).
struct simulator_config {
  provider_credentials credentials;
  double fault_rate = 0.0;            ///< fraction of provider requests given a random retryable fault
  std::uint64_t seed = 1;             ///< seeds every random choice (fault rates, ids)
  std::size_t max_recorded = 1000000; ///< recorded requests kept; the oldest are dropped beyond
  std::string host_name = "sendq-simulator";  ///< sender's foot.host
};

/// Everything the command line sets.
struct options {
  simulator_config sim;
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8900;
  std::string port_file;                  ///< when set, the bound port is written there once listening
  unsigned threads = 1;                   ///< I/O threads
  std::size_t body_limit = 16 * 1024 * 1024;  ///< bytes per request body
  unsigned idle_timeout_s = 60;           ///< a connection with no request for this long is closed
};

/// Parses argv. Returns nullopt when --help was given (usage already wanted). Throws
/// std::invalid_argument with a message naming the flag on any error (start-up only).
std::optional<options> parse_command_line(const std::vector<std::string>& args);

/// The --help text.
std::string usage();

}  // namespace sendq::simulator
