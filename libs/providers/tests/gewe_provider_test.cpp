#include <gtest/gtest.h>

#include <limits>

#include "sendq/providers/provider.hpp"
#include "test_support.hpp"

using namespace sendq;
using namespace sendq::providers;
using namespace sendq::providers::testing;
using core::error_kind;
using core::message_type;

namespace {

const std::string seed_voice_url =
    "https://scrm-1308498490.cos.ap-shanghai.myqcloud.com/pkg/response.silk?q-sign-algorithm=sha1"
    "&q-ak=AKIDmOkqfDUUDfqjMincBSSAbleGaeQv96mB&q-sign-time=1703841529;1703848729"
    "&q-key-time=1703841529;1703848729&q-header-list=&q-url-param-list="
    "&q-signature=781831fe71ad4bbb582715bf197a9cf86ec80c97";

core::send_request gewe_request(message_type type) {
  auto r = request("gewe", type);
  r.to = "34757816141@chatroom";
  return r;
}

core::send_request voice_request() {
  auto r = gewe_request(message_type::voice);
  r.body.url = seed_voice_url;
  r.body.format = "silk";
  r.body.duration_ms = 2000;
  r.body_json = "{}";
  return r;
}

const auto gewe = make_provider("gewe");

const std::string envelope = R"({"appId":"wx_app_1","toWxid":"34757816141@chatroom",)";

}  // namespace

TEST(gewe_provider, builds_post_voice_as_seed_002_prescribes) {
  // given
  const auto r = voice_request();
  // when
  const auto call = built(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path_and_query, "/message/postVoice");
  EXPECT_EQ(call.content_type, "application/json; charset=utf-8");
  ASSERT_EQ(call.headers.size(), 1u);
  EXPECT_EQ(call.headers[0].first, "X-GEWE-TOKEN");
  EXPECT_EQ(call.headers[0].second, "gewe-token-1");
  EXPECT_EQ(call.body, envelope + R"("voiceUrl":")" + seed_voice_url + R"(","voiceDuration":2000})");
}

