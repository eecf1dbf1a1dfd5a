#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "sendq/http/client.hpp"
#include "sendq/http/server.hpp"

namespace sendq::http {
namespace {

TEST(http_redirect, only_301_302_307_and_308_are_followable) {
  for (unsigned s : {301u, 302u, 307u, 308u}) EXPECT_TRUE(is_followable_redirect(s)) << s;
  for (unsigned s : {200u, 300u, 303u, 304u, 305u, 306u, 309u, 404u}) EXPECT_FALSE(is_followable_redirect(s)) << s;
}

TEST(http_redirect, same_origin_locations_give_the_new_target) {
  const auto ep = *endpoint::parse("http://api.example.com:8080/v1");
  const std::string here = "/v1/message/postText?a=1";
  auto target = [&](std::string_view location) { return same_origin_target(ep, here, location); };
  EXPECT_EQ(target("/v2/postText?x=1"), "/v2/postText?x=1");
  EXPECT_EQ(target("http://api.example.com:8080/v2/postText"), "/v2/postText");
  EXPECT_EQ(target("HTTP://API.Example.COM:8080/v2"), "/v2");
  EXPECT_EQ(target("http://api.example.com:8080"), "/");
  EXPECT_EQ(target("http://api.example.com:8080?q=1"), "/?q=1");
  EXPECT_EQ(target("//api.example.com:8080/v3"), "/v3");
  EXPECT_EQ(target("postImage"), "/v1/message/postImage");
  EXPECT_EQ(target("?b=2"), "/v1/message/postText?b=2");
  EXPECT_EQ(target(" /v2/x#frag "), "/v2/x");
  const auto tls = *endpoint::parse("https://api.example.com");
  EXPECT_EQ(same_origin_target(tls, "/", "https://api.example.com:443/x"), "/x");
}

TEST(http_redirect, other_origins_and_unusable_locations_are_not_followed) {
  const auto ep = *endpoint::parse("http://api.example.com:8080");
  for (std::string_view location : {"https://api.example.com:8080/x", "http://api.example.com/x",
                                    "http://api.example.com:8081/x", "http://evil.example.com:8080/x",
                                    "//evil.example.com:8080/x", "http://user@api.example.com:8080/x",
                                    "ftp://api.example.com:8080/x", "javascript:alert(1)", "http:/x", "", "  ",
                                    "/a b", "/x\r\nSet-Cookie: a"}) {
    EXPECT_FALSE(same_origin_target(ep, "/", location)) << location;
  }
}

TEST(http_endpoint, parses_plain_http_with_default_port) {
  // when
  auto ep = endpoint::parse("http://example.com");
  // then
  ASSERT_TRUE(ep);
  EXPECT_FALSE(ep->tls);
  EXPECT_EQ(ep->host, "example.com");
  EXPECT_EQ(ep->port, 80);
  EXPECT_EQ(ep->base_path, "");
  EXPECT_EQ(ep->authority(), "example.com");
}

TEST(http_endpoint, parses_https_with_port_and_base_path) {
  auto ep = endpoint::parse("HTTPS://api.example.com:8443/v1/send/");
  ASSERT_TRUE(ep);
  EXPECT_TRUE(ep->tls);
  EXPECT_EQ(ep->host, "api.example.com");
  EXPECT_EQ(ep->port, 8443);
  EXPECT_EQ(ep->base_path, "/v1/send");
  EXPECT_EQ(ep->authority(), "api.example.com:8443");
}

TEST(http_endpoint, https_default_port_is_443_and_root_path_is_empty) {
  auto ep = endpoint::parse("https://api.example.com/");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->port, 443);
  EXPECT_EQ(ep->base_path, "");
  EXPECT_EQ(ep->authority(), "api.example.com");
}

TEST(http_endpoint, parses_bracketed_ipv6) {
  auto ep = endpoint::parse("http://[::1]:8080/p");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->port, 8080);
  EXPECT_EQ(ep->authority(), "[::1]:8080");
}

TEST(http_endpoint, rejects_malformed_urls_with_a_message) {
  for (const char* url : {"ftp://example.com", "example.com", "http://", "http://:80", "http://host:0",
                          "http://host:99999", "http://host:abc", "http://host:", "http://ho st/",
                          "http://host/p?q=1", "http://host/#frag", "http://[::1", "https://user:secret@host/"}) {
    std::string error;
    EXPECT_FALSE(endpoint::parse(url, &error)) << url;
    EXPECT_FALSE(error.empty()) << url;
    EXPECT_EQ(error.find("secret"), std::string::npos) << "error must not echo the URL: " << error;
  }
}

TEST(http_endpoint, failure_kinds_have_names) {
  EXPECT_EQ(to_string(failure_kind::connect), "connect");
  EXPECT_EQ(to_string(failure_kind::timeout_after_write), "timeout_after_write");
  EXPECT_EQ(to_string(failure_kind::body_too_large), "body_too_large");
}

TEST(http_parse_host_port, splits_host_and_port) {
  EXPECT_EQ(parse_host_port("127.0.0.1:9464", "metrics.addr"), std::make_pair(std::string("127.0.0.1"), std::uint16_t{9464}));
  EXPECT_EQ(parse_host_port("localhost:0", "x"), std::make_pair(std::string("localhost"), std::uint16_t{0}));
  EXPECT_EQ(parse_host_port("[::1]:80", "x"), std::make_pair(std::string("::1"), std::uint16_t{80}));
  EXPECT_EQ(parse_host_port(":9464", "x"), std::make_pair(std::string("0.0.0.0"), std::uint16_t{9464}));
}

TEST(http_parse_host_port, rejects_malformed_addresses_naming_the_setting) {
  for (const char* addr : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:70000", "host:-1", "host:80x", "::1:80",
                           "[::1:80", "ho st:80"}) {
    try {
      parse_host_port(addr, "metrics.addr");
      ADD_FAILURE() << "accepted " << addr;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("metrics.addr"), std::string::npos) << e.what();
    }
  }
}

TEST(http_server_request, finds_headers_by_lower_case_name) {
  server_request req;
  req.headers = {{"content-type", "application/json"}, {"x-token", "abc"}};
  EXPECT_EQ(req.header("x-token"), "abc");
  EXPECT_EQ(req.header("missing"), "");
}

}  // namespace
}  // namespace sendq::http
