// Unit tests of the simulator core: provider validation against docs/providers.md, replies,
// fault rules, recording and the command line. No sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>

#include "fault_rules.hpp"
#include "json_text.hpp"
#include "options.hpp"
#include "simulator.hpp"

namespace sendq::simulator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// 2024-01-04 08:39:23.456 UTC (seed 002's createTime 1704357563).
constexpr std::int64_t fixed_ms = 1704357563456;

simulator_config test_config() {
  simulator_config cfg;
  cfg.seed = 7;
  return cfg;
}

simulator make_sim(simulator_config cfg = test_config()) {
  return simulator(std::move(cfg), [] { return std::chrono::system_clock::time_point(std::chrono::milliseconds(fixed_ms)); });
}

http_request post(std::string target, std::string body, std::string content_type = "application/json; charset=utf-8") {
  http_request r;
  r.method = "POST";
  r.target = std::move(target);
  r.headers.emplace_back("content-type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

http_request get(std::string target) {
  http_request r;
  r.method = "GET";
  r.target = std::move(target);
  return r;
}

const std::string sender_target =
    "/sender/v1/handleBasicMessage?apiVersion=01&client=demo-client&channel=demo-channel&version=2.0&sign=demo-sign";

// Seed 000's sample as sendq's adapter writes it (docs/providers.md: no channelType, getMessageId set).
const std::string sender_voice_body = R"({"messageType":3,"from":"u000193f6f02e01764a0f869be49a2be21e01",
  "to":"148992289019003396","messageInfo":{"audioMessage":"u00015529b924caf8478ab8fecf1d3d537f44.mp3",
  "fileUrl":"https://cdn.example/voice/1.mp3","fileLength":20480,"duration":2},
  "ext":{"chatClient":"9bf18c20d5f54f459e0232246c2305c8","chatType":"WX","chatChannel":"f2b91d57f9cb4db7a06926b2fd5d9caf",
  "template":{"templetId":1,"content":"{}"}},"getMessageId":"9f1c2d3e4b5a69788796a5b4c3d2e1f0"})";

const std::string sender_video_body = R"({"messageType":4,"from":"u000193f6f02e01764a0f869be49a2be21e01",
  "to":"148992289019003396","messageInfo":{"videoMessage":"661d21d918d8476c88fc9b90279c400f.mp4",
  "thumbMessage":"t.jpg","title":"t","description":"d","fileUrl":"https://cdn.example/v.mp4","fileLength":10485759,
  "duration":12,"thumbFileUrl":"https://cdn.example/t.jpg","thumbFileLength":65536,"imageWidth":320,"imageHeight":240},
  "getMessageId":"id-2"})";

const std::string gewe_voice_body = R"({"appId":"demo-gewe-app","toWxid":"34757816141@chatroom",
  "voiceUrl":"https://scrm-1308498490.cos.ap-shanghai.myqcloud.com/pkg/response.silk?q-sign-algorithm=sha1&q-ak=AKID",
  "voiceDuration":2000})";

const std::string im_body = R"({"appid":"JH","from":"200","fromarea":"192.","fromrole":"MEMBER","f_nickname":"LAUFEN",
  "f_avatar":"FTOM.jpg","to":"2","t_nickname":"ikima","t_avatar":"to.jpg","content":"ffffffffff","type":"TEXT","channel":"PC"})";

// "#!AMR\n" + two bytes, base64.
const std::string amr_base64 = "IyFBTVIKAAE=";

std::string gps_body(std::string serial = "861234567890123", std::string command = amr_base64, int seconds = 2,
                     std::string token = "demo-gps-token") {
  return R"({"SerialNumber":")" + serial + R"(","Long":)" + std::to_string(seconds) +
         R"(,"VoiceTime":"2025-12-12T05:27:24.378+00:00","Command":")" + command +
         R"(","IdentityID":"9f1c2d3e","UserId":6,"ChatType":1,"FileType":1,"Token":")" + token +
         R"(","Language":"zh-CN","AppId":"demo-gps-app"})";
}

