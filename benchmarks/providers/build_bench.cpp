// Each provider's build() on realistic requests (all its message types, round robin) and
// classify() of its documented success reply; and gps build() with a 100 KB AMR file, which
// validates the whole base64 text and decodes its head (the cost of base64 on the hot path).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "../support/realistic_requests.hpp"
#include "sendq/core/request_decoder.hpp"
#include "sendq/core/send_request.hpp"
#include "sendq/providers/provider.hpp"

namespace {

using sendq::core::send_request;
using sendq::providers::account;
using sendq::providers::http_call;
using sendq::providers::make_provider;
using sendq::providers::outcome_class;

account account_for(std::string_view provider) {
  account a;
  a.provider = std::string(provider);
  a.name = "default";
  a.base_url = "http://127.0.0.1:8900";
  if (provider == "sender") {
    a.settings = {{"api_version", "01"}, {"client", "70374ddd0f3641368d419b2d93127b8f"},
                  {"channel", "eba920d452d34adb8f2badb08b9e69bb"}, {"version", "2.0"},
                  {"sign", "cdcb39dc8005c3800219d2ba5fcc5182"}};
  } else if (provider == "gewe") {
    a.settings = {{"token", "gewe-token-1"}, {"app_id", "wx_app_1"}};
  } else if (provider == "im") {
    a.settings = {{"appid", "JH"}};
  } else {
    a.settings = {{"token", "gps-token-1"}, {"app_id", "gps-app-1"}};
  }
  return a;
}

/// The provider's success reply as its seed document shows it.
std::string_view success_reply(std::string_view provider) {
  if (provider == "sender") {
    return R"({"code":200,"message":"成功","data":{"getMessageId":"1111111111111"},"page":null,)"
           R"("foot":{"operationTime":"2015-11-18 22:19:32","servicePhone":"400800400","host":"h"}})";
  }
  if (provider == "gewe") {
    return R"({"ret":200,"msg":"操作成功","data":{"toWxid":"34757816141@chatroom","createTime":1704357563,)"
           R"("msgId":640355967,"newMsgId":2321462558768366600,"type":null}})";
  }
  if (provider == "im") {
    return R"({"success":true,"data":{"__v":0,"fromarea":"192.","content":"ffffffffff","to":"2","from":"200",)"
           R"("appid":"JH","_id":"5995336a8eee10fc252f6c54","readtime":-1,"sendtime":1502979050209,)"
           R"("create_at":"2017-08-17T14:10:50.209Z","channel":"PC","type":"TEXT","status":0}})";
  }
  return R"({"Message":"成功","State":0})";
}

std::vector<send_request> decoded_requests(std::string_view provider) {
  sendq::core::request_decoder decoder;
  std::vector<send_request> out;
  for (const auto& r : sendq::bench::realistic_requests()) {
    if (r.provider != provider) continue;
    send_request req;
    if (!decoder.decode(r.json, req)) out.push_back(std::move(req));
  }
  return out;
}

void build(benchmark::State& state, std::string_view provider) {
  const auto p = make_provider(provider);
  const auto a = account_for(provider);
  const auto requests = decoded_requests(provider);
  if (requests.empty()) return state.SkipWithError("no request decoded");
  for (const auto& r : requests) {
    auto call = p->build(r, a);
    if (const auto* f = std::get_if<sendq::core::failure>(&call)) {
      return state.SkipWithError(("build rejected a benchmark request: " + f->message).c_str());
    }
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto call = p->build(requests[i], a);
    benchmark::DoNotOptimize(call);
    if (++i == requests.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void classify_success(benchmark::State& state, std::string_view provider) {
  const auto p = make_provider(provider);
  const auto reply = success_reply(provider);
  if (p->classify(200, "application/json", reply).cls != outcome_class::delivered) {
    return state.SkipWithError("the success reply is not classified delivered");
  }
  for (auto _ : state) {
    auto o = p->classify(200, "application/json", reply);
    benchmark::DoNotOptimize(o);
  }
  state.SetItemsProcessed(state.iterations());
}

/// gps voice with a 100 KB AMR file inline (data_base64 of about 136 KB).
void gps_build_100kb_amr_base64(benchmark::State& state) {
  const auto p = make_provider("gps");
  const auto a = account_for("gps");
  auto requests = decoded_requests("gps");
  if (requests.empty()) return state.SkipWithError("no gps request decoded");
  send_request r = requests.front();
  std::string amr = "#!AMR\n";
  for (std::size_t k = 0; amr.size() < 100 * 1024; ++k) amr.push_back(static_cast<char>((k * 131) & 0xff));
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  for (std::size_t k = 0; k < amr.size(); k += 3) {
    const unsigned n = static_cast<unsigned char>(amr[k]) << 16 |
                       (k + 1 < amr.size() ? static_cast<unsigned char>(amr[k + 1]) << 8 : 0u) |
                       (k + 2 < amr.size() ? static_cast<unsigned char>(amr[k + 2]) : 0u);
    b64 += alphabet[n >> 18 & 63];
    b64 += alphabet[n >> 12 & 63];
    b64 += k + 1 < amr.size() ? alphabet[n >> 6 & 63] : '=';
    b64 += k + 2 < amr.size() ? alphabet[n & 63] : '=';
  }
  r.body.data_base64 = b64;
  r.body_json = R"({"data_base64":")" + b64 + R"(","format":"amr","duration_ms":60000})";
  const auto first = p->build(r, a);
  if (const auto* f = std::get_if<sendq::core::failure>(&first)) {
    // the body may exceed a gps size limit; report it rather than a meaningless figure
    return state.SkipWithError(("gps rejected the 100 KB AMR request: " + f->message).c_str());
  }
  for (auto _ : state) {
    auto call = p->build(r, a);
    benchmark::DoNotOptimize(call);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * b64.size()));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(build, sender, "sender");
BENCHMARK_CAPTURE(build, gewe, "gewe");
BENCHMARK_CAPTURE(build, im, "im");
BENCHMARK_CAPTURE(build, gps, "gps");
BENCHMARK_CAPTURE(classify_success, sender, "sender");
BENCHMARK_CAPTURE(classify_success, gewe, "gewe");
BENCHMARK_CAPTURE(classify_success, im, "im");
BENCHMARK_CAPTURE(classify_success, gps, "gps");
BENCHMARK(gps_build_100kb_amr_base64);

}  // namespace
