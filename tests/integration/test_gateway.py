#!/usr/bin/env python3
"""Issue 6's gateway checks with the real binaries: 1,000 SendRequests posted to sendq-gateway
(single and in batches) come back as 1,000 delivered results; a malformed one gets a 400 naming
the field and is never produced; the legacy sender endpoint answers the seed's JSON for a voice
and a video message, and the simulator receives the seed's request for each."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from mixed_requests import request  # noqa: E402

N = 1000
API_KEY = "gw-test-key"


class GatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = h.Workdir("gateway").path
        cls.kafka = h.EmbeddedKafka(cls.dir)
        cls.sim = h.Simulator(cls.dir)
        cls.worker = h.Worker(cls.dir, cls.sim, brokers=cls.kafka.bootstrap)
        cls.gw = h.Gateway(cls.dir, cls.kafka.bootstrap, env_extra={"SENDQ_GATEWAY_API_KEYS": API_KEY})
        cls.auth = {"Authorization": f"Bearer {API_KEY}"}

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.worker.stop()
        cls.sim.stop()
        cls.kafka.stop()

    def results_by_id(self, ids, timeout=180):
        want = set(ids)

        def all_there():
            got = {}
            for key, value, _ in h.kcat_consume_all(self.kafka.bootstrap, "sendq.results"):
                r = json.loads(value)
                if r["id"] in want:
                    got[r["id"]] = r
            return got if len(got) == len(want) else None
        return h.wait_for(all_there, timeout, f"{len(want)} results")

    def test_1_thousand_requests_single_and_batched_are_delivered(self):
        # given
        self.worker.wait_ready()
        reqs = [request(i, prefix="gw") for i in range(N)]
        singles, batched = reqs[:400], reqs[400:]

        # when 400 are posted one by one (8 at a time) and 600 in batches of 100
        def post_one(r):
            return self.gw.post("/v1/messages", r, self.auth)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post_one, singles))
        for status, body in answers:
            self.assertEqual(status, 202, body)
        for i, (status, body) in enumerate(answers):
            self.assertEqual(json.loads(body), {"id": singles[i]["id"]})
        for k in range(0, len(batched), 100):
            chunk = batched[k:k + 100]
            status, body = self.gw.post("/v1/messages", chunk, self.auth)
            self.assertEqual(status, 202, body)
            self.assertEqual(json.loads(body)["ids"], [r["id"] for r in chunk])

        # then every one comes back delivered
        results = self.results_by_id([r["id"] for r in reqs])
        statuses = {}
        for r in results.values():
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        self.assertEqual(statuses, {"delivered": N})

    def test_2_malformed_request_gets_400_naming_the_field_and_is_not_produced(self):
        # given a request without `to`, alone and inside a batch
        bad = {"id": "gw-bad-no-to", "provider": "gewe", "type": "text", "body": {"text": "x"}}
        good = request(5000, prefix="gw-withbad")
        # when
        status, body = self.gw.post("/v1/messages", bad, self.auth)
        bstatus, bbody = self.gw.post("/v1/messages", [good, bad], self.auth)
        # then
        self.assertEqual(status, 400, body)
        err = json.loads(body)["error"]
        self.assertEqual(err["kind"], "invalid_field")
        self.assertTrue(err["message"].startswith("to:"), err)
        self.assertEqual(bstatus, 400, bbody)
        self.assertTrue(json.loads(bbody)["error"]["message"].startswith("[1].to:"), bbody)
        # a request that is produced after them arrives, and the rejected ones never did
        marker = request(5001, prefix="gw-marker")
        self.assertEqual(self.gw.post("/v1/messages", marker, self.auth)[0], 202)
        self.results_by_id([marker["id"]])
        on_topic = [json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.kafka.bootstrap, "sendq.requests")]
        self.assertIn(marker["id"], on_topic)
        self.assertNotIn("gw-bad-no-to", on_topic)
        self.assertNotIn(good["id"], on_topic, "a batch with one bad element is refused whole")
        # and without the key: 401
        self.assertEqual(self.gw.post("/v1/messages", marker)[0], 401)

    def test_3_legacy_voice_and_video_answer_the_seed_reply_and_reach_the_simulator_as_documented(self):
        ext = {"chatClient": "9bf18c20d5f54f459e0232246c2305c8", "chatType": "WX",
               "chatChannel": "f2b91d57f9cb4db7a06926b2fd5d9caf"}
        voice = {"to": "148992289019003396", "channelType": 1, "from": "u000193f6f02e01764a0f869be49a2be21e01",
                 "messageType": 3, "ext": ext,
                 "messageInfo": {"audioMessage": "u00015529b924caf8478ab8fecf1d3d537f44.mp3",
                                 "fileUrl": "https://cdn.example/u00015529b924caf8478ab8fecf1d3d537f44.mp3",
                                 "fileLength": 20480, "duration": 12},
                 "getMessageId": "legacyvoice0000000000000000000001"}
        video = {"to": "148992289019003396", "channelType": 1, "from": "u000193f6f02e01764a0f869be49a2be21e01",
                 "messageType": 4, "ext": ext,
                 "messageInfo": {"videoMessage": "661d21d918d8476c88fc9b90279c400f.mp4", "thumbMessage": "661d.jpg",
                                 "title": "t", "description": "d", "fileUrl": "https://cdn.example/661d.mp4",
                                 "fileLength": 1048576, "duration": 9, "thumbFileUrl": "https://cdn.example/661d.jpg",
                                 "thumbFileLength": 4096, "imageWidth": 640, "imageHeight": 360}}  # no getMessageId
        query = ("?apiVersion=01&client=70374ddd0f3641368d419b2d93127b8f&channel=eba920d452d34adb8f2badb08b9e69bb"
                 f"&version=2.0&sign={API_KEY}")
        ids = []
        for body in (voice, video):
            status, text = self.gw.post("/sender/v1/handleBasicMessage" + query, body)
            self.assertEqual(status, 200, text)
            reply = json.loads(text)
            self.assertEqual(list(reply.keys()), ["code", "message", "data", "page", "foot"])
            self.assertEqual(reply["code"], 200)
            self.assertEqual(reply["message"], "成功")
            self.assertIsNone(reply["page"])
            self.assertEqual(list(reply["foot"].keys()), ["operationTime", "servicePhone", "host"])
            self.assertRegex(reply["foot"]["operationTime"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
            self.assertEqual(reply["foot"]["servicePhone"], "400800400")
            mid = reply["data"]["getMessageId"]
            if "getMessageId" in body:
                self.assertEqual(mid, body["getMessageId"])
            else:
                self.assertRegex(mid, r"^[0-9a-f]{32}$")
            ids.append(mid)
        # a legacy error: code 400 naming the legacy field
        bad = dict(voice, messageInfo={"audioMessage": "a.mp3", "duration": 61}, getMessageId="legacybad")
        status, text = self.gw.post("/sender/v1/handleBasicMessage" + query, bad)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(text)["code"], 400)
        self.assertTrue(json.loads(text)["message"].startswith("messageInfo.duration:"), text)

        # then both are delivered, and the simulator received exactly the seed's request
        results = self.results_by_id(ids)
        self.assertEqual({r["status"] for r in results.values()}, {"delivered"})
        received = {}
        for x in self.sim.requests():
            if x["path"] == "/sender/v1/handleBasicMessage":
                b = json.loads(x["body"])
                received[b.get("getMessageId")] = b
        for mid, sent in zip(ids, (voice, video)):
            got = received[mid]
            self.assertEqual(got, {"messageType": sent["messageType"], "from": sent["from"], "to": sent["to"],
                                   "messageInfo": sent["messageInfo"], "ext": sent["ext"], "getMessageId": mid})


class GatewayLimitsTest(unittest.TestCase):
    """Requests that can never be produced get a permanent error, not a 503 to retry forever.
    Only a broker and the gateway are needed."""

    @classmethod
    def setUpClass(cls):
        cls.dir = h.Workdir("gateway-limits").path
        # sendq.bodies and sendq.counted: the body budget's and the metrics' tests produce there, as the
        # others check sendq.requests is empty
        cls.kafka = h.EmbeddedKafka(cls.dir, partitions=1,
                                    topics=["sendq.requests", "sendq.bodies", "sendq.counted", "sendq.large"])
        cls.gw = h.Gateway(cls.dir, cls.kafka.bootstrap)

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.kafka.stop()

    def test_a_request_over_the_workers_max_request_bytes_is_413_on_both_endpoints(self):
        # given ~2 MB requests: under gateway.body_limit_bytes (4 MiB), over worker.max_request_bytes (1 MiB)
        big = {"id": "gw-big", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": "a" * 2000000}}
        legacy = {"to": "t", "from": "f", "messageType": 1, "messageInfo": {"text": "a" * 2000000}}
        # when
        status, body = self.gw.post("/v1/messages", big)
        lstatus, lbody = self.gw.post("/sender/v1/handleBasicMessage", legacy)
        # then
        self.assertEqual(status, 413, body)
        err = json.loads(body)["error"]
        self.assertEqual(err["kind"], "too_large")
        self.assertRegex(err["message"], r"^message: \d+ bytes is over the limit of 1048576$")
        self.assertEqual(lstatus, 200, lbody)
        self.assertEqual(json.loads(lbody)["code"], 413, lbody)
        self.assertIn("over the limit of 1048576", json.loads(lbody)["message"])
        # and nothing was produced
        self.assertEqual(h.kcat_consume_all(self.kafka.bootstrap, "sendq.requests"), [])

    def test_a_request_just_under_the_workers_max_request_bytes_is_produced(self):
        # given a request of 1,040,000 bytes: under worker.max_request_bytes (1 MiB), over
        # librdkafka's default message.max.bytes (1,000,000), which the gateway's producer had
        gw = h.Gateway(self.dir, self.kafka.bootstrap, name="gateway-large", env_extra={"SENDQ_GATEWAY_TOPIC": "sendq.large"})
        try:
            request = {"id": "gw-large", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": ""}}
            request["body"]["text"] = "a" * (1040000 - len(json.dumps(request)))
            self.assertEqual(len(json.dumps(request)), 1040000)
            # when it is posted, then it is taken, and on the topic whole
            status, body = gw.post("/v1/messages", request)
            self.assertEqual((status, json.loads(body)), (202, {"id": "gw-large"}))
            [(key, value, _)] = h.kcat_consume_all(self.kafka.bootstrap, "sendq.large")
            self.assertEqual(json.loads(value), request)
        finally:
            gw.stop()

    def test_readyz_says_when_no_kafka_broker_is_reachable(self):
        # given a gateway on a Kafka of its own, ready
        workdir = h.Workdir("gateway-unreachable").path  # its own: the class's Kafka has its bootstrap file
        kafka = h.EmbeddedKafka(workdir, partitions=1, topics=["sendq.requests"])
        gw = h.Gateway(workdir, kafka.bootstrap)
        try:
            h.wait_for(lambda: h.http_get(gw.metrics_url + "/readyz")[0] == 200, 10, "ready")
            # when that Kafka goes away
            kafka.stop()
            # then /readyz answers 503 saying so (a load balancer sends callers elsewhere), and the
            # gateway keeps running
            status, body = h.wait_for(lambda: (lambda r: r if r[0] == 503 else None)(h.http_get(gw.metrics_url + "/readyz")),
                                      20, "/readyz 503")
            self.assertRegex(body, r"^no Kafka broker reachable for \d+ s: .+\n$")
            self.assertIsNone(gw.proc.poll())
            self.assertEqual(h.http_get(gw.url + "/healthz")[0], 200)
        finally:
            gw.stop()
            kafka.stop()

    def test_sighup_is_logged_and_ignored(self):
        # given a running gateway, when it gets SIGHUP (a habit of `systemctl reload`)
        gw = h.Gateway(self.dir, self.kafka.bootstrap, name="gateway-hup")
        try:
            gw.proc.send_signal(signal.SIGHUP)
            # then it says it does not reload, and goes on serving (it used to exit at once)
            line = h.wait_for(lambda: next((json.loads(l) for l in open(gw.log_path) if "SIGHUP" in l), None),
                              10 * h.timeout_scale(), "the SIGHUP log line")
            self.assertEqual((line["level"], line["msg"]),
                             ("warn", "SIGHUP ignored: the gateway does not reload its configuration; restart it to change it"))
            self.assertIsNone(gw.proc.poll())
            self.assertEqual(h.http_get(gw.url + "/healthz")[0], 200)
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_a_refused_body_is_answered_to_a_client_that_sends_it_whole(self):
        # given a client (urllib, as most) that writes a 5 MB body before it reads anything
        status, body = self.gw.post("/v1/messages", b"x" * 5_000_000)
        # then it reads the 413 (closed with the body unread, it got a connection reset instead)
        self.assertEqual(status, 413, body)
        self.assertEqual(json.loads(body)["error"]["kind"], "too_large")

    def test_keys_are_checked_before_the_body_and_connections_are_limited(self):
        # given a gateway with a key and room for two connections
        gw = h.Gateway(self.dir, self.kafka.bootstrap, name="gateway-keyed",
                       env_extra={"SENDQ_GATEWAY_API_KEYS": "k1", "SENDQ_GATEWAY_MAX_CONNECTIONS": "2"})
        try:
            # when a caller without the key announces a 3 MB body and sends only the headers
            with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
                s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: a\r\nContent-Length: 3000000\r\n\r\n")
                head = s.recv(65536).decode()
            # then it is refused at once, before any body (checked after the body, this would wait
            # for it and time out)
            self.assertTrue(head.startswith("HTTP/1.1 401"), head)
            # and a caller without the key that sends a 3 MB batch whole still reads why
            batch = [{"id": f"nokey-{i}", "provider": "gewe", "type": "text", "to": "x@chatroom",
                      "body": {"text": "a" * 3000}} for i in range(1000)]
            status, body = gw.post("/v1/messages", batch)
            self.assertEqual(status, 401, body)
            self.assertEqual(json.loads(body)["error"]["kind"], "unauthorized")
            self.assertEqual(h.kcat_consume_all(self.kafka.bootstrap, "sendq.requests"), [])
            # and with two connections held open, a third is answered 503 busy, to retry
            held = [socket.create_connection(("127.0.0.1", gw.port), timeout=10) for _ in range(2)]
            try:
                h.wait_for(lambda: gw.post("/v1/messages", batch[0], headers={"X-API-Key": "k1"})[0] == 503, 10,
                           "a 503 once both connections are taken")
                status, body = gw.post("/v1/messages", batch[0], headers={"X-API-Key": "k1"})
                self.assertEqual(status, 503, body)
                self.assertEqual(json.loads(body)["error"]["kind"], "busy")
            finally:
                for c in held:
                    c.close()
            # and once they are closed, the keyed request is taken
            status, body = h.wait_for(lambda: (lambda r: r if r[0] == 202 else None)(
                gw.post("/v1/messages", batch[0], headers={"X-API-Key": "k1"})), 10, "a 202 once connections are free")
            self.assertEqual(json.loads(body), {"id": "nokey-0"})
            self.assertEqual([json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.kafka.bootstrap, "sendq.requests")],
                             ["nokey-0"])
        finally:
            gw.stop()

    def test_bodies_held_at_once_are_bounded_by_max_body_bytes_in_flight(self):
        # given a gateway with room for 100,000 bytes of bodies, and a caller holding 60,000 of
        # them (its head announces them; its body is on its way)
        gw = h.Gateway(self.dir, self.kafka.bootstrap, name="gateway-bodies",
                       env_extra={"SENDQ_GATEWAY_TOPIC": "sendq.bodies", "SENDQ_GATEWAY_BODY_LIMIT_BYTES": "65536",
                                  "SENDQ_GATEWAY_MAX_BODY_BYTES_IN_FLIGHT": "100000"})
        big = lambda i: {"id": f"bodies-{i}", "provider": "gewe", "type": "text", "to": "x@chatroom",
                         "body": {"text": "b" * 59000}}
        try:
            slow = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
            slow.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: a\r\nContent-Length: 60000\r\n\r\n{\"id\":")
            # when another body of 60,000 bytes comes (once the slow one's head is read: until then
            # it is taken, and refused as not JSON, so nothing is produced either way)
            status, body, headers = h.wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
                gw.post("/v1/messages", b"x" * 60000, with_headers=True)), 10, "a 503 while the slow body is held")
            # then it is refused, to retry, naming the setting; nothing was produced
            self.assertEqual(json.loads(body), {"error": {"kind": "busy", "message": (
                "body: the request bodies held would go over gateway.max_body_bytes_in_flight; retry later")}})
            self.assertEqual(headers.get("Retry-After"), "1")
            self.assertEqual(h.kcat_consume_all(self.kafka.bootstrap, "sendq.bodies"), [])
            # and a small one still fits beside it, with a Content-Length or chunked (a chunked body
            # counts by what has arrived of it, not as a whole body_limit_bytes: 65,536 would not fit)
            status, body = gw.post("/v1/messages", {**big(2), "body": {"text": "small"}})
            self.assertEqual((status, json.loads(body)), (202, {"id": "bodies-2"}))
            status, body = self.post_chunked(gw.port, json.dumps({**big(20), "body": {"text": "small"}}).encode())
            self.assertEqual((status, json.loads(body)), (202, {"id": "bodies-20"}))
            # but a chunked one that goes over as it arrives is refused the same way
            status, body = self.post_chunked(gw.port, json.dumps(big(21)).encode())
            self.assertEqual(status, 503, body)
            self.assertEqual(json.loads(body)["error"]["kind"], "busy")
            self.assertIn("gateway.max_body_bytes_in_flight", json.loads(body)["error"]["message"])
            # and once the slow caller goes away, its bytes are given back
            slow.close()
            status, body = h.wait_for(lambda: (lambda r: r if r[0] == 202 else None)(gw.post("/v1/messages", big(3))), 10,
                                      "a 202 once the slow body is let go")
            self.assertEqual(json.loads(body), {"id": "bodies-3"})
            self.assertEqual([json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.kafka.bootstrap, "sendq.bodies")],
                             ["bodies-2", "bodies-20", "bodies-3"])
        finally:
            gw.stop()

    @staticmethod
    def post_chunked(port, data, chunk=8192):
        """POSTs `data` to /v1/messages in chunks of `chunk` bytes; returns (status, body)."""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                         b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for i in range(0, len(data), chunk):
                    part = data[i:i + chunk]
                    conn.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                conn.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # refused while sending: the answer is read below
            reply = b""
            while True:
                try:
                    got = conn.recv(65536)
                except ConnectionResetError:
                    break
                if not got:
                    break
                reply += got
        head, _, body = reply.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body.decode()

    def test_metrics_count_requests_by_endpoint_and_code_records_and_refusals(self):
        # given a gateway with a key, its /metrics on a port of its own
        gw = h.Gateway(self.dir, self.kafka.bootstrap, name="gateway-metrics",
                       env_extra={"SENDQ_GATEWAY_TOPIC": "sendq.counted", "SENDQ_GATEWAY_API_KEYS": "k1"})
        key = {"X-API-Key": "k1"}
        req = lambda i: {"id": f"counted-{i}", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": "hi"}}
        legacy = {"to": "t", "from": "f", "messageType": 1, "messageInfo": {"text": "hi"}}
        try:
            # when: one request and a batch of three (202), one without `to` (400), one without the key
            # (401), a legacy one (its code 200), an unknown path (404), and a body over the limit (413)
            self.assertEqual(gw.post("/v1/messages", req(0), key)[0], 202)
            self.assertEqual(gw.post("/v1/messages", [req(1), req(2), req(3)], key)[0], 202)
            self.assertEqual(gw.post("/v1/messages", {**req(4), "to": None}, key)[0], 400)
            self.assertEqual(gw.post("/v1/messages", req(5))[0], 401)
            status, body = gw.post("/sender/v1/handleBasicMessage?sign=k1", legacy)
            self.assertEqual((status, json.loads(body)["code"]), (200, 200), body)
            self.assertEqual(gw.post("/nowhere", req(6), key)[0], 404)
            self.assertEqual(gw.post("/v1/messages", b"x" * 5_000_000, key)[0], 413)
            # then /metrics counts each by endpoint and code, the records by result, the server's refusal
            # by reason; nothing is left in flight; and the gateway is ready
            status, text = h.http_get(gw.metrics_url + "/metrics")
            self.assertEqual(status, 200)
            m = h.parse_metrics(text)
            counts = {dict(ls)["endpoint"] + " " + dict(ls)["code"]: v for (n, ls), v in m.items()
                      if n == "sendq_gateway_requests_total"}
            self.assertEqual(counts, {"messages 202": 2, "messages 400": 1, "messages 401": 1, "legacy 200": 1,
                                      "other 404": 1})
            self.assertEqual(h.metric(m, "sendq_gateway_records_total", result="acknowledged"), 5)
            self.assertEqual(h.metric(m, "sendq_gateway_records_total", result="failed"), 0)
            self.assertEqual(h.metric(m, "sendq_gateway_records_in_flight"), 0)
            self.assertEqual(h.metric(m, "sendq_gateway_refused_total", reason="body_limit"), 1)
            # the durations of the handled ones only (the 401 was answered from its head)
            self.assertEqual(h.metric(m, "sendq_gateway_request_duration_seconds_count", endpoint="messages"), 3)
            self.assertEqual(h.http_get(gw.metrics_url + "/readyz")[0], 200)
            produced = [json.loads(v).get("id") for _, v, _ in h.kcat_consume_all(self.kafka.bootstrap, "sendq.counted")]
            self.assertEqual(sorted(i for i in produced if i and i.startswith("counted-")),
                             ["counted-0", "counted-1", "counted-2", "counted-3"])
            self.assertEqual(len(produced), 5, "the legacy request is the fifth record")
        finally:
            gw.stop()

    def test_an_unacknowledged_record_is_answered_and_counted_within_produce_timeout_ms(self):
        # given Kafka that never answers, and the workers' [kafka.librdkafka] with a delivery timeout
        # of ten minutes, which must not hold the gateway's records past its own produce_timeout_ms
        config = os.path.join(self.dir, "slow-timeout.toml")
        with open(config, "w") as f:
            f.write('[kafka.librdkafka]\n"message.timeout.ms" = "600000"\n')
        gw = h.Gateway(self.dir, f"127.0.0.1:{h.free_port()}", name="gateway-timeout",
                       env_extra={"SENDQ_CONFIG": config, "SENDQ_GATEWAY_PRODUCE_TIMEOUT_MS": "1000"})
        try:
            # when a request is posted
            started = time.monotonic()
            req = request(0, prefix="gw-timeout")
            status, body = gw.post("/v1/messages", req)
            took = time.monotonic() - started
            # then it is answered 503 (to send again) after about a second, naming the record
            self.assertEqual(status, 503, body)
            self.assertLess(took, 20, "the gateway waited for the workers' message.timeout.ms")
            answer = json.loads(body)
            self.assertEqual(answer["error"]["kind"], "unavailable")
            self.assertEqual([f["id"] for f in answer["failed"]], [req["id"]])
            # and its record is counted failed (librdkafka's report may come just after the answer;
            # with the workers' ten minutes it would not come at all), none left in flight
            m = h.wait_for(lambda: (lambda m: m if h.metric(m, "sendq_gateway_records_total", result="failed") else None)(
                h.parse_metrics(h.http_get(gw.metrics_url + "/metrics")[1])), 10, "the record's report")
            self.assertEqual(h.metric(m, "sendq_gateway_records_total", result="failed"), 1)
            self.assertEqual(h.metric(m, "sendq_gateway_records_total", result="acknowledged"), 0)
            self.assertEqual(h.metric(m, "sendq_gateway_records_in_flight"), 0)
            self.assertEqual(h.metric(m, "sendq_gateway_requests_total", endpoint="messages", code="503"), 1)
        finally:
            gw.stop()

    def test_a_bad_metrics_addr_is_a_configuration_error(self):
        # given a metrics port that is not a number
        env = {**os.environ, "SENDQ_KAFKA_BROKERS": self.kafka.bootstrap, "SENDQ_GATEWAY_ADDR": f"127.0.0.1:{h.free_port()}",
               "SENDQ_GATEWAY_METRICS_ADDR": "127.0.0.1:abc"}
        # when the gateway starts, then it stops with exit 2 (a configuration error), naming the setting
        r = subprocess.run([h.GATEWAY], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("gateway.metrics_addr (SENDQ_GATEWAY_METRICS_ADDR)", r.stderr)

    def test_the_servers_own_refusals_are_in_the_json_error_shape(self):
        # given a body over gateway.body_limit_bytes (4 MiB), announced by its header, and bytes that are not HTTP
        def exchange(raw):
            with socket.create_connection(("127.0.0.1", self.gw.port), timeout=10) as s:
                s.sendall(raw)
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            head, _, body = out.partition(b"\r\n\r\n")
            return head.decode(), body
        # when
        big_head, big_body = exchange(b"POST /v1/messages HTTP/1.1\r\nHost: a\r\nContent-Length: 5000000\r\n\r\n")
        bad_head, bad_body = exchange(b"NOT HTTP AT ALL\r\n\r\n")
        # then both are JSON errors, as the handler's are (they were plain text)
        self.assertTrue(big_head.startswith("HTTP/1.1 413"), big_head)
        self.assertIn("Content-Type: application/json", big_head)
        self.assertEqual(json.loads(big_body), {"error": {"kind": "too_large",
                                                          "message": "body: over gateway.body_limit_bytes (4194304 bytes)"}})
        self.assertTrue(bad_head.startswith("HTTP/1.1 400"), bad_head)
        self.assertEqual(json.loads(bad_body)["error"]["kind"], "bad_request")
        self.assertTrue(json.loads(bad_body)["error"]["message"].startswith("request: not valid HTTP/1.1"))


class ExampleConfigurationTest(unittest.TestCase):
    """deploy/sendq.example.toml is the complete example: its [gateway] section has every key of
    docs/configuration.md's [gateway] table at the documented default, and the gateway starts on it."""

    def documented_gateway_defaults(self):
        with open(os.path.join(h.ROOT, "docs", "configuration.md"), encoding="utf-8") as f:
            text = f.read()
        section = text.split("## [gateway]", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M)
        return {k: v.strip().strip("`") for k, v in rows}

    def test_the_example_has_every_gateway_key_at_its_documented_default(self):
        import tomllib
        # given
        with open(h.DEMO_CONFIG, "rb") as f:
            raw = f.read()
        example = tomllib.loads(raw.decode()).get("gateway")
        documented = self.documented_gateway_defaults()
        # then: every scalar key is set to its default; the key lists are shown commented out
        self.assertIsNotNone(example, "deploy/sendq.example.toml has no [gateway] section")
        self.assertEqual(set(documented), set(example) | {"api_keys", "api_keys_file"})
        for key, value in example.items():
            self.assertEqual(str(value) if value != "" else '""', documented[key], key)
        for key in ("api_keys", "api_keys_file"):
            self.assertRegex(raw.decode(), rf"(?m)^# {key} = ")

    def post_through_a_gateway_on(self, work, config_path, prefix):
        """Starts a Kafka and a gateway on `config_path` (SENDQ_GATEWAY_ADDR picks a free port over
        the file's addr), posts one request; (status, body)."""
        kafka = h.EmbeddedKafka(work)
        try:
            gw = h.Gateway(work, kafka.bootstrap, env_extra={"SENDQ_CONFIG": config_path}, name=f"gateway-{prefix}")
            try:
                return gw.post("/v1/messages", request(0, prefix=prefix))
            finally:
                gw.stop()
        finally:
            kafka.stop()

    def test_the_gateway_starts_on_the_example(self):
        # when
        status, body = self.post_through_a_gateway_on(h.Workdir("gateway-example").path, h.DEMO_CONFIG, "example")
        # then
        self.assertEqual(status, 202, body)

    def test_the_gateway_starts_on_the_workers_file_without_the_provider_secrets(self):
        # given the example with the sender's sign read from a variable only the worker has (the
        # systemd units give the worker /etc/sendq/env and the gateway its own gateway.env), on
        # which the worker stops, exit 2 naming the variable
        work = h.Workdir("gateway-secrets").path
        with open(h.DEMO_CONFIG) as f:
            text = f.read()
        shared = text.replace('sign = "demo-sign"', 'sign_env = "SENDQ_TEST_SENDER_SIGN_NOT_SET_HERE"', 1)
        self.assertNotEqual(shared, text, "the example has no sender sign line")
        path = os.path.join(work, "sendq.toml")
        with open(path, "w") as f:
            f.write(shared)
        env = {k: v for k, v in os.environ.items() if k != "SENDQ_TEST_SENDER_SIGN_NOT_SET_HERE"}
        worker = subprocess.run([h.WORKER, "--config", path], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(worker.returncode, 2)
        self.assertIn("SENDQ_TEST_SENDER_SIGN_NOT_SET_HERE", worker.stderr)
        # when the gateway starts on it
        status, body = self.post_through_a_gateway_on(work, path, "secrets")
        # then it accepts requests: it needs no provider secret
        self.assertEqual(status, 202, body)


if __name__ == "__main__":
    h.main()
