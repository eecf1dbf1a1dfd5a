#pragma once
// Accounts like the seeds' examples, for the provider tests and the fuzz targets (no gtest here).
#include <string_view>

#include "sendq/providers/provider.hpp"

namespace sendq::providers::testing {

inline account sender_account() {
  account a;
  a.provider = "sender";
  a.name = "default";
  a.base_url = "http://127.0.0.1:8087";
  a.settings = {{"api_version", "01"},
                {"client", "70374ddd0f3641368d419b2d93127b8f"},
                {"channel", "eba920d452d34adb8f2badb08b9e69bb"},
                {"version", "2.0"},
                {"sign", "cdcb39dc8005c3800219d2ba5fcc5182"}};
  return a;
}

inline account gewe_account() {
  account a;
  a.provider = "gewe";
  a.name = "default";
  a.base_url = "http://127.0.0.1:2531/v2/api";
  a.settings = {{"token", "gewe-token-1"}, {"app_id", "wx_app_1"}};
  return a;
}

inline account im_account() {
  account a;
  a.provider = "im";
  a.name = "default";
  a.base_url = "http://127.0.0.1:3000";
  a.settings = {{"appid", "JH"}};
  return a;
}

inline account gps_account() {
  account a;
  a.provider = "gps";
  a.name = "default";
  a.base_url = "http://127.0.0.1:8090";
  a.settings = {{"token", "gps-token-1"}, {"app_id", "gps-app-1"}};
  return a;
}

inline account account_for(std::string_view provider) {
  if (provider == "sender") return sender_account();
  if (provider == "gewe") return gewe_account();
  if (provider == "im") return im_account();
  return gps_account();
}

}  // namespace sendq::providers::testing
