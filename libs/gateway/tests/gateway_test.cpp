#include "sendq/gateway/gateway.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "sendq/gateway/auth.hpp"
#include "sendq/log/logger.hpp"
#include "sendq/metrics/gateway_metrics.hpp"

namespace sendq::gateway {
namespace {

namespace net = boost::asio;

// Records what was produced; acknowledges at once with `ack_error`, or refuses with `queue_error`.
struct fake_sink final : record_sink {
  std::vector<std::pair<std::string, std::string>> produced;  // key, value
  std::string ack_error;
  std::string queue_error;
  bool hold_acks = false;  // keep the callbacks: the records stay in flight
  std::string hold_if_contains;  // keep only the callbacks of records holding this
  std::vector<ack_callback> held;
  std::string produce(std::string_view, std::string_view key, std::string_view value, ack_callback on_ack) override {
    if (!queue_error.empty()) return queue_error;
    produced.emplace_back(key, value);
    if (hold_acks || (!hold_if_contains.empty() && value.find(hold_if_contains) != std::string_view::npos)) {
      held.push_back(std::move(on_ack));
    } else {
      on_ack(ack_error);
    }
    return {};
  }
};

struct gateway_handler : ::testing::Test {
  log::logger log{log::level::error, true, stderr};
  net::io_context ioc;  // before `sink`: held acks own timers of this context
  fake_sink sink;
  gateway_options opts;

  http::server_response post(gateway& gw, std::string target, std::string body,
                             std::vector<std::pair<std::string, std::string>> headers = {}, std::string method = "POST") {
    ioc.restart();
    http::server_response out;
    http::server_request req{std::move(method), std::move(target), std::move(headers), std::move(body)};
    net::co_spawn(ioc, gw.handle(std::move(req)), [&](std::exception_ptr e, http::server_response r) {
      if (e) ADD_FAILURE() << "handler threw";
      out = std::move(r);
    });
    ioc.run();
    return out;
  }
  gateway make() {
    if (opts.ack_timeout == gateway_options{}.ack_timeout) opts.ack_timeout = std::chrono::milliseconds(10);
    return gateway(opts, sink, log, {[] { return std::string("0123456789abcdef0123456789abcdef"); },
                                     [] { return std::chrono::system_clock::time_point(std::chrono::seconds(1447856372)); }});
  }
};

constexpr const char* good = R"({"id":"a1","provider":"gewe","type":"text","to":"x","body":{"text":"hi"}})";

TEST_F(gateway_handler, single_request_is_produced_and_answered_with_its_id) {
  // given
  auto gw = make();
  // when
  auto r = post(gw, "/v1/messages", good);
  // then
  EXPECT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(r.body, "{\"id\":\"a1\"}\n");
  ASSERT_EQ(sink.produced.size(), 1u);
  EXPECT_EQ(sink.produced[0].first, "gewe:x");
  EXPECT_EQ(sink.produced[0].second, good);
  EXPECT_EQ(gw.in_flight(), 0u);
}

TEST_F(gateway_handler, batch_is_answered_with_every_id) {
  auto gw = make();
  auto r = post(gw, "/v1/messages", std::string("[") + good + "," +
                                        R"({"id":"a2","provider":"gewe","type":"text","to":"y","body":{"text":"hi"}}])");
  EXPECT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(r.body, "{\"ids\":[\"a1\",\"a2\"]}\n");
  // each element produced as its own bytes, keyed by its ordering key, in the batch's order
  using records = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(sink.produced,
            (records{{"gewe:x", good}, {"gewe:y", R"({"id":"a2","provider":"gewe","type":"text","to":"y","body":{"text":"hi"}})"}}));
}

TEST_F(gateway_handler, one_malformed_element_rejects_the_batch_naming_the_field_and_produces_nothing) {
  auto gw = make();
  auto r = post(gw, "/v1/messages", std::string("[") + good + "," +
                                        R"({"id":"a2","provider":"gewe","type":"text","body":{"text":"hi"}}])");
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("\"[1].to"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"index\":1"), std::string::npos) << r.body;
  EXPECT_TRUE(sink.produced.empty());
}

TEST_F(gateway_handler, a_malformed_element_is_answered_with_its_index) {
  auto gw = make();
  auto r = post(gw, "/v1/messages", std::string("[") + good + "," + good + R"(,{"id":}])");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, "{\"error\":{\"kind\":\"invalid_json\",\"message\":\"[2]: malformed JSON\",\"index\":2}}\n");
  EXPECT_TRUE(sink.produced.empty());
}

