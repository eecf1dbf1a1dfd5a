#!/usr/bin/env python3
"""Issue 3, gps: `Command` fetched from body.url by the worker, with a size cap, a timeout, and
the SSRF guard: only http(s), only allowed hosts, and no private/loopback address unless the
account allows it (this test allows loopback on one account, where its file server runs)."""
import base64
import http.server
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from policy_support import write_config  # noqa: E402

AMR = b"#!AMR\n" + bytes(range(256)) * 4
BIG = b"#!AMR\n" + b"\0" * 300000


class Files(http.server.BaseHTTPRequestHandler):
    gets = []  # paths asked for, in order (every server of this class)

    def do_GET(self):
        Files.gets.append(self.path)
        if self.path == "/v/flaky.amr" and Files.gets.count(self.path) < 3:
            # answers 503 twice, then the file: the worker's third and last try gets it
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path in ("/v/down.amr", "/v/down-late.amr"):
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = {"/v/ok.amr": AMR, "/v/big.amr": BIG, "/v/flaky.amr": AMR}.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


def start_files():
    """A file server on a free loopback port, in a thread of its own; Files.gets logs its requests."""
    Files.gets.clear()
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    return files, files.server_address[1]


def loopback_account(base_url, extra=""):
    """The gps account loopback_ok, which fetches from 127.0.0.1 (where start_files serves)."""
    return f"""
[providers.gps.loopback_ok]
base_url = "{base_url}"
token = "demo-gps-token"
app_id = "demo-gps-app"
fetch_allowed_hosts = "127.0.0.1"
fetch_allow_private = "true"
{extra}"""


def gps(rid, url, account):
    return {"id": rid, "provider": "gps", "account": account, "type": "voice", "from": "100200", "to": "860000000000001",
            "body": {"url": url, "format": "amr", "duration_ms": 3000}, "created_at": 1794999000000}


