#include "base64.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace sendq::providers::detail;

TEST(base64, decodes_padded_text) {
  EXPECT_EQ(base64_decode("IyFBTVIK"), std::string("#!AMR\n"));
  EXPECT_EQ(base64_decode("IyFBTVI="), std::string("#!AMR"));
  EXPECT_EQ(base64_decode("IyFBTQ=="), std::string("#!AM"));
  EXPECT_EQ(base64_decode("AAEC/+8="), std::string("\x00\x01\x02\xff\xef", 5));
}

TEST(base64, refuses_text_that_is_not_strict_base64) {
  const std::vector<std::string> bad_texts{"", "I", "IyFBTVI", "IyFBTVIK=", "IyF=TVIK", "IyFB====", "====",
                          "IyFB\nTVIK", " IyFBTVIK", "IyFBTVIK ", "IyFB-_IK", "IyFBTVI==",
                          "IyFBT===", std::string("IyF\0TVIK", 8)};
  for (const auto& bad : bad_texts) {
    EXPECT_TRUE(base64_validate(bad)) << "accepted: " << bad;
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

TEST(base64, says_why_text_is_not_base64) {
  EXPECT_EQ(base64_validate(""), "is empty");
  EXPECT_EQ(base64_validate("abcde"), "has length 5, not a multiple of 4");
  EXPECT_EQ(base64_validate("ab=d"), "has '=' padding at offset 2, before the end");
  EXPECT_EQ(base64_validate("ab*d"), "has a character outside the base64 alphabet at offset 2");
}

TEST(base64, decodes_only_the_prefix_it_is_asked_for) {
  // given: "#!AMR\n" followed by more audio
  const std::string text = "IyFBTVIKPEj1H5ZmeeHgAeeK8AAAAMAAAAAAAAA=";
  // when / then
  EXPECT_EQ(base64_decode_prefix(text, 5), std::string("#!AMR"));
  EXPECT_EQ(base64_decode_prefix("IyE=", 5), std::string("#!"));
  EXPECT_FALSE(base64_decode_prefix("IyE", 5));
}