TEST_F(gateway_handler, trailing_content_is_refused_on_both_endpoints_and_nothing_is_produced) {
  auto gw = make();
  auto r = post(gw, "/v1/messages", std::string("[") + good + "] [1]");
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("body: trailing content after the JSON array"), std::string::npos) << r.body;
  auto legacy = post(gw, "/sender/v1/handleBasicMessage",
                     R"({"to":"t","from":"f","messageType":1,"messageInfo":{"text":"x"}}}}})");
  EXPECT_NE(legacy.body.find(R"("code":400,"message":"body: trailing content after the JSON object")"), std::string::npos)
      << legacy.body;
  EXPECT_TRUE(sink.produced.empty());
}

TEST_F(gateway_handler, provider_checks_are_left_to_the_worker_as_the_readme_says) {
  // given a provider no worker has, and a type gps does not send (decoder checks pass for both)
  auto gw = make();
  // when
  auto unknown = post(gw, "/v1/messages", R"({"id":"p1","provider":"nope","type":"text","to":"x","body":{"text":"hi"}})");
  auto unsupported = post(gw, "/v1/messages",
                          R"({"id":"p2","provider":"gps","type":"text","to":"x","body":{"text":"hi"}})");
  auto unknown_type = post(gw, "/v1/messages", R"({"id":"p3","provider":"gewe","type":"fax","to":"x","body":{}})");
  // then the first two are produced (the worker rejects them), the decoder's own check refuses the third
  EXPECT_EQ(unknown.status, 202u) << unknown.body;
  EXPECT_EQ(unsupported.status, 202u) << unsupported.body;
  EXPECT_EQ(unknown_type.status, 400u) << unknown_type.body;
  using records = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(sink.produced,
            (records{{"nope:x", R"({"id":"p1","provider":"nope","type":"text","to":"x","body":{"text":"hi"}})"},
                     {"gps:x", R"({"id":"p2","provider":"gps","type":"text","to":"x","body":{"text":"hi"}})"}}));
}

TEST_F(gateway_handler, api_keys_are_required_when_configured) {
  opts.api_keys = {"secret-1"};
  auto gw = make();
  EXPECT_EQ(post(gw, "/v1/messages", good).status, 401u);
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"authorization", "Bearer wrong"}}).status, 401u);
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"authorization", "Bearer secret-1"}}).status, 202u);
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"x-api-key", "secret-1"}}).status, 202u);
  EXPECT_EQ(sink.produced.size(), 2u);
}

TEST_F(gateway_handler, the_bearer_scheme_is_accepted_in_any_case) {
  // given
  opts.api_keys = {"k1"};
  auto gw = make();
  // when / then: auth schemes are case-insensitive (RFC 9110 11.1)
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"authorization", "bearer k1"}}).status, 202u);
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"authorization", "BEARER k1"}}).status, 202u);
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"authorization", "Basic k1"}}).status, 401u);
  // and the credentials may follow more than one blank (RFC 9110: 1*SP)
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"authorization", "Bearer  k1"}}).status, 202u);
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"authorization", "Bearer \tk1"}}).status, 202u);
  EXPECT_EQ(post(gw, "/v1/messages", good, {{"authorization", "Bearer  "}}).status, 401u);
}

TEST(gateway_refusals, a_head_over_the_limit_and_a_failed_handler_are_answered_in_the_json_error_shape) {
  const auto big_head = refusal_reply(431, "request header fields too large", 4096);
  EXPECT_EQ(big_head.status, 431u);
  EXPECT_EQ(big_head.body,
            R"({"error":{"kind":"too_large","message":"headers: over the 8 KiB the gateway reads for a request's head"}})"
            "\n");
  const auto failed = refusal_reply(500, "internal error", 4096);
  EXPECT_EQ(failed.status, 500u);
  EXPECT_EQ(failed.body,
            R"x({"error":{"kind":"internal","message":"request: the gateway failed to handle it (internal error); send it again"}})x"
            "\n");
}

