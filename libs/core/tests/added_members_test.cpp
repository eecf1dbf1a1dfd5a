#include "sendq/core/added_members.hpp"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

using namespace sendq::core;

TEST(added_members, members_added_before_the_closing_brace_come_out_again_byte_for_byte) {
  // Odd spacing and a trailing newline: the original must come back exactly as it was.
  const std::string original = "{ \"id\" : \"a1\",\n  \"body\": {\"text\": \"}\"} }\n";
  const auto added = add_members(original, R"("attempt":2,"not_before":1700000000000)");
  ASSERT_TRUE(added);
  EXPECT_EQ(added->value,
            "{ \"id\" : \"a1\",\n  \"body\": {\"text\": \"}\"} ,\"attempt\":2,\"not_before\":1700000000000}\n");
  const auto offset = original.rfind('}');
  EXPECT_EQ(added->header, std::to_string(offset) + ":39");

  std::string back = added->value;
  ASSERT_TRUE(remove_added_members(back, added->header));
  EXPECT_EQ(back, original);
}

TEST(added_members, only_an_object_with_a_member_takes_added_members) {
  EXPECT_FALSE(add_members("{}", R"("attempt":1)"));
  EXPECT_FALSE(add_members("{ \n}", R"("attempt":1)"));
  EXPECT_FALSE(add_members("[1]", R"("attempt":1)"));
  EXPECT_FALSE(add_members("", R"("attempt":1)"));
  EXPECT_FALSE(add_members("   ", R"("attempt":1)"));
  EXPECT_EQ(add_members(R"({"id":"x"})", R"("attempt":1)")->value, R"({"id":"x","attempt":1})");
}

TEST(added_members, a_header_that_does_not_describe_added_members_leaves_the_value_alone) {
  const std::string value = R"({"id":"x","attempt":1})";  // added: offset 9, length 12
  for (const std::string_view bad : {"", "9", "9:", ":12", "9:12x", "x:12", "9,12", "8:12", "10:12", "9:11", "9:13",
                                      "9:1", "21:1", "9:99", "99999999999999999999:1", "-1:12"}) {
    std::string v = value;
    EXPECT_FALSE(remove_added_members(v, bad)) << bad;
    EXPECT_EQ(v, value) << bad;
  }
  // `,"attempt":...}` inside the object, or other members: not what a park added
  for (const auto& [other, header] : std::vector<std::pair<std::string, std::string>>{
           {R"({"body":{"x":1,"attempt":2},"id":"x"})", "14:12"}, {R"({"id":"x","deadline":1})", "9:13"}}) {
    std::string v = other;
    EXPECT_FALSE(remove_added_members(v, header)) << other;
    EXPECT_EQ(v, other);
  }
  std::string v = value, removed;
  ASSERT_TRUE(remove_added_members(v, "9:12", &removed));
  EXPECT_EQ(removed, R"(,"attempt":1)");
  EXPECT_EQ(v, R"({"id":"x"})");
}
