#include "sendq/core/result_encoder.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

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

namespace {

// The rules, one code point at a time: what append_json_string must produce, however it scans.
std::string reference_json_string(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') { out += "\\\""; ++i; continue; }
    if (c == '\\') { out += "\\\\"; ++i; continue; }
    if (c == '\n') { out += "\\n"; ++i; continue; }
    if (c == '\r') { out += "\\r"; ++i; continue; }
    if (c == '\t') { out += "\\t"; ++i; continue; }
    if (c == '\b') { out += "\\b"; ++i; continue; }
    if (c == '\f') { out += "\\f"; ++i; continue; }
    if (c < 0x20) { out += "\\u00"; out += hex[c >> 4]; out += hex[c & 0xF]; ++i; continue; }
    if (c < 0x80) { out += static_cast<char>(c); ++i; continue; }
    std::size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    unsigned cp = n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
    bool ok = n != 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3Fu);
    }
    ok = ok && !(n == 2 && cp < 0x80) && !(n == 3 && cp < 0x800) && !(n == 4 && cp < 0x10000) &&
         cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out + "\"";
}

// xorshift64: the same sequence on every run, so the generated tests are repeatable.
class repeatable_random {
 public:
  explicit repeatable_random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t operator()() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }

 private:
  std::uint64_t state_;
};

}  // namespace

// append_json_string skips eight bytes at a time and checks UTF-8 in one call: it must agree
// with the one-at-a-time rules wherever an escape, a multi-byte character or a bad byte falls
// relative to those words, and at every length.
TEST(json_writer, agrees_with_the_one_character_at_a_time_rules_on_generated_text) {
  const std::vector<std::string> pieces = {
      "a", "Z", " ", "~", "\x7f", "\"", "\\", "\n", "\x01", "\x1f", "\t",
      "\xe4\xbd\xa0", "\xc3\xa9", "\xf0\x9f\x98\x80",   // valid 3-, 2- and 4-byte characters
      "\x80", "\xff", "\xc0\xaf", "\xed\xa0\x80",       // continuation, invalid, overlong, surrogate
      "\xe4\xbd", "\xf4\x90\x80\x80"};                  // truncated, past U+10FFFF
  repeatable_random next(42);
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    const auto count = next() % 80;  // past the short-string path's 96 bytes too
    const bool clean = round % 3 == 0;  // a third of the strings: valid text only
    for (std::uint64_t k = 0; k < count; ++k) {
      const auto& piece = pieces[next() % (clean ? 14 : pieces.size())];
      s += piece;
    }
    std::string out = "prefix";
    append_json_string(out, s);
    ASSERT_EQ(out, "prefix" + reference_json_string(s)) << "input of " << s.size() << " bytes, round " << round;
  }
}

TEST(json_writer, writes_keys_plain_or_escaped_with_their_commas) {
  std::string out;
  json_writer w(out);
  w.begin_object().key("plain").value("x").key("needs \"escape\"").value("y").key(std::string(120, 'k')).value(1);
  w.key("").value("").end_object();
  EXPECT_EQ(out, "{\"plain\":\"x\",\"needs \\\"escape\\\"\":\"y\",\"" + std::string(120, 'k') + "\":1,\"\":\"\"}");
}

// encode_result writes results whose strings need no escape in one pass of its own, and falls
// back to encode_result_escaping otherwise: both must give the same bytes for every result, with
// each optional field present or absent, numbers at their extremes, and strings that are plain,
// need an escape, are not ASCII or are too long for the one pass.
TEST(result_encoder, writes_the_same_bytes_with_or_without_escaping_for_generated_results) {
  const std::vector<std::string> texts = {
      "", "x", "9f1c2d3e4b5a69788796a5b4c3d2e1f0", "34757816141@chatroom", "sendq.requests",
      "a b ~ !#$%&'()*+,-./:;<=>?@[]^_`{|}", "quote \" inside", "back\\slash", "line\nbreak", "\x01",
      "\xe4\xbd\xa0\xe5\xa5\xbd", "bad \xff byte", std::string(1500, 'k'), std::string(3700, 'm')};
  const std::vector<std::int64_t> numbers = {0, 1, -1, 420, 1794999000000, INT64_MAX, INT64_MIN};
  repeatable_random next(7);
  const auto text = [&] { return texts[next() % texts.size()]; };
  const auto number = [&] { return numbers[next() % numbers.size()]; };
  const auto maybe = [&] { return next() % 3 != 0; };
  int plain = 0;
  for (int round = 0; round < 5000; ++round) {
    delivery_result r;
    // Mostly plain strings, so that both paths are taken often.
    const auto field = [&] { return next() % 4 == 0 ? text() : texts[next() % 6]; };
    r.id = field();
    r.provider = field();
    r.account = field();
    r.type = field();
    r.to = field();
    r.status = static_cast<delivery_status>(next() % 4);
    r.attempts = static_cast<int>(next() % 1000) - 1;
    if (maybe()) r.provider_message_id = field();
    if (maybe()) r.http_status = static_cast<int>(next() % 600);
    if (maybe()) r.provider_code = field();
    if (next() % 2 == 0) r.error = failure{static_cast<error_kind>(next() % 16), field()};
    if (maybe()) r.created_at_ms = number();
    r.completed_at_ms = number();
    if (maybe()) r.latency_ms = number();
    r.source = {field(), static_cast<std::int32_t>(number()), number()};
    std::string fast = "prefix";
    std::string escaping = "prefix";
    encode_result(r, fast);
    encode_result_escaping(r, escaping);
    ASSERT_EQ(fast, escaping) << "round " << round;
    std::string one_pass = "prefix";
    if (encode_plain_result(r, one_pass)) {
      ++plain;
      ASSERT_EQ(one_pass, escaping) << "round " << round;
    } else {
      ASSERT_EQ(one_pass, "prefix") << "round " << round << ": wrote something and then refused";
    }
  }
  // Both ways were taken often.
  EXPECT_GT(plain, 1000);
  EXPECT_LT(plain, 4000);
}

// The one pass writes into a fixed buffer: at its limit (3,584 bytes of strings, the longest error
// kind, every number at its most negative) it must still agree, and one byte more falls back.
TEST(result_encoder, writes_a_result_at_the_one_pass_limit_and_falls_back_past_it) {
  delivery_result r;
  r.id = std::string(1000, 'i');
  r.provider = std::string(500, 'p');
  r.account = std::string(500, 'a');
  r.type = std::string(300, 't');
  r.to = std::string(300, 'o');
  r.provider_message_id = std::string(300, 'm');
  r.provider_code = std::string(284, 'c');
  r.error = failure{error_kind::retries_exhausted, std::string(200, 'e')};
  r.source = {std::string(200, 's'), INT32_MIN, INT64_MIN};
  r.status = delivery_status::delivered;
  r.attempts = INT32_MIN;
  r.http_status = INT32_MIN;
  r.created_at_ms = INT64_MIN;
  r.completed_at_ms = INT64_MIN;
  r.latency_ms = INT64_MIN;
  std::string escaping;
  encode_result_escaping(r, escaping);
  std::string one_pass;
  ASSERT_TRUE(encode_plain_result(r, one_pass));  // 3,584 bytes of strings
  EXPECT_EQ(one_pass, escaping);
  r.to += 'o';
  std::string refused;
  EXPECT_FALSE(encode_plain_result(r, refused));
  EXPECT_EQ(refused, "");
  std::string fast;
  encode_result(r, fast);
  escaping.clear();
  encode_result_escaping(r, escaping);
  EXPECT_EQ(fast, escaping);
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
