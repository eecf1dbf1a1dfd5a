#include "sendq/providers/provider.hpp"

#include "builtin_providers.hpp"

namespace sendq::providers {

std::string_view account::get(std::string_view key, std::string_view fallback) const {
  auto it = settings.find(key);
  return it == settings.end() ? fallback : std::string_view(it->second);
}

std::string_view to_string(outcome_class c) noexcept {
  switch (c) {
    case outcome_class::delivered: return "delivered";
    case outcome_class::retryable: return "retryable";
    case outcome_class::ambiguous: return "ambiguous";
    case outcome_class::permanent: return "permanent";
  }
  return "permanent";
}

std::unique_ptr<provider> make_provider(std::string_view name) {
  if (name == "sender") return detail::make_sender_provider();
  if (name == "gewe") return detail::make_gewe_provider();
  if (name == "im") return detail::make_im_provider();
  if (name == "gps") return detail::make_gps_provider();
  return nullptr;
}

const std::vector<std::string_view>& builtin_provider_names() {
  static const std::vector<std::string_view> names{"sender", "gewe", "im", "gps"};
  return names;
}

}  // namespace sendq::providers
