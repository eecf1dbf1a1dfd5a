#include "sendq/gateway/batch.hpp"

#include <gtest/gtest.h>

namespace sendq::gateway {
namespace {

std::string error_of(std::string_view body, std::size_t max = 10) {
  auto r = split_batch(body, max);
  if (auto* e = std::get_if<batch_error>(&r)) return e->message;
  return "";
}

TEST(batch, a_single_object_is_one_item) {
  auto r = std::get<batch>(split_batch(R"( {"id":"a"} )", 10));
  EXPECT_FALSE(r.is_array);
  ASSERT_EQ(r.items.size(), 1u);
}

TEST(batch, an_array_yields_each_element_text) {
  auto r = std::get<batch>(split_batch(R"([{"id":"a"}, {"id":"b","body":{"x":[1,2]}}])", 10));
  EXPECT_TRUE(r.is_array);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[0], R"({"id":"a"})");
  EXPECT_EQ(r.items[1], R"({"id":"b","body":{"x":[1,2]}})");
}

TEST(batch, errors_name_the_element) {
  EXPECT_EQ(error_of(R"([{"id":"a"}, 3])"), "[1]: must be a SendRequest object");
  EXPECT_EQ(error_of("[]"), "body: empty array (nothing to send)");
  EXPECT_EQ(error_of("\"x\""), "body: must be a SendRequest object or a JSON array of them");
  EXPECT_EQ(error_of(""), "body: empty (send a SendRequest object or an array of them)");
  EXPECT_NE(error_of(R"([{},{},{}])", 2).find("more than 2"), std::string::npos);
  EXPECT_NE(error_of(R"([{"id":"a"})"), "");
}

}  // namespace
}  // namespace sendq::gateway
