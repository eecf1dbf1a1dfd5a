#include <gtest/gtest.h>

#include "sendq/providers/provider.hpp"
#include "test_support.hpp"

using namespace sendq;
using namespace sendq::providers;
using namespace sendq::providers::testing;
using core::error_kind;
using core::message_type;

namespace {

// base64 of "#!AMR\n" and the first bytes of an AMR-NB frame.
constexpr std::string_view amr_base64 = "IyFBTVIKPEj1H5ZmeeHgAeeK8AAAAMAAAAAAAAA=";

core::send_request voice_request() {
  auto r = request("gps", message_type::voice);
  r.id = "gps-voice-0001";
  r.from = "6";
  r.to = "865028000000308";
  r.created_at_ms = 1765488444378;
  r.body.data_base64 = std::string(amr_base64);
  r.body.format = "amr";
  r.body.duration_ms = 2400;
  r.body_json = "{}";
  return r;
}

const auto gps = make_provider("gps");

account xml_account() {
  auto a = gps_account();
  a.settings["format"] = "xml";
  return a;
}

// Seed 004's NormalResult XML sample with `state` and `message`.
std::string normal_result(std::string_view state, std::string_view message) {
  return R"(<NormalResult xmlns:i="http://www.w3.org/2001/XMLSchema-instance" )"
         R"(xmlns="http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ResModel">)"
         "\n  <State>" + std::string(state) + "</State>\n  <Message>" + std::string(message) +
         "</Message>\n</NormalResult>";
}

}  // namespace

TEST(gps_provider, builds_new_voice_upload_as_seed_004_prescribes) {
  // given
  const auto r = voice_request();
  // when
  const auto call = built(*gps, r, gps_account());
  // then
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path_and_query, "/api/Files/NewVoiceUpload");
  EXPECT_EQ(call.content_type, "application/json; charset=utf-8");
  EXPECT_TRUE(call.headers.empty());
  EXPECT_EQ(call.body,
            R"({"SerialNumber":"865028000000308","Long":3,"VoiceTime":"2025-12-11T21:27:24.378+00:00",)"
            R"("Command":"IyFBTVIKPEj1H5ZmeeHgAeeK8AAAAMAAAAAAAAA=","IdentityID":"gps-voice-0001",)"
            R"("UserId":6,"ChatType":1,"FileType":1,"Token":"gps-token-1","Language":"zh-CN",)"
            R"("AppId":"gps-app-1"})");
}

TEST(gps_provider, takes_chat_type_from_provider_fields_and_the_rest_from_the_account) {
  // given
  auto r = voice_request();
  r.provider_fields_json = R"({"chat_type":2})";
  auto a = gps_account();
  a.settings["chat_type"] = "1";
  a.settings["file_type"] = "3";
  a.settings["language"] = "en-US";
  // when
  const auto call = built(*gps, r, a);
  // then
  EXPECT_NE(call.body.find(R"("ChatType":2,"FileType":3,"Token":"gps-token-1","Language":"en-US")"),
            std::string::npos)
      << call.body;
}

TEST(gps_provider, takes_chat_type_from_the_account_when_the_request_has_none) {
  // given
  auto a = gps_account();
  a.settings["chat_type"] = "2";
  // when
  const auto call = built(*gps, voice_request(), a);
  // then
  EXPECT_NE(call.body.find(R"("ChatType":2)"), std::string::npos) << call.body;
}

TEST(gps_provider, writes_voice_time_in_utc_with_milliseconds) {
  // given
  auto r = voice_request();
  r.created_at_ms = 0;
  // when
  const auto call = built(*gps, r, gps_account());
  // then
  EXPECT_NE(call.body.find(R"("VoiceTime":"1970-01-01T00:00:00.000+00:00")"), std::string::npos)
      << call.body;
}

// --- checks before sending -------------------------------------------------------------

TEST(gps_provider, rejects_a_from_that_is_not_an_integer) {
  // given
  auto r = voice_request();
  r.from = "u0001";
  // when
  const auto f = rejected(*gps, r, gps_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "from"));
}

