#include "sendq/core/result_encoder.hpp"

#include <gtest/gtest.h>

#include "sendq/core/json_writer.hpp"
#include "sendq/core/request_decoder.hpp"

using namespace sendq::core;

TEST(result_encoder, writes_the_contract_example) {
  // given
  delivery_result r;
  r.id = "9f1c2d3e4b5a69788796a5b4c3d2e1f0";
  r.provider = "gewe";
  r.account = "default";
  r.type = "voice";
  r.to = "34757816141@chatroom";
  r.status = delivery_status::delivered;
  r.attempts = 2;
  r.provider_message_id = "2321462558768366600";
  r.http_status = 200;
  r.provider_code = "200";
  r.created_at_ms = 1794999000000;
  r.completed_at_ms = 1794999000420;
  r.latency_ms = 420;
  r.source = {"sendq.requests", 3, 1207};
  // when
  std::string out;
  encode_result(r, out);
  // then
  EXPECT_EQ(out,
            R"({"id":"9f1c2d3e4b5a69788796a5b4c3d2e1f0","provider":"gewe","account":"default","type":"voice",)"
            R"("to":"34757816141@chatroom","status":"delivered","attempts":2,"provider_message_id":"2321462558768366600",)"
            R"("http_status":200,"provider_code":"200","error":null,"created_at":1794999000000,"completed_at":1794999000420,)"
            R"("latency_ms":420,"source":{"topic":"sendq.requests","partition":3,"offset":1207}})");
}

TEST(result_encoder, writes_error_kind_and_escaped_message) {
  delivery_result r;
  r.id = "x";
  r.status = delivery_status::rejected;
  r.error = failure{error_kind::invalid_field, "to: \"required\"\n"};
  std::string out;
  encode_result(r, out);
  EXPECT_NE(out.find(R"("status":"rejected")"), std::string::npos);
  EXPECT_NE(out.find(R"("error":{"kind":"invalid_field","message":"to: \"required\"\n"})"), std::string::npos);
}

TEST(json_writer, escapes_control_characters_and_replaces_invalid_utf8) {
  std::string out;
  append_json_string(out, std::string("a\x01\xff\xe4\xbd\xa0", 6));
  EXPECT_EQ(out, "\"a\\u0001\xEF\xBF\xBD\xe4\xbd\xa0\"");
}

// Runs of text are copied whole, multi-byte characters included: what ends a run (an escape,
// an invalid or truncated sequence, an overlong form, a surrogate) must still be handled there.
TEST(json_writer, copies_runs_of_cjk_text_and_still_escapes_and_replaces_inside_them) {
  std::string out;
  append_json_string(out, "您好, \"订单\"\n已发货");
  EXPECT_EQ(out, "\"您好, \\\"订单\\\"\\n已发货\"");
  out.clear();
  // ok 你 | lone continuation byte | 好 | overlong '/' | 你 | surrogate U+D800 | truncated 你
  append_json_string(out, std::string("ok\xe4\xbd\xa0\x80\xe5\xa5\xbd\xc0\xaf\xe4\xbd\xa0\xed\xa0\x80\xe4\xbd", 19));
  EXPECT_EQ(out, "\"ok\xe4\xbd\xa0\xEF\xBF\xBD\xe5\xa5\xbd\xEF\xBF\xBD\xEF\xBF\xBD\xe4\xbd\xa0"
                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

TEST(result_encoder, round_trips_a_request_for_the_retry_topic) {
  request_decoder d;
  send_request r;
  ASSERT_FALSE(d.decode(R"({"id":"r1","provider":"sender","type":"text","from":"f","to":"t","body":{"text":"hi"},"ext":{"chatType":"WX"}})", r));
  r.attempt = 3;
  r.not_before_ms = 1700000000000;
  std::string out;
  encode_request(r, out);
  EXPECT_EQ(out, R"({"id":"r1","provider":"sender","account":"default","type":"text","from":"f","to":"t","key":"sender:t",)"
                 R"("body":{"text":"hi"},"ext":{"chatType":"WX"},"attempt":3,"not_before":1700000000000})");
  send_request back;
  ASSERT_FALSE(d.decode(out, back));
  EXPECT_EQ(back.attempt, 3);
  EXPECT_EQ(back.not_before_ms, 1700000000000);
  EXPECT_EQ(back.body.text, "hi");
}
