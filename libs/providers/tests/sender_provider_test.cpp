#include <gtest/gtest.h>

#include "sender_signer.hpp"
#include "sendq/providers/provider.hpp"
#include "test_support.hpp"

using namespace sendq;
using namespace sendq::providers;
using namespace sendq::providers::testing;
using core::error_kind;
using core::message_type;

namespace {

const std::string seed_query =
    "?apiVersion=01&client=70374ddd0f3641368d419b2d93127b8f&channel=eba920d452d34adb8f2badb08b9e69bb"
    "&version=2.0&sign=cdcb39dc8005c3800219d2ba5fcc5182";

core::send_request voice_request() {
  auto r = request("sender", message_type::voice);
  r.body.name = "u00015529b924caf8478ab8fecf1d3d537f44.mp3";
  r.body.url = "https://cdn.example/voice/u00015529b924caf8478ab8fecf1d3d537f44.mp3";
  r.body.format = "mp3";
  r.body.size = 48213;
  r.body.duration_ms = 2500;
  r.body_json = R"({"name":"u00015529b924caf8478ab8fecf1d3d537f44.mp3"})";
  return r;
}

core::send_request video_request() {
  auto r = request("sender", message_type::video);
  r.body.name = "661d21d918d8476c88fc9b90279c400f.mp4";
  r.body.url = "https://cdn.example/video/661d21d918d8476c88fc9b90279c400f.mp4";
  r.body.thumb_name = "661d21d918d8476c88fc9b90279c400f.jpg";
  r.body.thumb_url = "https://cdn.example/video/661d21d918d8476c88fc9b90279c400f.jpg";
  r.body.thumb_size = 20480;
  r.body.title = "demo";
  r.body.description = "a \"short\" clip";
  r.body.size = 1048576;
  r.body.duration_ms = 12001;
  r.body.width = 640;
  r.body.height = 360;
  r.body_json = R"({"name":"661d21d918d8476c88fc9b90279c400f.mp4"})";
  return r;
}

const auto sender = make_provider("sender");

// The body voice_request() builds (builds_a_voice_call_as_seed_000_prescribes, without ext).
const std::string voice_body =
    R"({"messageType":3,"from":"u000193f6f02e01764a0f869be49a2be21e01","to":"148992289019003396",)"
    R"("messageInfo":{"audioMessage":"u00015529b924caf8478ab8fecf1d3d537f44.mp3",)"
    R"("fileUrl":"https://cdn.example/voice/u00015529b924caf8478ab8fecf1d3d537f44.mp3",)"
    R"("fileLength":48213,"duration":3},"getMessageId":"9f1c2d3e4b5a69788796a5b4c3d2e1f0"})";

// sender_account() with the fixed sign replaced by a secret and an algorithm.
account signing_account(std::string algorithm) {
  auto a = sender_account();
  a.settings.erase("sign");
  a.settings["sign_secret"] = "s3cr3t-Key";
  a.settings["sign_algorithm"] = std::move(algorithm);
  return a;
}

std::string query_with_sign(std::string_view sign) {
  return "/sender/v1/handleBasicMessage?apiVersion=01&client=70374ddd0f3641368d419b2d93127b8f"
         "&channel=eba920d452d34adb8f2badb08b9e69bb&version=2.0&sign=" +
         std::string(sign);
}

}  // namespace

TEST(sender_provider, builds_a_voice_call_as_seed_000_prescribes) {
  // given
  auto r = voice_request();
  r.ext_json = R"({"chatClient":"9bf18c20d5f54f459e0232246c2305c8","chatType":"WX"})";
  // when
  const auto call = built(*sender, r, sender_account());
  // then
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path_and_query, "/sender/v1/handleBasicMessage" + seed_query);
  EXPECT_EQ(call.content_type, "application/json; charset=utf-8");
  EXPECT_TRUE(call.headers.empty());
  EXPECT_EQ(call.body,
            R"({"messageType":3,"from":"u000193f6f02e01764a0f869be49a2be21e01","to":"148992289019003396",)"
            R"("messageInfo":{"audioMessage":"u00015529b924caf8478ab8fecf1d3d537f44.mp3",)"
            R"("fileUrl":"https://cdn.example/voice/u00015529b924caf8478ab8fecf1d3d537f44.mp3",)"
            R"("fileLength":48213,"duration":3},)"
            R"("ext":{"chatClient":"9bf18c20d5f54f459e0232246c2305c8","chatType":"WX"},)"
            R"("getMessageId":"9f1c2d3e4b5a69788796a5b4c3d2e1f0"})");
}