http_request gewe(std::string path, std::string body, std::string token = "demo-gewe-token") {
  auto r = post(std::move(path), std::move(body));
  r.headers.emplace_back("x-gewe-token", std::move(token));
  return r;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    auto nl = s.find('\n', start);
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// sender

TEST(sender, accepts_the_seed_voice_message_and_answers_like_seed_000) {
  // given
  auto sim = make_sim();
  // when
  auto d = sim.handle(post(sender_target, sender_voice_body));
  // then
  EXPECT_EQ(d.how, transport::respond);
  EXPECT_EQ(d.reply.status, 200u);
  EXPECT_EQ(d.reply.body,
            R"({"code":200,"message":"成功","data":{"getMessageId":"9f1c2d3e4b5a69788796a5b4c3d2e1f0"},"page":null,)"
            R"("foot":{"operationTime":"2024-01-04 08:39:23","servicePhone":"400800400","host":"sendq-simulator"}})");
}

TEST(sender, accepts_the_seed_video_message_at_its_limits) {
  auto sim = make_sim();
  auto d = sim.handle(post(sender_target, sender_video_body));
  EXPECT_THAT(d.reply.body, StartsWith(R"({"code":200,"message":"成功","data":{"getMessageId":"id-2"})"));
}

TEST(sender, accepts_minimal_voice_and_video_and_other_types) {
  auto sim = make_sim();
  auto body = [](int type, std::string info) {
    return R"({"messageType":)" + std::to_string(type) + R"(,"from":"f","to":"t","messageInfo":)" + info +
           R"(,"getMessageId":"x"})";
  };
  for (const auto& b : {body(3, R"({"audioMessage":"a.mp3"})"), body(4, R"({"videoMessage":"v.mp4"})"),
                        body(1, R"({"text":"hi"})"), body(2, R"({"url":"u"})"), body(5, R"({"lat":1.5,"lng":2})"),
                        body(6, "{}"), body(7, R"({"a":[1]})"), body(10, "{}")}) {
    EXPECT_THAT(sim.handle(post(sender_target, b)).reply.body, StartsWith(R"({"code":200,)")) << b;
  }
}

struct sender_case {
  std::string name;
  std::string target;
  std::string body;
  int code;
  std::string message_part;
};

class sender_rejects : public ::testing::TestWithParam<sender_case> {};

TEST_P(sender_rejects, with_its_error_reply_naming_the_problem) {
  const auto& c = GetParam();
  auto sim = make_sim();
  auto d = sim.handle(post(c.target, c.body));
  EXPECT_EQ(d.reply.status, 200u);
  EXPECT_THAT(d.reply.body, StartsWith(R"({"code":)" + std::to_string(c.code) + R"(,"message":)"));
  EXPECT_THAT(d.reply.body, HasSubstr(c.message_part));
  EXPECT_THAT(d.reply.body, HasSubstr(R"("data":null,"page":null,"foot":{"operationTime":)"));
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto p = s.find(from);
  if (p == std::string::npos) throw std::logic_error("test: '" + from + "' not found");
  return s.replace(p, from.size(), to);
}

INSTANTIATE_TEST_SUITE_P(
    cases, sender_rejects,
    ::testing::Values(
        sender_case{"wrong_sign", replace(sender_target, "sign=demo-sign", "sign=bad"), sender_voice_body, 401, "sign"},
        sender_case{"wrong_client", replace(sender_target, "client=demo-client", "client=x"), sender_voice_body, 401,
                    "client"},
        sender_case{"missing_version", replace(sender_target, "&version=2.0", ""), sender_voice_body, 400, "'version'"},
        sender_case{"unknown_query", sender_target + "&x=1", sender_voice_body, 400, "'x'"},
        sender_case{"wrong_api_version", replace(sender_target, "apiVersion=01", "apiVersion=02"), sender_voice_body, 400,
                    "apiVersion"},
        sender_case{"channel_type_member", sender_target, replace(sender_voice_body, "{\"messageType\"", "{\"channelType\":1,\"messageType\""),
                    400, "unknown member 'channelType'"},
        sender_case{"file_too_large", sender_target, replace(sender_voice_body, "20480", "2097152"), 400,
                    "messageInfo.fileLength"},
        sender_case{"too_long", sender_target, replace(sender_voice_body, "\"duration\":2", "\"duration\":61"), 400,
                    "messageInfo.duration"},
        sender_case{"duration_as_double", sender_target, replace(sender_voice_body, "\"duration\":2", "\"duration\":2.5"),
                    400, "messageInfo.duration"},
        sender_case{"audio_missing", sender_target,
                    replace(sender_voice_body, "\"audioMessage\"", "\"other\""), 400, "messageInfo.other"},
        sender_case{"voice_extra_member", sender_target, replace(sender_voice_body, "\"duration\":2", "\"duration\":2,\"x\":1"),
                    400, "unknown member 'messageInfo.x'"},
        sender_case{"message_type_11", sender_target, replace(sender_voice_body, "\"messageType\":3", "\"messageType\":11"),
                    400, "messageType"},
        sender_case{"message_type_string", sender_target, replace(sender_voice_body, "\"messageType\":3", "\"messageType\":\"3\""),
                    400, "messageType"},
        sender_case{"empty_from", sender_target, replace(sender_voice_body, "\"u000193f6f02e01764a0f869be49a2be21e01\"", "\"\""),
                    400, "'from'"},
        sender_case{"ext_not_object", sender_target,
                    R"({"messageType":3,"from":"f","to":"t","messageInfo":{"audioMessage":"a"},"ext":"x","getMessageId":"i"})",
                    400, "'ext'"},
        sender_case{"missing_get_message_id", sender_target,
                    replace(sender_voice_body, ",\"getMessageId\":\"9f1c2d3e4b5a69788796a5b4c3d2e1f0\"", ""), 400,
                    "getMessageId"},
        sender_case{"thumb_too_large", sender_target, replace(sender_video_body, "65536", "65537"), 400,
                    "messageInfo.thumbFileLength"},
        sender_case{"video_too_large", sender_target, replace(sender_video_body, "10485759", "10485760"), 400,
                    "messageInfo.fileLength"},
        sender_case{"video_width_string", sender_target, replace(sender_video_body, "320", "\"320\""), 400,
                    "messageInfo.imageWidth"},
        sender_case{"text_without_text", sender_target,
                    R"({"messageType":1,"from":"f","to":"t","messageInfo":{},"getMessageId":"x"})", 400,
                    "messageInfo.text"},
        sender_case{"invalid_json", sender_target, "{", 400, "not valid JSON"}),
    [](const auto& info) { return info.param.name; });

TEST(sender, rejects_a_body_that_is_not_json_by_content_type) {
  auto sim = make_sim();
  auto d = sim.handle(post(sender_target, sender_voice_body, "text/plain"));
  EXPECT_THAT(d.reply.body, StartsWith(R"({"code":415,)"));
}

TEST(sender, decodes_percent_encoded_query_values) {
  auto cfg = test_config();
  cfg.credentials.sender_sign = "a b+c/=";
  auto sim = make_sim(cfg);
  auto target = replace(sender_target, "sign=demo-sign", "sign=a%20b%2Bc%2F%3D");
  EXPECT_THAT(sim.handle(post(target, sender_voice_body)).reply.body, StartsWith(R"({"code":200,)"));
}

// Computed signs. The expected values come from outside sendq:
//   printf '%s' 'apiVersion=01&channel=demo-channel&client=demo-client&version=2.0&body=<body>&secret=sim-secret' | md5sum
//   printf '%s' 'apiVersion=01&channel=demo-channel&client=demo-client&version=2.0&body=<body>' |
//     openssl dgst -sha256 -hmac sim-secret
const std::string signed_body = R"({"messageType":1,"from":"f","to":"t","messageInfo":{"text":"hi"},"getMessageId":"x"})";
constexpr std::string_view signed_body_md5 = "bba474dba5e485597924a85466f9523d";
constexpr std::string_view signed_body_hmac = "1729f89e6e0aed2490db8b635623cffd9f03a377b3102f1e8e14c117fc112510";

simulator_config signing_config(std::string algorithm) {
  auto cfg = test_config();
  cfg.credentials.sender_sign_secret = "sim-secret";
  cfg.credentials.sender_sign_algorithm = std::move(algorithm);
  return cfg;
}

std::string target_with_sign(std::string_view sign) {
  return replace(sender_target, "sign=demo-sign", "sign=" + std::string(sign));
}

TEST(sender, accepts_a_correct_md5_sorted_sign) {
  // given
  auto sim = make_sim(signing_config("md5_sorted"));
  // when
  auto d = sim.handle(post(target_with_sign(signed_body_md5), signed_body));
  // then
  EXPECT_THAT(d.reply.body, StartsWith(R"({"code":200,)"));
}

TEST(sender, accepts_a_correct_hmac_sha256_sorted_sign) {
  // given
  auto sim = make_sim(signing_config("hmac_sha256_sorted"));
  // when
  auto d = sim.handle(post(target_with_sign(signed_body_hmac), signed_body));
  // then
  EXPECT_THAT(d.reply.body, StartsWith(R"({"code":200,)"));
}

TEST(sender, answers_code_401_when_the_computed_sign_differs) {
  // given
  auto sim = make_sim(signing_config("md5_sorted"));
  const auto other_body = replace(signed_body, "\"hi\"", "\"ho\"");
  // when
  auto static_sign = sim.handle(post(sender_target, signed_body));
  auto other_algorithm = sim.handle(post(target_with_sign(signed_body_hmac), signed_body));
  auto body_changed = sim.handle(post(target_with_sign(signed_body_md5), other_body));
  auto upper_case = sim.handle(post(target_with_sign("BBA474DBA5E485597924A85466F9523D"), signed_body));
  // then
  for (const auto* d : {&static_sign, &other_algorithm, &body_changed, &upper_case}) {
    EXPECT_THAT(d->reply.body, StartsWith(R"({"code":401,)"));
    EXPECT_THAT(d->reply.body, HasSubstr("md5_sorted sign check failed"));
  }
}

// ---------------------------------------------------------------------------------------------
// gewe

TEST(gewe, accepts_the_seed_voice_message_and_answers_with_a_big_new_msg_id) {
  auto sim = make_sim();
  auto d = sim.handle(gewe("/message/postVoice", gewe_voice_body));
  EXPECT_EQ(d.reply.status, 200u);
  EXPECT_EQ(d.reply.body,
            R"({"ret":200,"msg":"操作成功","data":{"toWxid":"34757816141@chatroom","createTime":1704357563,)"
            R"("msgId":640355968,"newMsgId":2321462558768366601,"type":null}})");
  EXPECT_GT(gewe_new_msg_id(1), 1ULL << 53);
}

TEST(gewe, new_msg_ids_differ_per_request) {
  auto sim = make_sim();
  auto a = sim.handle(gewe("/message/postVoice", gewe_voice_body)).reply.body;
  auto b = sim.handle(gewe("/message/postVoice", gewe_voice_body)).reply.body;
  EXPECT_THAT(a, HasSubstr("2321462558768366601"));
  EXPECT_THAT(b, HasSubstr("2321462558768366602"));
}

TEST(gewe, accepts_every_endpoint_of_the_family) {
  auto sim = make_sim();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/message/postText", R"({"appId":"demo-gewe-app","toWxid":"w","content":"hi"})"},
      {"/message/postText", R"({"appId":"demo-gewe-app","toWxid":"w","content":"hi","ats":"wxid_1"})"},
      {"/message/postImage", R"({"appId":"demo-gewe-app","toWxid":"w","imgUrl":"https://x/i.png"})"},
      {"/message/postVideo",
       R"({"appId":"demo-gewe-app","toWxid":"w","videoUrl":"https://x/v.mp4","thumbUrl":"https://x/t.jpg","videoDuration":10})"},
      {"/message/postFile", R"({"appId":"demo-gewe-app","toWxid":"w","fileUrl":"https://x/f.pdf","fileName":"f.pdf"})"},
      {"/message/postLink",
       R"({"appId":"demo-gewe-app","toWxid":"w","title":"t","desc":"d","linkUrl":"https://x","thumbUrl":"https://x/t.jpg"})"},
  };
  for (const auto& [path, body] : cases) {
    EXPECT_THAT(sim.handle(gewe(path, body)).reply.body, StartsWith(R"({"ret":200,"msg":"操作成功")")) << path;
  }
}

TEST(gewe, rejects_a_wrong_or_missing_token_with_ret_401) {
  auto sim = make_sim();
  EXPECT_THAT(sim.handle(gewe("/message/postVoice", gewe_voice_body, "nope")).reply.body, StartsWith(R"({"ret":401,)"));
  EXPECT_THAT(sim.handle(post("/message/postVoice", gewe_voice_body)).reply.body, StartsWith(R"({"ret":401,)"));
}

TEST(gewe, rejects_bad_bodies_with_ret_500_naming_the_field) {
  auto sim = make_sim();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {replace(gewe_voice_body, "response.silk", "response.mp3"), "voiceUrl"},
      {replace(gewe_voice_body, "2000", "\"2000\""), "voiceDuration"},
      {replace(gewe_voice_body, "2000", "2000.0"), "voiceDuration"},
      {replace(gewe_voice_body, "\"demo-gewe-app\"", "\"other-app\""), "appId"},
      {replace(gewe_voice_body, "\"34757816141@chatroom\"", "\"\""), "toWxid"},
      {replace(gewe_voice_body, "\"voiceDuration\"", "\"extra\":1,\"voiceDuration\""), "unknown member 'extra'"},
      {R"({"appId":"demo-gewe-app","toWxid":"w","voiceUrl":"https://x/a.silk"})", "missing member 'voiceDuration'"},
  };
  for (const auto& [body, part] : cases) {
    auto d = sim.handle(gewe("/message/postVoice", body));
    EXPECT_EQ(d.reply.status, 200u);
    EXPECT_THAT(d.reply.body, StartsWith(R"({"ret":500,"msg":)")) << body;
    EXPECT_THAT(d.reply.body, HasSubstr(part)) << body;
    EXPECT_THAT(d.reply.body, HasSubstr(R"("data":null})"));
  }
  // postVideo wants whole seconds, postText no voice members.
  EXPECT_THAT(sim.handle(gewe("/message/postVideo",
                              R"({"appId":"demo-gewe-app","toWxid":"w","videoUrl":"v","thumbUrl":"t","videoDuration":1.5})"))
                  .reply.body,
              HasSubstr("videoDuration"));
  EXPECT_THAT(sim.handle(gewe("/message/postText", R"({"appId":"demo-gewe-app","toWxid":"w","content":"x","voiceUrl":"a"})"))
                  .reply.body,
              HasSubstr("unknown member 'voiceUrl'"));
}

TEST(gewe, answers_404_for_an_unknown_endpoint) {
  auto sim = make_sim();
  EXPECT_EQ(sim.handle(gewe("/message/postVoices", gewe_voice_body)).reply.status, 404u);
}

// ---------------------------------------------------------------------------------------------
// im

TEST(im, accepts_the_seed_message_and_answers_like_seed_003) {
  auto sim = make_sim();
  auto d = sim.handle(post("/api/im/sendMsg", im_body));
  EXPECT_EQ(d.reply.status, 200u);
  simdjson::dom::parser p;
  auto doc = p.parse(d.reply.body);
  ASSERT_EQ(doc.error(), simdjson::SUCCESS) << d.reply.body;
  EXPECT_EQ(bool(doc["success"]), true);
  auto data = doc["data"];
  EXPECT_EQ(std::string_view(data["content"]), "ffffffffff");
  EXPECT_EQ(std::string_view(data["torole"]), "SALER");
  EXPECT_EQ(std::string_view(data["fromrole"]), "MEMBER");
  EXPECT_EQ(std::string_view(data["create_at"]), "2024-01-04T08:39:23.456Z");
  EXPECT_EQ(int64_t(data["sendtime"]), fixed_ms);
  EXPECT_EQ(int64_t(data["readtime"]), -1);
  EXPECT_EQ(int64_t(data["status"]), 0);
  std::string_view id = data["_id"];
  EXPECT_EQ(id.size(), 24u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string_view::npos);
  EXPECT_THAT(d.reply.body, StartsWith(R"({"success":true,"data":{"__v":0,"fromarea":"192.","content":)"));
}

TEST(im, gives_each_message_its_own_id_and_the_opposite_role) {
  auto sim = make_sim();
  simdjson::dom::parser p;
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    auto body = sim.handle(post("/api/im/sendMsg", replace(im_body, "\"MEMBER\"", "\"SALER\""))).reply.body;
    auto doc = p.parse(body);
    ids.insert(std::string(std::string_view(doc["data"]["_id"])));
    EXPECT_EQ(std::string_view(doc["data"]["torole"]), "MEMBER");
  }
  EXPECT_EQ(ids.size(), 50u);
}

TEST(im, rejects_bad_requests_with_success_false) {
  auto sim = make_sim();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {replace(im_body, "\"TEXT\"", "\"VIDEO\""), "'type'"},
      {replace(im_body, "\"PC\"", "\"APP\""), "'channel'"},
      {replace(im_body, "\"MEMBER\"", "\"ADMIN\""), "'fromrole'"},
      {replace(im_body, "\"JH\"", "\"XX\""), "appid"},
      {replace(im_body, ",\"t_avatar\":\"to.jpg\"", ""), "missing member 't_avatar'"},
      {replace(im_body, "\"ffffffffff\"", "\"\""), "'content'"},
      {replace(im_body, "\"200\"", "200"), "'from'"},
      {replace(im_body, "\"channel\"", "\"x\":\"\",\"channel\""), "unknown member 'x'"},
  };
  for (const auto& [body, part] : cases) {
    auto d = sim.handle(post("/api/im/sendMsg", body));
    EXPECT_EQ(d.reply.status, 200u);
    EXPECT_THAT(d.reply.body, StartsWith(R"({"success":false,"message":)")) << body;
    EXPECT_THAT(d.reply.body, HasSubstr(part)) << body;
  }
}

// ---------------------------------------------------------------------------------------------
// gps

TEST(gps, accepts_the_documented_json_request) {
  auto sim = make_sim();
  auto d = sim.handle(post("/api/Files/NewVoiceUpload", gps_body()));
  EXPECT_EQ(d.reply.status, 200u);
  EXPECT_EQ(d.reply.body, R"({"Message":"成功","State":0})");
  EXPECT_EQ(sim.handle(post("/api/Files/NewVoiceUpload", gps_body(), "text/json")).reply.body,
            R"({"Message":"成功","State":0})");
}

TEST(gps, answers_the_documented_states) {
  auto sim = make_sim();
  auto state_of = [&](const std::string& body) { return sim.handle(post("/api/Files/NewVoiceUpload", body)).reply.body; };
  EXPECT_EQ(state_of(gps_body("")), R"({"Message":"IMEI为空","State":1100})");
  EXPECT_EQ(state_of(gps_body("missing-1")), R"({"Message":"设备不存在","State":1000})");
  EXPECT_EQ(state_of(gps_body("1", "")), R"({"Message":"语音数据为空或时长超长","State":8000})");
  EXPECT_EQ(state_of(gps_body("1", "not base64!")), R"({"Message":"语音数据为空或时长超长","State":8000})");
  EXPECT_EQ(state_of(gps_body("1", "aGVsbG8=")), R"({"Message":"语音数据为空或时长超长","State":8000})");  // not AMR
  EXPECT_EQ(state_of(gps_body("1", amr_base64, 61)), R"({"Message":"语音数据为空或时长超长","State":8000})");
}

TEST(gps, rejects_other_problems_with_http_400) {
  auto sim = make_sim();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {gps_body("1", amr_base64, 2, "bad-token"), "Token"},
      {replace(gps_body(), "\"demo-gps-app\"", "\"x\""), "AppId"},
      {replace(gps_body(), "\"UserId\":6", "\"UserId\":\"6\""), "UserId"},
      {replace(gps_body(), "\"ChatType\":1", "\"ChatType\":3"), "ChatType"},
      {replace(gps_body(), "2025-12-12T05:27:24.378+00:00", "yesterday"), "VoiceTime"},
      {replace(gps_body(), ",\"Language\":\"zh-CN\"", ""), "Language"},
      {replace(gps_body(), "\"Long\":2", "\"Long\":0"), "Long"},
      {replace(gps_body(), "\"Long\":2", "\"Long\":2,\"Extra\":1"), "Extra"},
  };
  for (const auto& [body, part] : cases) {
    auto d = sim.handle(post("/api/Files/NewVoiceUpload", body));
    EXPECT_EQ(d.reply.status, 400u) << body;
    EXPECT_THAT(d.reply.body, HasSubstr(R"("State":400)")) << body;
    EXPECT_THAT(d.reply.body, HasSubstr(part)) << body;
  }
  EXPECT_EQ(sim.handle(post("/api/Files/NewVoiceUpload", gps_body(), "text/plain")).reply.status, 415u);
}

TEST(gps, accepts_the_documented_xml_form_and_answers_in_xml) {
  auto sim = make_sim();
  std::string xml = R"(<?xml version="1.0" encoding="utf-8"?>
<VoiceUploadModel xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ParModel">
  <AppId>demo-gps-app</AppId>
  <Language>zh-CN</Language>
  <Token>demo-gps-token</Token>
  <ChatType>2</ChatType>
  <Command>)" + amr_base64 + R"(</Command>
  <FileType>8</FileType>
  <IdentityID>sample &amp; 5</IdentityID>
  <Long>2</Long>
  <SerialNumber>861234567890123</SerialNumber>
  <UserId>6</UserId>
  <VoiceTime>2025-12-12T05:27:24.3789371+08:00</VoiceTime>
</VoiceUploadModel>)";
  auto d = sim.handle(post("/api/Files/NewVoiceUpload", xml, "application/xml"));
  EXPECT_EQ(d.reply.status, 200u);
  EXPECT_THAT(d.reply.content_type, StartsWith("application/xml"));
  EXPECT_THAT(d.reply.body, HasSubstr("<State>0</State>"));

  auto bad = sim.handle(post("/api/Files/NewVoiceUpload", replace(xml, "<UserId>6</UserId>", "<UserId>six</UserId>"), "text/xml"));
  EXPECT_EQ(bad.reply.status, 400u);
  EXPECT_THAT(bad.reply.body, HasSubstr("UserId"));
  auto empty = sim.handle(post("/api/Files/NewVoiceUpload", replace(xml, "<SerialNumber>861234567890123</SerialNumber>", "<SerialNumber/>"), "text/xml"));
  EXPECT_THAT(empty.reply.body, HasSubstr("<State>1100</State>"));
  auto wrong_ns = sim.handle(post("/api/Files/NewVoiceUpload", replace(xml, "ParModel", "Other"), "text/xml"));
  EXPECT_EQ(wrong_ns.reply.status, 400u);
  // DataContractSerializer skips members out of the sample's order: so does the simulator.
  auto swapped = replace(replace(xml, "<AppId>demo-gps-app</AppId>", "<X/>"), "<Language>zh-CN</Language>",
                         "<Language>zh-CN</Language>\n  <AppId>demo-gps-app</AppId>");
  swapped = replace(swapped, "<X/>\n  ", "");
  auto out_of_order = sim.handle(post("/api/Files/NewVoiceUpload", swapped, "application/xml"));
  EXPECT_EQ(out_of_order.reply.status, 400u);
  EXPECT_THAT(out_of_order.reply.body, HasSubstr("'AppId' is out of order"));
}

