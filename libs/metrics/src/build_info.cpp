#include "sendq/metrics/build_info.hpp"

#include <string>

#include <prometheus/gauge.h>

namespace sendq::metrics {

void register_build_info(prometheus::Registry& registry, std::string_view version, std::string_view commit) {
  prometheus::BuildGauge()
      .Name("sendq_build_info")
      .Help("Build version and commit")
      .Register(registry)
      .Add({{"version", std::string(version)}, {"commit", std::string(commit)}})
      .Set(1);
}

}  // namespace sendq::metrics
