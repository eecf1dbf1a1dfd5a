// Fuzz target: the configuration parser (TOML, environment overrides, validation). Every input
// either loads or throws config_error with a message; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sendq/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Secrets from files would read whatever path the input names: keep the fuzzer off the disk.
  if (text.find("_file") != std::string_view::npos) return 0;
  const sendq::config::env_lookup no_env = [](const std::string&) -> std::optional<std::string> {
    return std::nullopt;
  };
  try {
    (void)sendq::config::parse(text, no_env, "fuzz.toml");
  } catch (const sendq::config::config_error& e) {
    if (std::string_view(e.what()).empty()) __builtin_trap();
  }
  return 0;
}