class MediaFetchTest(unittest.TestCase):
    def test_fetches_allowed_urls_and_refuses_the_rest(self):
        files, port = start_files()
        workdir = h.Workdir("fetch").path
        sim = h.Simulator(workdir)
        accounts = loopback_account(sim.base_url, 'fetch_max_bytes = "100000"\n') + f"""
[providers.gps.strict]
base_url = "{sim.base_url}"
token = "demo-gps-token"
app_id = "demo-gps-app"
fetch_allowed_hosts = "127.0.0.1"
"""
        config = write_config(workdir, {}, accounts_extra=accounts)
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()
            base = f"http://127.0.0.1:{port}"
            reqs = [
                gps("fetch-ok", f"{base}/v/ok.amr", "loopback_ok"),
                gps("fetch-private", f"{base}/v/ok.amr", "strict"),
                gps("fetch-host", f"http://localhost:{port}/v/ok.amr", "loopback_ok"),
                gps("fetch-scheme", f"ftp://127.0.0.1:{port}/v/ok.amr", "loopback_ok"),
                gps("fetch-big", f"{base}/v/big.amr", "loopback_ok"),
                gps("fetch-404", f"{base}/v/missing.amr", "loopback_ok"),
                dict(gps("fetch-late", f"{base}/v/late.amr", "loopback_ok"), deadline=1794999001000),
                gps("fetch-flaky", f"{base}/v/flaky.amr", "loopback_ok"),
                gps("fetch-down", f"{base}/v/down.amr", "loopback_ok"),
                # the provider's own check refuses it (gps takes amr only): rejected, nothing fetched
                dict(gps("fetch-mp3", f"{base}/v/mp3.amr", "loopback_ok"),
                     body={"url": f"{base}/v/mp3.amr", "format": "mp3", "duration_ms": 3000}),
                # failing tries whose next one would come after the deadline: expired
                dict(gps("fetch-running-late", f"{base}/v/down-late.amr", "loopback_ok"),
                     deadline=int(time.time() * 1000) + 1500),
            ]
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(r["id"], json.dumps(r)) for r in reqs])
            results = h.kcat_results_by_id(worker.bootstrap, len(reqs), timeout=60)
            # then the allowed one was delivered with the file's base64 as Command, and so was the
            # one whose file server answered 503 twice (a failure that may pass is tried again)
            self.assertEqual(results["fetch-ok"]["status"], "delivered", results["fetch-ok"])
            self.assertEqual(results["fetch-flaky"]["status"], "delivered", results["fetch-flaky"])
            calls = sim.requests()
            self.assertEqual(sorted(json.loads(c["body"])["IdentityID"] for c in calls), ["fetch-flaky", "fetch-ok"],
                             "only the allowed fetches reached the provider")
            self.assertEqual([json.loads(c["body"])["Command"] for c in calls], [base64.b64encode(AMR).decode()] * 2)
            self.assertEqual(Files.gets.count("/v/flaky.amr"), 3)
            # and one that kept failing was tried three times, then ended failed naming the status
            self.assertEqual(Files.gets.count("/v/down.amr"), 3)
            self.assertEqual(Files.gets.count("/v/missing.amr"), 1, "a 404 is not tried again")
            self.assertNotIn("/v/mp3.amr", Files.gets)
            mp3 = results["fetch-mp3"]
            self.assertEqual((mp3["status"], mp3["error"]["kind"]), ("rejected", "invalid_field"), mp3)
            self.assertTrue(mp3["error"]["message"].startswith("body.format:"), mp3["error"])
            running_late = results["fetch-running-late"]
            self.assertEqual((running_late["status"], running_late["error"]["kind"]), ("expired", "expired"), running_late)
            self.assertTrue(running_late["error"]["message"].startswith("deadline: "), running_late["error"])
            self.assertLessEqual(Files.gets.count("/v/down-late.amr"), 2)
            # and each refusal names the field and why
            expect = {
                "fetch-private": ("rejected", "invalid_field", "private, loopback or link-local"),
                "fetch-host": ("rejected", "invalid_field", "not in the account's fetch_allowed_hosts"),
                "fetch-scheme": ("rejected", "invalid_field", "only http and https"),
                "fetch-big": ("rejected", "too_large", "fetch_max_bytes"),
                "fetch-404": ("failed", "http_4xx", "HTTP 404"),
                "fetch-down": ("failed", "http_5xx", "HTTP 502"),
            }
            # and one whose deadline had passed ends expired, its file not fetched
            late = results["fetch-late"]
            self.assertEqual((late["status"], late["error"]["kind"], late["error"]["message"]),
                             ("expired", "expired", "deadline: passed before delivery"), late)
            self.assertNotIn("/v/late.amr", Files.gets)
            self.assertIn("/v/ok.amr", Files.gets)
            for rid, (status, kind, words) in expect.items():
                r = results[rid]
                self.assertEqual((r["status"], r["error"]["kind"]), (status, kind), r)
                self.assertTrue(r["error"]["message"].startswith("body.url:"), r["error"])
                self.assertIn(words, r["error"]["message"])
        finally:
            worker.stop()
            sim.stop()
            files.shutdown()
            files.server_close()

    def test_a_fetched_file_waits_on_the_retry_topic_as_its_url_and_is_fetched_again(self):
        # given an account that fetches from the file server, a worker that parks back-offs over
        # 1 s, and a provider that answers the first call 503 with Retry-After: 2
        files, port = start_files()
        workdir = h.Workdir("fetch-park").path
        sim = h.Simulator(workdir)
        sim.set_faults([{"match": "860000000000777", "action": "status", "status": 503, "retry_after": 2, "times": 1}])
        config = write_config(workdir, {"retry_topic_threshold_ms": 1000, "max_attempts": 3},
                              accounts_extra=loopback_account(sim.base_url))
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()
            req = dict(gps("fetch-park", f"http://127.0.0.1:{port}/v/ok.amr", "loopback_ok"), to="860000000000777")
            # when its request comes
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(req["id"], json.dumps(req))])
            # then it waits on the retry topic as it came, with its URL, not the file it fetched (a
            # parked request is written from its original body: it stays small)
            parked = json.loads(h.kcat_consume_until(worker.bootstrap, "sendq.retry", 1, timeout=30)[0][1])
            self.assertEqual((parked["id"], parked["attempt"]), ("fetch-park", 1))
            self.assertEqual(parked["body"]["url"], req["body"]["url"])
            self.assertNotIn("data_base64", parked["body"])
            # and, read back, is fetched again and delivered with the file as Command
            result = h.kcat_results_by_id(worker.bootstrap, 1, timeout=60)["fetch-park"]
            self.assertEqual((result["status"], result["attempts"]), ("delivered", 2), result)
            self.assertEqual(Files.gets, ["/v/ok.amr", "/v/ok.amr"])
            calls = sim.requests()
            self.assertEqual(len(calls), 2)
            self.assertEqual([json.loads(c["body"])["Command"] for c in calls], [base64.b64encode(AMR).decode()] * 2)
        finally:
            worker.stop()
            sim.stop()
            files.shutdown()
            files.server_close()


if __name__ == "__main__":
    h.main()
