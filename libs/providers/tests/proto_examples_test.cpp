// Runs proto/examples through the decoder and then each provider's build(): every valid
// example builds a call, every provider_invalid example is rejected with the expected kind
// and field (the sidecar <name>.expect.json).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sendq/core/request_decoder.hpp"
#include "sendq/providers/provider.hpp"
#include "test_support.hpp"

using namespace sendq;
using namespace sendq::providers;
namespace fs = std::filesystem;

namespace {

const fs::path requests = fs::path(SENDQ_SOURCE_DIR) / "proto" / "examples" / "requests";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> requests_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && e.path().extension() == ".json" &&
        name.find(".expect.") == std::string::npos) {
      out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(proto_examples, every_valid_request_builds_a_call) {
  // given
  const auto files = requests_in(requests / "valid");
  ASSERT_GE(files.size(), 10u);
  core::request_decoder decoder;
  for (const auto& f : files) {
    core::send_request r;
    ASSERT_FALSE(decoder.decode(slurp(f), r)) << f;
    const auto p = make_provider(r.provider);
    ASSERT_NE(p, nullptr) << f;
    // when
    const auto call = providers::testing::built(*p, r, providers::testing::account_for(r.provider));
    // then
    EXPECT_FALSE(call.body.empty()) << f;
  }
}

TEST(proto_examples, every_provider_invalid_request_is_rejected_with_the_expected_kind_and_field) {
  // given
  const auto files = requests_in(requests / "provider_invalid");
  ASSERT_GE(files.size(), 8u);
  core::request_decoder decoder;
  simdjson::dom::parser parser;
  for (const auto& f : files) {
    const auto expect_path = f.parent_path() / (f.stem().string() + ".expect.json");
    ASSERT_TRUE(fs::exists(expect_path)) << expect_path;
    simdjson::dom::element expect;
    ASSERT_FALSE(parser.load(expect_path.string()).get(expect)) << expect_path;
    const std::string kind(expect["kind"].get_string().value());
    const std::string field(expect["field"].get_string().value());
    core::send_request r;
    const auto decoded = decoder.decode(slurp(f), r);
    ASSERT_FALSE(decoded) << f << " should decode: " << decoded->message;
    const auto p = make_provider(r.provider);
    ASSERT_NE(p, nullptr) << f;
    // when
    const auto failure = providers::testing::rejected(*p, r, providers::testing::account_for(r.provider));
    // then
    EXPECT_EQ(core::to_string(failure.kind), kind) << f << ": " << failure.message;
    EXPECT_TRUE(providers::testing::names_field(failure, field)) << f;
  }
}
