#pragma once
/// sendq_build_info{version, commit} 1: the same series in every sendq process's /metrics.
#include <prometheus/registry.h>

#include <string_view>

namespace sendq::metrics {

void register_build_info(prometheus::Registry& registry, std::string_view version, std::string_view commit);

}  // namespace sendq::metrics