TEST(sender_provider, omits_the_optional_voice_members_and_ext_the_request_lacks) {
  // given
  auto r = voice_request();
  r.body.url.reset();
  r.body.size.reset();
  // when
  const auto call = built(*sender, r, sender_account());
  // then
  EXPECT_EQ(call.body,
            R"({"messageType":3,"from":"u000193f6f02e01764a0f869be49a2be21e01","to":"148992289019003396",)"
            R"("messageInfo":{"audioMessage":"u00015529b924caf8478ab8fecf1d3d537f44.mp3","duration":3},)"
            R"("getMessageId":"9f1c2d3e4b5a69788796a5b4c3d2e1f0"})");
}

TEST(sender_provider, builds_a_video_call_as_seed_001_prescribes) {
  // given
  const auto r = video_request();
  // when
  const auto call = built(*sender, r, sender_account());
  // then
  EXPECT_EQ(call.path_and_query, "/sender/v1/handleBasicMessage" + seed_query);
  EXPECT_EQ(call.body,
            R"({"messageType":4,"from":"u000193f6f02e01764a0f869be49a2be21e01","to":"148992289019003396",)"
            R"("messageInfo":{"videoMessage":"661d21d918d8476c88fc9b90279c400f.mp4",)"
            R"("thumbMessage":"661d21d918d8476c88fc9b90279c400f.jpg","title":"demo",)"
            R"("description":"a \"short\" clip",)"
            R"("fileUrl":"https://cdn.example/video/661d21d918d8476c88fc9b90279c400f.mp4",)"
            R"("fileLength":1048576,"duration":13,)"
            R"("thumbFileUrl":"https://cdn.example/video/661d21d918d8476c88fc9b90279c400f.jpg",)"
            R"("thumbFileLength":20480,"imageWidth":640,"imageHeight":360},)"
            R"("getMessageId":"9f1c2d3e4b5a69788796a5b4c3d2e1f0"})");
}

TEST(sender_provider, sends_a_video_with_only_its_name) {
  // given
  auto r = request("sender", message_type::video);
  r.body.name = "661d21d918d8476c88fc9b90279c400f.mp4";
  r.body_json = R"({"name":"661d21d918d8476c88fc9b90279c400f.mp4"})";
  // when
  const auto call = built(*sender, r, sender_account());
  // then
  EXPECT_EQ(call.body,
            R"({"messageType":4,"from":"u000193f6f02e01764a0f869be49a2be21e01","to":"148992289019003396",)"
            R"("messageInfo":{"videoMessage":"661d21d918d8476c88fc9b90279c400f.mp4"},)"
            R"("getMessageId":"9f1c2d3e4b5a69788796a5b4c3d2e1f0"})");
}

