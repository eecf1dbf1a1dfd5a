#include <gtest/gtest.h>

#include "sendq/providers/provider.hpp"
#include "test_support.hpp"

using namespace sendq;
using namespace sendq::providers;
using namespace sendq::providers::testing;
using core::error_kind;
using core::message_type;

namespace {

core::send_request text_request() {
  auto r = request("im", message_type::text);
  r.from = "200";
  r.to = "2";
  r.body.text = "ffffffffff";
  r.body_json = R"({"text":"ffffffffff"})";
  return r;
}

const auto im = make_provider("im");

}  // namespace

TEST(im_provider, builds_send_msg_with_all_twelve_members_and_their_defaults) {
  // given
  const auto r = text_request();
  // when
  const auto call = built(*im, r, im_account());
  // then
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path_and_query, "/api/im/sendMsg");
  EXPECT_EQ(call.content_type, "application/json; charset=utf-8");
  EXPECT_TRUE(call.headers.empty());
  EXPECT_EQ(call.body,
            R"({"appid":"JH","from":"200","fromarea":"","fromrole":"MEMBER","f_nickname":"",)"
            R"("f_avatar":"","to":"2","t_nickname":"","t_avatar":"","content":"ffffffffff",)"
            R"("type":"TEXT","channel":"PC"})");
}

TEST(im_provider, takes_provider_fields_first_then_the_account) {
  // given: the values of seed 003's example
  auto r = text_request();
  r.provider_fields_json =
      R"({"fromarea":"192.","f_nickname":"LAUFEN","f_avatar":"FTOM.jpg","t_nickname":"ikima","t_avatar":"to.jpg"})";
  auto a = im_account();
  a.settings["fromrole"] = "SALER";
  a.settings["channel"] = "WX";
  a.settings["f_nickname"] = "account nickname";
  // when
  const auto call = built(*im, r, a);
  // then
  EXPECT_EQ(call.body,
            R"({"appid":"JH","from":"200","fromarea":"192.","fromrole":"SALER","f_nickname":"LAUFEN",)"
            R"("f_avatar":"FTOM.jpg","to":"2","t_nickname":"ikima","t_avatar":"to.jpg",)"
            R"("content":"ffffffffff","type":"TEXT","channel":"WX"})");
}

TEST(im_provider, sends_images_and_voices_by_url) {
  for (auto type : {message_type::image, message_type::voice}) {
    // given
    auto r = text_request();
    r.type = type;
    r.body = {};
    r.body.url = "https://cdn.example/m";
    r.body.format = "mp3";
    r.body.duration_ms = 1000;
    r.body_json = "{}";
    // when
    const auto call = built(*im, r, im_account());
    // then
    const std::string im_type = type == message_type::image ? "IMAGE" : "VOICE";
    EXPECT_NE(call.body.find(R"("content":"https://cdn.example/m","type":")" + im_type + "\""),
              std::string::npos)
        << call.body;
  }
}

TEST(im_provider, rejects_a_voice_without_a_url) {
  // given
  auto r = text_request();
  r.type = message_type::voice;
  r.body = {};
  r.body.name = "a.mp3";
  // when
  const auto f = rejected(*im, r, im_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.url"));
}

TEST(im_provider, rejects_unknown_provider_fields) {
  // given
  auto r = text_request();
  r.provider_fields_json = R"({"nickname":"x"})";
  // when
  const auto f = rejected(*im, r, im_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "provider_fields.nickname"));
}

TEST(im_provider, rejects_a_role_other_than_member_or_saler) {
  // given
  auto r = text_request();
  r.provider_fields_json = R"({"fromrole":"ADMIN"})";
  // when
  const auto f = rejected(*im, r, im_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "provider_fields.fromrole"));
}

TEST(im_provider, rejects_a_channel_other_than_pc_or_wx) {
  // given
  auto r = text_request();
  r.provider_fields_json = R"({"channel":"APP"})";
  // when
  const auto f = rejected(*im, r, im_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "provider_fields.channel"));
}

TEST(im_provider, rejects_provider_fields_that_are_not_strings) {
  // given
  auto r = text_request();
  r.provider_fields_json = R"({"t_nickname":5})";
  // when
  const auto f = rejected(*im, r, im_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "provider_fields.t_nickname"));
}

TEST(im_provider, rejects_a_request_without_from) {
  // given
  auto r = text_request();
  r.from.clear();
  // when
  const auto f = rejected(*im, r, im_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "from"));
}

