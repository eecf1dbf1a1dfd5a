#include "sendq/core/json_string_check.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace {

// quoted_token(content, end): `content` points just after an opening quote in `text`.
std::string_view token_of(std::string_view text) {
  return sendq::core::quoted_token(text.data() + 1, text.data() + text.size());
}

TEST(quoted_token, is_the_string_with_both_quotes_and_not_what_follows) {
  EXPECT_EQ(token_of(R"("name": 1})"), R"("name")");
}

TEST(quoted_token, steps_over_an_escaped_quote_and_an_escaped_backslash) {
  EXPECT_EQ(token_of(R"("a\"b\\": 1})"), R"("a\"b\\")");
}

TEST(quoted_token, without_a_closing_quote_ends_at_the_end) {
  EXPECT_EQ(token_of(R"("unterminated)"), R"("unterminated)");
}

TEST(quoted_token, a_trailing_backslash_does_not_step_past_the_end) {
  // The escape would take two bytes but only one is left: the token stops at the end, not past it.
  const std::string_view text = R"("abc\)";
  const std::string_view token = token_of(text);
  EXPECT_EQ(token, text);
  EXPECT_EQ(token.data() + token.size(), text.data() + text.size());
}

TEST(quoted_token, gives_member_name_error_the_name_only_not_the_bad_escape_after_it) {
  // The name's own escapes are valid; a token running past its closing quote would report the \q.
  EXPECT_EQ(sendq::core::member_name_error(token_of(R"("ok\n": "\q"})")),
            "a member name is not a valid JSON string: Problem while parsing a string");
  EXPECT_EQ(sendq::core::member_name_error(token_of(R"("bad\x": 1})")),
            "a member name is not a valid JSON string: \\x is not a JSON escape");
}

}  // namespace
