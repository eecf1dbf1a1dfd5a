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

TEST(media_fetch, encodes_base64_with_padding) {
  EXPECT_EQ(delivery::base64_encode(""), "");
  EXPECT_EQ(delivery::base64_encode("f"), "Zg==");
  EXPECT_EQ(delivery::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(delivery::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(delivery::base64_encode("#!AMR\n"), "IyFBTVIK");
}