TEST(gewe_provider, builds_post_text_with_ats_from_provider_fields) {
  // given
  auto r = gewe_request(message_type::text);
  r.body.text = "大家好";
  r.body_json = R"({"text":"大家好"})";
  r.provider_fields_json = R"({"ats":"wxid_a,wxid_b"})";
  // when
  const auto call = built(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(call.path_and_query, "/message/postText");
  EXPECT_EQ(call.body, envelope + R"("content":"大家好","ats":"wxid_a,wxid_b"})");
}

TEST(gewe_provider, builds_post_text_without_ats) {
  // given
  auto r = gewe_request(message_type::text);
  r.body.text = "hi";
  r.body_json = R"({"text":"hi"})";
  // when
  const auto call = built(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(call.body, envelope + R"("content":"hi"})");
}

TEST(gewe_provider, builds_post_image) {
  // given
  auto r = gewe_request(message_type::image);
  r.body.url = "https://cdn.example/i.jpg";
  r.body_json = R"({"url":"https://cdn.example/i.jpg"})";
  // when
  const auto call = built(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(call.path_and_query, "/message/postImage");
  EXPECT_EQ(call.body, envelope + R"("imgUrl":"https://cdn.example/i.jpg"})");
}

TEST(gewe_provider, builds_post_video_with_the_duration_in_seconds) {
  // given
  auto r = gewe_request(message_type::video);
  r.body.url = "https://cdn.example/v.mp4";
  r.body.name = "v.mp4";
  r.body.thumb_url = "https://cdn.example/v.jpg";
  r.body.duration_ms = 10001;
  r.body_json = "{}";
  // when
  const auto call = built(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(call.path_and_query, "/message/postVideo");
  EXPECT_EQ(call.body, envelope + R"("videoUrl":"https://cdn.example/v.mp4",)"
                                  R"("thumbUrl":"https://cdn.example/v.jpg","videoDuration":11})");
}

TEST(gewe_provider, rejects_a_duration_past_32_bits_and_sends_the_largest_that_fits) {
  // 9223372036854775807 ms once overflowed ceil_s and went out as a negative videoDuration.
  auto video = gewe_request(message_type::video);
  video.body.url = "https://cdn.example/v.mp4";
  video.body.thumb_url = "https://cdn.example/v.jpg";
  video.body_json = "{}";
  for (auto r : {voice_request(), video}) {
    for (const std::int64_t ms : {std::int64_t{2147483648}, std::numeric_limits<std::int64_t>::max()}) {
      // given
      r.body.duration_ms = ms;
      // when
      const auto f = rejected(*gewe, r, gewe_account());
      // then
      EXPECT_EQ(f.kind, error_kind::invalid_field) << ms;
      EXPECT_TRUE(names_field(f, "body.duration_ms")) << f.message;
      EXPECT_NE(f.message.find(std::to_string(ms)), std::string::npos) << f.message;
    }
  }
  // given
  video.body.duration_ms = 2147483647;
  // when
  const auto call = built(*gewe, video, gewe_account());
  // then
  EXPECT_NE(call.body.find(R"("videoDuration":2147484})"), std::string::npos) << call.body;
}

TEST(gewe_provider, builds_post_file) {
  // given
  auto r = gewe_request(message_type::file);
  r.body.url = "https://cdn.example/f.pdf";
  r.body.name = "报告.pdf";
  r.body_json = "{}";
  // when
  const auto call = built(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(call.path_and_query, "/message/postFile");
  EXPECT_EQ(call.body, envelope + R"("fileUrl":"https://cdn.example/f.pdf","fileName":"报告.pdf"})");
}

TEST(gewe_provider, builds_post_link_from_the_passthrough_body) {
  // given
  auto r = gewe_request(message_type::link);
  r.body_json =
      R"({"title":"T \"q\"","desc":"D","linkUrl":"https://x.example/a?b=1","thumbUrl":"https://x.example/t.jpg","extra":[1]})";
  // when
  const auto call = built(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(call.path_and_query, "/message/postLink");
  EXPECT_EQ(call.body, envelope + R"("title":"T \"q\"","desc":"D","linkUrl":"https://x.example/a?b=1",)"
                                  R"("thumbUrl":"https://x.example/t.jpg"})");
}

// --- checks before sending -------------------------------------------------------------

TEST(gewe_provider, rejects_a_voice_that_is_not_silk) {
  // given
  auto r = voice_request();
  r.body.format = "mp3";
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.format"));
}

TEST(gewe_provider, rejects_a_voice_without_a_url) {
  // given
  auto r = voice_request();
  r.body.url.reset();
  r.body.name = "a.silk";
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.url"));
}

TEST(gewe_provider, rejects_a_voice_without_a_duration) {
  // given
  auto r = voice_request();
  r.body.duration_ms.reset();
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.duration_ms"));
}

TEST(gewe_provider, rejects_a_video_without_a_thumbnail_url) {
  // given
  auto r = gewe_request(message_type::video);
  r.body.url = "https://cdn.example/v.mp4";
  r.body.name = "v.mp4";
  r.body.duration_ms = 1000;
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.thumb_url"));
}

TEST(gewe_provider, rejects_a_file_without_a_name) {
  // given
  auto r = gewe_request(message_type::file);
  r.body.url = "https://cdn.example/f.pdf";
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.name"));
}

TEST(gewe_provider, rejects_a_link_without_every_member) {
  // given
  auto r = gewe_request(message_type::link);
  r.body_json = R"({"title":"T","desc":7,"linkUrl":"https://x","thumbUrl":"https://y"})";
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.desc"));
}

TEST(gewe_provider, rejects_the_types_it_does_not_send) {
  for (auto type : {message_type::location, message_type::template_, message_type::custom}) {
    // given
    auto r = gewe_request(type);
    r.body_json = "{}";
    // when
    const auto f = rejected(*gewe, r, gewe_account());
    // then
    EXPECT_EQ(f.kind, error_kind::unsupported_type);
    EXPECT_TRUE(names_field(f, "type"));
  }
}

TEST(gewe_provider, rejects_unknown_provider_fields) {
  // given
  auto r = voice_request();
  r.provider_fields_json = R"({"ats":"x","atz":"y"})";
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "provider_fields.atz"));
}

TEST(gewe_provider, rejects_ats_on_a_type_other_than_text) {
  // given a voice message with ats (only postText has them)
  auto r = voice_request();
  r.provider_fields_json = R"({"ats":"wxid_a"})";
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then it is refused naming the field, not sent without them
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_EQ(f.message, "provider_fields.ats: only for type text (postText's ats), not voice");
}

TEST(gewe_provider, rejects_ats_that_is_not_a_string) {
  // given
  auto r = gewe_request(message_type::text);
  r.body.text = "hi";
  r.provider_fields_json = R"({"ats":["wxid_a"]})";
  // when
  const auto f = rejected(*gewe, r, gewe_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "provider_fields.ats"));
}

// --- replies ----------------------------------------------------------------------------

TEST(gewe_provider, keeps_every_digit_of_new_msg_id) {
  // given: the reply of seed 002, whose newMsgId is above 2^53
  const std::string reply = R"({
    "ret": 200, "msg": "操作成功",
    "data": {"toWxid": "34757816141@chatroom", "createTime": 1704357563, "msgId": 640355967,
             "newMsgId": 2321462558768366600, "type": null}})";
  // when
  const auto o = gewe->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::delivered);
  EXPECT_EQ(o.provider_message_id, "2321462558768366600");
  EXPECT_EQ(o.provider_code, "200");
}

TEST(gewe_provider, keeps_a_new_msg_id_above_2_to_the_63) {
  // given
  const std::string reply = R"({"ret":200,"msg":"ok","data":{"newMsgId":18446744073709551615}})";
  // when
  const auto o = gewe->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::delivered);
  EXPECT_EQ(o.provider_message_id, "18446744073709551615");
}

