#pragma once
/// Factories of the built-in providers (each defined in its own <name>_provider.cpp).
#include <memory>

#include "sendq/providers/provider.hpp"

namespace sendq::providers::detail {

std::unique_ptr<provider> make_sender_provider();
std::unique_ptr<provider> make_gewe_provider();
std::unique_ptr<provider> make_im_provider();
std::unique_ptr<provider> make_gps_provider();

}  // namespace sendq::providers::detail