TEST(sender_provider, passes_the_other_bodies_through_as_message_info_with_their_message_types) {
  struct row {
    message_type type;
    int wire_type;
    std::string body_json;
  };
  const row rows[] = {
      {message_type::text, 1, R"({"text":"你好"})"},
      {message_type::image, 2, R"({"url":"https://cdn.example/i.jpg","width":10})"},
      {message_type::location, 5, R"({"lat":31.23,"lng":121.47,"address":"上海"})"},
      {message_type::link, 7, R"({ "title": "t", "url": "https://x" })"},
      {message_type::custom, 8, R"({"any":{"thing":[1,2]}})"},
      {message_type::template_, 9, R"({"templetId":3,"content":"{\"a\":1}"})"},
      {message_type::file, 10, R"({"url":"https://cdn.example/f.pdf","name":"f.pdf"})"},
  };
  for (const auto& row : rows) {
    // given
    auto r = request("sender", row.type);
    r.body.text = "你好";
    r.body.lat = 31.23;
    r.body.lng = 121.47;
    r.body_json = row.body_json;
    // when
    const auto call = built(*sender, r, sender_account());
    // then
    EXPECT_EQ(call.body, R"({"messageType":)" + std::to_string(row.wire_type) +
                             R"(,"from":"u000193f6f02e01764a0f869be49a2be21e01","to":"148992289019003396",)"
                             R"("messageInfo":)" + row.body_json +
                             R"(,"getMessageId":"9f1c2d3e4b5a69788796a5b4c3d2e1f0"})")
        << core::to_string(row.type);
  }
}

TEST(sender_provider, passes_ext_through_byte_for_byte) {
  // given
  auto r = voice_request();
  r.ext_json =
      R"({ "chatType" : "WX", "template": {"templetId": 7, "content": "{\"k\":\"v\"}"}, "expandMsg": {"MsgType": "x", "Content": "\u4f60"} })";
  // when
  const auto call = built(*sender, r, sender_account());
  // then
  EXPECT_NE(call.body.find(R"("ext":)" + r.ext_json + R"(,"getMessageId")"), std::string::npos)
      << call.body;
}

TEST(sender_provider, percent_encodes_the_query_values) {
  // given
  auto a = sender_account();
  a.settings["sign"] = "a b&c=d/é~._-";
  // when
  const auto call = built(*sender, voice_request(), a);
  // then
  EXPECT_EQ(call.path_and_query,
            "/sender/v1/handleBasicMessage?apiVersion=01&client=70374ddd0f3641368d419b2d93127b8f"
            "&channel=eba920d452d34adb8f2badb08b9e69bb&version=2.0&sign=a%20b%26c%3Dd%2F%C3%A9~._-");
}

TEST(sender_provider, escapes_strings_it_writes) {
  // given
  auto r = voice_request();
  r.from = "a\"b\\c\n";
  // when
  const auto call = built(*sender, r, sender_account());
  // then
  EXPECT_NE(call.body.find(R"("from":"a\"b\\c\n")"), std::string::npos) << call.body;
}

// --- checks before sending -------------------------------------------------------------

TEST(sender_provider, rejects_a_voice_over_60_seconds) {
  // given
  auto r = voice_request();
  r.body.duration_ms = 60001;
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.duration_ms"));
}

TEST(sender_provider, accepts_a_voice_of_exactly_60_seconds) {
  // given
  auto r = voice_request();
  r.body.duration_ms = 60000;
  // when
  const auto call = built(*sender, r, sender_account());
  // then
  EXPECT_NE(call.body.find(R"("duration":60})"), std::string::npos) << call.body;
}

TEST(sender_provider, rejects_a_voice_file_of_2_mb_or_more_as_too_large) {
  // given
  auto r = voice_request();
  r.body.size = 2097152;
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::too_large);
  EXPECT_TRUE(names_field(f, "body.size"));
  r.body.size = 2097151;
  built(*sender, r, sender_account());
}

TEST(sender_provider, rejects_a_voice_without_a_name) {
  // given
  auto r = voice_request();
  r.body.name.reset();
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.name"));
}

TEST(sender_provider, rejects_a_voice_that_is_not_mp3) {
  // given
  auto r = voice_request();
  r.body.format = "silk";
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.format"));
}

TEST(sender_provider, rejects_a_voice_without_a_duration) {
  // given
  auto r = voice_request();
  r.body.duration_ms.reset();
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.duration_ms"));
}

TEST(sender_provider, rejects_every_type_without_from) {
  // Seed 000's field table: from 可为空 否, for the endpoint, not only its voice messages.
  auto text = request("sender", message_type::text);
  text.body.text = "hi";
  text.body_json = R"({"text":"hi"})";
  auto image = request("sender", message_type::image);
  image.body_json = R"({"url":"https://cdn.example/i.jpg"})";
  for (auto r : {voice_request(), video_request(), text, image}) {
    // given
    r.from.clear();
    // when
    const auto f = rejected(*sender, r, sender_account());
    // then
    EXPECT_EQ(f.kind, error_kind::invalid_field) << core::to_string(r.type);
    EXPECT_TRUE(names_field(f, "from")) << f.message;
  }
}

TEST(sender_provider, rejects_a_video_of_10_mb_or_more_as_too_large) {
  // given
  auto r = video_request();
  r.body.size = 10485760;
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::too_large);
  EXPECT_TRUE(names_field(f, "body.size"));
}

