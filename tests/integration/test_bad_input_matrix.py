#!/usr/bin/env python3
"""Bad input matrix (issue #8): bytes no well-behaved producer writes, each produced exactly as
built here (confluent_kafka: invalid UTF-8, a null value, an empty value, records over sendq's size
limit) to one running worker. Every case must end with

- one `rejected` result with the expected error kind, a message starting with the field's name,
  no attempt, and the record's source topic/partition/offset (records whose id cannot be read are
  named "<topic>:<partition>:<offset>" by that position);
- one DLQ record, keyed by the result's id, holding the original bytes (null for a tombstone,
  empty for an empty value) and headers saying why and where from; a record too large to copy
  even for the worker's producer has a null value and `sendq-value-omitted` instead;
- the consumer group's committed offset past it, the worker still up (/healthz 200), valid
  requests produced after the bad ones delivered, and no HTTP call for any bad one.

test_validation.py covers the contract's examples (proto/examples); this file the bytes around them.
Missing credentials are a configuration error: the worker refuses to start, naming the key.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import sendq_harness as h  # noqa: E402

REQUESTS = "sendq.requests"
MAX_REQUEST_BYTES = 1 << 20  # worker.max_request_bytes default (deploy/sendq.example.toml keeps it)


def req(id_, provider="gewe", type_="text", to="wxid_bim", body=b'{"text":"hi"}', extra=b""):
    """A request's bytes with `extra` (raw, starting with a comma) appended to its members."""
    return (b'{"id":"' + id_.encode() + b'","provider":"' + provider.encode() + b'","type":"' + type_.encode() +
            b'","to":"' + to.encode() + b'","body":' + body + extra + b"}")


def padded_to(data, size):
    """`data` (a JSON object) padded with spaces before its closing brace to exactly `size` bytes."""
    assert data.endswith(b"}") and len(data) <= size
    return data[:-1] + b" " * (size - len(data)) + b"}"


DEEP = 10000
POS = None  # the expected id is the record's position: "<topic>:<partition>:<offset>"