TEST(gewe_provider, takes_a_new_msg_id_sent_as_a_string_of_digits) {
  // given
  const std::string reply = R"({"ret":200,"msg":"ok","data":{"newMsgId":"2321462558768366601"}})";
  // when
  const auto o = gewe->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::delivered);
  EXPECT_EQ(o.provider_message_id, "2321462558768366601");
}

TEST(gewe_provider, fails_permanently_when_ret_is_not_200_even_with_http_200) {
  // given
  const std::string reply = R"({"ret":500,"msg":"appId不存在","data":null})";
  // when
  const auto o = gewe->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::permanent);
  EXPECT_EQ(o.kind, error_kind::provider_error);
  EXPECT_EQ(o.provider_code, "500");
  EXPECT_NE(o.message.find("appId不存在"), std::string::npos) << o.message;
}

TEST(gewe_provider, a_negative_new_msg_id_is_an_integer_too) {
  // (seed 002 types newMsgId "integer", which a Java Long may make negative)
  for (const auto& [reply, id] : {std::pair{R"({"ret":200,"msg":"ok","data":{"newMsgId":-5}})", "-5"},
                                  std::pair{R"({"ret":200,"msg":"ok","data":{"newMsgId":"-9223372036854775808"}})",
                                            "-9223372036854775808"}}) {
    const auto o = gewe->classify(200, "application/json", reply);
    EXPECT_EQ(o.cls, outcome_class::delivered) << reply << " " << o.message;
    EXPECT_EQ(o.provider_message_id, id) << reply;
  }
  const auto o = gewe->classify(200, "application/json", R"({"ret":200,"data":{"newMsgId":"-9223372036854775809"}})");
  EXPECT_EQ(o.cls, outcome_class::delivered) << o.message;
  EXPECT_EQ(o.id_problem, R"(gewe ret 200 but "data.newMsgId" is not a 64-bit integer (-9223372036854775809))");
}