TEST(sender_provider, rejects_a_video_width_or_height_past_a_java_integer_naming_it) {
  // given dimensions sender's Integer fields cannot hold, and the largest they can
  auto wide = video_request();
  wide.body.width = 3000000000;
  auto tall = video_request();
  tall.body.height = 2147483648;
  auto largest = video_request();
  largest.body.width = largest.body.height = 2147483647;
  // when / then the first two are refused, each naming its field; the third is sent
  const auto f = rejected(*sender, wide, sender_account());
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_EQ(f.message, "body.width: 3000000000 is over 2147483647, the most sender takes (imageWidth/imageHeight are "
                       "Integer, seed 001)");
  EXPECT_TRUE(names_field(rejected(*sender, tall, sender_account()), "body.height"));
  const auto built = sender->build(largest, sender_account());
  ASSERT_TRUE(std::holds_alternative<providers::http_call>(built));
  EXPECT_NE(std::get<providers::http_call>(built).body.find("\"imageWidth\":2147483647"), std::string::npos);
}

TEST(sender_provider, rejects_a_thumbnail_over_64_kb_as_too_large) {
  // given
  auto r = video_request();
  r.body.thumb_size = 65537;
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::too_large);
  EXPECT_TRUE(names_field(f, "body.thumb_size"));
  r.body.thumb_size = 65536;
  built(*sender, r, sender_account());
}

TEST(sender_provider, rejects_a_video_without_a_name) {
  // given
  auto r = video_request();
  r.body.name.reset();
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.name"));
}

TEST(sender_provider, rejects_an_empty_text) {
  // given
  auto r = request("sender", message_type::text);
  r.body.text = "";
  r.body_json = R"({"text":""})";
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.text"));
}

TEST(sender_provider, rejects_a_location_without_coordinates) {
  // given
  auto r = request("sender", message_type::location);
  r.body.lng = 121.47;
  r.body_json = R"({"lng":121.47})";
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.lat"));
}

TEST(sender_provider, rejects_a_body_that_is_not_an_object) {
  // given
  auto r = request("sender", message_type::custom);
  r.body_json = "[1]";
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body"));
}

TEST(sender_provider, rejects_any_provider_fields) {
  // given
  auto r = voice_request();
  r.provider_fields_json = R"({"fromrole":"MEMBER"})";
  // when
  const auto f = rejected(*sender, r, sender_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "provider_fields.fromrole"));
}

TEST(sender_provider, accepts_empty_provider_fields) {
  // given
  auto r = voice_request();
  r.provider_fields_json = "{}";
  // when / then
  built(*sender, r, sender_account());
}

// --- replies ----------------------------------------------------------------------------

TEST(sender_provider, is_delivered_on_code_200_with_the_get_message_id) {
  // given: the reply of seeds 000/001
  const std::string reply = R"({
    "code": 200, "message": "成功", "data": {"getMessageId": "1111111111111"}, "page": null,
    "foot": {"operationTime": "2015-11-18 22:19:32", "servicePhone": "400800400", "host": "h"}})";
  // when
  const auto o = sender->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::delivered);
  EXPECT_EQ(o.provider_message_id, "1111111111111");
  EXPECT_EQ(o.provider_code, "200");
}

