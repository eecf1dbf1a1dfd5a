#include "json_members.hpp"

#include <gtest/gtest.h>

using namespace sendq::providers::detail;

TEST(json_members, reads_top_level_and_nested_members) {
  // given
  json_members m;
  // when
  const auto err = read_members(
      R"({"ret":200,"msg":"操作\"成功\"","data":{"newMsgId":2321462558768366600,"type":null,"ok":true},"x":[1,{"a":2}]})",
      m, "data");
  // then
  ASSERT_FALSE(err) << *err;
  ASSERT_NE(find_member(m, "ret"), nullptr);
  EXPECT_EQ(find_member(m, "ret")->kind, json_kind::number);
  EXPECT_EQ(find_member(m, "ret")->text, "200");
  EXPECT_EQ(find_member(m, "msg")->text, "操作\"成功\"");
  EXPECT_EQ(find_member(m, "data")->kind, json_kind::object);
  EXPECT_EQ(find_member(m, "data.newMsgId")->text, "2321462558768366600");
  EXPECT_EQ(find_member(m, "data.type")->kind, json_kind::null);
  EXPECT_EQ(find_member(m, "data.ok")->text, "true");
  EXPECT_EQ(find_member(m, "x")->kind, json_kind::array);
  EXPECT_EQ(find_member(m, "x.a"), nullptr);
}

TEST(json_members, keeps_a_number_token_without_the_whitespace_after_it) {
  // given
  json_members m;
  // when
  const auto err = read_members("{ \"n\" : 18446744073709551615 \n , \"f\": -1.5e3 }", m);
  // then
  ASSERT_FALSE(err) << *err;
  EXPECT_EQ(find_member(m, "n")->text, "18446744073709551615");
  EXPECT_EQ(find_member(m, "f")->text, "-1.5e3");
}

TEST(json_members, keeps_an_integer_beyond_64_bits_as_a_number_that_is_not_an_integer) {
  // given valid JSON (RFC 8259 sets no range), which simdjson refuses as a number
  json_members m;
  // when
  const auto err = read_members(R"({"big":123456789012345678901234567890,"neg":-98765432109876543210,"ok":1})", m);
  // then
  ASSERT_FALSE(err) << *err;
  EXPECT_EQ(find_member(m, "big")->text, "123456789012345678901234567890");
  EXPECT_EQ(find_member(m, "big")->kind, json_kind::number);
  EXPECT_FALSE(find_member(m, "big")->integer);
  EXPECT_EQ(find_member(m, "neg")->text, "-98765432109876543210");
  EXPECT_FALSE(find_member(m, "neg")->integer);
  EXPECT_TRUE(find_member(m, "ok")->integer);
  // but a malformed long number is still refused
  EXPECT_TRUE(read_members(R"({"n":0123456789012345678901})", m));
  EXPECT_TRUE(read_members(R"({"n":12345678901234567890123x})", m));
}

TEST(json_members, does_not_descend_into_other_objects) {
  // given
  json_members m;
  // when
  const auto err = read_members(R"({"foot":{"a":1},"data":{"b":2}})", m, "data");
  // then
  ASSERT_FALSE(err);
  EXPECT_EQ(find_member(m, "foot.a"), nullptr);
  EXPECT_NE(find_member(m, "data.b"), nullptr);
}

TEST(json_members, refuses_anything_but_one_valid_object) {
  const std::string bad[] = {"",          "   ",        "[]",          "\"s\"",     "1",
                             "{",         "{\"a\":}",   "{\"a\":1}x",  "{}{}",      "{\"a\":tru}",
                             "{\"a\":01}", "{\"a\":1,}", "\xff\xfe{}", "{\"a\":\"\x01\"}"};
  for (const auto& json : bad) {
    // given
    json_members m;
    // when
    const auto err = read_members(json, m);
    // then
    EXPECT_TRUE(err) << "accepted: " << json;
  }
}

TEST(json_members, explains_what_is_missing_or_of_the_wrong_kind) {
  // given
  json_members m;
  ASSERT_FALSE(read_members(R"({"code":"200"})", m));
  // when / then
  EXPECT_EQ(expect_kind(m, "ret", json_kind::number), "missing \"ret\"");
  EXPECT_EQ(expect_kind(m, "code", json_kind::number), "\"code\" is a string, not a number");
  EXPECT_FALSE(expect_kind(m, "code", json_kind::number, json_kind::string));
}

// The per-reply callers keep one vector per thread: each call must leave exactly the members of
// its own text, whatever the vector held before (more members, fewer, nested, or an error).
TEST(json_members, a_reused_vector_holds_only_the_members_of_the_last_text) {
  // given
  json_members m;
  ASSERT_FALSE(read_members(R"({"code":200,"message":"成功","data":{"getMessageId":"1111111111111111111","page":null}})", m,
                            "data"));
  ASSERT_EQ(m.size(), 5u);
  // when: fewer members, another kind in the first place, no nested object
  auto err = read_members(R"({"code":"x","State":0})", m);
  // then
  ASSERT_FALSE(err) << *err;
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].name, "code");
  EXPECT_EQ(m[0].kind, json_kind::string);
  EXPECT_EQ(m[0].text, "x");
  EXPECT_EQ(m[1].name, "State");
  EXPECT_EQ(m[1].kind, json_kind::number);
  EXPECT_TRUE(m[1].integer);
  EXPECT_EQ(find_member(m, "data.getMessageId"), nullptr);
  EXPECT_EQ(find_member(m, "message"), nullptr);
  // when: an invalid text
  err = read_members(R"({"code":1,"data":{"a":tru}})", m, "data");
  // then
  ASSERT_TRUE(err);
  EXPECT_TRUE(m.empty());
  // when: a number where a string was, and more members again
  err = read_members(R"({"ret":1.5,"msg":"","data":{"newMsgId":7,"type":true}})", m, "data");
  // then
  ASSERT_FALSE(err) << *err;
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].name, "ret");
  EXPECT_EQ(m[0].text, "1.5");
  EXPECT_FALSE(m[0].integer);
  EXPECT_EQ(m[1].text, "");
  EXPECT_EQ(m[1].kind, json_kind::string);
  EXPECT_EQ(m[2].kind, json_kind::object);
  EXPECT_EQ(m[2].text, "");
  EXPECT_EQ(find_member(m, "data.newMsgId")->text, "7");
  EXPECT_EQ(find_member(m, "data.type")->text, "true");
}