TEST(im_provider, rejects_the_types_it_does_not_send) {
  for (auto type : {message_type::video, message_type::location, message_type::file,
                    message_type::link, message_type::template_, message_type::custom}) {
    // given
    auto r = text_request();
    r.type = type;
    // when
    const auto f = rejected(*im, r, im_account());
    // then
    EXPECT_EQ(f.kind, error_kind::unsupported_type) << core::to_string(type);
    EXPECT_TRUE(names_field(f, "type"));
  }
}

// --- replies ----------------------------------------------------------------------------

TEST(im_provider, is_delivered_with_the_saved_message_id) {
  // given: the reply of seed 003
  const std::string reply = R"({
   "success": true,
   "data": {"__v": 0, "fromarea": "192.", "content": "ffffffffff", "to": "2", "from": "200",
      "appid": "JH", "_id": "5995336a8eee10fc252f6c54", "readtime": -1, "sendtime": 1502979050209,
      "create_at": "2017-08-17T14:10:50.209Z", "channel": "PC", "type": "TEXT", "status": 0}})";
  // when
  const auto o = im->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::delivered);
  EXPECT_EQ(o.provider_message_id, "5995336a8eee10fc252f6c54");
  EXPECT_EQ(o.provider_code, "true");
}

TEST(im_provider, takes_success_spelled_as_a_string) {
  // given: the document's table says String
  const std::string reply = R"({"success":"true","data":{"_id":"5995336a8eee10fc252f6c55"}})";
  // when
  const auto o = im->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::delivered);
  EXPECT_EQ(o.provider_message_id, "5995336a8eee10fc252f6c55");
}

TEST(im_provider, fails_permanently_when_success_is_false) {
  // given
  const std::string reply = R"({"success":false,"msg":"用户不存在"})";
  // when
  const auto o = im->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::permanent);
  EXPECT_EQ(o.kind, error_kind::provider_error);
  EXPECT_EQ(o.provider_code, "false");
  EXPECT_NE(o.message.find("用户不存在"), std::string::npos) << o.message;
}

TEST(im_provider, a_2xx_reply_that_is_not_the_documented_json_is_ambiguous) {
  const std::string replies[] = {
      "{",
      R"({"data":{"_id":"x"}})",
      R"({"success":1,"data":{"_id":"x"}})",
      R"({"success":"yes","data":{"_id":"x"}})",
      R"({"success":true,"data":{"_id":"x"})",
  };
  for (const auto& reply : replies) {
    // when
    const auto o = im->classify(200, "application/json", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::ambiguous) << reply;
    EXPECT_EQ(o.kind, error_kind::ambiguous) << reply;
    EXPECT_NE(o.message.find("im reply unusable"), std::string::npos) << o.message;
  }
}

TEST(im_provider, success_without_a_usable_id_is_delivered_without_an_id) {
  // CONTRACT.md: "Success: success == true"; the message was taken, whatever the id.
  const std::pair<const char*, const char*> replies[] = {
      {R"({"success":true})", R"(im success true but missing "data._id")"},
      {R"({"success":true,"data":{"_id":""}})", R"(im success true but "data._id" is empty)"},
      {R"({"success":true,"data":{"_id":5}})", R"(im success true but "data._id" is a number, not a string)"},
  };
  for (const auto& [reply, problem] : replies) {
    // when
    const auto o = im->classify(200, "application/json", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::delivered) << reply << " " << o.message;
    EXPECT_EQ(o.provider_code, "true") << reply;
    EXPECT_EQ(o.provider_message_id, "") << reply;
    EXPECT_EQ(o.id_problem, problem) << reply;
  }
}

TEST(im_provider, requires_an_appid_and_valid_defaults) {
  // given
  auto missing = im_account();
  missing.settings.erase("appid");
  auto bad_role = im_account();
  bad_role.settings["fromrole"] = "BOSS";
  auto unknown = im_account();
  unknown.settings["nickname"] = "x";
  // when / then
  ASSERT_TRUE(im->check_account(missing));
  EXPECT_NE(im->check_account(missing)->find("\"appid\""), std::string::npos);
  ASSERT_TRUE(im->check_account(bad_role));
  EXPECT_NE(im->check_account(bad_role)->find("\"fromrole\""), std::string::npos);
  ASSERT_TRUE(im->check_account(unknown));
  EXPECT_NE(im->check_account(unknown)->find("\"nickname\""), std::string::npos);
  EXPECT_FALSE(im->check_account(im_account()));
}
