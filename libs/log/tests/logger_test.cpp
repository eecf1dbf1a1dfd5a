#include "sendq/log/logger.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

using namespace sendq::log;

namespace {
std::string capture(bool json, const std::function<void(logger&)>& body) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  {
    logger l(level::info, json, f);
    body(l);
  }
  std::fclose(f);
  std::string s(buf, len);
  free(buf);
  return s;
}
}  // namespace

TEST(logger, writes_one_json_object_per_event_with_component_and_fields) {
  auto out = capture(true, [](logger& l) { l.info("worker", "started", {{"id", "r1"}}); });
  EXPECT_NE(out.find(R"("level":"info","component":"worker","msg":"started","id":"r1"})"), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');
}

TEST(logger, redacts_every_configured_secret) {
  auto out = capture(true, [](logger& l) {
    l.add_secrets({"s3cr3t-token"});
    l.warn("http", "sending with s3cr3t-token", {{"header", "X-GEWE-TOKEN: s3cr3t-token"}});
  });
  EXPECT_EQ(out.find("s3cr3t-token"), std::string::npos) << out;
  EXPECT_NE(out.find("[redacted]"), std::string::npos);
}

TEST(logger, drops_events_below_the_level) {
  auto out = capture(false, [](logger& l) { l.debug("x", "hidden"); l.error("x", "shown"); });
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("error x: shown"), std::string::npos);
}