// ---------------------------------------------------------------------------------------------
// routing

TEST(routing, answers_405_to_other_methods_on_provider_paths_and_404_elsewhere) {
  auto sim = make_sim();
  auto d = sim.handle(get("/message/postVoice"));
  EXPECT_EQ(d.reply.status, 405u);
  EXPECT_EQ(sim.handle(get("/nowhere")).reply.status, 404u);
  EXPECT_EQ(sim.handle(post("/sender/v2/other", "{}")).reply.status, 404u);
  // The 405 is recorded as a rejected provider request; the 404 outside provider paths is not.
  auto lines = lines_of(sim.handle(get("/_sim/requests")).reply.body);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr(R"("method":"GET")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("accepted":false)"));
}

// ---------------------------------------------------------------------------------------------
// recording

TEST(recording, lists_requests_in_arrival_order_with_raw_bodies) {
  auto sim = make_sim();
  sim.handle(gewe("/message/postVoice", gewe_voice_body));
  sim.handle(post(sender_target, "{\"bad\":\"\xff\"}"));
  sim.handle(post("/api/im/sendMsg", im_body));
  auto reply = sim.handle(get("/_sim/requests"));
  EXPECT_THAT(reply.reply.content_type, StartsWith("application/x-ndjson"));
  auto lines = lines_of(reply.reply.body);
  ASSERT_EQ(lines.size(), 3u);
  simdjson::dom::parser p;
  std::vector<std::string> providers;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto doc = p.parse(lines[i]);
    ASSERT_EQ(doc.error(), simdjson::SUCCESS) << lines[i];
    EXPECT_EQ(int64_t(doc["seq"]), static_cast<int64_t>(i + 1));
    providers.emplace_back(std::string_view(doc["provider"]));
  }
  EXPECT_EQ(providers, (std::vector<std::string>{"gewe", "sender", "im"}));
  auto first = p.parse(lines[0]);
  EXPECT_EQ(std::string_view(first["path"]), "/message/postVoice");
  EXPECT_EQ(std::string_view(first["headers"]["x-gewe-token"]), "demo-gewe-token");
  EXPECT_EQ(std::string_view(first["body"]), gewe_voice_body);
  EXPECT_EQ(bool(first["accepted"]), true);
  EXPECT_EQ(std::string_view(first["fault"]), "none");
  auto second = p.parse(lines[1]);
  EXPECT_EQ(bool(second["accepted"]), false);
  EXPECT_THAT(std::string(std::string_view(second["query"])), StartsWith("apiVersion=01&client="));
  EXPECT_THAT(std::string(std::string_view(second["error"])), HasSubstr("UTF-8"));
  EXPECT_EQ(std::string_view(second["body"]), "{\"bad\":\"\xEF\xBF\xBD\"}");  // invalid bytes as U+FFFD

  // Filters, then clearing.
  EXPECT_EQ(lines_of(sim.handle(get("/_sim/requests?provider=im")).reply.body), (std::vector<std::string>{lines[2]}));
  EXPECT_EQ(lines_of(sim.handle(get("/_sim/requests?since=1&limit=1")).reply.body), (std::vector<std::string>{lines[1]}));
  EXPECT_THAT(sim.handle(get("/_sim/stats")).reply.body,
              HasSubstr(R"("sender":{"requests":1,"accepted":0,"rejected":1,"faulted":0,"faults":{}})"));
  http_request del = get("/_sim/requests");
  del.method = "DELETE";
  EXPECT_EQ(sim.handle(del).reply.body, R"({"cleared":3})");
  EXPECT_EQ(sim.handle(get("/_sim/requests")).reply.body, "");
  EXPECT_THAT(sim.handle(get("/_sim/stats")).reply.body, StartsWith(R"({"total":0,"recorded":0,"dropped":0,)"));
}

