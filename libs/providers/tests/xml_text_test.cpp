#include "xml_text.hpp"

#include <gtest/gtest.h>

using namespace sendq::providers::detail;

TEST(xml_text, escapes_the_five_predefined_characters_and_carriage_return) {
  // given
  std::string out = "x";
  // when
  append_xml_escaped(out, "a&b<c>d\"e'f\rg\n\th 中");
  // then
  EXPECT_EQ(out, "xa&amp;b&lt;c&gt;d&quot;e&apos;f&#xD;g\n\th 中");
}

TEST(xml_text, refuses_control_characters_xml_cannot_carry) {
  EXPECT_TRUE(xml_representable("tab\tlf\ncr\r 中 \x7f"));
  EXPECT_FALSE(xml_representable(std::string("nul\0", 4)));
  EXPECT_FALSE(xml_representable("bell\a"));
  EXPECT_FALSE(xml_representable("esc\x1b"));
}

TEST(xml_text, reads_a_flat_document_with_its_root_attributes_and_text_children) {
  // given
  const std::string doc =
      "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- c -->\n<R a='1 &amp; 2' xmlns:i=\"ns-i\">\n"
      "  <A>x &lt;&#65;&#x42;&gt;</A>\n  <B i:nil=\"true\"/>\n  <C></C>\n</R>\n<!-- end -->\n";
  flat_xml x;
  // when
  const auto err = read_flat_xml(doc, x);
  // then
  ASSERT_FALSE(err) << *err;
  EXPECT_EQ(x.root, "R");
  ASSERT_NE(x.attribute("a"), nullptr);
  EXPECT_EQ(*x.attribute("a"), "1 & 2");
  EXPECT_EQ(*x.attribute("xmlns:i"), "ns-i");
  EXPECT_EQ(x.attribute("b"), nullptr);
  ASSERT_EQ(x.children.size(), 3u);
  EXPECT_EQ(x.children[0].name, "A");
  EXPECT_EQ(x.children[0].text, "x <AB>");
  EXPECT_FALSE(x.children[0].nil);
  EXPECT_EQ(x.children[1].name, "B");
  EXPECT_TRUE(x.children[1].nil);
  EXPECT_EQ(x.children[2].text, "");
}

TEST(xml_text, says_what_is_wrong_with_a_document_it_cannot_read) {
  for (const std::string doc :
       {"", "   ", "text", "<R>", "<R><A>1</A>", "<R><A>1</B></R>", "<R><A><B/></A></R>",
        "<R a=1/>", "<R a=\"1\"a=\"2\"/>", "<R a=\"1\" a=\"2\"/>", "<R/><R/>", "<R/>tail",
        "<R><A>&amp</A></R>", "<R><A>&#xD800;</A></R>", "<R><A>&#1114112;</A></R>",
        "<!DOCTYPE R><R/>", "<!-- open", "<?xml", "<R><![CDATA[x]]></R>", "</R>", "<1R/>"}) {
    // when
    flat_xml x;
    const auto err = read_flat_xml(doc, x);
    // then
    EXPECT_TRUE(err) << doc;
  }
}
