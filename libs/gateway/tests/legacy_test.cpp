#include "sendq/gateway/legacy.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sendq::gateway {
namespace {

legacy_request ok(std::string_view body) {
  auto r = legacy_to_send_request(body, "default", "generated0000000000000000000000", 1700000000000);
  if (auto* e = std::get_if<legacy_error>(&r)) ADD_FAILURE() << e->message;
  return std::get<legacy_request>(r);
}

std::string error_of(std::string_view body) {
  auto r = legacy_to_send_request(body, "default", "g", 1);
  if (auto* e = std::get_if<legacy_error>(&r)) return e->message;
  return "";
}

TEST(legacy, voice_message_info_becomes_the_normalized_voice_body) {
  // given the seed 000 example with every MessageInfo member
  const auto r = ok(R"({"to":"148992289019003396","channelType":1,"from":"u0001","messageType":3,
    "ext":{"chatType":"WX"},"messageInfo":{"audioMessage":"a.mp3","fileUrl":"https://x/a.mp3","fileLength":1000,"duration":7},
    "getMessageId":"abc"})");
  // then
  EXPECT_EQ(r.id, "abc");
  EXPECT_EQ(r.type, "voice");
  EXPECT_EQ(r.send_request_json,
            R"({"id":"abc","provider":"sender","account":"default","type":"voice","from":"u0001","to":"148992289019003396",)"
            R"("body":{"name":"a.mp3","url":"https://x/a.mp3","size":1000,"duration_ms":7000,"format":"mp3"},)"
            R"("ext":{"chatType":"WX"},"created_at":1700000000000})");
}

TEST(legacy, video_message_info_maps_every_member) {
  const auto r = ok(R"({"to":"t","from":"f","messageType":4,"messageInfo":{"videoMessage":"v.mp4","thumbMessage":"t.jpg",
    "title":"T","description":"D","fileUrl":"u","fileLength":5,"duration":3,"thumbFileUrl":"tu","thumbFileLength":6,
    "imageWidth":640,"imageHeight":480}})");
  EXPECT_EQ(r.id, "generated0000000000000000000000");
  EXPECT_NE(r.send_request_json.find(
                R"("body":{"name":"v.mp4","thumb_name":"t.jpg","title":"T","description":"D","url":"u","size":5,)"
                R"("duration_ms":3000,"thumb_url":"tu","thumb_size":6,"width":640,"height":480})"),
            std::string::npos)
      << r.send_request_json;
}

TEST(legacy, other_types_pass_message_info_through) {
  const auto r = ok(R"({"to":"t","messageType":1,"messageInfo":{"text":"hi"}})");
  EXPECT_EQ(r.type, "text");
  EXPECT_NE(r.send_request_json.find(R"("body":{"text":"hi"})"), std::string::npos);
}

TEST(legacy, errors_name_the_legacy_field) {
  EXPECT_EQ(error_of("[]"), "body: must be a JSON object");
  EXPECT_EQ(error_of(R"({"to":"t","messageInfo":{}})"), "messageType: required (1 text ... 10 ext)");
  EXPECT_NE(error_of(R"({"to":"t","messageType":6,"messageInfo":{}})").find("messageType: 6"), std::string::npos);
  EXPECT_EQ(error_of(R"({"messageType":3,"messageInfo":{}})"), "to: required, a non-empty string");
  EXPECT_EQ(error_of(R"({"to":"t","messageType":3,"messageInfo":{"audioMessage":"a","duration":"7"}})"),
            "messageInfo.duration: must be an integer (seconds)");
  EXPECT_NE(error_of(R"({"to":"t","messageType":3,"messageInfo":{"duration":7}})").find("messageInfo.audioMessage: required"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"to":"t","messageType":4,"messageInfo":{"videoMessage":"v","bogus":1}})").find("messageInfo.bogus"),
            std::string::npos);
  EXPECT_EQ(error_of(R"({"to":"t","messageType":1,"messageInfo":[]})"), "messageInfo: must be a JSON object");
}