TEST_F(gateway_handler, unacknowledged_records_are_named_in_a_503) {
  sink.ack_error = "Local: Message timed out";
  auto gw = make();
  auto r = post(gw, "/v1/messages", good);
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.body.find("\"id\":\"a1\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("Message timed out"), std::string::npos) << r.body;
}

TEST_F(gateway_handler, a_request_over_max_request_bytes_is_413_naming_size_and_limit_and_not_produced) {
  // given the worker's limit, well under the body limit
  opts.max_request_bytes = 64;
  auto gw = make();
  // when
  auto r = post(gw, "/v1/messages", good);
  auto legacy = post(gw, "/sender/v1/handleBasicMessage",
                     R"({"to":"t","from":"f","messageType":1,"messageInfo":{"text":"a long enough text"}})");
  // then
  EXPECT_EQ(r.status, 413u);
  EXPECT_NE(r.body.find(R"("kind":"too_large","message":"message: 73 bytes is over the limit of 64")"), std::string::npos)
      << r.body;
  EXPECT_NE(legacy.body.find(R"("code":413,"message":"message: )"), std::string::npos) << legacy.body;
  EXPECT_NE(legacy.body.find("over the limit of 64"), std::string::npos) << legacy.body;
  EXPECT_TRUE(sink.produced.empty());
}

TEST_F(gateway_handler, a_record_over_kafkas_message_size_limit_is_413_not_a_503_to_retry) {
  // given a producer that refuses the record at once, then a broker that refuses it in the report
  sink.queue_error = "Broker: Message size too large";
  auto gw = make();
  // when
  auto refused = post(gw, "/v1/messages", std::string("[") + good + "]");
  auto legacy_refused = post(gw, "/sender/v1/handleBasicMessage", R"({"to":"t","from":"f","messageType":1,"messageInfo":{"text":"x"}})");
  sink.queue_error.clear();
  sink.ack_error = "Broker: Message size too large";
  auto reported = post(gw, "/v1/messages", good);
  // then
  EXPECT_EQ(refused.status, 413u) << refused.body;
  EXPECT_NE(refused.body.find(R"({"error":{"kind":"too_large","message":"[0].message: 73 bytes is over Kafka's message size limit)"),
            std::string::npos)
      << refused.body;
  EXPECT_NE(refused.body.find(R"("index":0)"), std::string::npos) << refused.body;
  EXPECT_EQ(reported.status, 413u) << reported.body;
  EXPECT_TRUE(std::none_of(reported.headers.begin(), reported.headers.end(),
                           [](const auto& h) { return h.first == "Retry-After"; }));
  EXPECT_NE(legacy_refused.body.find(R"("code":413,"message":"message: )"), std::string::npos) << legacy_refused.body;
  EXPECT_NE(legacy_refused.body.find("over Kafka's message size limit"), std::string::npos) << legacy_refused.body;
}

TEST_F(gateway_handler, counts_requests_by_endpoint_and_code_and_records_by_result) {
  // given a gateway with metrics, a key, and a sink that fails the second record it is given
  prometheus::Registry registry;
  metrics::gateway_metrics m(registry, "1.2.3", "abc");
  opts.api_keys = {"k"};
  gateway gw(opts, sink, log, {}, &m);
  const std::vector<std::pair<std::string, std::string>> key{{"x-api-key", "k"}};
  const std::string legacy = R"({"to":"t","from":"f","messageType":1,"messageInfo":{"text":"x"}})";
  // when: a 202, a 400, a legacy 200 and a legacy 400, a 503 for an unacknowledged record, and
  // heads answered before their body (401, 404)
  ASSERT_EQ(post(gw, "/v1/messages", good, key).status, 202u);
  ASSERT_EQ(post(gw, "/v1/messages", "{}", key).status, 400u);
  ASSERT_EQ(post(gw, "/sender/v1/handleBasicMessage?sign=k", legacy).status, 200u);
  ASSERT_EQ(post(gw, "/sender/v1/handleBasicMessage?sign=k", "{}").status, 200u);
  sink.ack_error = "Local: Message timed out";
  ASSERT_EQ(post(gw, "/v1/messages", good, key).status, 503u);
  ASSERT_TRUE(gw.check_head({"POST", "/v1/messages", {}, {}}));
  ASSERT_TRUE(gw.check_head({"PUT", "/nowhere", {{"content-length", "5"}}, {}}));
  ASSERT_FALSE(gw.check_head({"GET", "/healthz", {}, {}}));
  post(gw, "/healthz", "", {}, "GET");
  // then each is counted under its endpoint and code (the legacy API's own code), the probe not at all
  const auto value = [&](const std::string& name, const std::map<std::string, std::string>& labels) {
    for (const auto& family : registry.Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        std::map<std::string, std::string> got;
        for (const auto& l : metric.label) got[l.name] = l.value;
        if (got == labels) return family.type == prometheus::MetricType::Gauge ? metric.gauge.value : metric.counter.value;
      }
    }
    return -1.0;
  };
  EXPECT_EQ(value("sendq_gateway_requests_total", {{"endpoint", "messages"}, {"code", "202"}}), 1);
  EXPECT_EQ(value("sendq_gateway_requests_total", {{"endpoint", "messages"}, {"code", "400"}}), 1);
  EXPECT_EQ(value("sendq_gateway_requests_total", {{"endpoint", "messages"}, {"code", "503"}}), 1);
  EXPECT_EQ(value("sendq_gateway_requests_total", {{"endpoint", "messages"}, {"code", "401"}}), 1);
  EXPECT_EQ(value("sendq_gateway_requests_total", {{"endpoint", "legacy"}, {"code", "200"}}), 1);
  EXPECT_EQ(value("sendq_gateway_requests_total", {{"endpoint", "legacy"}, {"code", "400"}}), 1);
  EXPECT_EQ(value("sendq_gateway_requests_total", {{"endpoint", "other"}, {"code", "404"}}), 1);
  std::size_t series = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name == "sendq_gateway_requests_total") series = family.metric.size();
  }
  EXPECT_EQ(series, 7u) << "the /healthz probe was counted";
  // and the records by result, none left in flight
  EXPECT_EQ(value("sendq_gateway_records_total", {{"result", "acknowledged"}}), 2);
  EXPECT_EQ(value("sendq_gateway_records_total", {{"result", "failed"}}), 1);
  EXPECT_EQ(value("sendq_gateway_records_in_flight", {}), 0);
  EXPECT_EQ(value("sendq_build_info", {{"version", "1.2.3"}, {"commit", "abc"}}), 1);
}

TEST_F(gateway_handler, over_the_in_flight_limit_answers_503_without_producing) {
  // given one record awaiting its ack, of at most two
  opts.max_in_flight = 2;
  sink.hold_acks = true;
  auto gw = make();
  ASSERT_EQ(post(gw, "/v1/messages", good).status, 503u);  // its ack never came: the wait timed out
  ASSERT_EQ(gw.in_flight(), 1u);
  sink.produced.clear();
  // when a batch of two would go over
  auto r = post(gw, "/v1/messages", std::string("[") + good + "," + good + "]");
  // then
  EXPECT_EQ(r.status, 503u);
  EXPECT_TRUE(std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) { return h.first == "Retry-After"; }));
  EXPECT_TRUE(sink.produced.empty());
  EXPECT_EQ(gw.in_flight(), 1u);
}

