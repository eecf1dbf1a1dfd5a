#include "sendq/delivery/media_fetch.hpp"

#include <gtest/gtest.h>

using namespace sendq;
using delivery::address_allowed;

TEST(media_fetch, refuses_private_loopback_and_link_local_addresses_unless_allowed) {
  for (auto ip : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                  "100.64.0.1", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(address_allowed(ip, false)) << ip;
    EXPECT_TRUE(address_allowed(ip, true)) << ip;
  }
  for (auto ip : {"93.184.216.34", "172.32.0.1", "8.8.8.8", "2001:db8::1", "::ffff:93.184.216.34"}) {
    EXPECT_TRUE(address_allowed(ip, false)) << ip;
  }
  for (auto ip : {"0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1", "not-an-ip"}) {
    EXPECT_FALSE(address_allowed(ip, true)) << ip;
  }
}

TEST(media_fetch, checks_scheme_and_allowed_hosts_before_any_io) {
  providers::account a;
  a.settings["fetch_allowed_hosts"] = "cdn.example, 127.0.0.1";
  auto p = delivery::fetch_policy_of(a);
  ASSERT_EQ(p.allowed_hosts.size(), 2u);
  http::endpoint ep;
  std::string target;
  EXPECT_FALSE(delivery::check_fetch_url("https://cdn.example/v/1.amr?sig=x", p, ep, target));
  EXPECT_EQ(ep.host, "cdn.example");
  EXPECT_TRUE(ep.tls);
  EXPECT_EQ(target, "/v/1.amr?sig=x");
  auto f = delivery::check_fetch_url("ftp://cdn.example/1.amr", p, ep, target);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message.rfind("body.url: only http and https", 0), 0u) << f->message;
  f = delivery::check_fetch_url("http://evil.example/1.amr", p, ep, target);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message, "body.url: host 'evil.example' is not in the account's fetch_allowed_hosts");
  providers::account none;
  f = delivery::check_fetch_url("https://cdn.example/1.amr", delivery::fetch_policy_of(none), ep, target);
  ASSERT_TRUE(f);
  EXPECT_NE(f->message.find("fetches no URLs"), std::string::npos);
}

TEST(media_fetch, a_url_with_cr_or_lf_is_refused_so_no_second_request_can_ride_on_it) {
  // given an account that fetches from cdn.example
  providers::account a;
  a.settings["fetch_allowed_hosts"] = "cdn.example";
  auto p = delivery::fetch_policy_of(a);
  http::endpoint ep;
  std::string target = "unchanged";
  // when the query carries a request of its own after CR LF (JSON's \r\n, decoded)
  auto f = delivery::check_fetch_url("https://cdn.example/a.amr?x\r\n\r\nGET /other HTTP/1.1\r\nHost: cdn.example\r\n\r\n",
                                     p, ep, target);
  // then it is refused, naming the field, the byte and where it is
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, core::error_kind::invalid_field);
  EXPECT_EQ(f->message, "body.url: control character 0x0D at byte 27 (a URL cannot contain one)");
  EXPECT_EQ(target, "unchanged");
  // and so is any other control byte, in the path too
  f = delivery::check_fetch_url(std::string("https://cdn.example/a\0b.amr", 28), p, ep, target);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message, "body.url: control character 0x00 at byte 21 (a URL cannot contain one)");
}

TEST(media_fetch, the_target_drops_the_fragment_and_percent_encodes_what_a_url_cannot_hold) {
  providers::account a;
  a.settings["fetch_allowed_hosts"] = "cdn.example";
  auto p = delivery::fetch_policy_of(a);
  http::endpoint ep;
  std::string target;
  // a file name in Chinese (UTF-8), a space and quotes in the query, a fragment
  ASSERT_FALSE(delivery::check_fetch_url("https://cdn.example/v/\xE8\xAF\xAD\xE9\x9F\xB3.amr?n=a b\"c<d>#part", p, ep, target));
  EXPECT_EQ(target, "/v/%E8%AF%AD%E9%9F%B3.amr?n=a%20b%22c%3Cd%3E");
  // a query right after the host keeps its query
  ASSERT_FALSE(delivery::check_fetch_url("https://cdn.example?id=7", p, ep, target));
  EXPECT_EQ(target, "/?id=7");
  ASSERT_FALSE(delivery::check_fetch_url("https://cdn.example#x", p, ep, target));
  EXPECT_EQ(target, "/");
  // what is already encoded stays as it is
  ASSERT_FALSE(delivery::check_fetch_url("https://cdn.example/a%20b.amr?s=%2F", p, ep, target));
  EXPECT_EQ(target, "/a%20b.amr?s=%2F");
}

TEST(media_fetch, encodes_base64_with_padding) {
  EXPECT_EQ(delivery::base64_encode(""), "");
  EXPECT_EQ(delivery::base64_encode("f"), "Zg==");
  EXPECT_EQ(delivery::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(delivery::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(delivery::base64_encode("#!AMR\n"), "IyFBTVIK");
}