// A string that cannot be unescaped (a lone surrogate, an escape JSON does not have) is a string,
// but not a valid JSON one: the error names the exact legacy member and why, in the words of the
// SendRequest decoder.
TEST(legacy, names_the_exact_field_of_a_string_that_cannot_be_unescaped) {
  // given
  const std::string why = R"(\ud800 is a lone UTF-16 surrogate (not a Unicode character))";
  const std::string lone = "not a valid JSON string: " + why;
  const std::string text = R"("messageType":1,"messageInfo":{"text":"x"})";
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"({"to":"\ud800",)" + text + "}", "to: " + lone},
      {R"({"to":"t","from":"a \ud800 b",)" + text + "}", "from: " + lone},
      {R"({"to":"t","getMessageId":"\udc00",)" + text + "}",
       R"(getMessageId: not a valid JSON string: \udc00 is a lone UTF-16 surrogate (not a Unicode character))"},
      {R"({"to":"t","from":"\q",)" + text + "}", R"(from: not a valid JSON string: \q is not a JSON escape)"},
      {R"({"to":"\u12g4",)" + text + "}", R"(to: not a valid JSON string: \u must be followed by four hex digits)"},
      {R"({"to":"t","messageType":3,"messageInfo":{"audioMessage":"a\ud800.mp3"}})", "messageInfo.audioMessage: " + lone},
      {R"({"to":"t","messageType":4,"messageInfo":{"videoMessage":"v","fileUrl":"https://x/\q"}})",
       R"(messageInfo.fileUrl: not a valid JSON string: \q is not a JSON escape)"},
      // a member name: the object holding it is named
      {R"({"to":"t",)" + text + R"(,"channel\ud800Type":1})", "body: a member name is not a valid JSON string: " + why},
      {R"({"to":"t","messageType":3,"messageInfo":{"audio\qMessage":"a"}})",
       R"(messageInfo: a member name is not a valid JSON string: \q is not a JSON escape)"},
  };
  for (const auto& [body, message] : cases) {
    // when
    const auto err = error_of(body);
    // then
    EXPECT_EQ(err, message) << body;
  }
  // and a surrogate pair is one character, taken
  const auto r = ok(R"({"to":"t\ud83d\ude00","messageType":3,"messageInfo":{"audioMessage":"\uD83D\uDE00.mp3"}})");
  EXPECT_NE(r.send_request_json.find("\"to\":\"t\xF0\x9F\x98\x80\""), std::string::npos) << r.send_request_json;
  EXPECT_NE(r.send_request_json.find("\"name\":\"\xF0\x9F\x98\x80.mp3\""), std::string::npos) << r.send_request_json;
}

TEST(legacy, field_messages_are_renamed_to_the_legacy_names) {
  EXPECT_EQ(legacy_field_message("voice", "body.duration_ms: 61000 ms is over"), "messageInfo.duration: 61000 ms is over");
  EXPECT_EQ(legacy_field_message("video", "body.thumb_size: too big"), "messageInfo.thumbFileLength: too big");
  EXPECT_EQ(legacy_field_message("text", "body.text: required"), "messageInfo.text: required");
  EXPECT_EQ(legacy_field_message("text", "from: required"), "from: required");
  // the legacy body has no "id" nor "type": their errors name getMessageId and messageType
  EXPECT_EQ(legacy_field_message("text", "id: must be 1 to 128 characters"), "getMessageId: must be 1 to 128 characters");
  EXPECT_EQ(legacy_field_message("text", "type: not supported"), "messageType: not supported");
}

TEST(legacy, a_member_given_twice_is_refused_as_on_v1_messages) {
  // given each member the mapping reads, given twice with different values
  const std::string base = R"("messageType":1,"from":"f","to":"alice","getMessageId":"m1","messageInfo":{"text":"x"},"ext":{})";
  for (const std::string repeated : {R"("to":"bob")", R"("from":"g")", R"("getMessageId":"m2")", R"("messageType":2)",
                                     R"("messageInfo":{"text":"y"})", R"("ext":{"a":1})", R"("to":null)"}) {
    // when
    const auto err = error_of("{" + base + "," + repeated + "}");
    // then the member is named, and nothing is sent to whichever came last
    const auto name = repeated.substr(1, repeated.find('"', 1) - 1);
    EXPECT_EQ(err, name + ": appears more than once") << repeated;
  }
  // and members the legacy service ignored may still repeat
  EXPECT_EQ(error_of("{" + base + R"(,"channelType":1,"channelType":2})"), "");
}

TEST(legacy, reply_has_the_seed_shape) {
  EXPECT_EQ(legacy_reply(200, "成功", "id1", "2015-11-18 22:19:32", "h"),
            R"({"code":200,"message":"成功","data":{"getMessageId":"id1"},"page":null,)"
            R"("foot":{"operationTime":"2015-11-18 22:19:32","servicePhone":"400800400","host":"h"}})");
  EXPECT_NE(legacy_reply(400, "to: required", std::nullopt, "t", "h").find(R"("data":null)"), std::string::npos);
}

TEST(legacy, generated_ids_are_32_hex_characters_and_differ) {
  const auto a = generate_message_id();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, generate_message_id());
}

TEST(legacy, content_after_the_body_object_is_refused) {
  const std::string body = R"({"to":"t","from":"f","messageType":1,"messageInfo":{"text":"x"}})";
  EXPECT_EQ(error_of(body + "}}}"), "body: trailing content after the JSON object");
  EXPECT_EQ(error_of(body + " {}"), "body: trailing content after the JSON object");
  EXPECT_EQ(error_of(body + " \r\n"), "");
}

}  // namespace
}  // namespace sendq::gateway