TEST_F(gateway_handler, a_late_ack_names_only_its_own_record_not_the_ones_kafka_took) {
  // given a batch of three whose second record's ack does not come within the wait
  sink.hold_if_contains = "\"late\"";
  auto gw = make();
  const std::string late = R"({"id":"late","provider":"gewe","type":"text","to":"x","body":{"text":"hi"}})";
  const std::string third = R"({"id":"a3","provider":"gewe","type":"text","to":"y","body":{"text":"hi"}})";
  // when
  auto r = post(gw, "/v1/messages", "[" + std::string(good) + "," + late + "," + third + "]");
  // then only that one is to be re-sent: the other two are on Kafka
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.body, "{\"error\":{\"kind\":\"unavailable\",\"message\":\"1 of 3 records were not acknowledged by Kafka; "
                    "re-send them (ids make it safe)\"},\"failed\":[{\"index\":1,\"id\":\"late\",\"error\":\"no broker "
                    "acknowledgement within 10 ms\"}]}\n");
  ASSERT_EQ(sink.held.size(), 1u);
  sink.held[0]("");
  ioc.restart();
  ioc.run();
  EXPECT_EQ(gw.in_flight(), 0u);
}

TEST_F(gateway_handler, an_ack_that_comes_after_the_503_only_frees_its_slot) {
  // given a record whose ack did not come within the wait: the caller got its 503
  sink.hold_acks = true;
  auto gw = make();
  ASSERT_EQ(post(gw, "/v1/messages", good).status, 503u);
  ASSERT_EQ(sink.held.size(), 1u);
  ASSERT_EQ(gw.in_flight(), 1u);
  // when the broker's report arrives after all (a stalled broker acknowledges late)
  sink.held[0]("");
  ioc.restart();
  ioc.run();
  // then it frees the record's slot, and the request that already ended is not written to
  EXPECT_EQ(gw.in_flight(), 0u);
  sink.hold_acks = false;
  EXPECT_EQ(post(gw, "/v1/messages", good).status, 202u);
}