TEST(sender_provider, fails_permanently_on_another_code) {
  // given
  const std::string reply = R"({"code":500,"message":"签名错误","data":null})";
  // when
  const auto o = sender->classify(200, "application/json", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::permanent);
  EXPECT_EQ(o.kind, error_kind::provider_error);
  EXPECT_EQ(o.provider_code, "500");
  EXPECT_NE(o.message.find("签名错误"), std::string::npos) << o.message;
}

TEST(sender_provider, a_2xx_reply_that_is_not_the_documented_json_is_ambiguous) {
  const std::string replies[] = {
      "<html>oops</html>",
      R"({"message":"no code"})",
      R"({"code":"200","data":{"getMessageId":"1"}})",
      R"({"code":200.5,"data":{"getMessageId":"1"}})",
      R"({"code":200,"data":{"getMessageId":"1"}} trailing)",
      "",
  };
  for (const auto& reply : replies) {
    // when
    const auto o = sender->classify(200, "application/json", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::ambiguous) << reply;
    EXPECT_EQ(o.kind, error_kind::ambiguous) << reply;
    EXPECT_NE(o.message.find("sender reply unusable"), std::string::npos) << o.message;
  }
}

TEST(sender_provider, code_200_without_a_get_message_id_is_delivered_known_by_our_id) {
  // getMessageId is our own id echoed: without it, code 200 is still a success
  for (const std::string reply : {R"({"code":200,"data":{}})", R"({"code":200,"data":"1"})",
                                  R"({"code":200,"message":"成功","data":null})", R"({"code":200,"data":{"getMessageId":null}})"}) {
    // when
    const auto o = sender->classify(200, "application/json", reply);
    // then (the empty id: the pipeline records the request's id)
    EXPECT_EQ(o.cls, outcome_class::delivered) << reply;
    EXPECT_EQ(o.provider_message_id, "") << reply;
    EXPECT_EQ(o.provider_code, "200") << reply;
  }
}

TEST(sender_provider, dedupes_by_the_request_id) {
  EXPECT_TRUE(sender->dedupes_by_request_id());
}

TEST(sender_provider, requires_every_query_key_in_the_account) {
  for (const char* key : {"api_version", "client", "channel", "version", "sign"}) {
    // given an account without it
    auto a = sender_account();
    ASSERT_EQ(a.settings.erase(key), 1u) << key;
    // when
    const auto err = sender->check_account(a);
    // then the error names it
    ASSERT_TRUE(err) << key;
    EXPECT_NE(err->find(std::string("\"") + key + "\""), std::string::npos) << *err;
  }
  EXPECT_FALSE(sender->check_account(sender_account()));
}

TEST(sender_provider, refuses_an_unknown_account_key) {
  // given
  auto a = sender_account();
  a.settings["signer"] = "md5";
  // when
  const auto err = sender->check_account(a);
  // then
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("\"signer\""), std::string::npos) << *err;
}

// --- signing ----------------------------------------------------------------------------

TEST(sender_signer, writes_the_canonical_string_in_name_order_with_raw_values_and_the_body) {
  // given
  const detail::sign_query q{"01", "k&1", "c 1", "2.0"};
  // when
  const auto text = detail::sign_canonical_string(q, R"({"a":1})");
  // then
  EXPECT_EQ(text, R"(apiVersion=01&channel=c 1&client=k&1&version=2.0&body={"a":1})");
}

TEST(sender_signer, knows_its_three_algorithms_by_name) {
  EXPECT_EQ(detail::parse_sign_algorithm("static"), detail::sign_algorithm::fixed);
  EXPECT_EQ(detail::parse_sign_algorithm("md5_sorted"), detail::sign_algorithm::md5_sorted);
  EXPECT_EQ(detail::parse_sign_algorithm("hmac_sha256_sorted"),
            detail::sign_algorithm::hmac_sha256_sorted);
  EXPECT_FALSE(detail::parse_sign_algorithm("MD5"));
  EXPECT_FALSE(detail::parse_sign_algorithm(""));
}