TEST(gps_provider, rejects_a_voice_that_is_not_amr) {
  // given
  auto r = voice_request();
  r.body.format = "silk";
  // when
  const auto f = rejected(*gps, r, gps_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.format"));
}

TEST(gps_provider, rejects_a_voice_without_inline_data) {
  // given
  auto r = voice_request();
  r.body.data_base64.reset();
  r.body.url = "https://cdn.example/v.amr";
  // when
  const auto f = rejected(*gps, r, gps_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.data_base64"));
}

TEST(gps_provider, rejects_data_that_is_not_valid_base64) {
  for (std::string bad : {"", "IyFBTVI", "IyFB TVIK", "IyF=TVIK", "IyFBTVIK===="}) {
    // given
    auto r = voice_request();
    r.body.data_base64 = bad;
    // when
    const auto f = rejected(*gps, r, gps_account());
    // then
    EXPECT_EQ(f.kind, error_kind::invalid_field) << bad;
    EXPECT_TRUE(names_field(f, "body.data_base64")) << bad;
  }
}

TEST(gps_provider, rejects_data_that_is_not_an_amr_file) {
  // given: base64 of "RIFF\0\0"
  auto r = voice_request();
  r.body.data_base64 = "UklGRgAA";
  // when
  const auto f = rejected(*gps, r, gps_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "body.data_base64"));
  EXPECT_NE(f.message.find("#!AMR"), std::string::npos) << f.message;
}

TEST(gps_provider, rejects_a_request_without_created_at) {
  // given
  auto r = voice_request();
  r.created_at_ms.reset();
  // when
  const auto f = rejected(*gps, r, gps_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "created_at"));
}

TEST(gps_provider, rejects_a_chat_type_other_than_1_or_2) {
  for (std::string fields : {R"({"chat_type":3})", R"({"chat_type":"2"})", R"({"chat_type":1.5})"}) {
    // given
    auto r = voice_request();
    r.provider_fields_json = fields;
    // when
    const auto f = rejected(*gps, r, gps_account());
    // then
    EXPECT_EQ(f.kind, error_kind::invalid_field) << fields;
    EXPECT_TRUE(names_field(f, "provider_fields.chat_type")) << fields;
  }
}

TEST(gps_provider, rejects_unknown_provider_fields) {
  // given
  auto r = voice_request();
  r.provider_fields_json = R"({"ChatType":2})";
  // when
  const auto f = rejected(*gps, r, gps_account());
  // then
  EXPECT_EQ(f.kind, error_kind::invalid_field);
  EXPECT_TRUE(names_field(f, "provider_fields.ChatType"));
}

TEST(gps_provider, sends_only_voice) {
  for (auto type : {message_type::text, message_type::image, message_type::video,
                    message_type::location, message_type::file, message_type::link,
                    message_type::template_, message_type::custom}) {
    // given
    auto r = voice_request();
    r.type = type;
    // when
    const auto f = rejected(*gps, r, gps_account());
    // then
    EXPECT_EQ(f.kind, error_kind::unsupported_type) << core::to_string(type);
    EXPECT_TRUE(names_field(f, "type"));
  }
}

// --- replies ----------------------------------------------------------------------------

TEST(gps_provider, is_delivered_on_state_0_with_no_id_of_its_own) {
  // given
  const std::string reply = R"({"Message":"成功","State":0})";
  // when
  const auto o = gps->classify(200, "application/json; charset=utf-8", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::delivered);
  EXPECT_EQ(o.provider_message_id, "");
  EXPECT_EQ(o.provider_code, "0");
}

TEST(gps_provider, fails_permanently_on_the_documented_states_with_their_meaning) {
  struct row {
    int state;
    std::string meaning;
  };
  for (const auto& [state, meaning] :
       {row{1000, "device does not exist"}, row{1100, "IMEI is empty"},
        row{8000, "voice data is empty or too long"}, row{2, ""}}) {
    // given
    const std::string reply =
        R"({"Message":"失败","State":)" + std::to_string(state) + "}";
    // when
    const auto o = gps->classify(200, "application/json", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::permanent) << state;
    EXPECT_EQ(o.kind, error_kind::provider_error);
    EXPECT_EQ(o.provider_code, std::to_string(state));
    EXPECT_NE(o.message.find(meaning), std::string::npos) << o.message;
    EXPECT_NE(o.message.find("失败"), std::string::npos) << o.message;
  }
}