TEST(recording, keeps_only_the_newest_max_recorded) {
  auto cfg = test_config();
  cfg.max_recorded = 2;
  auto sim = make_sim(cfg);
  for (int i = 0; i < 5; ++i) sim.handle(post("/api/im/sendMsg", im_body));
  auto lines = lines_of(sim.handle(get("/_sim/requests")).reply.body);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], StartsWith(R"({"seq":4,)"));
  EXPECT_THAT(sim.handle(get("/_sim/stats")).reply.body, StartsWith(R"({"total":5,"recorded":2,"dropped":3,)"));
}

// ---------------------------------------------------------------------------------------------
// faults

decision set_faults(simulator& sim, std::string rules) { return sim.handle(post("/_sim/faults", std::move(rules))); }

TEST(faults, answer_a_status_with_retry_after_for_the_first_n_matches_only) {
  auto sim = make_sim();
  EXPECT_EQ(set_faults(sim, R"([{"match":"postVoice","action":"status","status":503,"retry_after":2,"times":1}])").reply.body,
            R"({"rules":1})");
  auto faulted = sim.handle(gewe("/message/postVoice", gewe_voice_body));
  EXPECT_EQ(faulted.reply.status, 503u);
  ASSERT_EQ(faulted.reply.headers.size(), 1u);
  EXPECT_EQ(faulted.reply.headers[0], (std::pair<std::string, std::string>{"Retry-After", "2"}));
  EXPECT_EQ(sim.handle(gewe("/message/postVoice", gewe_voice_body)).reply.status, 200u);
  auto lines = lines_of(sim.handle(get("/_sim/requests")).reply.body);
  EXPECT_THAT(lines[0], HasSubstr(R"("accepted":false,"valid":true,"fault":"status","status":503)"));
  EXPECT_THAT(lines[1], HasSubstr(R"("accepted":true,"valid":true,"fault":"none","status":200)"));
  EXPECT_THAT(sim.handle(get("/_sim/faults")).reply.body, HasSubstr(R"("applied":1)"));
}