TEST_F(gateway_handler, a_batch_larger_than_max_in_flight_is_413_naming_both_not_a_503_that_never_passes) {
  // given
  opts.max_in_flight = 1;
  auto gw = make();
  // when
  auto r = post(gw, "/v1/messages", std::string("[") + good + "," + good + "]");
  // then
  EXPECT_EQ(r.status, 413u) << r.body;
  EXPECT_EQ(r.body, "{\"error\":{\"kind\":\"too_large\",\"message\":\"body: 2 requests in one batch, more than "
                    "gateway.max_in_flight (1) can ever hold; split it\"}}\n");
  EXPECT_TRUE(std::none_of(r.headers.begin(), r.headers.end(), [](const auto& h) { return h.first == "Retry-After"; }));
  EXPECT_TRUE(sink.produced.empty());
  EXPECT_EQ(gw.in_flight(), 0u);
}

TEST_F(gateway_handler, unknown_paths_and_methods) {
  auto gw = make();
  EXPECT_EQ(post(gw, "/v2/x", good).status, 404u);
  net::io_context ioc;
  http::server_response out;
  net::co_spawn(ioc, gw.handle({"GET", "/v1/messages", {}, ""}), [&](std::exception_ptr, http::server_response r) { out = r; });
  ioc.run();
  EXPECT_EQ(out.status, 405u);
}

TEST_F(gateway_handler, a_batch_over_max_batch_is_413_too_large_naming_the_limit) {
  // given
  opts.max_batch = 1;
  auto gw = make();
  // when
  auto r = post(gw, "/v1/messages", std::string("[") + good + "," + good + "]");
  // then
  EXPECT_EQ(r.status, 413u) << r.body;
  EXPECT_EQ(r.body, "{\"error\":{\"kind\":\"too_large\",\"message\":\"body: more than 1 requests in one batch "
                    "(gateway.max_batch); split it\"}}\n");
  EXPECT_TRUE(sink.produced.empty());
}

TEST_F(gateway_handler, healthz_answers_get_and_head_and_refuses_other_methods_with_405_and_allow) {
  auto gw = make();
  auto call = [&](std::string method) {
    net::io_context ioc;
    http::server_response out;
    net::co_spawn(ioc, gw.handle({std::move(method), "/healthz", {}, ""}), [&](std::exception_ptr, http::server_response r) { out = r; });
    ioc.run();
    return out;
  };
  EXPECT_EQ(call("GET").status, 200u);
  EXPECT_EQ(call("HEAD").status, 200u);
  for (const char* m : {"DELETE", "POST", "PUT"}) {
    auto r = call(m);
    EXPECT_EQ(r.status, 405u) << m;
    EXPECT_NE(r.body.find(R"("kind":"method_not_allowed")"), std::string::npos) << r.body;
    EXPECT_TRUE(std::any_of(r.headers.begin(), r.headers.end(),
                            [](const auto& h) { return h.first == "Allow" && h.second == "GET, HEAD"; }))
        << m;
  }
}

