#!/usr/bin/env python3
"""Issue 2's end-to-end check with the real binaries: 1,000 mixed requests for all four providers,
produced with kcat to the worker's embedded Kafka, come back as exactly 1,000 results (read with
kcat), each with the right id and status; the simulator received exactly the documented request
for each; malformed requests between them are rejected with the problem named and land in the DLQ;
/metrics, scraped over HTTP during the run, moves."""
import json
import re
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from expected_calls import expected_call, parse_query  # noqa: E402
from mixed_requests import request  # noqa: E402

N_GOOD = 1000


class PipelineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = h.Workdir("pipeline").path
        cls.sim = h.Simulator(cls.dir)
        cls.worker = h.Worker(cls.dir, cls.sim)

    @classmethod
    def tearDownClass(cls):
        h.stop_worker_and_simulator(cls.worker, cls.sim)

    def test_1000_mixed_requests_and_malformed_ones_between_them(self):
        # given a ready worker
        self.worker.wait_ready()
        before = self.worker.metrics()
        self.assertEqual(h.metric(before, "sendq_requests_consumed_total"), 0)

        good = [request(i) for i in range(N_GOOD)]
        records = [(r["id"], json.dumps(r, ensure_ascii=False)) for r in good]
        # malformed requests between good ones
        missing_to = {"id": "bad-missing-to", "provider": "gewe", "type": "text", "body": {"text": "x"}}
        unknown_provider = {"id": "bad-unknown-provider", "provider": "fax", "type": "text", "to": "x", "body": {"text": "x"}}
        records.insert(10, ("junk", "this is not JSON"))
        records.insert(500, ("bad-missing-to", json.dumps(missing_to)))
        records.insert(900, ("bad-unknown-provider", json.dumps(unknown_provider)))
        total = len(records)

        # scrape /metrics while the run goes on
        scrapes = []
        done = threading.Event()

        def scrape():
            while not done.is_set():
                try:
                    scrapes.append(h.metric(self.worker.metrics(), "sendq_requests_consumed_total"))
                except OSError:
                    pass
                time.sleep(0.1)

        scraper = threading.Thread(target=scrape)
        scraper.start()

        # when they are produced with kcat
        h.kcat_produce(self.worker.bootstrap, "sendq.requests", records)
        results_raw = h.kcat_consume_until(self.worker.bootstrap, "sendq.results", total, timeout=180)
        done.set()
        scraper.join()

        # then exactly one result per request, keyed by id (the whole topic: a second result would show)
        results_raw = h.kcat_consume_all(self.worker.bootstrap, "sendq.results")
        results = [json.loads(v) for _, v, _ in results_raw]
        by_id = {}
        for (key, _, _), r in zip(results_raw, results):
            self.assertEqual(key, r["id"], "results are keyed by request id")
            self.assertNotIn(r["id"], by_id, f"duplicate result for {r['id']}")
            by_id[r["id"]] = r

        for req in good:
            r = by_id.get(req["id"])
            self.assertIsNotNone(r, f"no result for {req['id']}")
            self.assertEqual(r["status"], "delivered", r)
            self.assertEqual((r["provider"], r["account"], r["type"], r["to"]),
                             (req["provider"], "default", req["type"], req["to"]))
            self.assertEqual(r["attempts"], 1)
            self.assertEqual(r["http_status"], 200)
            self.assertIsNone(r["error"])
            self.assertEqual(r["created_at"], req["created_at"])
            self.assertEqual(r["source"]["topic"], "sendq.requests")
            self.assertTrue(r["provider_message_id"], r)
            if req["provider"] == "sender":
                self.assertEqual(r["provider_message_id"], req["id"], "getMessageId is our id")
            if req["provider"] == "gewe":
                self.assertTrue(r["provider_message_id"].isdigit() and int(r["provider_message_id"]) > 2**53, r)
            if req["provider"] == "gps":
                self.assertEqual(r["provider_message_id"], req["id"])

        junk = [r for r in results if r["id"].startswith("sendq.requests:")]
        self.assertEqual(len(junk), 1)
        self.assertEqual(junk[0]["status"], "rejected")
        self.assertEqual(junk[0]["error"]["kind"], "invalid_json")
        self.assertEqual(by_id["bad-missing-to"]["status"], "rejected")
        self.assertEqual(by_id["bad-missing-to"]["error"]["kind"], "invalid_field")
        self.assertTrue(by_id["bad-missing-to"]["error"]["message"].startswith("to:"), by_id["bad-missing-to"])
        self.assertEqual(by_id["bad-unknown-provider"]["status"], "rejected")
        self.assertEqual(by_id["bad-unknown-provider"]["error"]["kind"], "unknown_provider")
        self.assertIn("'fax'", by_id["bad-unknown-provider"]["error"]["message"])
        self.assertEqual(by_id["bad-unknown-provider"]["attempts"], 0)

        # the DLQ holds the original bytes of the three rejected requests
        dlq = h.kcat_consume_until(self.worker.bootstrap, "sendq.dlq", 3, timeout=60)
        dlq_values = sorted(v for _, v, _ in dlq)
        self.assertEqual(dlq_values, sorted(["this is not JSON", json.dumps(missing_to), json.dumps(unknown_provider)]))

        # the simulator received exactly the documented request for each good one, once
        received = [x for x in self.sim.requests()]
        self.assertEqual(len(received), N_GOOD, "one HTTP call per good request, none for rejected ones")
        by_key = {}
        for x in received:
            self.assertTrue(x["accepted"], x)
            body = json.loads(x["body"])
            by_key.setdefault(x["path"], []).append((body, x))
        for req in good:
            path, query, headers, body = expected_call(req)
            candidates = by_key.get(path, [])
            match = [x for b, x in candidates if b == body]
            self.assertEqual(len(match), 1, f"{req['id']}: expected exactly one call to {path} with {body}; "
                                            f"first seen: {candidates[0][0] if candidates else None}")
            x = match[0]
            if req["provider"] == "gewe":
                # the 64-bit newMsgId survives digit for digit (never through a double)
                reply_digits = re.search(r'"newMsgId":\s*(\d+)', x["reply"]).group(1)
                self.assertEqual(by_id[req["id"]]["provider_message_id"], reply_digits)
            if query is not None:
                self.assertEqual(parse_query(x["query"]), query)
            for k, v in headers.items():
                self.assertEqual(x["headers"].get(k), v)
            self.assertTrue(x["headers"].get("content-type", "").startswith("application/json"), x["headers"])

        # /metrics moved during the run and adds up at the end
        self.assertTrue(any(0 < s < total for s in scrapes) or len(set(scrapes)) > 1, f"scrapes: {scrapes[:20]}")
        after = self.worker.metrics()
        self.assertEqual(h.metric(after, "sendq_requests_consumed_total"), total)
        self.assertEqual(h.metric(after, "sendq_deliveries_total", status="delivered"), N_GOOD)
        self.assertEqual(h.metric(after, "sendq_deliveries_total", status="rejected"), 3)
        for provider in ("sender", "gewe", "im", "gps"):
            n = sum(1 for r in good if r["provider"] == provider)
            self.assertEqual(h.metric(after, "sendq_deliveries_total", provider=provider, status="delivered"), n)
            self.assertEqual(h.metric(after, "sendq_provider_request_duration_seconds_count", provider=provider), n)


if __name__ == "__main__":
    h.main()