TEST(sender_provider, signs_with_md5_over_the_sorted_query_the_body_and_the_secret) {
  // given: the expected sign, computed outside sendq:
  //   printf '%s' 'apiVersion=01&channel=eba9...&client=7037...&version=2.0&body=<body>&secret=s3cr3t-Key' | md5sum
  const auto a = signing_account("md5_sorted");
  // when
  const auto call = built(*sender, voice_request(), a);
  // then
  EXPECT_EQ(call.body, voice_body);
  EXPECT_EQ(call.path_and_query, query_with_sign("61feaf50be1788511434c33e603599b0"));
}

TEST(sender_provider, signs_with_hmac_sha256_keyed_by_the_secret) {
  // given: printf '%s' '<canonical string>' | openssl dgst -sha256 -hmac 's3cr3t-Key'
  const auto a = signing_account("hmac_sha256_sorted");
  // when
  const auto call = built(*sender, voice_request(), a);
  // then
  EXPECT_EQ(call.path_and_query,
            query_with_sign("6750c402aba49c0cddf217f8d906c7bcf17f530977743215bf5cf2d6a1439138"));
}

TEST(sender_provider, signs_each_body_on_its_own) {
  // given
  const auto a = signing_account("md5_sorted");
  auto other = voice_request();
  other.id = "another-id";
  // when
  const auto first = built(*sender, voice_request(), a);
  const auto second = built(*sender, other, a);
  // then
  EXPECT_NE(first.path_and_query, second.path_and_query);
}

TEST(sender_provider, sends_the_configured_sign_when_the_algorithm_is_static) {
  // given
  auto a = sender_account();
  a.settings["sign_algorithm"] = "static";
  // when
  const auto call = built(*sender, voice_request(), a);
  // then
  EXPECT_EQ(call.path_and_query, "/sender/v1/handleBasicMessage" + seed_query);
  EXPECT_FALSE(sender->check_account(a));
}

TEST(sender_provider, accepts_either_a_sign_or_a_secret_with_its_algorithm) {
  EXPECT_FALSE(sender->check_account(sender_account()));
  EXPECT_FALSE(sender->check_account(signing_account("md5_sorted")));
  EXPECT_FALSE(sender->check_account(signing_account("hmac_sha256_sorted")));
}

TEST(sender_provider, refuses_signing_keys_that_do_not_fit_together_naming_the_key) {
  struct row {
    std::string name;
    account a;
    std::string key;
  };
  auto both = signing_account("md5_sorted");
  both.settings["sign"] = "cdcb39dc8005c3800219d2ba5fcc5182";
  auto neither = sender_account();
  neither.settings.erase("sign");
  auto unknown = signing_account("sha1");
  auto empty_algorithm = signing_account("");
  auto secret_alone = signing_account("md5_sorted");
  secret_alone.settings.erase("sign_algorithm");
  auto secret_static = signing_account("static");
  auto algorithm_without_secret = sender_account();
  algorithm_without_secret.settings.erase("sign");
  algorithm_without_secret.settings["sign_algorithm"] = "md5_sorted";
  auto sign_with_md5 = sender_account();
  sign_with_md5.settings["sign_algorithm"] = "md5_sorted";
  const row rows[] = {
      {"both", both, "\"sign_secret\""},
      {"neither", neither, "\"sign\""},
      {"unknown algorithm", unknown, "\"sign_algorithm\""},
      {"empty algorithm", empty_algorithm, "\"sign_algorithm\""},
      {"secret alone", secret_alone, "\"sign_algorithm\""},
      {"secret with static", secret_static, "\"sign_algorithm\""},
      {"algorithm without secret", algorithm_without_secret, "\"sign_secret\""},
      {"sign with md5", sign_with_md5, "\"sign_algorithm\""},
  };
  for (const auto& [name, a, key] : rows) {
    // when
    const auto err = sender->check_account(a);
    // then
    ASSERT_TRUE(err) << name;
    EXPECT_NE(err->find(key), std::string::npos) << name << ": " << *err;
    // Secrets never appear in messages.
    EXPECT_EQ(err->find("s3cr3t-Key"), std::string::npos) << name << ": " << *err;
    EXPECT_EQ(err->find("cdcb39dc8005c3800219d2ba5fcc5182"), std::string::npos) << *err;
  }
  EXPECT_NE(sender->check_account(unknown)->find("\"sha1\""), std::string::npos);
}