TEST_F(gateway_handler, legacy_voice_answers_the_seed_shape_with_the_generated_id) {
  opts.host_name = "gw-host";
  auto gw = make();
  auto r = post(gw, "/sender/v1/handleBasicMessage?apiVersion=01&client=c&channel=c&version=2.0&sign=s",
                R"({"to":"t","from":"f","messageType":3,"messageInfo":{"audioMessage":"a.mp3","duration":7}})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find(R"("code":200,"message":"成功","data":{"getMessageId":"0123456789abcdef0123456789abcdef"},"page":null)"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"("servicePhone":"400800400","host":"gw-host")"), std::string::npos) << r.body;
  ASSERT_EQ(sink.produced.size(), 1u);
  EXPECT_NE(sink.produced[0].second.find(R"("provider":"sender")"), std::string::npos);
}

TEST_F(gateway_handler, legacy_503_for_an_unacknowledged_record_gives_its_generated_id_to_resend_with) {
  // given a broker that did not acknowledge in time, and a caller that sent no getMessageId
  sink.ack_error = "Local: Message timed out";
  auto gw = make();
  // when
  auto r = post(gw, "/sender/v1/handleBasicMessage", R"({"to":"t","from":"f","messageType":1,"messageInfo":{"text":"x"}})");
  // then the 503 carries the id the record was produced under: re-sent with it, it is one message
  EXPECT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find(R"x("code":503,"message":"not stored (Local: Message timed out); retry with the same getMessageId )x"
                        R"x((data.getMessageId)","data":{"getMessageId":"0123456789abcdef0123456789abcdef"})x"),
            std::string::npos)
      << r.body;
  ASSERT_EQ(sink.produced.size(), 1u);
  EXPECT_NE(sink.produced[0].second.find(R"("id":"0123456789abcdef0123456789abcdef")"), std::string::npos);
}

TEST_F(gateway_handler, legacy_limits_of_the_seed_answer_code_400_naming_the_legacy_field) {
  auto gw = make();
  auto r = post(gw, "/sender/v1/handleBasicMessage",
                R"({"to":"t","from":"f","messageType":3,"messageInfo":{"audioMessage":"a.mp3","duration":61}})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find(R"("code":400,"message":"messageInfo.duration:)"), std::string::npos) << r.body;
  EXPECT_TRUE(sink.produced.empty());
}

// A string that cannot be unescaped is refused like any bad field (HTTP 200, code 400), naming the
// legacy member, whether the legacy mapping or the SendRequest decoder (a passed-through
// messageInfo) finds it.
TEST_F(gateway_handler, legacy_string_that_cannot_be_unescaped_answers_code_400_naming_the_legacy_field) {
  // given
  auto gw = make();
  const std::string lone = R"(not a valid JSON string: \\ud800 is a lone UTF-16 surrogate (not a Unicode character))";
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"({"to":"\ud800","messageType":1,"messageInfo":{"text":"x"}})", "to: " + lone},
      {R"({"to":"t","messageType":1,"messageInfo":{"text":"\ud800"}})", "messageInfo.text: " + lone},
      {R"({"to":"t","messageType":1,"messageInfo":{"text":"x"},"ext":{"a":["\q"]}})",
       R"(ext.a[0]: not a valid JSON string: \\q is not a JSON escape)"},
      {R"({"to":"t","messageType":1,"messageInfo":{"te\qxt":"x"}})",
       R"(messageInfo: a member name is not a valid JSON string: \\q is not a JSON escape)"},
  };
  for (const auto& [body, message] : cases) {
    // when
    auto r = post(gw, "/sender/v1/handleBasicMessage", body);
    // then
    EXPECT_EQ(r.status, 200u) << body;
    EXPECT_NE(r.body.find(R"("code":400,"message":")" + message + "\""), std::string::npos) << body << "\n" << r.body;
  }
  EXPECT_TRUE(sink.produced.empty());
}

TEST_F(gateway_handler, legacy_callers_may_present_the_key_as_sign) {
  opts.api_keys = {"k"};
  auto gw = make();
  const std::string body = R"({"to":"t","from":"f","messageType":1,"messageInfo":{"text":"x"}})";
  EXPECT_NE(post(gw, "/sender/v1/handleBasicMessage?sign=bad", body).body.find(R"("code":401)"), std::string::npos);
  EXPECT_NE(post(gw, "/sender/v1/handleBasicMessage?apiVersion=01&sign=k", body).body.find(R"("code":200)"), std::string::npos);
}