TEST(gps_provider, a_2xx_reply_that_is_not_the_documented_json_or_xml_is_ambiguous) {
  const std::string replies[] = {
      // XML outside seed 004's namespace is not the documented NormalResult.
      "<NormalResult><State>0</State><Message>ok</Message></NormalResult>",
      R"({"Message":"ok"})",
      R"({"Message":"ok","State":"0"})",
      R"({"Message":"ok","State":0.0})",
      R"({"Message":"ok","State":0}{})",
      "null",
  };
  for (const auto& reply : replies) {
    // when
    const auto o = gps->classify(200, "application/xml", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::ambiguous) << reply;
    EXPECT_EQ(o.kind, error_kind::ambiguous) << reply;
    EXPECT_NE(o.message.find("gps reply unusable"), std::string::npos) << o.message;
  }
}

TEST(gps_provider, checks_its_account) {
  // given
  auto no_token = gps_account();
  no_token.settings.erase("token");
  auto bad_chat_type = gps_account();
  bad_chat_type.settings["chat_type"] = "3";
  auto bad_file_type = gps_account();
  bad_file_type.settings["file_type"] = "amr";
  // when / then
  ASSERT_TRUE(gps->check_account(no_token));
  EXPECT_NE(gps->check_account(no_token)->find("\"token\""), std::string::npos);
  ASSERT_TRUE(gps->check_account(bad_chat_type));
  EXPECT_NE(gps->check_account(bad_chat_type)->find("\"chat_type\""), std::string::npos);
  ASSERT_TRUE(gps->check_account(bad_file_type));
  EXPECT_NE(gps->check_account(bad_file_type)->find("\"file_type\""), std::string::npos);
  EXPECT_FALSE(gps->check_account(gps_account()));
}

TEST(gps_provider, checks_the_keys_of_its_fetch_policy) {
  // given values the fetch would misread: "1MiB" as 1 byte, -1 as no limit, "5s" as 5 ms, "yes" as false
  const std::vector<std::pair<std::string, std::string>> bad{
      {"fetch_max_bytes", "1MiB"},    {"fetch_max_bytes", "-1"},       {"fetch_max_bytes", "0"},
      {"fetch_max_bytes", "67108865"}, {"fetch_timeout_ms", "5s"},     {"fetch_timeout_ms", "abc"},
      {"fetch_timeout_ms", "0"},      {"fetch_timeout_ms", "600001"}, {"fetch_allow_private", "yes"},
      {"fetch_allow_private", "True"}};
  for (const auto& [key, value] : bad) {
    auto a = gps_account();
    a.settings[key] = value;
    // when
    const auto err = gps->check_account(a);
    // then the key and the value are named
    ASSERT_TRUE(err) << key << " = " << value;
    EXPECT_NE(err->find("\"" + key + "\" must be"), std::string::npos) << *err;
    EXPECT_NE(err->find("\"" + value + "\""), std::string::npos) << *err;
  }
  // and the bounds themselves, and both spellings of the flag, are taken
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"fetch_max_bytes", "1"}, {"fetch_max_bytes", "67108864"}, {"fetch_timeout_ms", "1"},
           {"fetch_timeout_ms", "600000"}, {"fetch_allow_private", "true"}, {"fetch_allow_private", "false"}}) {
    auto a = gps_account();
    a.settings[key] = value;
    EXPECT_FALSE(gps->check_account(a)) << key << " = " << value << ": " << *gps->check_account(a);
  }
}

// --- XML (account format = "xml") --------------------------------------------------------

TEST(gps_provider, builds_the_xml_form_of_seed_004_when_the_account_asks_for_it) {
  // given
  const auto r = voice_request();
  // when
  const auto call = built(*gps, r, xml_account());
  // then
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path_and_query, "/api/Files/NewVoiceUpload");
  EXPECT_EQ(call.content_type, "application/xml; charset=utf-8");
  EXPECT_TRUE(call.headers.empty());
  EXPECT_EQ(call.body,
            "<VoiceUploadModel xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" "
            "xmlns=\"http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ParModel\">\n"
            "  <AppId>gps-app-1</AppId>\n"
            "  <Language>zh-CN</Language>\n"
            "  <Token>gps-token-1</Token>\n"
            "  <ChatType>1</ChatType>\n"
            "  <Command>IyFBTVIKPEj1H5ZmeeHgAeeK8AAAAMAAAAAAAAA=</Command>\n"
            "  <FileType>1</FileType>\n"
            "  <IdentityID>gps-voice-0001</IdentityID>\n"
            "  <Long>3</Long>\n"
            "  <SerialNumber>865028000000308</SerialNumber>\n"
            "  <UserId>6</UserId>\n"
            "  <VoiceTime>2025-12-11T21:27:24.378+00:00</VoiceTime>\n"
            "</VoiceUploadModel>");
}

