#include "sendq/core/request_decoder.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

using namespace sendq::core;

namespace {

constexpr std::string_view gewe_voice = R"({
  "id": "9f1c2d3e4b5a69788796a5b4c3d2e1f0", "provider": "gewe", "type": "voice",
  "from": "u000193f6f02e01764a0f869be49a2be21e01", "to": "34757816141@chatroom",
  "body": {"url": "https://cdn.example/voice/1.silk", "format": "silk", "duration_ms": 2000},
  "ext": {"chatType": "WX"}, "deadline": 1795000000000, "max_attempts": 8, "created_at": 1794999000000
})";

std::optional<failure> decode(std::string_view json, send_request& r) {
  request_decoder d;
  return d.decode(json, r);
}

}  // namespace

TEST(request_decoder, says_whether_the_request_had_attempt_or_not_before_which_a_park_adds) {
  request_decoder d;  // one decoder, reused: the flag must not carry over
  send_request r;
  const std::string head = R"({"id":"a","provider":"gewe","type":"text","to":"x","body":{"text":"t"})";
  for (const auto& [tail, expected] : std::vector<std::pair<std::string, bool>>{
           {"}", false}, {R"(,"attempt":2})", true}, {R"(,"created_at":5})", false},
           {R"(,"not_before":7})", true}, {R"(,"att\u0065mpt":1})", true}, {"}", false}}) {
    ASSERT_FALSE(d.decode(head + tail, r)) << tail;
    EXPECT_EQ(r.retry_members_read, expected) << tail;
  }
}

TEST(request_decoder, decodes_every_member_of_the_contract_example) {
  // given
  send_request r;
  // when
  auto err = decode(gewe_voice, r);
  // then
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(r.id, "9f1c2d3e4b5a69788796a5b4c3d2e1f0");
  EXPECT_EQ(r.provider, "gewe");
  EXPECT_EQ(r.account, "default");
  EXPECT_EQ(r.type, message_type::voice);
  EXPECT_EQ(r.from, "u000193f6f02e01764a0f869be49a2be21e01");
  EXPECT_EQ(r.to, "34757816141@chatroom");
  EXPECT_EQ(r.key, "gewe:34757816141@chatroom");
  EXPECT_EQ(r.body.url, "https://cdn.example/voice/1.silk");
  EXPECT_EQ(r.body.format, "silk");
  EXPECT_EQ(r.body.duration_ms, 2000);
  EXPECT_EQ(r.ext_json, R"({"chatType": "WX"})");
  EXPECT_EQ(r.body_json, R"({"url": "https://cdn.example/voice/1.silk", "format": "silk", "duration_ms": 2000})");
  EXPECT_EQ(r.deadline_ms, 1795000000000);
  EXPECT_EQ(r.max_attempts, 8);
  EXPECT_EQ(r.created_at_ms, 1794999000000);
}

TEST(request_decoder, reuses_itself_across_messages) {
  request_decoder d;
  send_request r;
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(d.decode(gewe_voice, r));
    EXPECT_EQ(r.body.duration_ms, 2000);
  }
  EXPECT_TRUE(d.decode("{", r));
  ASSERT_FALSE(d.decode(gewe_voice, r));
}

struct bad_case {
  const char* name;
  std::string json;
  error_kind kind;
  std::string message_prefix;
};

class request_decoder_rejects : public ::testing::TestWithParam<bad_case> {};

TEST_P(request_decoder_rejects, with_kind_and_field) {
  const auto& c = GetParam();
  send_request r;
  auto err = decode(c.json, r);
  ASSERT_TRUE(err) << c.name;
  EXPECT_EQ(to_string(err->kind), to_string(c.kind)) << err->message;
  EXPECT_EQ(err->message.substr(0, c.message_prefix.size()), c.message_prefix) << err->message;
}

const std::string base_head = R"({"id":"a1","provider":"im","type":"text","to":"u2",)";

