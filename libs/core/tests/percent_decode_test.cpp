#include "sendq/core/percent_decode.hpp"

#include <gtest/gtest.h>

namespace sendq::core {
namespace {

TEST(percent_decode, decodes_escapes_in_either_case_and_plus_as_a_space) {
  EXPECT_EQ(percent_decode("ab%2Bc%2fd%3D%3d"), "ab+c/d==");
  EXPECT_EQ(percent_decode("a+b"), "a b");
  EXPECT_EQ(percent_decode("%E4%BD%A0"), "\xE4\xBD\xA0");
  EXPECT_EQ(percent_decode(""), "");
}

TEST(percent_decode, refuses_an_escape_without_two_hex_digits) {
  EXPECT_FALSE(percent_decode("%"));
  EXPECT_FALSE(percent_decode("ab%3"));
  EXPECT_FALSE(percent_decode("%zz"));
  EXPECT_FALSE(percent_decode("%3g"));
}

}  // namespace
}  // namespace sendq::core