TEST(gps_provider, builds_json_when_the_account_says_json) {
  // given
  auto a = gps_account();
  a.settings["format"] = "json";
  // when
  const auto call = built(*gps, voice_request(), a);
  // then
  EXPECT_EQ(call.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(call.body.front(), '{');
}

TEST(gps_provider, escapes_the_five_xml_characters_and_carriage_return) {
  // given
  auto r = voice_request();
  r.id = "a&b<c>\"d'e";
  r.to = "86\r50";
  auto a = xml_account();
  a.settings["language"] = "zh<CN>";
  // when
  const auto call = built(*gps, r, a);
  // then
  EXPECT_NE(call.body.find("<IdentityID>a&amp;b&lt;c&gt;&quot;d&apos;e</IdentityID>"),
            std::string::npos)
      << call.body;
  EXPECT_NE(call.body.find("<SerialNumber>86&#xD;50</SerialNumber>"), std::string::npos)
      << call.body;
  EXPECT_NE(call.body.find("<Language>zh&lt;CN&gt;</Language>"), std::string::npos) << call.body;
}

TEST(gps_provider, rejects_request_text_that_xml_cannot_carry) {
  // given
  // given
  for (const std::string& to : {std::string("865028\x01", 7), std::string("865028\xEF\xBF\xBF"),
                               std::string("865028\xEF\xBF\xBE")}) {
    auto r = voice_request();
    r.to = to;
    // when
    const auto f = rejected(*gps, r, xml_account());
    // then
    EXPECT_EQ(f.kind, error_kind::invalid_field);
    EXPECT_TRUE(names_field(f, "to")) << f.message;
    // and JSON carries it
    built(*gps, r, gps_account());
  }
  // U+FFFD, next to them, is an XML character
  auto r = voice_request();
  r.to = "865028\xEF\xBF\xBD";
  EXPECT_NE(built(*gps, r, xml_account()).body.find("<SerialNumber>865028\xEF\xBF\xBD</SerialNumber>"),
            std::string::npos);
}

TEST(gps_provider, accepts_format_json_or_xml_and_refuses_others_naming_format) {
  // given
  auto json = gps_account();
  json.settings["format"] = "json";
  auto yaml = gps_account();
  yaml.settings["format"] = "yaml";
  auto upper = gps_account();
  upper.settings["format"] = "XML";
  // when / then
  EXPECT_FALSE(gps->check_account(xml_account()));
  EXPECT_FALSE(gps->check_account(json));
  for (const auto& a : {yaml, upper}) {
    const auto err = gps->check_account(a);
    ASSERT_TRUE(err);
    EXPECT_NE(err->find("\"format\""), std::string::npos) << *err;
    EXPECT_NE(err->find("json or xml"), std::string::npos) << *err;
  }
}

TEST(gps_provider, refuses_an_xml_account_whose_token_xml_cannot_carry_without_quoting_it) {
  // given
  auto a = xml_account();
  a.settings["token"] = std::string("tok\x02secret", 10);
  // when
  const auto err = gps->check_account(a);
  // then
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("\"token\""), std::string::npos) << *err;
  EXPECT_EQ(err->find("secret"), std::string::npos) << *err;
}

TEST(gps_provider, is_delivered_on_the_xml_normal_result_with_state_0) {
  // given: seed 004's XML sample, with an XML declaration and a byte order mark
  for (const std::string& reply :
       {normal_result("0", "成功"),
        "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n" + normal_result("0", "ok"),
        normal_result(" 0 ", "")}) {
    // when
    const auto o = gps->classify(200, "application/xml; charset=utf-8", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::delivered) << reply << "\n" << o.message;
    EXPECT_EQ(o.provider_message_id, "");
    EXPECT_EQ(o.provider_code, "0");
  }
}

TEST(gps_provider, fails_permanently_on_the_documented_xml_states_with_their_meaning) {
  struct row {
    int state;
    std::string meaning;
  };
  for (const auto& [state, meaning] :
       {row{1000, "device does not exist"}, row{1100, "IMEI is empty"},
        row{8000, "voice data is empty or too long"}, row{2, ""}}) {
    // given
    const auto reply = normal_result(std::to_string(state), "失败 &amp; &lt;x&gt; &#x4E2D;");
    // when
    const auto o = gps->classify(200, "application/xml", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::permanent) << state;
    EXPECT_EQ(o.kind, error_kind::provider_error);
    EXPECT_EQ(o.provider_code, std::to_string(state));
    EXPECT_NE(o.message.find(meaning), std::string::npos) << o.message;
    EXPECT_NE(o.message.find("失败 & <x> 中"), std::string::npos) << o.message;
  }
}