TEST(faults, match_the_body_and_leave_other_requests_alone) {
  auto sim = make_sim();
  set_faults(sim, R"([{"match":"\"to\":\"2\"","action":"reset"}])");
  EXPECT_EQ(sim.handle(post("/api/im/sendMsg", im_body)).how, transport::reset);
  EXPECT_EQ(sim.handle(gewe("/message/postVoice", gewe_voice_body)).how, transport::respond);
}

TEST(faults, map_each_action_to_a_transport) {
  auto sim = make_sim();
  set_faults(sim, R"([{"match":"postText","action":"timeout"},{"match":"postImage","action":"latency","latency_ms":50},
                      {"match":"postFile","action":"drop_after_headers"}])");
  EXPECT_EQ(sim.handle(gewe("/message/postText", "{}")).how, transport::hang);
  auto slow = sim.handle(gewe("/message/postImage", R"({"appId":"demo-gewe-app","toWxid":"w","imgUrl":"u"})"));
  EXPECT_EQ(slow.how, transport::respond);
  EXPECT_EQ(slow.delay, std::chrono::milliseconds(50));
  EXPECT_THAT(slow.reply.body, StartsWith(R"({"ret":200,)"));
  auto dropped = sim.handle(gewe("/message/postFile", R"({"appId":"demo-gewe-app","toWxid":"w","fileUrl":"u","fileName":"n"})"));
  EXPECT_EQ(dropped.how, transport::drop_after_headers);
  EXPECT_EQ(dropped.reply.status, 200u);
  // A dropped reply was processed (it may have taken effect); a timeout was not.
  auto lines = lines_of(sim.handle(get("/_sim/requests")).reply.body);
  EXPECT_THAT(lines[0], HasSubstr(R"("accepted":false,"valid":false,"fault":"timeout","status":null)"));
  EXPECT_THAT(lines[2], HasSubstr(R"("accepted":true,"valid":true,"fault":"drop_after_headers")"));
}

