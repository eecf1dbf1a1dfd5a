#include "sendq/delivery/dead_letter.hpp"

#include <gtest/gtest.h>

using namespace sendq;
using namespace sendq::delivery;

namespace {

std::string header(const kafka::header_list& h, std::string_view name) {
  for (const auto& [k, v] : h) {
    if (k == name) return v;
  }
  return "<none>";
}

}  // namespace

TEST(dead_letter, a_record_without_a_usable_id_is_named_by_its_position_within_the_contracts_128_characters) {
  EXPECT_EQ(position_id("sendq.requests", 2, 5120), "sendq.requests:2:5120");
  const std::string topic(249, 't');  // Kafka's longest topic name
  const auto id = position_id(topic, 17, 123456789);
  EXPECT_EQ(id.size(), 128u);
  EXPECT_EQ(id, std::string(128 - 13, 't') + ":17:123456789");
}

TEST(dead_letter, headers_say_why_and_where_the_request_came_from) {
  core::delivery_result r;
  r.status = core::delivery_status::rejected;
  r.error = core::failure{core::error_kind::too_large, "message: 1048577 bytes is over the limit of 1048576"};
  r.source = {"sendq.requests", 3, 1207};
  auto h = dlq_headers(r);
  EXPECT_EQ(header(h, "sendq-status"), "rejected");
  EXPECT_EQ(header(h, "sendq-error-kind"), "too_large");
  EXPECT_EQ(header(h, "sendq-error-message"), "message: 1048577 bytes is over the limit of 1048576");
  EXPECT_EQ(header(h, "sendq-source-topic"), "sendq.requests");
  EXPECT_EQ(header(h, "sendq-source-partition"), "3");
  EXPECT_EQ(header(h, "sendq-source-offset"), "1207");
  EXPECT_EQ(header(h, value_omitted_header), "<none>");

  mark_value_omitted(h, 5000000, "Broker: Message size too large");
  EXPECT_EQ(header(h, value_omitted_header),
            "the original value (5000000 bytes) is too large to copy here (Broker: Message size too large); "
            "it is at sendq-source-topic/-partition/-offset");
  EXPECT_EQ(header(h, "sendq-error-kind"), "too_large");  // the rest is unchanged
}

TEST(dead_letter, a_value_omitted_from_a_parked_requests_dlq_record_is_found_at_its_origin) {
  core::delivery_result r;
  r.status = core::delivery_status::failed;
  r.source = {"sendq.retry", 0, 42};
  auto h = dlq_headers(r);
  h.emplace_back(std::string(origin_topic_header), "sendq.requests");
  mark_value_omitted(h, 5000000, "Broker: Message size too large");
  EXPECT_EQ(header(h, value_omitted_header),
            "the original value (5000000 bytes) is too large to copy here (Broker: Message size too large); "
            "it is at sendq-origin-topic/-partition/-offset");
}

TEST(dead_letter, long_error_messages_are_cut_at_a_character_boundary) {
  std::string short_one = "type: 'fax' is not one of text, image";
  cap_error_message(short_one);
  EXPECT_EQ(short_one, "type: 'fax' is not one of text, image");

  // 'é' is two bytes: no cut may leave half of one.
  for (std::size_t max = 20; max < 30; ++max) {
    std::string m = "type: '" + std::string(900 * 1024 / 2, '\0') + "'";
    for (std::size_t i = 7; i + 1 < m.size(); i += 2) { m[i] = '\xC3'; m[i + 1] = '\xA9'; }
    cap_error_message(m, max);
    EXPECT_LE(m.size(), max);
    EXPECT_TRUE(m.ends_with("... (cut)")) << m;
    const auto body = m.substr(0, m.size() - 9);
    ASSERT_GE(body.size(), 7u);
    EXPECT_EQ((body.size() - 7) % 2, 0u) << "cut inside a character at max " << max;
  }
  std::string big(5000, 'x');
  cap_error_message(big);
  EXPECT_EQ(big.size(), max_error_message_bytes);
}

