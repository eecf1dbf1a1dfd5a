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
  EXPECT_EQ(r.items, (std::vector<std::string>{R"( {"id":"a"} )"}));  // the body as given
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
  EXPECT_TRUE(std::get<batch_error>(split_batch(R"([{},{},{}])", 2)).too_large);
  EXPECT_FALSE(std::get<batch_error>(split_batch(R"([{}, 3])", 2)).too_large);
  EXPECT_EQ(error_of(R"([{"id":"a"})"), "body: malformed JSON array");
}

constexpr const char* m = R"({"id":"b1","provider":"gewe","type":"text","to":"x@chatroom","body":{"text":"hi"}})";

TEST(batch, a_malformed_element_is_named_by_its_own_0_based_index) {
  // given elements that On-Demand skips past without validating
  const auto first = split_batch(R"([{"id":}])", 10);
  const auto third = split_batch(std::string("[") + m + "," + m + R"(,{"id":}])", 10);
  // then
  ASSERT_TRUE(std::holds_alternative<batch_error>(first));
  EXPECT_EQ(std::get<batch_error>(first).message, "[0]: malformed JSON");
  EXPECT_EQ(std::get<batch_error>(first).index, 0u);
  ASSERT_TRUE(std::holds_alternative<batch_error>(third));
  EXPECT_EQ(std::get<batch_error>(third).message, "[2]: malformed JSON");
  EXPECT_EQ(std::get<batch_error>(third).index, 2u);
}

TEST(batch, element_errors_carry_the_index_and_body_errors_none) {
  EXPECT_EQ(std::get<batch_error>(split_batch(R"([{"id":"a"}, 3])", 10)).index, 1u);
  EXPECT_EQ(std::get<batch_error>(split_batch("[]", 10)).index, std::nullopt);
  EXPECT_EQ(std::get<batch_error>(split_batch(R"([{},{},{}])", 2)).index, std::nullopt);
}

TEST(batch, content_after_the_array_is_refused) {
  EXPECT_EQ(error_of(std::string("[") + m + "]]]"), "body: trailing content after the JSON array");
  EXPECT_EQ(error_of(std::string("[") + m + "] [1]"), "body: trailing content after the JSON array");
  EXPECT_EQ(error_of(std::string(" [") + m + "] \r\n"), "");
}

}  // namespace
}  // namespace sendq::gateway
