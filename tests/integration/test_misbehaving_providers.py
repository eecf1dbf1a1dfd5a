#!/usr/bin/env python3
"""Issue 8 point 4, misbehaving providers, with the real binaries: the simulator answers in every odd
way a provider (or the proxy in front of it) may: no answer, a slow drip of bytes, a huge body,
an HTML page, the wrong Content-Type, chunked replies, Connection: close after each reply, HTTP/1.0,
redirects. For each, requests to every provider end with the outcome docs/architecture.md
("Misbehaving providers") gives: status, error kind, attempts and the message. Then, with the fault
cleared, normal requests are delivered (the connection pool recovered), and /metrics counts it all.

One worker and one simulator serve every case in turn; the request timeout is 1 s so that the
cases without an answer stay short."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from mixed_requests import AMR  # noqa: E402
from policy_support import gewe_account, write_config  # noqa: E402

PROVIDERS = ("sender", "gewe", "im", "gps")
TIMEOUT_MS = 1000
MAX_ATTEMPTS = 2


def send_request(rid, provider, account=None):
    """A small valid request whose provider call carries `rid` in its body (the faults match it)."""
    created = int(time.time() * 1000)
    if provider == "gps":
        r = {"id": rid, "provider": "gps", "type": "voice", "from": "6", "to": "861234567890123",
             "body": {"data_base64": AMR, "format": "amr", "duration_ms": 2000}, "created_at": created}
    else:
        to = {"sender": "148992289019003396", "gewe": "34757816141@chatroom", "im": "user1"}[provider]
        r = {"id": rid, "provider": provider, "type": "text", "from": "u0001", "to": to, "body": {"text": rid},
             "created_at": created}
    if account:
        r["account"] = account
    return r


class MisbehavingProvidersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = h.Workdir("misbehaving").path
        cls.sim = h.Simulator(cls.dir)
        # gewe account "follow" follows one same-origin redirect; the defaults follow none.
        follow = gewe_account("follow", cls.sim.base_url, follow_redirects=1)
        config = write_config(cls.dir, {"request_timeout_ms": TIMEOUT_MS, "max_attempts": MAX_ATTEMPTS,
                                        "retry_backoff_ms": 50, "max_retry_backoff_ms": 100},
                              accounts_extra=follow)
        cls.worker = h.Worker(cls.dir, cls.sim, config=config)
        cls.worker.wait_ready()
        cls.produced = 0  # results expected on sendq.results so far
        cls.expected = {}  # (provider, account, status, kind) -> count, for /metrics
        cls.sender_retries = 0
        cls.ambiguous_attempts = 0

    @classmethod
    def tearDownClass(cls):
        h.stop_worker_and_simulator(cls.worker, cls.sim)

    # ---- helpers ----

    def run_requests(self, reqs, timeout=60):
        """Produces `reqs`, waits for their results; {id: result}."""
        cls = type(self)
        h.kcat_produce(self.worker.bootstrap, "sendq.requests", [(r["id"], json.dumps(r)) for r in reqs])
        cls.produced += len(reqs)
        results = h.kcat_consume_until(self.worker.bootstrap, "sendq.results", cls.produced, timeout=timeout)
        wanted = {r["id"] for r in reqs}
        got = {}
        for _, v, _ in results:
            res = json.loads(v)
            if res["id"] in wanted:
                self.assertNotIn(res["id"], got, f"two results for {res['id']}")
                got[res["id"]] = res
        self.assertEqual(set(got), wanted)
        for res in got.values():
            key = (res["provider"], res["account"], res["status"], (res["error"] or {}).get("kind", ""))
            cls.expected[key] = cls.expected.get(key, 0) + 1
        return got

    def faulted(self, case, rule, providers=PROVIDERS, account=None):
        """Sets `rule` for requests of this case only, sends one request per provider; {provider: result}."""
        marker = f"{case}-fault-"
        self.sim.set_faults([{"match": marker, **rule}])
        reqs = [send_request(f"{marker}{p}", p, account) for p in providers]
        got = self.run_requests(reqs)
        return {r["provider"]: got[r["id"]] for r in reqs}

    def assert_recovers(self, case, per_provider=2):
        """With the fault cleared, normal requests to every provider are delivered at the first try."""
        self.sim.set_faults([])
        before = h.metric(self.worker.metrics(), "sendq_deliveries_total", status="delivered")
        reqs = [send_request(f"{case}-after-{p}-{i}", p) for i in range(per_provider) for p in PROVIDERS]
        got = self.run_requests(reqs)
        for res in got.values():
            self.assertEqual((res["status"], res["attempts"], res["error"]), ("delivered", 1, None), res)
        after = h.metric(self.worker.metrics(), "sendq_deliveries_total", status="delivered")
        self.assertEqual(after - before, len(reqs), "/metrics counts the deliveries after recovery")

    def assert_ambiguous(self, results, what):
        """No usable answer after the request was written: sender (dedupes by getMessageId) is
        retried until max_attempts; the others end failed/ambiguous after one attempt."""
        type(self).sender_retries += MAX_ATTEMPTS - 1
        type(self).ambiguous_attempts += MAX_ATTEMPTS + 3
        s = results["sender"]
        self.assertEqual((s["status"], s["error"]["kind"], s["attempts"]), ("failed", "retries_exhausted", MAX_ATTEMPTS), s)
        self.assertIn(f"{MAX_ATTEMPTS} attempts failed; last: ", s["error"]["message"])
        self.assertIn(what, s["error"]["message"])
        for p in ("gewe", "im", "gps"):
            r = results[p]
            self.assertEqual((r["status"], r["error"]["kind"], r["attempts"]), ("failed", "ambiguous", 1), r)
            self.assertIn(what, r["error"]["message"])
            self.assertIn(f"may have been delivered; {p} does not deduplicate, so it is not retried", r["error"]["message"])
            self.assertIsNone(r["http_status"], r)

    def assert_delivered(self, results):
        for p, r in results.items():
            self.assertEqual((r["status"], r["attempts"], r["error"], r["http_status"]), ("delivered", 1, None, 200), r)
            self.assertTrue(r["provider_message_id"], r)

    def sim_records(self, marker):
        return [x for x in self.sim.requests() if marker in x["body"]]

    # ---- the cases, in the order unittest runs them (alphabetical) ----

    def test_01_no_answer_times_out(self):
        results = self.faulted("timeout", {"action": "timeout"})
        self.assert_ambiguous(results, f"timeout_after_write: no complete response within {TIMEOUT_MS}ms (no response headers)")
        self.assertEqual(len(self.sim_records("timeout-fault-sender")), MAX_ATTEMPTS)
        self.assert_recovers("timeout")

    def test_02_chunked_replies_are_delivered(self):
        self.assert_delivered(self.faulted("chunked", {"action": "chunked"}))
        self.assert_recovers("chunked")

    def test_03_connection_close_after_each_reply(self):
        # three requests per provider, one after another on the same key: each on a new connection
        self.sim.set_faults([{"match": "close-fault-", "action": "close_after_reply"}])
        reqs = [send_request(f"close-fault-{p}-{i}", p) for i in range(3) for p in PROVIDERS]
        got = self.run_requests(reqs)
        self.assert_delivered({r["id"]: got[r["id"]] for r in reqs})
        self.assertEqual(len(self.sim_records("close-fault-")), len(reqs), "no request was sent twice")
        self.assert_recovers("close")

    def test_04_slow_drip_is_cut_by_the_deadline_of_the_whole_reply(self):
        # the body comes one byte every 200 ms (each read gets data quickly; the whole takes 20 s+)
        start = time.monotonic()
        results = self.faulted("drip", {"action": "slow_drip", "interval_ms": 200})
        took = time.monotonic() - start
        self.assert_ambiguous(results, f"timeout_after_write: no complete response within {TIMEOUT_MS}ms (HTTP 200, Content-Length ")
        self.assertIn("body bytes received)", results["gewe"]["error"]["message"])
        self.assertLess(took, 15, "the drip was not waited out")
        # the provider did process them: that is why a timeout after writing is ambiguous
        self.assertTrue(all(x["accepted"] and x["fault"] == "slow_drip" for x in self.sim_records("drip-fault-")))
        self.assert_recovers("drip")

    def test_05_http_1_0_replies_are_delivered(self):
        self.assert_delivered(self.faulted("http10", {"action": "http10"}))
        self.assert_recovers("http10")

    def test_06_wrong_content_type_with_the_right_body_is_delivered(self):
        self.assert_delivered(self.faulted("ctype", {"action": "wrong_content_type"}))
        self.assert_recovers("ctype")

    def test_07_huge_body_is_capped(self):
        results = self.faulted("huge", {"action": "huge_body"})  # 64 MiB
        self.assert_ambiguous(results, "body_too_large: response body over the limit of 1048576 bytes "
                                       "(HTTP 200, Content-Length 67108864)")
        self.assert_recovers("huge")

    def test_08_html_instead_of_json_is_ambiguous(self):
        # a 200 whose body is not the provider's reply (a proxy's page, a broken release): the
        # request may have been taken, so it is ambiguous (CONTRACT.md), not a permanent refusal
        results = self.faulted("html", {"action": "non_json"})
        type(self).sender_retries += MAX_ATTEMPTS - 1
        type(self).ambiguous_attempts += MAX_ATTEMPTS + 3
        s = results["sender"]  # dedupes by getMessageId: retried
        self.assertEqual((s["status"], s["error"]["kind"], s["attempts"], s["http_status"]),
                         ("failed", "retries_exhausted", MAX_ATTEMPTS, 200), s)
        self.assertIn("sender reply unusable: ", s["error"]["message"])
        for p in ("gewe", "im", "gps"):
            r = results[p]
            self.assertEqual((r["status"], r["error"]["kind"], r["attempts"], r["http_status"]),
                             ("failed", "ambiguous", 1, 200), r)
            self.assertIn(f"{p} reply unusable: ", r["error"]["message"])
            self.assertIn("(Content-Type text/html; charset=utf-8)", r["error"]["message"])
            self.assertIn(f"may have been delivered; {p} does not deduplicate, so it is not retried", r["error"]["message"])
        self.assert_recovers("html")

    def test_09_redirects_are_not_followed_by_default(self):
        results = self.faulted("redirect", {"action": "redirect"})  # 302 to the same URL
        for p, r in results.items():
            self.assertEqual((r["status"], r["error"]["kind"], r["attempts"], r["http_status"]),
                             ("failed", "provider_error", 1, 302), r)
            msg = r["error"]["message"]
            self.assertIn(f"{p} answered HTTP 302 redirecting to {self.sim.base_url}/", msg)
            self.assertIn("not followed (the account's follow_redirects is 0)", msg)
        # the sender's query carries its sign: never in a message
        self.assertIn("/sender/v1/handleBasicMessage?...: not followed", results["sender"]["error"]["message"])
        self.assertNotIn("demo-sign", json.dumps(results))
        self.assertEqual(len(self.sim_records("redirect-fault-")), 4, "no redirect was followed")
        self.assert_recovers("redirect")

    def test_10_an_account_may_follow_same_origin_redirects(self):
        # the first call is answered 307 to the same URL, the second normally
        results = self.faulted("follow", {"action": "redirect", "status": 307, "times": 1}, ("gewe",), "follow")
        r = results["gewe"]
        self.assertEqual((r["status"], r["attempts"], r["http_status"], r["account"]), ("delivered", 1, 200, "follow"), r)
        seen = self.sim_records("follow-fault-")
        self.assertEqual([(x["fault"], x["status"]) for x in seen], [("redirect", 307), ("none", 200)])
        self.assertEqual(seen[0]["body"], seen[1]["body"], "the same body was sent again")
        self.assertEqual(seen[0]["path"], seen[1]["path"])
        # another origin is never followed: the request's headers carry the token
        elsewhere = "http://localhost:%d/message/postText" % self.sim.port
        results = self.faulted("origin", {"action": "redirect", "location": elsewhere}, ("gewe",), "follow")
        r = results["gewe"]
        self.assertEqual((r["status"], r["error"]["kind"], r["attempts"]), ("failed", "provider_error", 1), r)
        self.assertIn(f"answered HTTP 302 redirecting to {elsewhere}: not followed (another origin", r["error"]["message"])
        # and a redirect that comes again is followed once only
        results = self.faulted("again", {"action": "redirect", "status": 308}, ("gewe",), "follow")
        r = results["gewe"]
        self.assertEqual((r["status"], r["error"]["kind"]), ("failed", "provider_error"), r)
        self.assertIn("not followed (already followed the account's follow_redirects = 1)", r["error"]["message"])
        self.assertEqual(len(self.sim_records("again-fault-")), 2)
        self.assert_recovers("follow")

    def test_11_a_success_reply_without_the_providers_id_is_delivered(self):
        # CONTRACT.md: the body's code decides success (gewe ret == 200, im success == true). A
        # success without the documented id is still a message the provider took: delivered, not
        # failed/ambiguous (and in the DLQ, whence a redrive would send it twice).
        results = self.faulted("noid", {"action": "no_message_id"})
        for p, r in results.items():
            self.assertEqual((r["status"], r["attempts"], r["error"], r["http_status"]), ("delivered", 1, None, 200), r)
        self.assertEqual({p: (r["provider_message_id"], r["provider_code"]) for p, r in results.items()},
                         {"sender": ("noid-fault-sender", "200"),  # getMessageId is our id
                          "gewe": (None, "200"), "im": (None, "true"),
                          "gps": ("noid-fault-gps", "0")})  # gps's reply never carries one
        seen = self.sim_records("noid-fault-")
        self.assertEqual(sorted((x["provider"], x["accepted"], x["fault"]) for x in seen),
                         [(p, True, "no_message_id") for p in sorted(PROVIDERS)], "each sent once, and taken")
        # and a second one of gewe's, within the minute
        again = self.faulted("noid2", {"action": "no_message_id"}, ("gewe",))["gewe"]
        self.assertEqual((again["status"], again["provider_message_id"]), ("delivered", None), again)
        # the worker says so once per provider account, naming the request and what the reply
        # lacked, and counts every one
        with open(self.worker.log_path, errors="replace") as f:
            warned = [json.loads(line) for line in f if "reply has no usable message id" in line]
        self.assertEqual(sorted((w["level"], w["id"], w["provider"], w["account"], w["reply"]) for w in warned),
                         [("warn", "noid-fault-gewe", "gewe", "default", 'gewe ret 200 without "data.newMsgId"'),
                          ("warn", "noid-fault-im", "im", "default", 'im success true but missing "data._id"')])
        m = self.worker.metrics()
        self.assertEqual({p: h.metric(m, "sendq_deliveries_without_provider_id_total", provider=p, account="default")
                          for p in PROVIDERS}, {"sender": 0, "gewe": 2, "im": 1, "gps": 0})
        self.assert_recovers("noid")

    def test_99_metrics_count_every_outcome(self):
        m = self.worker.metrics()
        for (provider, account, status, kind), n in type(self).expected.items():
            self.assertEqual(h.metric(m, "sendq_deliveries_total", provider=provider, account=account, status=status,
                                      error_kind=kind), n, (provider, account, status, kind))
        self.assertEqual(h.metric(m, "sendq_deliveries_total"), type(self).produced)
        # sender's ambiguous attempts (timeout, slow drip, huge body, HTML) were retried, nothing else was
        self.assertEqual(h.metric(m, "sendq_retries_total"), type(self).sender_retries)
        self.assertEqual(h.metric(m, "sendq_retries_total", provider="sender"), type(self).sender_retries)
        self.assertEqual(h.metric(m, "sendq_attempts_total", outcome="ambiguous"), type(self).ambiguous_attempts)


if __name__ == "__main__":
    h.main()