# (name, raw bytes or None for a tombstone, expected error kind, expected field, expected result id)
CASES = [
    # Truncated JSON: cut anywhere, the bytes are not a document.
    ("truncated_in_body", req("bim-t1")[:-3], "invalid_json", "message", POS),
    ("truncated_in_string", b'{"id":"bim-t2","provider":"ge', "invalid_json", "message", POS),
    ("truncated_after_colon", b'{"id":"bim-t3","provider":', "invalid_json", "message", POS),
    ("truncated_open_brace", b"{", "invalid_json", "message", POS),
    ("truncated_unclosed_deep", req("bim-t5", extra=b',"ext":' + b"{" * 100000)[:-1], "invalid_json", "message", POS),
    # Invalid UTF-8 (RFC 8259 requires UTF-8): anywhere in the document, the whole is refused.
    ("utf8_invalid_byte", req("bim-u1", body=b'{"text":"h\xffi"}'), "invalid_json", "message", POS),
    ("utf8_latin1", req("bim-u2", body=b'{"text":"caf\xe9"}'), "invalid_json", "message", POS),
    ("utf8_overlong_slash", req("bim-u3", body=b'{"text":"\xc0\xaf"}'), "invalid_json", "message", POS),
    ("utf8_encoded_surrogate", req("bim-u4", body=b'{"text":"\xed\xa0\x80"}'), "invalid_json", "message", POS),
    ("utf8_cut_sequence", req("bim-u5", body=b'{"text":"\xe4\xbd"}'), "invalid_json", "message", POS),
    ("utf8_in_member_name", req("bim-u6", extra=b',"\xfe":1'), "invalid_json", "message", POS),
    ("utf8_bom_prefix", b"\xef\xbb\xbf" + req("bim-u7"), "invalid_json", "message", POS),
    # An escape simdjson cannot unescape is bad in that one string: the exact member is named.
    ("escaped_lone_surrogate", req("bim-u8", body=b'{"text":"\\ud800"}'), "invalid_json", "body.text", "bim-u8"),
    ("escaped_lone_surrogate_in_to", req("bim-u10", to="a\\udc00"), "invalid_json", "to", "bim-u10"),
    ("escaped_lone_surrogate_in_ext", req("bim-u11", extra=b',"ext":{"a":["\\ud800"]}'), "invalid_json", "ext.a[0]", "bim-u11"),
    ("raw_control_character", req("bim-u9", body=b'{"text":"a\x00b"}'), "invalid_json", "message", POS),
    # Deep nesting: refused by depth (no recursion to overflow the stack), wherever it is; not a
    # size (too_large) but JSON the decoder will not read.
    ("deep_arrays_in_ext", req("bim-d1", extra=b',"ext":{"a":' + b"[" * DEEP + b"]" * DEEP + b"}"), "invalid_json", "ext", "bim-d1"),
    ("deep_objects_in_body", req("bim-d2", body=b'{"text":"x","n":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}"),
     "invalid_json", "body", "bim-d2"),
    ("deep_in_link_body", req("bim-d3", type_="link", body=b'{"title":' + b"[" * DEEP + b"]" * DEEP + b"}"),
     "invalid_json", "body", "bim-d3"),
    ("deep_in_provider_fields", req("bim-d4", provider="im", extra=b',"provider_fields":{"x":' + b"[" * DEEP + b"]" * DEEP + b"}"),
     "invalid_json", "provider_fields", "bim-d4"),
    ("deep_unknown_member", req("bim-d5", extra=b',"zz":' + b'{"a":' * 100000 + b"1" + b"}" * 100000), "invalid_field", "zz", "bim-d5"),
    ("deep_top_level_array", b"[" * 100000 + b"]" * 100000, "invalid_json", "message", POS),
    # Huge strings: an error message quoting one is cut (results and DLQ headers stay small).
    ("huge_type_value", req("bim-h1", type_="x" * (900 * 1024)), "unsupported_type", "type", "bim-h1"),
    ("huge_member_name", req("bim-h2", extra=b',"' + b"m" * (900 * 1024) + b'":1'), "invalid_field", "m" * 200, "bim-h2"),
    # Numbers out of range.
    ("duration_ms_1e400", req("bim-n1", type_="voice", body=b'{"url":"https://cdn.example/v.silk","format":"silk","duration_ms":1e400}'),
     "invalid_field", "body.duration_ms", "bim-n1"),
    ("duration_ms_2_64", req("bim-n2", type_="voice", body=b'{"url":"https://cdn.example/v.silk","format":"silk","duration_ms":18446744073709551616}'),
     "invalid_field", "body.duration_ms", "bim-n2"),
    ("created_at_negative", req("bim-n3", extra=b',"created_at":-1'), "invalid_field", "created_at", "bim-n3"),
    ("created_at_2_64", req("bim-n4", extra=b',"created_at":18446744073709551616'), "invalid_field", "created_at", "bim-n4"),
    ("deadline_1e400", req("bim-n5", extra=b',"deadline":1e400'), "invalid_field", "deadline", "bim-n5"),
    ("max_attempts_2_64", req("bim-n6", extra=b',"max_attempts":18446744073709551616'), "invalid_field", "max_attempts", "bim-n6"),
    ("image_size_2_64", req("bim-n7", type_="image", body=b'{"url":"https://cdn.example/i.png","size":18446744073709551616}'),
     "invalid_field", "body.size", "bim-n7"),
    ("location_lat_1e400", req("bim-n8", provider="sender", type_="location", body=b'{"lat":1e400,"lng":0}'),
     "invalid_field", "body.lat", "bim-n8"),
    # Wrong types.
    ("to_null", b'{"id":"bim-w1","provider":"gewe","type":"text","to":null,"body":{"text":"hi"}}', "invalid_field", "to", "bim-w1"),
    ("provider_array", b'{"id":"bim-w2","provider":["gewe"],"type":"text","to":"x","body":{"text":"hi"}}', "invalid_field", "provider", "bim-w2"),
    ("text_number", req("bim-w3", body=b'{"text":42}'), "invalid_field", "body.text", "bim-w3"),
    ("max_attempts_string", req("bim-w4", extra=b',"max_attempts":"3"'), "invalid_field", "max_attempts", "bim-w4"),
    ("deadline_bool", req("bim-w5", extra=b',"deadline":true'), "invalid_field", "deadline", "bim-w5"),
    ("account_number", req("bim-w6", extra=b',"account":7'), "invalid_field", "account", "bim-w6"),
    ("id_object", b'{"id":{"v":"bim-w7"},"provider":"gewe","type":"text","to":"x","body":{"text":"hi"}}', "invalid_field", "id", POS),
    # Duplicate member names: refused, naming the member (the first id names the request).
    ("duplicate_id", b'{"id":"bim-k1","id":"bim-k1-other","provider":"gewe","type":"text","to":"x","body":{"text":"hi"}}',
     "invalid_field", "id", "bim-k1"),
    ("duplicate_body_member", req("bim-k2", body=b'{"text":"a","text":"b"}'), "invalid_field", "body.text", "bim-k2"),
    ("duplicate_body_member_escaped", req("bim-k3", body=b'{"text":"a","te\\u0078t":"b"}'), "invalid_field", "body.text", "bim-k3"),
    ("duplicate_in_ext", req("bim-k4", extra=b',"ext":{"a":{"b":1,"b":2}}'), "invalid_field", "ext.a.b", "bim-k4"),
    ("duplicate_in_provider_fields", req("bim-k5", provider="im", extra=b',"provider_fields":{"channel":"PC","channel":"WX"}'),
     "invalid_field", "provider_fields.channel", "bim-k5"),
    # Names this worker does not know.
    ("unknown_provider", req("bim-x1", provider="fax-co"), "unknown_provider", "provider", "bim-x1"),
    ("unknown_type", req("bim-x2", type_="fax"), "unsupported_type", "type", "bim-x2"),
    ("type_missing", b'{"id":"bim-x4","provider":"gewe","to":"x","body":{"text":"hi"}}', "invalid_field", "type", "bim-x4"),
    ("type_null", b'{"id":"bim-x5","provider":"gewe","type":null,"to":"x","body":{"text":"hi"}}', "invalid_field", "type", "bim-x5"),
    ("unknown_account", req("bim-x3", extra=b',"account":"nope"'), "unknown_account", "account", "bim-x3"),
    # Sizes around worker.max_request_bytes (1 MiB).
    ("over_limit_by_one", padded_to(req("bim-s1"), MAX_REQUEST_BYTES + 1), "too_large", "message", POS),
    ("over_limit_1_5_mb", padded_to(req("bim-s2"), 3 * MAX_REQUEST_BYTES // 2), "too_large", "message", POS),
    # Under the limit but just under librdkafka's default message.max.bytes (1000000): its DLQ
    # record (bytes + headers) once was over the worker producer's limit and hung the worker.
    ("near_producer_default", padded_to(req("bim-s3", extra=b',"zz":1'), 999_950), "invalid_field", "zz", "bim-s3"),
    # Nothing to decode.
    ("empty_value", b"", "invalid_json", "message", POS),
    ("tombstone", None, "invalid_json", "message", POS),
    ("whitespace_only", b"  \n ", "invalid_json", "message", POS),
    ("json_null", b"null", "invalid_json", "message", POS),
    ("json_string", b'"bim"', "invalid_json", "message", POS),
]

# The result's type where it is not the request's own "text": a type that is missing or not one of
# the types is reported as "" (it once said "text", the decoder's default).
RESULT_TYPE = {"unknown_type": "", "huge_type_value": "", "type_missing": "", "type_null": "", "json_string": ""}

# Produced after the bad ones: all delivered (the boundary one is exactly max_request_bytes long).
VALID = [
    ("valid_at_limit", padded_to(req("bim-ok-limit", body=b'{"text":"' + b"y" * (MAX_REQUEST_BYTES - 200) + b'"}'), MAX_REQUEST_BYTES)),
    # Deadlines far off ("none" as INT64_MAX, 9999-12-31): delivered, not wrapped into the past.
    ("valid_deadline_int64_max", req("bim-ok-dmax", to="wxid_dmax", extra=b',"deadline":9223372036854775807')),
    ("valid_deadline_9999", req("bim-ok-d9999", to="wxid_d9999", extra=b',"deadline":253402300799999')),
] + [(f"valid_{i}", req(f"bim-ok-{i}", to=f"wxid_after_{i}")) for i in range(8)]

# Records too large even for the worker's producer (max_request_bytes + 64 KiB): no copy in the DLQ.
VALUE_OMITTED = {"over_limit_1_5_mb"}


def produce(bootstrap, records):
    """Produces (key, value) records one by one, in order; returns {key: (partition, offset)}."""
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4 * MAX_REQUEST_BYTES,
                  "enable.idempotence": True, "linger.ms": 0})
    placed = {}
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append((msg.key(), err))
        else:
            placed[msg.key().decode()] = (msg.partition(), msg.offset())

    for key, value in records:
        p.produce(REQUESTS, key=key.encode(), value=value, on_delivery=report)
        p.poll(0)
    assert p.flush(60) == 0, "records not acknowledged"
    assert not errors, errors
    return placed


def consume(bootstrap, topic, count, timeout=60):
    """`count` records of `topic` from the beginning of every partition (bytes exact)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bim-{topic}-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "receive.message.max.bytes": 100_000_000})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                out.append(m)
        return out
    finally:
        c.close()


def committed(bootstrap, group, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in c.committed([TopicPartition(REQUESTS, p) for p in partitions], timeout=10)}
    finally:
        c.close()


class BadInputMatrixTest(unittest.TestCase):
    def test_every_bad_input_is_answered_and_the_offset_moves_on(self):
        started = time.monotonic()
        names = [c[0] for c in CASES]
        self.assertEqual(len(names), len(set(names)))
        workdir = h.Workdir("bad-input-matrix").path
        sim = h.Simulator(workdir)
        worker = h.Worker(workdir, sim)
        try:
            worker.wait_ready()
            placed = produce(worker.bootstrap, [(c[0], c[1]) for c in CASES] + VALID)
            total = len(CASES) + len(VALID)

            results = {}
            for m in consume(worker.bootstrap, "sendq.results", total):
                r = json.loads(m.value())
                results[(r["source"]["topic"], r["source"]["partition"], r["source"]["offset"])] = (m.key().decode(), r)
            self.assertEqual(len(results), total, "one result per record")
            dlq = {}
            for m in consume(worker.bootstrap, "sendq.dlq", len(CASES)):
                hd = {k: (v or b"").decode() for k, v in (m.headers() or [])}
                dlq[(hd.get("sendq-source-topic"), int(hd.get("sendq-source-partition", -1)),
                     int(hd.get("sendq-source-offset", -1)))] = (m, hd)
            self.assertEqual(len(dlq), len(CASES), "one DLQ record per bad record, and none for the valid ones")

            for name, raw, kind, field, rid in CASES:
                with self.subTest(case=name):
                    part, off = placed[name]
                    where = (REQUESTS, part, off)
                    self.assertIn(where, results, "no result for this record")
                    key, r = results[where]
                    expected_id = rid if rid is not POS else f"{REQUESTS}:{part}:{off}"
                    self.assertEqual(r["id"], expected_id)
                    self.assertEqual(key, expected_id)
                    self.assertEqual(r["status"], "rejected")
                    self.assertEqual(r["attempts"], 0)
                    # created_at: the record's Kafka timestamp, as for a delivered request (it was null)
                    self.assertIsInstance(r["created_at"], int)
                    self.assertGreater(r["created_at"], 1_700_000_000_000)
                    if name in RESULT_TYPE:
                        self.assertEqual(r["type"], RESULT_TYPE[name])
                    elif b'"type":"text"' in (raw or b"") and r["provider"]:
                        self.assertEqual(r["type"], "text")
                    self.assertEqual(r["error"]["kind"], kind, r["error"])
                    msg = r["error"]["message"]
                    self.assertTrue(msg.startswith(field + ":") or (len(field) > 64 and msg.startswith(field)), msg[:200])
                    self.assertLessEqual(len(msg.encode()), 1024, "error messages are capped")

                    self.assertIn(where, dlq, "no DLQ record for this record")
                    m, hd = dlq[where]
                    self.assertEqual(m.key().decode(), expected_id)
                    self.assertEqual(hd["sendq-status"], "rejected")
                    self.assertEqual(hd["sendq-error-kind"], kind)
                    self.assertEqual(hd["sendq-error-message"], msg)
                    if name in VALUE_OMITTED:
                        self.assertIsNone(m.value())
                        self.assertIn(f"the original value ({len(raw)} bytes) is too large", hd.get("sendq-value-omitted", ""))
                    else:
                        self.assertNotIn("sendq-value-omitted", hd)
                        self.assertEqual(m.value(), raw, "the DLQ holds the original bytes")  # None for the tombstone

            for name, _ in VALID:
                part, off = placed[name]
                _, r = results[(REQUESTS, part, off)]
                self.assertEqual(r["status"], "delivered", (name, r.get("error")))
            calls = sim.requests()
            self.assertEqual(len(calls), len(VALID), "only the valid requests reached a provider")

            # The group's committed offsets reach the end of every partition written to.
            ends = {}
            for part, off in placed.values():
                ends[part] = max(ends.get(part, -1), off + 1)
            h.wait_for(lambda: all(committed(worker.bootstrap, "sendq-worker", list(ends)).get(p, -1) >= end
                                   for p, end in ends.items()), 30, "the committed offsets to pass every record")

            self.assertIsNone(worker.proc.poll(), "the worker is still running")
            self.assertEqual(h.http_get(worker.metrics_url + "/healthz")[0], 200)
            m = worker.metrics()
            self.assertEqual(h.metric(m, "sendq_dlq_records_total"), len(CASES))
            # A rejection of a configured provider and account is counted under them, as its
            # result says (they were "unknown"): here those whose result names gewe/default.
            gewe_rejects = sum(1 for _, r in results.values() if r["status"] == "rejected"
                               and r["provider"] == "gewe" and r["account"] == "default")
            self.assertGreater(gewe_rejects, 10)
            self.assertEqual(h.metric(m, "sendq_deliveries_total", provider="gewe", account="default", status="rejected"),
                             gewe_rejects)
            self.assertEqual(h.metric(m, "sendq_dlq_records_total", error_kind="too_large"),
                             sum(1 for c in CASES if c[2] == "too_large"))
        finally:
            rc = worker.stop()
            sim.stop()
        self.assertEqual(rc, 0, "the worker stops cleanly on SIGTERM")
        print(f"\n{len(CASES)} bad records, {len(VALID)} valid, {time.monotonic() - started:.1f} s", file=sys.stderr)


class MissingCredentialsTest(unittest.TestCase):
    """An account without its token is a configuration error: the worker does not start."""

    def run_worker(self, config_text, env_extra=None):
        workdir = h.Workdir("bad-config").path
        path = os.path.join(workdir, "sendq.toml")
        with open(path, "w") as f:
            f.write(config_text)
        env = dict(os.environ)
        env.pop("SENDQ_GEWE_TOKEN_FOR_TEST", None)
        env.update({"SENDQ_KAFKA_BROKERS": "", "SENDQ_METRICS_ADDR": f"127.0.0.1:{h.free_port()}",
                    "SENDQ_KAFKA_EMBEDDED_BOOTSTRAP_FILE": os.path.join(workdir, "bootstrap"), "SENDQ_LOG_FORMAT": "text"})
        env.update(env_extra or {})
        return subprocess.run([h.WORKER, "--config", path], capture_output=True, timeout=30, env=env)

    def test_a_metrics_port_in_use_stops_the_start_naming_metrics_addr(self):
        with open(h.DEMO_CONFIG) as f:
            base = f.read()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            p = self.run_worker(base, {"SENDQ_METRICS_ADDR": f"127.0.0.1:{port}"})
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.assertEqual(p.returncode, 1, out)
        self.assertIn(f"metrics.addr (SENDQ_METRICS_ADDR) 127.0.0.1:{port}: ", out)
        self.assertIn("Address already in use", out)

    def test_settings_found_bad_at_start_exit_2_naming_them_before_anything_starts(self):
        # (exit 2 is what systemd's RestartPreventExitStatus and the docs take for a configuration
        # error: a bad metrics.addr used to be found after Kafka and the pipeline, exiting 1)
        with open(h.DEMO_CONFIG) as f:
            base = f.read()
        for name, env, says in [
                ("metrics.addr without a port", {"SENDQ_METRICS_ADDR": "9464"}, "metrics.addr (SENDQ_METRICS_ADDR)"),
                ("metrics.addr port out of range", {"SENDQ_METRICS_ADDR": "127.0.0.1:70000"}, "metrics.addr (SENDQ_METRICS_ADDR)"),
                ("empty group id", {"SENDQ_KAFKA_GROUP_ID": ""}, "kafka.group_id: must not be empty"),
                ("no brokers where the embedded Kafka is not wanted", {"SENDQ_KAFKA_EMBEDDED": "never"},
                 "kafka.brokers (SENDQ_KAFKA_BROKERS) is empty, and kafka.embedded (SENDQ_KAFKA_EMBEDDED) is \"never\"")]:
            with self.subTest(name):
                p = self.run_worker(base, env)
                out = (p.stdout + p.stderr).decode(errors="replace")
                self.assertEqual(p.returncode, 2, out)
                self.assertIn("sendq-worker: configuration error: " + says, out)
                self.assertNotIn("started the embedded Kafka", out, "it started Kafka before it found the error")
        # and a --config that is a directory (a bind mount of a missing file) is not read as empty
        workdir = h.Workdir("config-dir").path
        p = subprocess.run([h.WORKER, "--config", workdir], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stderr.decode(), f"sendq-worker: configuration error: {workdir}: the configuration file is not a "
                                            "regular file\n")

    def test_the_gateways_api_keys_are_not_read_by_the_worker(self):
        # given the shared file naming a key file only the gateway's user could read (here: none),
        # and an empty SENDQ_GATEWAY_API_KEYS in the worker's environment (both stopped it, exit 2)
        workdir = h.Workdir("worker-gateway-keys").path
        with open(h.DEMO_CONFIG) as f:
            text = f.read()
        line = '# api_keys_file = "/etc/sendq/gateway-api-keys"'
        self.assertIn(line, text)
        config = os.path.join(workdir, "sendq.toml")
        with open(config, "w") as f:
            f.write(text.replace(line, 'api_keys_file = "/nonexistent/gateway-api-keys"'))
        sim = h.Simulator(workdir)
        worker = h.Worker(workdir, sim, config=config, env_extra={"SENDQ_GATEWAY_API_KEYS": ""})
        try:
            # when the worker starts and reloads, then it runs, and delivers
            worker.wait_ready()
            worker.proc.send_signal(signal.SIGHUP)
            h.wait_for(lambda: "configuration reloaded" in open(worker.log_path).read(), 10, "the reload")
            req = {"id": "keys-not-mine", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": "hi"}}
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("k", json.dumps(req))])
            self.assertEqual(h.kcat_results_by_id(worker.bootstrap, 1, timeout=30)["keys-not-mine"]["status"], "delivered")
        finally:
            h.stop_worker_and_simulator(worker, sim)
        # and the gateway on the same file still refuses to start without its keys
        p = subprocess.run([h.GATEWAY, "--config", config], capture_output=True, timeout=30,
                           env=dict(os.environ, SENDQ_KAFKA_BROKERS="127.0.0.1:1"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("gateway.api_keys_file: cannot read '/nonexistent/gateway-api-keys'", p.stderr.decode())

    def test_librdkafka_settings_that_would_undo_at_least_once_stop_the_start(self):
        # (with a cooperative assignor the worker used to start, log "partitions assigned" and
        # fetch nothing: librdkafka refuses an eager assign() under the cooperative protocol)
        with open(h.DEMO_CONFIG) as f:
            base = f.read()
        for key, value, says in [("partition.assignment.strategy", '"cooperative-sticky"', "rebalancing is eager"),
                                 ("enable.auto.commit", "true", "commits each offset itself")]:
            with self.subTest(key=key):
                p = self.run_worker(base + f'\n[kafka.librdkafka]\n"{key}" = {value}\n')
                out = (p.stdout + p.stderr).decode(errors="replace")
                self.assertEqual(p.returncode, 2, out)
                self.assertIn(f"configuration error: kafka.librdkafka.{key}: ", out)
                self.assertIn(says, out)

    def test_an_account_without_its_token_stops_the_start(self):
        with open(h.DEMO_CONFIG) as f:
            base = f.read()
        token_line = 'token = "demo-gewe-token"            # production: token_env = "GEWE_TOKEN"\n'
        self.assertIn(token_line, base)
        variants = {
            "missing": base.replace(token_line, ""),
            "empty": base.replace(token_line, 'token = ""\n'),
            "env_unset": base.replace(token_line, 'token_env = "SENDQ_GEWE_TOKEN_FOR_TEST"\n'),
            "file_missing": base.replace(token_line, 'token_file = "/nonexistent/sendq/gewe-token"\n'),
        }
        for name, text in variants.items():
            with self.subTest(variant=name):
                p = self.run_worker(text)
                out = (p.stdout + p.stderr).decode(errors="replace")
                self.assertNotEqual(p.returncode, 0, out)
                self.assertIn("providers.gewe.default", out)
                self.assertIn("token", out)
                self.assertNotIn("consuming", out)
        # Control: the same configuration with the token's variable set starts and gets ready.
        workdir = h.Workdir("bad-config-control").path
        path = os.path.join(workdir, "sendq.toml")
        with open(path, "w") as f:
            f.write(variants["env_unset"])
        sim = h.Simulator(workdir)
        worker = h.Worker(workdir, sim, config=path, env_extra={"SENDQ_GEWE_TOKEN_FOR_TEST": "t0ken"})
        try:
            worker.wait_ready()
        finally:
            self.assertEqual(worker.stop(), 0)
            sim.stop()


if __name__ == "__main__":
    h.main()