INSTANTIATE_TEST_SUITE_P(
    bad_inputs, request_decoder_rejects,
    ::testing::Values(
        bad_case{"empty", "", error_kind::invalid_json, "message: empty"},
        bad_case{"not_json", "hello", error_kind::invalid_json, "message"},
        bad_case{"truncated", R"({"id":"a1","provider":"im")", error_kind::invalid_json, "message: not valid JSON"},
        bad_case{"array", "[1,2]", error_kind::invalid_json, "message: must be a JSON object"},
        bad_case{"garbage_after_object", R"({"id":"a1","provider":"im","type":"text","to":"u2","body":{"text":"x"}}xyz)",
                 error_kind::invalid_json, "message: trailing content after the JSON object"},
        bad_case{"object_after_object", R"({"id":"a1","provider":"im","type":"text","to":"u2","body":{"text":"x"}}{})",
                 error_kind::invalid_json, "message: trailing content after the JSON object"},
        bad_case{"invalid_utf8", "{\"id\":\"a\xff\"}", error_kind::invalid_json, "message: not valid JSON"},
        bad_case{"missing_to", R"({"id":"a1","provider":"im","type":"text","body":{"text":"hi"}})", error_kind::invalid_field, "to: required"},
        bad_case{"missing_id", R"({"provider":"im","type":"text","to":"u","body":{"text":"hi"}})", error_kind::invalid_field, "id: required"},
        bad_case{"several_missing", R"({"type":"text","provider":"im"})", error_kind::invalid_field, "id, to, body: required"},
        bad_case{"all_missing", R"({})", error_kind::invalid_field, "id, provider, type, to, body: required"},
        bad_case{"bad_id", R"({"id":"a b","provider":"im","type":"text","to":"u","body":{"text":"hi"}})", error_kind::invalid_field, "id: must be 1 to 128"},
        bad_case{"long_id", R"({"id":")" + std::string(129, 'x') + R"(","provider":"im","type":"text","to":"u","body":{"text":"hi"}})", error_kind::invalid_field, "id: must be 1 to 128"},
        bad_case{"id_not_string", R"({"id":5,"provider":"im","type":"text","to":"u","body":{"text":"hi"}})", error_kind::invalid_field, "id: must be a string"},
        bad_case{"unknown_type", R"({"id":"a","provider":"im","type":"fax","to":"u","body":{}})", error_kind::unsupported_type, "type: 'fax'"},
        bad_case{"unknown_member", base_head + R"("body":{"text":"x"},"colour":1})", error_kind::invalid_field, "colour: unknown field"},
        bad_case{"duplicate_key", base_head + R"("body":{"text":"x"},"to":"u3"})", error_kind::invalid_field, "to: appears more than once"},
        bad_case{"body_not_object", base_head + R"("body":"hi"})", error_kind::invalid_field, "body: must be a JSON object"},
        bad_case{"body_missing", R"({"id":"a1","provider":"im","type":"text","to":"u2"})", error_kind::invalid_field, "body: required"},
        bad_case{"text_missing", base_head + R"("body":{}})", error_kind::invalid_field, "body.text: required"},
        bad_case{"body_unknown_member", base_head + R"("body":{"txt":"x"}})", error_kind::invalid_field, "body.txt: unknown field"},
        bad_case{"deadline_leading_zero", base_head + R"("body":{"text":"x"},"deadline":01})", error_kind::invalid_json,
                 "deadline: 01 is not a JSON number"},
        bad_case{"deadline_float", base_head + R"("body":{"text":"x"},"deadline":1.5})", error_kind::invalid_field, "deadline: must be an integer"},
        bad_case{"deadline_huge", base_head + R"("body":{"text":"x"},"deadline":99999999999999999999999})", error_kind::invalid_field, "deadline: must be an integer"},
        bad_case{"voice_no_source", R"({"id":"a","provider":"gewe","type":"voice","to":"u","body":{"format":"silk","duration_ms":5}})", error_kind::invalid_field, "body.url: voice needs one of"},
        bad_case{"voice_bad_format", R"({"id":"a","provider":"gewe","type":"voice","to":"u","body":{"url":"u","format":"wav","duration_ms":5}})", error_kind::invalid_field, "body.format: 'wav'"},
        bad_case{"voice_no_duration", R"({"id":"a","provider":"gewe","type":"voice","to":"u","body":{"url":"u","format":"silk"}})", error_kind::invalid_field, "body.duration_ms: required"},
        bad_case{"voice_duration_string", R"({"id":"a","provider":"gewe","type":"voice","to":"u","body":{"url":"u","format":"silk","duration_ms":"5"}})", error_kind::invalid_field, "body.duration_ms: must be an integer"},
        bad_case{"negative_size", R"({"id":"a","provider":"gewe","type":"image","to":"u","body":{"url":"u","size":-1}})", error_kind::invalid_field, "body.size: must not be negative"},
        bad_case{"location_range", R"({"id":"a","provider":"sender","type":"location","to":"u","body":{"lat":91,"lng":0}})", error_kind::invalid_field, "body.lat: must be within"},
        bad_case{"ext_not_object", base_head + R"("body":{"text":"x"},"ext":[1]})", error_kind::invalid_field, "ext: must be a JSON object"},
        bad_case{"ext_bad_inside", base_head + R"("body":{"text":"x"},"ext":{"a":tru}})", error_kind::invalid_json, "ext: "},
        bad_case{"deep_nesting", base_head + R"("body":{"text":"x"},"ext":)" + std::string(2000, '[') + std::string(2000, ']') + "}", error_kind::invalid_field, "ext: must be a JSON object"},
        bad_case{"trailing", base_head + R"("body":{"text":"x"}} {})", error_kind::invalid_json, "message"},
        bad_case{"max_attempts_zero", base_head + R"("body":{"text":"x"},"max_attempts":0})", error_kind::invalid_field, "max_attempts: must be within 1..100"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(request_decoder, names_the_request_even_when_an_earlier_field_is_bad) {
  send_request r;
  auto err = decode(R"({"body":"oops","id":"abc","provider":"gewe","type":"text","to":"x"})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message, "body: must be a JSON object");
  EXPECT_EQ(r.id, "abc");
  EXPECT_EQ(r.provider, "gewe");
  EXPECT_EQ(r.to, "x");
}

TEST(request_decoder, refuses_messages_over_the_size_limit) {
  request_decoder d(64);
  send_request r;
  auto err = d.decode(std::string(65, ' '), r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->kind, error_kind::too_large);
}

TEST(request_decoder, keeps_passthrough_bodies_raw_for_link) {
  send_request r;
  auto err = decode(R"({"id":"l1","provider":"gewe","type":"link","to":"u","body":{"title":"t","desc":"d","linkUrl":"https://x","thumbUrl":"https://y","extra":{"n":[1,2]}}})", r);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(r.body_json, R"({"title":"t","desc":"d","linkUrl":"https://x","thumbUrl":"https://y","extra":{"n":[1,2]}})");
}

// Bad input matrix (issue #8): duplicate names, numbers out of range and deep nesting, each
// rejected with the kind and a message naming the member.
const std::string voice_head = R"({"id":"v1","provider":"gewe","type":"voice","to":"u","body":{"url":"https://a/b.silk","format":"silk",)";

INSTANTIATE_TEST_SUITE_P(
    bad_input_matrix, request_decoder_rejects,
    ::testing::Values(
        bad_case{"body_duplicate_member", base_head + R"("body":{"text":"a","text":"b"}})", error_kind::invalid_field, "body.text: appears more than once"},
        bad_case{"body_duplicate_escaped", base_head + R"("body":{"text":"a","te\u0078t":"b"}})", error_kind::invalid_field, "body.text: appears more than once"},
        bad_case{"ext_nested_duplicate", base_head + R"("body":{"text":"x"},"ext":{"a":{"b":1,"b":2}}})", error_kind::invalid_field, "ext.a.b: appears more than once"},
        bad_case{"ext_duplicate_in_array", base_head + R"("body":{"text":"x"},"ext":{"l":[{"k":1},{"k":1,"k":2}]}})", error_kind::invalid_field, "ext.l[1].k: appears more than once"},
        bad_case{"provider_fields_duplicate", base_head + R"("body":{"text":"x"},"provider_fields":{"channel":"PC","channel":"WX"}})", error_kind::invalid_field, "provider_fields.channel: appears more than once"},
        bad_case{"link_body_duplicate", R"({"id":"l","provider":"gewe","type":"link","to":"u","body":{"title":"a","title":"b"}})", error_kind::invalid_field, "body.title: appears more than once"},
        bad_case{"created_at_negative", base_head + R"("body":{"text":"x"},"created_at":-1})", error_kind::invalid_field, "created_at: must not be negative"},
        bad_case{"created_at_2_64", base_head + R"("body":{"text":"x"},"created_at":18446744073709551616})", error_kind::invalid_field, "created_at: must be an integer of at most 64 bits"},
        bad_case{"created_at_1e400", base_head + R"("body":{"text":"x"},"created_at":1e400})", error_kind::invalid_field, "created_at: must be an integer (epoch"},
        bad_case{"duration_1e400", voice_head + R"("duration_ms":1e400}})", error_kind::invalid_field, "body.duration_ms: must be an integer"},
        bad_case{"duration_2_64", voice_head + R"("duration_ms":18446744073709551616}})", error_kind::invalid_field, "body.duration_ms: must be an integer of at most 64 bits"},
        bad_case{"lat_1e400", R"({"id":"a","provider":"sender","type":"location","to":"u","body":{"lat":1e400,"lng":0}})", error_kind::invalid_field, "body.lat: must be a number"},
        bad_case{"link_body_1e400", R"({"id":"l","provider":"gewe","type":"link","to":"u","body":{"n":1e400}})", error_kind::invalid_json, "body: "},
        bad_case{"ext_1e400", base_head + R"("body":{"text":"x"},"ext":{"n":1e400}})", error_kind::invalid_json, "ext: "},
        bad_case{"ext_deep_10000", base_head + R"("body":{"text":"x"},"ext":{"a":)" + std::string(10000, '[') + std::string(10000, ']') + "}}", error_kind::invalid_json, "ext: JSON nested too deeply"},
        bad_case{"body_deep_10000", base_head + R"("body":{"text":)" + std::string(10000, '[') + std::string(10000, ']') + "}}", error_kind::invalid_json, "body: JSON nested too deeply"},
        bad_case{"unknown_member_deep_100000", base_head + R"("body":{"text":"x"},"zz":)" + std::string(100000, '[') + std::string(100000, ']') + "}", error_kind::invalid_field, "zz: unknown field"},
        bad_case{"top_level_deep_100000", std::string(100000, '[') + std::string(100000, ']'), error_kind::invalid_json, "message: must be a JSON object"},
        bad_case{"unclosed_deep_100000", base_head + R"("body":{"text":"x"},"ext":)" + std::string(100000, '{') , error_kind::invalid_json, "message: not valid JSON"},
        bad_case{"byte_order_mark", "\xEF\xBB\xBF" + base_head + R"("body":{"text":"x"}})", error_kind::invalid_json, "message: starts with a byte order mark"},
        bad_case{"null_value", "null", error_kind::invalid_json, "message: must be a JSON object"},
        bad_case{"whitespace_only", " \n\t ", error_kind::invalid_json, "message"}),
    [](const auto& info) { return std::string(info.param.name); });

// Nesting is not size: a deep object is JSON the decoder will not read (invalid_json), naming
// the limit; 1024 levels, counted from the member itself, are taken.
TEST(request_decoder, refuses_json_nested_deeper_than_1024_levels_as_invalid_json_naming_the_limit) {
  // given
  const auto nested = [](int levels) { return "{\"a\":" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}"; };
  const std::string link_head = R"({"id":"l","provider":"gewe","type":"link","to":"u",)";
  request_decoder d;
  send_request r;
  // when at the limit, then accepted
  auto err = d.decode(base_head + R"("body":{"text":"x"},"ext":)" + nested(1024) + "}", r);
  EXPECT_FALSE(err) << err->message;
  // when one level deeper, then refused wherever it is
  const std::vector<std::pair<std::string, std::string>> cases{
      {base_head + R"("body":{"text":"x"},"ext":)" + nested(1025) + "}", "ext"},
      {base_head + R"("body":{"text":"x"},"provider_fields":)" + nested(1025) + "}", "provider_fields"},
      {link_head + R"("body":)" + nested(1025) + "}", "body"},
      {base_head + R"("body":{"text":"x","n":)" + nested(2000) + "}}", "body"},
  };
  for (const auto& [json, field] : cases) {
    err = d.decode(json, r);
    ASSERT_TRUE(err) << field;
    EXPECT_EQ(to_string(err->kind), "invalid_json") << err->message;
    EXPECT_EQ(err->message, field + ": JSON nested too deeply: more than 1024 levels of objects and arrays (the limit)");
  }
}

// A string simdjson cannot unescape (a lone surrogate, an escape JSON does not have) is bad
// JSON in that one string: the error names the member holding it, wherever it is.
TEST(request_decoder, names_the_exact_field_of_a_string_that_cannot_be_unescaped) {
  // given
  const std::string lone = R"(not a valid JSON string: \ud800 is a lone UTF-16 surrogate (not a Unicode character))";
  const std::string gewe = R"({"id":"a","provider":"gewe","to":"u",)";
  const std::vector<std::pair<std::string, std::string>> cases{
      {base_head + R"("body":{"text":"\ud800"}})", "body.text: " + lone},
      {base_head + R"("body":{"text":"ok \ud800 ok"}})", "body.text: " + lone},
      {R"({"body":{"text":"\ud800"},"id":"a","provider":"im","type":"text","to":"u"})", "body.text: " + lone},
      {base_head + R"("body":{"text":"\ud800\u0041"}})", "body.text: " + lone},
      {base_head + R"("body":{"text":"\udc00"}})", R"(body.text: not a valid JSON string: \udc00 is a lone UTF-16 surrogate (not a Unicode character))"},
      {base_head + R"("body":{"text":"\q"}})", R"(body.text: not a valid JSON string: \q is not a JSON escape)"},
      {base_head + R"("body":{"text":"\u12g4"}})", R"(body.text: not a valid JSON string: \u must be followed by four hex digits)"},
      {gewe + R"("type":"voice","body":{"url":"https://a/\ud800","format":"silk","duration_ms":1}})", "body.url: " + lone},
      {gewe + R"("type":"link","body":{"title":"\ud800"}})", "body.title: " + lone},
      {gewe + R"("type":"link","body":{"title":"t","extra":{"n":[1,"\ud800"]}}})", "body.extra.n[1]: " + lone},
      {R"({"id":"a","provider":"gewe","type":"text","to":"\ud800","body":{"text":"x"}})", "to: " + lone},
      {R"({"id":"\ud800","provider":"gewe","type":"text","to":"u","body":{"text":"x"}})", "id: " + lone},
      {R"({"id":"a","provider":"gewe","type":"te\ud800xt","to":"u","body":{"text":"x"}})", "type: " + lone},
      {base_head + R"("body":{"text":"x"},"ext":{"a":{"b":"\ud800"}}})", "ext.a.b: " + lone},
      {base_head + R"("body":{"text":"x"},"ext":{"a":{"b\ud800":1}}})", R"(ext.a: a member name is not a valid JSON string: \ud800 is a lone UTF-16 surrogate (not a Unicode character))"},
      {base_head + R"("body":{"text":"x"},"provider_fields":{"channel":"\ud800"}})", "provider_fields.channel: " + lone},
      {R"({"id\ud800":"a","provider":"gewe","type":"text","to":"u","body":{"text":"x"}})",
       R"(message: a member name is not a valid JSON string: \ud800 is a lone UTF-16 surrogate (not a Unicode character))"},
      {R"({"id":"a","pro\qvider":"gewe","type":"text","to":"u","body":{"text":"x"}})",
       R"(message: a member name is not a valid JSON string: \q is not a JSON escape)"},
  };
  request_decoder d;
  send_request r;
  for (const auto& [json, message] : cases) {
    // when
    auto err = d.decode(json, r);
    // then
    ASSERT_TRUE(err) << json;
    EXPECT_EQ(to_string(err->kind), "invalid_json") << json;
    EXPECT_EQ(err->message, message) << json;
  }
  // and a surrogate pair is one character, taken
  auto err = d.decode(base_head + R"("body":{"text":"\ud83d\ude00"},"ext":{"e":"\uD83D\uDE00"}})", r);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(r.body.text, "\xF0\x9F\x98\x80");
}

TEST(request_decoder, keeps_the_first_id_of_a_duplicated_one) {
  send_request r;
  auto err = decode(R"({"id":"first","id":"second","provider":"gewe","type":"text","to":"x","body":{"text":"hi"}})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message, "id: appears more than once");
  EXPECT_EQ(r.id, "first");
}

TEST(request_decoder, accepts_the_same_name_in_different_objects) {
  send_request r;
  auto err = decode(base_head + R"("body":{"text":"x"},"ext":{"a":{"k":1},"b":{"k":1},"l":[{"k":1},{"k":2}]}})", r);
  ASSERT_FALSE(err) << err->message;
  err = decode(base_head + R"("body":{"text":"x"},"created_at":0})", r);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(r.created_at_ms, 0);
}

// Names and strings are scanned eight bytes at a time: an escape (or the closing quote) in any
// position of a word, in strings of 1 to 40 bytes, must be seen exactly where it is.
TEST(request_decoder, finds_escapes_and_closing_quotes_at_every_position_of_a_word) {
  request_decoder d;
  send_request r;
  for (std::size_t len = 1; len <= 40; ++len) {
    // No escape: read in place, all of it.
    const std::string plain(len, 'a');
    ASSERT_FALSE(d.decode(R"({"id":"p","provider":"im","type":"text","to":")" + plain + R"(","body":{"text":"x"}})", r));
    EXPECT_EQ(r.to, plain) << len;
    for (std::size_t at = 0; at < len; ++at) {
      // `to` with an escaped quote at `at`: unescaped, not cut short at the quote.
      std::string raw = plain;
      raw.replace(at, 1, "\\\"");
      std::string want = plain;
      want[at] = '"';
      auto err = d.decode(R"({"id":"p","provider":"im","type":"text","to":")" + raw + R"(","body":{"text":"x"}})", r);
      ASSERT_FALSE(err) << len << " " << at << ": " << err->message;
      EXPECT_EQ(r.to, want) << len << " " << at;
      // An ext member name of `len` bytes escaped at `at` ("\u006b" for "k"), then the same name
      // plain: the escaped one is unescaped, so the two are one name, given twice.
      std::string ext_name(len, 'k');
      ext_name.replace(at, 1, "\\u006b");
      err = d.decode(R"({"id":"p","provider":"im","type":"text","to":"u","body":{"text":"y"},"ext":{")" + ext_name +
                         R"(":1,")" + std::string(len, 'k') + R"(":2}})", r);
      ASSERT_TRUE(err) << len << " " << at;
      EXPECT_EQ(err->message, "ext." + std::string(len, 'k') + ": appears more than once") << len << " " << at;
    }
  }
  // Names escaped in place of plain ones are the same members, at the top and in the body.
  ASSERT_FALSE(d.decode(R"({"i\u0064":"e1","provider":"im","type":"text","t\u006f":"u","body":{"te\u0078t":"y"}})", r));
  EXPECT_EQ(r.id, "e1");
  EXPECT_EQ(r.to, "u");
  EXPECT_EQ(r.body.text, "y");
  // An escaped quote or backslash in a name is part of it: unknown fields, named unescaped.
  auto err = d.decode(R"({"id":"e","provider":"im","type":"text","to":"u","body":{"text":"x"},"a\"b":1})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message, "a\"b: unknown field");
  err = d.decode(R"({"id":"e","provider":"im","type":"text","to":"u","body":{"text":"x"},"ab\\":1})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message, "ab\\: unknown field");
  // A string that ends in an escaped backslash ends at the quote after it.
  ASSERT_FALSE(d.decode(R"({"id":"e","provider":"im","type":"text","to":"u\\","body":{"text":"x\\"}})", r));
  EXPECT_EQ(r.to, "u\\");
  EXPECT_EQ(r.body.text, "x\\");
}