TEST(sender_provider, does_not_build_for_an_account_whose_signing_is_unusable) {
  // given: an account check_account would refuse (built by hand)
  auto a = signing_account("sha1");
  // when
  const auto f = rejected(*sender, voice_request(), a);
  // then
  EXPECT_EQ(f.kind, error_kind::internal);
  EXPECT_EQ(f.message.find("s3cr3t-Key"), std::string::npos) << f.message;
}

TEST(sender_provider, easemob_send_reach_limit_is_throttling_and_retried) {
  // given
  auto p = sendq::providers::make_provider("sender");
  // when
  auto o = p->classify(403, "application/json", R"({"error":"send reach limit"})", std::chrono::milliseconds(2000));
  // then
  EXPECT_EQ(o.cls, sendq::providers::outcome_class::retryable);
  EXPECT_TRUE(o.throttled);
  EXPECT_EQ(o.retry_after, std::chrono::milliseconds(2000));
  auto plain = p->classify(403, "application/json", R"({"error":"forbidden"})", std::nullopt);
  EXPECT_EQ(plain.cls, sendq::providers::outcome_class::permanent);
  EXPECT_FALSE(plain.throttled);
}

// Each wrong combination of signing keys is refused at start-up with the account and the key named,
// and never with a secret's value in the message.
TEST(sender_provider, refuses_each_wrong_signing_setup_naming_the_account_and_the_key) {
  const auto refusal = [](account a) {
    const auto err = sender->check_account(a);
    return err ? *err : std::string("(accepted)");
  };
  auto bad_algorithm = signing_account("sha1");
  auto both = signing_account("md5_sorted");
  both.settings["sign"] = "cdcb39dc8005c3800219d2ba5fcc5182";
  auto secret_static = signing_account("static");
  auto algorithm_without_secret = sender_account();
  algorithm_without_secret.settings.erase("sign");
  algorithm_without_secret.settings["sign_algorithm"] = "md5_sorted";
  auto nothing = sender_account();
  nothing.settings.erase("sign");
  auto sign_with_computed = sender_account();
  sign_with_computed.settings["sign_algorithm"] = "hmac_sha256_sorted";

  EXPECT_EQ(refusal(bad_algorithm),
            "account default of sender: key \"sign_algorithm\" must be static, md5_sorted or hmac_sha256_sorted, not "
            "\"sha1\"");
  EXPECT_EQ(refusal(both),
            "account default of sender: keys \"sign\" and \"sign_secret\" exclude each other: set \"sign\" for a fixed "
            "sign, or \"sign_secret\" and \"sign_algorithm\" to compute it for every call");
  EXPECT_EQ(refusal(secret_static),
            "account default of sender: key \"sign_secret\" needs \"sign_algorithm\" md5_sorted or hmac_sha256_sorted");
  EXPECT_EQ(refusal(algorithm_without_secret),
            "account default of sender: key \"sign_secret\" is required by sign_algorithm md5_sorted");
  EXPECT_EQ(refusal(nothing),
            "account default of sender: key \"sign\" is required (or \"sign_secret\" with \"sign_algorithm\" md5_sorted "
            "or hmac_sha256_sorted)");
  EXPECT_EQ(refusal(sign_with_computed),
            "account default of sender: key \"sign_algorithm\" hmac_sha256_sorted computes the sign from "
            "\"sign_secret\", which is not set (\"sign\" goes with sign_algorithm static)");
  for (const auto& a : {bad_algorithm, both, secret_static}) {
    EXPECT_EQ(refusal(a).find("s3cr3t-Key"), std::string::npos);
  }
  EXPECT_EQ(refusal(both).find("cdcb39dc"), std::string::npos);
  EXPECT_EQ(refusal(signing_account("md5_sorted")), "(accepted)");
  EXPECT_EQ(refusal(sender_account()), "(accepted)");
}