TEST(gps_provider, reads_the_xml_reply_in_either_member_order_with_a_nil_message) {
  // given
  const std::string reply =
      R"(<NormalResult xmlns:i="http://www.w3.org/2001/XMLSchema-instance" )"
      R"(xmlns="http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ResModel">)"
      R"(<Message i:nil="true"/><!-- note --><State>1000</State></NormalResult>)";
  // when
  const auto o = gps->classify(200, "text/xml", reply);
  // then
  EXPECT_EQ(o.cls, outcome_class::permanent);
  EXPECT_EQ(o.provider_code, "1000");
  EXPECT_EQ(o.message, "gps State 1000 (device does not exist)");
}

TEST(gps_provider, xml_that_is_not_the_documented_normal_result_is_ambiguous) {
  const std::string ns =
      R"( xmlns="http://schemas.datacontract.org/2004/07/NewGPS2012.AppApi.Models.ResModel")";
  const std::string replies[] = {
      "<",
      "<NormalResult" + ns + ">",
      "<NormalResult" + ns + "><State>0</State>",
      "<NormalResult" + ns + "><State>0</Message></NormalResult>",
      "<NormalResult" + ns + "><State>0</State></NormalResult><x/>",
      "<NormalResult" + ns + "><Message>ok</Message></NormalResult>",
      "<NormalResult" + ns + "><State>zero</State></NormalResult>",
      "<NormalResult" + ns + "><State>0x0</State></NormalResult>",
      "<NormalResult" + ns + "><State></State></NormalResult>",
      "<NormalResult" + ns + "><State>0</State><State>0</State></NormalResult>",
      "<NormalResult" + ns + "><State><b>0</b></State></NormalResult>",
      "<NormalResult" + ns + "><State><![CDATA[0]]></State></NormalResult>",
      "<NormalResult" + ns + ">0<State>0</State></NormalResult>",
      "<NormalResult" + ns + "><State>0</State><Message>&bogus;</Message></NormalResult>",
      "<NormalResult" + ns + "><State>0</State><Message>&#0;</Message></NormalResult>",
      "<NormalResult" + ns + "><State>0</State><Message>a & b</Message></NormalResult>",
      "<NormalResult" + ns + " xmlns=\"x\"><State>0</State></NormalResult>",
      "<!DOCTYPE x [<!ENTITY a \"0\">]><NormalResult" + ns + "><State>&a;</State></NormalResult>",
      R"(<NormalResult xmlns="http://schemas.datacontract.org/2004/07/Other"><State>0</State></NormalResult>)",
      "<VoiceUploadModel" + ns + "><State>0</State></VoiceUploadModel>",
      "<html><body>502 Bad Gateway</body></html>",
  };
  for (const auto& reply : replies) {
    // when
    const auto o = gps->classify(200, "application/xml", reply);
    // then
    EXPECT_EQ(o.cls, outcome_class::ambiguous) << reply;
    EXPECT_EQ(o.kind, error_kind::ambiguous) << reply;
    EXPECT_NE(o.message.find("gps reply unusable"), std::string::npos) << reply << "\n" << o.message;
  }
}

TEST(gps_provider, never_mistakes_a_cut_or_damaged_xml_reply_for_a_delivery) {
  // given: the success reply, cut at every length and with every byte replaced in turn
  const std::string reply = normal_result("0", "成功 &amp; ok");
  for (std::size_t n = 0; n < reply.size(); ++n) {
    // when
    const auto o = gps->classify(200, "application/xml", reply.substr(0, n));
    // then
    EXPECT_EQ(o.cls, outcome_class::ambiguous) << n;
    EXPECT_EQ(o.kind, error_kind::ambiguous) << n;
  }
  for (std::size_t i = 0; i < reply.size(); ++i) {
    for (const char c : {'\0', '<', '>', '&', '/', '"', 'x', '\xff'}) {
      std::string damaged = reply;
      damaged[i] = c;
      // when / then: never crashes, and any outcome is a valid classification
      const auto o = gps->classify(200, "application/xml", damaged);
      EXPECT_TRUE(o.cls == outcome_class::delivered || o.cls == outcome_class::permanent ||
                  o.cls == outcome_class::ambiguous);
    }
  }
}