TEST(gewe_provider, ret_200_without_a_usable_new_msg_id_is_delivered_without_an_id) {
  // CONTRACT.md: "Success: ret == 200". Ending such a request failed (and in the DLQ, whence a
  // redrive would send it again) would misreport a message GeWe took.
  const std::pair<const char*, const char*> replies[] = {
      {R"({"ret":200,"msg":"ok"})", R"(gewe ret 200 without "data.newMsgId")"},
      {R"({"ret":200,"msg":"ok","data":null})", R"(gewe ret 200 without "data.newMsgId")"},
      {R"({"ret":200,"data":{"newMsgId":null}})", R"(gewe ret 200 but "data.newMsgId" is not a 64-bit integer (null))"},
      {R"({"ret":200,"data":{"newMsgId":2.321462558768366e18}})",
       R"(gewe ret 200 but "data.newMsgId" is not a 64-bit integer (2.321462558768366e18))"},
      {R"({"ret":200,"data":{"newMsgId":"12a"}})", R"(gewe ret 200 but "data.newMsgId" is not a 64-bit integer (12a))"},
      {R"({"ret":200,"data":{"newMsgId":true}})", R"(gewe ret 200 but "data.newMsgId" is not a 64-bit integer (true))"},
      {R"({"ret":200,"data":{"newMsgId":123456789012345678901234567890}})",
       R"(gewe ret 200 but "data.newMsgId" is not a 64-bit integer (123456789012345678901234567890))"},
      {R"({"ret":200,"data":{"newMsgId":"123456789012345678901234567890"}})",
       R"(gewe ret 200 but "data.newMsgId" is not a 64-bit integer (123456789012345678901234567890))"},
  };
  for (const auto& [reply, problem] : replies) {
    // when
    const auto o = gewe->classify(200, "application/json", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::delivered) << reply << " " << o.message;
    EXPECT_EQ(o.provider_code, "200") << reply;
    EXPECT_EQ(o.provider_message_id, "") << reply;
    EXPECT_EQ(o.id_problem, problem) << reply;
  }
  // and a usable id leaves no problem
  EXPECT_EQ(gewe->classify(200, "application/json", R"({"ret":200,"data":{"newMsgId":7}})").id_problem, "");
}

TEST(gewe_provider, a_2xx_reply_that_is_not_the_documented_json_is_ambiguous) {
  const std::string replies[] = {
      "not json",
      "[]",
      R"({"msg":"ok"})",
      R"({"ret":"200","data":{"newMsgId":1}})",
      R"({"ret":200,"data":{"newMsgId":1})",
  };
  for (const auto& reply : replies) {
    // when
    const auto o = gewe->classify(200, "application/json", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::ambiguous) << reply;
    EXPECT_EQ(o.kind, error_kind::ambiguous) << reply;
    EXPECT_NE(o.message.find("gewe reply unusable"), std::string::npos) << o.message;
  }
}

TEST(gewe_provider, does_not_dedupe_by_the_request_id) {
  EXPECT_FALSE(gewe->dedupes_by_request_id());
}

TEST(gewe_provider, requires_a_token_and_an_app_id) {
  for (const char* key : {"token", "app_id"}) {
    for (const bool blank : {true, false}) {
      // given an account whose key is blank, or missing
      auto a = gewe_account();
      if (blank) a.settings[key] = ""; else a.settings.erase(key);
      // when
      const auto err = gewe->check_account(a);
      // then the error names it
      ASSERT_TRUE(err) << key;
      EXPECT_NE(err->find(std::string("\"") + key + "\""), std::string::npos) << *err;
    }
  }
  EXPECT_FALSE(gewe->check_account(gewe_account()));
}