TEST(faults, misbehaving_provider_actions_keep_the_normal_reply_where_they_should) {
  auto sim = make_sim();
  auto one = [&](std::string rule) {
    EXPECT_EQ(set_faults(sim, "[" + rule + "]").reply.status, 200u) << rule;
    return sim.handle(gewe("/message/postVoice", gewe_voice_body));
  };
  // the normal success reply, sent in an unusual way
  auto drip = one(R"({"action":"slow_drip","interval_ms":50})");
  EXPECT_EQ(drip.how, transport::slow_drip);
  EXPECT_EQ(drip.interval, std::chrono::milliseconds(50));
  EXPECT_THAT(drip.reply.body, StartsWith(R"({"ret":200,)"));
  EXPECT_EQ(one(R"({"action":"slow_drip"})").interval, std::chrono::milliseconds(200));
  auto huge = one(R"({"action":"huge_body"})");
  EXPECT_EQ(huge.how, transport::huge_body);
  EXPECT_EQ(huge.bytes, 64ULL << 20);
  EXPECT_EQ(huge.reply.status, 200u);
  EXPECT_LT(huge.reply.body.size(), 1000u);  // padded while streaming, never held whole
  EXPECT_EQ(one(R"({"action":"huge_body","bytes":5000})").bytes, 5000u);
  for (auto [action, how] : {std::pair{"chunked", transport::chunked},
                             std::pair{"close_after_reply", transport::close_after_reply},
                             std::pair{"http10", transport::http10}}) {
    auto d = one(std::string(R"({"action":")") + action + "\"}");
    EXPECT_EQ(d.how, how) << action;
    EXPECT_EQ(d.reply.status, 200u) << action;
    EXPECT_EQ(d.reply.content_type, "application/json; charset=utf-8") << action;
    EXPECT_THAT(d.reply.body, StartsWith(R"({"ret":200,)")) << action;
  }
  auto wrong = one(R"({"action":"wrong_content_type"})");
  EXPECT_EQ(wrong.how, transport::respond);
  EXPECT_EQ(wrong.reply.content_type, "text/plain; charset=utf-8");
  EXPECT_THAT(wrong.reply.body, StartsWith(R"({"ret":200,)"));
  // replies that are not the provider's
  auto html = one(R"({"action":"non_json"})");
  EXPECT_EQ(html.how, transport::respond);
  EXPECT_EQ(html.reply.status, 200u);
  EXPECT_EQ(html.reply.content_type, "text/html; charset=utf-8");
  EXPECT_THAT(html.reply.body, StartsWith("<html>"));
  // a request with a Host header is redirected to the same URL by default
  set_faults(sim, R"([{"action":"redirect"}])");
  auto with_host = gewe("/message/postVoice", gewe_voice_body);
  with_host.headers.emplace_back("host", "127.0.0.1:8900");
  auto moved = sim.handle(with_host);
  EXPECT_EQ(moved.how, transport::respond);
  EXPECT_EQ(moved.reply.status, 302u);
  ASSERT_EQ(moved.reply.headers.size(), 1u);
  EXPECT_EQ(moved.reply.headers[0],
            (std::pair<std::string, std::string>{"Location", "http://127.0.0.1:8900/message/postVoice"}));
  auto elsewhere = one(R"({"action":"redirect","status":307,"location":"https://other.example/v2/postVoice"})");
  EXPECT_EQ(elsewhere.reply.status, 307u);
  EXPECT_EQ(elsewhere.reply.headers[0].second, "https://other.example/v2/postVoice");
  EXPECT_EQ(one(R"({"action":"redirect"})").reply.headers[0].second, "/message/postVoice");  // no Host: the path

  // the record says what was answered and whether the provider processed it
  auto lines = lines_of(sim.handle(get("/_sim/requests")).reply.body);
  ASSERT_EQ(lines.size(), 12u);
  EXPECT_THAT(lines[0], HasSubstr(R"("accepted":true,"valid":true,"fault":"slow_drip","status":200)"));
  EXPECT_THAT(lines[2], HasSubstr(R"("accepted":true,"valid":true,"fault":"huge_body","status":200)"));
  EXPECT_THAT(lines[8], HasSubstr(R"("accepted":false,"valid":true,"fault":"non_json","status":200)"));
  EXPECT_THAT(lines[9], HasSubstr(R"("accepted":false,"valid":true,"fault":"redirect","status":302)"));
}

TEST(faults, no_message_id_answers_success_without_the_providers_id) {
  auto sim = make_sim();
  set_faults(sim, R"([{"action":"no_message_id"}])");
  // when
  const auto gewe_reply = sim.handle(gewe("/message/postVoice", gewe_voice_body)).reply;
  const auto im_reply = sim.handle(post("/api/im/sendMsg", im_body)).reply;
  const auto sender_reply = sim.handle(post(sender_target, sender_voice_body)).reply;
  // then: the documented success, with every member but the id
  EXPECT_EQ(gewe_reply.status, 200u);
  EXPECT_THAT(gewe_reply.body, StartsWith(R"({"ret":200,"msg":"操作成功","data":{"toWxid":"34757816141@chatroom",)"));
  EXPECT_THAT(gewe_reply.body, HasSubstr(R"("msgId":)"));
  EXPECT_THAT(gewe_reply.body, Not(HasSubstr("newMsgId")));
  EXPECT_THAT(im_reply.body, StartsWith(R"({"success":true,"data":{"__v":0,)"));
  EXPECT_THAT(im_reply.body, HasSubstr(R"("appid":"JH")"));
  EXPECT_THAT(im_reply.body, Not(HasSubstr("_id")));
  EXPECT_THAT(sender_reply.body, StartsWith(R"({"code":200,"message":"成功","data":{},)"));
  // and the provider took each one
  auto lines = lines_of(sim.handle(get("/_sim/requests")).reply.body);
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& line : lines) EXPECT_THAT(line, HasSubstr(R"("accepted":true,"valid":true,"fault":"no_message_id","status":200)"));
  // without the fault, the ids are back
  set_faults(sim, "[]");
  EXPECT_THAT(sim.handle(gewe("/message/postVoice", gewe_voice_body)).reply.body, HasSubstr(R"("newMsgId":)"));
  EXPECT_THAT(sim.handle(post("/api/im/sendMsg", im_body)).reply.body, HasSubstr(R"("_id":")"));
}

TEST(faults, new_members_have_defaults_and_are_listed_with_the_rules) {
  auto sim = make_sim();
  set_faults(sim, R"([{"match":"a","action":"slow_drip"},{"match":"b","action":"huge_body","bytes":1048576},
                      {"match":"c","action":"redirect","location":"/elsewhere"},{"match":"d","action":"redirect","status":308}])");
  auto listed = sim.handle(get("/_sim/faults")).reply.body;
  EXPECT_THAT(listed, HasSubstr(R"("action":"slow_drip","latency_ms":0,"rate":1,"interval_ms":200,)"));
  EXPECT_THAT(listed, HasSubstr(R"("action":"huge_body","latency_ms":0,"rate":1,"bytes":1048576,)"));
  EXPECT_THAT(listed, HasSubstr(R"("action":"redirect","status":302,"latency_ms":0,"rate":1,"location":"/elsewhere",)"));
  EXPECT_THAT(listed, HasSubstr(R"("action":"redirect","status":308,)"));
}

