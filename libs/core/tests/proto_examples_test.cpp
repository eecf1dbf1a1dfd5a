// Runs every example message in proto/ through the decoder and the encoder.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sendq/core/request_decoder.hpp"
#include "sendq/core/result_encoder.hpp"

using namespace sendq::core;
namespace fs = std::filesystem;

namespace {

const fs::path examples = fs::path(SENDQ_SOURCE_DIR) / "proto" / "examples";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> files_in(const fs::path& dir, bool (*pick)(const fs::path&)) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && pick(e.path())) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_message(const fs::path& p) {
  const auto name = p.filename().string();
  return name.find(".expect.") == std::string::npos && (p.extension() == ".json" || p.extension() == ".txt");
}

}  // namespace

TEST(proto_examples, every_valid_request_decodes) {
  const auto files = files_in(examples / "requests" / "valid", is_message);
  ASSERT_GE(files.size(), 10u) << "expected one valid example per provider and type";
  request_decoder d;
  for (const auto& f : files) {
    send_request r;
    auto err = d.decode(slurp(f), r);
    EXPECT_FALSE(err) << f << ": " << (err ? err->message : "");
    EXPECT_FALSE(r.id.empty()) << f;
    // Re-encoding and decoding again gives the same request.
    std::string again;
    encode_request(r, again);
    send_request r2;
    auto err2 = d.decode(again, r2);
    EXPECT_FALSE(err2) << f << ": " << again;
    EXPECT_EQ(r2.id, r.id);
    EXPECT_EQ(r2.body_json, r.body_json);
    EXPECT_EQ(r2.ext_json, r.ext_json);
  }
}

TEST(proto_examples, every_invalid_request_fails_with_the_expected_kind_and_field) {
  const auto files = files_in(examples / "requests" / "invalid", is_message);
  ASSERT_GE(files.size(), 10u);
  request_decoder d;
  simdjson::dom::parser p;
  for (const auto& f : files) {
    const auto expect_path = f.parent_path() / (f.stem().string() + ".expect.json");
    ASSERT_TRUE(fs::exists(expect_path)) << expect_path;
    auto expect = p.load(expect_path.string());
    std::string_view kind = expect["kind"].get_string().value();
    std::string_view field = expect["field"].get_string().value();
    send_request r;
    auto err = d.decode(slurp(f), r);
    ASSERT_TRUE(err) << f << " decoded but should not";
    EXPECT_EQ(to_string(err->kind), kind) << f << ": " << err->message;
    EXPECT_EQ(err->message.substr(0, field.size() + 1), std::string(field) + ":") << f << ": " << err->message;
  }
}

namespace {

// Builds a delivery_result from an example's JSON, to check that the encoder writes it back.
delivery_result result_from(simdjson::dom::element e) {
  delivery_result r;
  auto opt_str = [](simdjson::dom::element v) -> std::optional<std::string> {
    if (v.is_null()) return std::nullopt;
    return std::string(v.get_string().value());
  };
  auto opt_int = [](simdjson::dom::element v) -> std::optional<std::int64_t> {
    if (v.is_null()) return std::nullopt;
    return v.get_int64().value();
  };
  r.id = std::string(e["id"].get_string().value());
  r.provider = std::string(e["provider"].get_string().value());
  r.account = std::string(e["account"].get_string().value());
  r.type = std::string(e["type"].get_string().value());
  r.to = std::string(e["to"].get_string().value());
  const std::string_view status = e["status"].get_string().value();
  for (auto s : {delivery_status::delivered, delivery_status::failed, delivery_status::rejected, delivery_status::expired}) {
    if (to_string(s) == status) r.status = s;
  }
  r.attempts = static_cast<int>(e["attempts"].get_int64().value());
  r.provider_message_id = opt_str(e["provider_message_id"]);
  if (auto h = opt_int(e["http_status"])) r.http_status = static_cast<int>(*h);
  r.provider_code = opt_str(e["provider_code"]);
  if (!e["error"].is_null()) {
    failure f;
    const std::string_view kind = e["error"]["kind"].get_string().value();
    for (int k = 0; k <= static_cast<int>(error_kind::internal); ++k) {
      if (to_string(static_cast<error_kind>(k)) == kind) f.kind = static_cast<error_kind>(k);
    }
    EXPECT_EQ(to_string(f.kind), kind) << "unknown error kind in example";
    f.message = std::string(e["error"]["message"].get_string().value());
    r.error = f;
  }
  r.created_at_ms = opt_int(e["created_at"]);
  r.completed_at_ms = e["completed_at"].get_int64().value();
  r.latency_ms = opt_int(e["latency_ms"]);
  r.source.topic = std::string(e["source"]["topic"].get_string().value());
  r.source.partition = static_cast<std::int32_t>(e["source"]["partition"].get_int64().value());
  r.source.offset = e["source"]["offset"].get_int64().value();
  return r;
}

}  // namespace

TEST(proto_examples, every_result_example_is_what_the_encoder_writes) {
  const auto files = files_in(examples / "results", [](const fs::path& p) { return p.extension() == ".json"; });
  ASSERT_GE(files.size(), 4u);
  simdjson::dom::parser p;
  for (const auto& f : files) {
    auto doc = p.load(f.string());
    ASSERT_FALSE(doc.error()) << f;
    std::string encoded;
    encode_result(result_from(doc.value()), encoded);
    // Compare as minified JSON so that the examples may be pretty-printed.
    simdjson::dom::parser p2;
    auto again = p2.parse(encoded);
    ASSERT_FALSE(again.error()) << encoded;
    EXPECT_EQ(simdjson::minify(again.value()), simdjson::minify(doc.value())) << f;
  }
}