TEST_F(gateway_handler, a_sign_key_may_come_percent_encoded_or_as_it_is) {
  // given a key with the characters a URL library encodes
  opts.api_keys = {"ab+c/d=="};
  auto gw = make();
  const std::string body = R"({"to":"t","from":"f","messageType":1,"messageInfo":{"text":"x"}})";
  const auto code = [&](const std::string& sign) {
    const auto r = post(gw, "/sender/v1/handleBasicMessage?apiVersion=01&sign=" + sign, body).body;
    const auto at = r.find(R"("code":)");
    return at == std::string::npos ? std::string("none") : r.substr(at + 7, 3);
  };
  EXPECT_EQ(code("ab%2Bc%2Fd%3D%3D"), "200");
  EXPECT_EQ(code("ab%2bc%2fd%3d%3d"), "200");
  EXPECT_EQ(code("ab+c/d=="), "200");
  // and a near miss, or a broken escape, is still refused
  EXPECT_EQ(code("ab%2Bc%2Fd%3D"), "401");
  EXPECT_EQ(code("ab%2Bc%2Fd%3D%3"), "401");
  EXPECT_EQ(code("ab%zzc%2Fd%3D%3D"), "401");
}

TEST_F(gateway_handler, the_head_check_answers_as_the_handler_would_before_any_body) {
  // given keys, and heads without a body (the server calls check_head before reading one)
  opts.api_keys = {"k"};
  auto gw = make();
  const auto head = [](std::string method, std::string target, std::vector<std::pair<std::string, std::string>> h = {}) {
    return http::server_request{std::move(method), std::move(target), std::move(h), {}};
  };
  // when / then: a POST without a good key is refused on both endpoints, in each one's shape
  const auto messages = gw.check_head(head("POST", "/v1/messages", {{"authorization", "Bearer bad"}}));
  ASSERT_TRUE(messages);
  EXPECT_EQ(messages->status, 401u);
  EXPECT_EQ(messages->body, post(gw, "/v1/messages", good, {{"authorization", "Bearer bad"}}).body);
  const auto legacy = gw.check_head(head("POST", "/sender/v1/handleBasicMessage?sign=bad"));
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->status, 200u);
  EXPECT_NE(legacy->body.find(R"("code":401,"message":"missing or unknown API key)"), std::string::npos) << legacy->body;
  // and good keys, /healthz's probes and other requests without a body pass to the handler
  EXPECT_FALSE(gw.check_head(head("POST", "/v1/messages", {{"x-api-key", "k"}})));
  EXPECT_FALSE(gw.check_head(head("POST", "/sender/v1/handleBasicMessage?apiVersion=01&sign=k")));
  EXPECT_FALSE(gw.check_head(head("GET", "/healthz")));
  EXPECT_FALSE(gw.check_head(head("HEAD", "/healthz?x=1")));
  EXPECT_FALSE(gw.check_head(head("GET", "/nowhere")));
  EXPECT_FALSE(gw.check_head(head("HEAD", "/v1/messages", {{"content-length", "0"}})));
  // and other methods and paths with a body are answered before it, key or not, as the handler
  // would: it would only be held (and counted against gateway.max_body_bytes_in_flight)
  for (const auto& [method, target, status] : {std::tuple{"GET", "/v1/messages", 405u}, {"PUT", "/v1/messages", 405u},
                                               {"POST", "/nowhere", 404u}, {"PUT", "/x", 404u}, {"POST", "/healthz", 405u}}) {
    const auto r = gw.check_head(head(method, target, {{"content-length", "10"}}));
    ASSERT_TRUE(r) << method << " " << target;
    EXPECT_EQ(r->status, status) << method << " " << target;
    EXPECT_EQ(r->body, post(gw, target, good, {}, method).body) << method << " " << target;
  }
  const auto chunked = gw.check_head(head("POST", "/x", {{"transfer-encoding", "chunked"}}));
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 404u);
  EXPECT_TRUE(sink.produced.empty());
}

TEST(auth, empty_key_list_accepts_everyone_and_empty_keys_never_match) {
  EXPECT_TRUE(key_accepted({}, ""));
  EXPECT_FALSE(key_accepted({"a"}, ""));
  EXPECT_TRUE(key_accepted({"a", "bb"}, "bb"));
}

}  // namespace
}  // namespace sendq::gateway