TEST(faults, bad_members_of_the_new_actions_are_rejected_naming_them) {
  auto sim = make_sim();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([{"action":"redirect","status":503}])", "'status' must be 3xx for action redirect"},
      {R"([{"action":"slow_drip","interval_ms":0}])", "'interval_ms' must be an integer in 1..60000"},
      {R"([{"action":"slow_drip","interval_ms":"fast"}])", "'interval_ms' must be an integer"},
      {R"([{"action":"huge_body","bytes":0}])", "'bytes' must be an integer in 1..2^40"},
      {R"([{"action":"huge_body","bytes":1.5}])", "'bytes' must be an integer"},
      {R"([{"action":"redirect","location":""}])", "'location' must be a non-empty URL"},
      {R"([{"action":"redirect","location":"http://a b/"}])", "'location' must be a non-empty URL"},
      {R"([{"action":"redirect","location":"/x\r\nSet-Cookie: a=b"}])", "'location' must be a non-empty URL"},
      {R"([{"action":"redirect","location":7}])", "'location' must be a non-empty URL"},
      {R"([{"action":"teapot"}])", "'action' must be one of status, latency, reset, timeout, business_error, "
                                   "drop_after_headers, slow_drip, huge_body, non_json, wrong_content_type, chunked, "
                                   "close_after_reply, http10, redirect"},
  };
  for (const auto& [rules, message] : cases) {
    auto d = set_faults(sim, rules);
    EXPECT_EQ(d.reply.status, 400u) << rules;
    EXPECT_THAT(d.reply.body, HasSubstr("rule 0: " + message)) << rules;
  }
  EXPECT_EQ(sim.handle(get("/_sim/faults")).reply.body, "[]");
}

TEST(faults, business_errors_use_each_providers_error_body) {
  auto sim = make_sim();
  set_faults(sim, R"([{"match":"","action":"business_error"}])");
  EXPECT_THAT(sim.handle(gewe("/message/postVoice", gewe_voice_body)).reply.body, StartsWith(R"({"ret":500,)"));
  EXPECT_THAT(sim.handle(post(sender_target, sender_voice_body)).reply.body, StartsWith(R"({"code":500,)"));
  EXPECT_THAT(sim.handle(post("/api/im/sendMsg", im_body)).reply.body, StartsWith(R"({"success":false,)"));
  EXPECT_EQ(sim.handle(post("/api/Files/NewVoiceUpload", gps_body())).reply.body,
            R"({"Message":"语音数据为空或时长超长","State":8000})");
  set_faults(sim, R"([{"action":"business_error","code":1000}])");
  EXPECT_EQ(sim.handle(post("/api/Files/NewVoiceUpload", gps_body())).reply.body, R"({"Message":"设备不存在","State":1000})");
  EXPECT_THAT(sim.handle(get("/_sim/stats")).reply.body, HasSubstr(R"("faulted":2,"faults":{"business_error":2})"));
}

TEST(faults, rate_applies_to_about_that_fraction_reproducibly) {
  auto count = [] {
    auto sim = make_sim();
    set_faults(sim, R"([{"match":"","action":"status","status":429,"rate":0.25}])");
    int n = 0;
    for (int i = 0; i < 400; ++i) n += sim.handle(post("/api/im/sendMsg", im_body)).reply.status == 429;
    return n;
  };
  int n = count();
  EXPECT_GT(n, 60);
  EXPECT_LT(n, 140);
  EXPECT_EQ(n, count());  // same seed, same choices
}

TEST(faults, fault_rate_gives_a_mix_of_retryable_faults) {
  auto cfg = test_config();
  cfg.fault_rate = 0.5;
  auto sim = make_sim(cfg);
  std::map<std::string, int> seen;
  for (int i = 0; i < 400; ++i) {
    auto d = sim.handle(post("/api/im/sendMsg", im_body));
    std::string kind = d.how == transport::reset  ? "reset"
                       : d.how == transport::hang ? "timeout"
                                                  : std::to_string(d.reply.status);
    ++seen[kind];
  }
  EXPECT_GT(seen["200"], 140);
  EXPECT_GT(seen["503"], 20);
  EXPECT_GT(seen["429"], 20);
  EXPECT_GT(seen["reset"], 20);
  EXPECT_GT(seen["timeout"], 20);
  // Control requests are never faulted.
  EXPECT_EQ(sim.handle(get("/_sim/stats")).reply.status, 200u);
}

TEST(faults, bad_rules_are_rejected_and_delete_clears) {
  auto sim = make_sim();
  for (const char* bad : {R"({})", R"([{"action":"explode"}])", R"([{"match":"x"}])", R"([{"action":"status","status":99}])",
                          R"([{"action":"reset","rate":2}])", R"([{"action":"reset","whatever":1}])", "nope"}) {
    auto d = set_faults(sim, bad);
    EXPECT_EQ(d.reply.status, 400u) << bad;
    EXPECT_THAT(d.reply.body, StartsWith(R"({"error":)")) << bad;
  }
  set_faults(sim, R"([{"action":"reset"}])");
  http_request del = get("/_sim/faults");
  del.method = "DELETE";
  EXPECT_EQ(sim.handle(del).reply.body, R"({"rules":0})");
  EXPECT_EQ(sim.handle(post("/api/im/sendMsg", im_body)).how, transport::respond);
}

// ---------------------------------------------------------------------------------------------
// helpers and options

TEST(json_text, escapes_and_replaces_invalid_utf8) {
  EXPECT_EQ(json_string("a\"b\\\n\x01"), R"("a\"b\\\n\u0001")");
  EXPECT_EQ(json_string("成功"), "\"成功\"");
  EXPECT_EQ(json_string("\xff"), "\"\xEF\xBF\xBD\"");
}

TEST(json_text, decodes_strict_base64_and_iso8601) {
  EXPECT_EQ(decode_base64("IyFBTVIK"), std::optional<std::string>("#!AMR\n"));
  EXPECT_EQ(decode_base64("YQ=="), std::optional<std::string>("a"));
  EXPECT_FALSE(decode_base64("YQ="));
  EXPECT_FALSE(decode_base64("Y Q=="));
  EXPECT_TRUE(is_iso8601_datetime("2025-12-12T05:27:24.3789371+08:00"));
  EXPECT_TRUE(is_iso8601_datetime("2025-12-12T05:27:24Z"));
  EXPECT_FALSE(is_iso8601_datetime("2025-13-12T05:27:24Z"));
  EXPECT_FALSE(is_iso8601_datetime("2025-12-12 05:27:24"));
}

TEST(options, parse_defaults_and_flags) {
  auto o = parse_command_line({});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->listen_host, "127.0.0.1");
  EXPECT_EQ(o->listen_port, 8900);
  EXPECT_EQ(o->sim.credentials.im_appid, "JH");
  o = parse_command_line({"--listen", "127.0.0.1:0", "--gewe-token=t", "--fault-rate", "0.2", "--threads", "2"});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->listen_port, 0);
  EXPECT_EQ(o->sim.credentials.gewe_token, "t");
  EXPECT_DOUBLE_EQ(o->sim.fault_rate, 0.2);
  EXPECT_EQ(o->threads, 2u);
  EXPECT_FALSE(parse_command_line({"--help"}));
  EXPECT_TRUE(o->sim.credentials.sender_sign_secret.empty());
  o = parse_command_line({"--sender-sign-secret", "s", "--sender-sign-algorithm=hmac_sha256_sorted"});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->sim.credentials.sender_sign_secret, "s");
  EXPECT_EQ(o->sim.credentials.sender_sign_algorithm, "hmac_sha256_sorted");
  o = parse_command_line({"--sender-sign-secret", "s"});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->sim.credentials.sender_sign_algorithm, "md5_sorted");
}

TEST(options, reject_unknown_flags_and_bad_values_with_a_clear_message) {
  try {
    parse_command_line({"--bogus", "1"});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown flag '--bogus'"));
  }
  EXPECT_THROW(parse_command_line({"--fault-rate", "1.5"}), std::invalid_argument);
  EXPECT_THROW(parse_command_line({"--listen", "nohost"}), std::invalid_argument);
  EXPECT_THROW(parse_command_line({"--threads"}), std::invalid_argument);
  EXPECT_THROW(parse_command_line({"--sender-sign-secret", "s", "--sender-sign-algorithm", "sha1"}),
               std::invalid_argument);
  try {
    parse_command_line({"--sender-sign-algorithm", "md5_sorted"});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("needs --sender-sign-secret"));
  }
}

}  // namespace
}  // namespace sendq::simulator
