#!/usr/bin/env python3
"""Issue 6: replays and re-drives go to the bulk lane (sendq.bulk), which the worker consumes with
a bounded share of each provider's rate limit, so that a large replay never starves live traffic.
A bulk request parked on sendq.retry is bulk traffic again when read back."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from policy_support import write_config  # noqa: E402


class BulkLaneTest(unittest.TestCase):
    def test_a_large_replay_gets_its_share_and_live_traffic_the_rest(self):
        workdir = h.Workdir("bulk").path
        sim = h.Simulator(workdir, ["--threads", "2"])
        config = write_config(workdir, {"bulk_share_percent": 20}, gewe_rate_limit="100/1s")
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()

            def req(i, lane):
                return {"id": f"{lane}-{i:05d}", "provider": "gewe", "type": "text", "to": f"{lane}-{i % 40}@chatroom",
                        "body": {"text": f"{lane} {i}"}}
            # the replay is queued first, then live traffic arrives
            h.kcat_produce(worker.bootstrap, "sendq.bulk", [(f"b{i}", json.dumps(req(i, "bulk"))) for i in range(3000)])
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(f"l{i}", json.dumps(req(i, "live"))) for i in range(800)])
            h.wait_for(lambda: sum(1 for x in sim.requests() if "live-" in x["body"]) >= 800, 60, "the live requests")
            calls = sim.requests()
            live = sorted(x["time_ms"] for x in calls if '"toWxid":"live-' in x["body"])
            bulk = sorted(x["time_ms"] for x in calls if '"toWxid":"bulk-' in x["body"])
            start = live[0] + 1000
            live_rate = sum(1 for t in live if start <= t < start + 5000) / 5.0
            bulk_rate = sum(1 for t in bulk if start <= t < start + 5000) / 5.0
            print(f"bulk lane: live {live_rate:.1f}/s, bulk {bulk_rate:.1f}/s of an account limited to 100/s "
                  f"(bulk share 20%)", file=sys.stderr)
            self.assertGreaterEqual(live_rate, 75, "live traffic keeps most of the limit")
            self.assertLessEqual(bulk_rate, 22, "the replay stays within its share")
            self.assertGreater(bulk_rate, 10, "the replay still moves")
        finally:
            worker.stop()
            sim.stop()


class BulkParkReadBackTest(unittest.TestCase):
    def test_a_bulk_requests_park_read_back_gets_the_bulk_share_and_a_live_ones_the_whole_limit(self):
        # given an account limited to 10/s, of which sendq.bulk gets 20% (2/s)
        workdir = h.Workdir("bulkpark").path
        sim = h.Simulator(workdir)
        config = write_config(workdir, {"bulk_share_percent": 20}, gewe_rate_limit="10/1s")
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()

            def parks(lane, bulk):
                # due now, as the worker parks a request after its first attempt (sendq-bulk: read from
                # sendq.bulk), here in the worker's own encoding, attempt and not_before inline
                now = int(time.time() * 1000)
                recs = [(f"k{i}", json.dumps({"id": f"{lane}-{i:02d}", "provider": "gewe", "type": "text",
                                              "to": f"{lane}-{i}@chatroom", "body": {"text": lane},
                                              "attempt": 1, "not_before": now})) for i in range(20)]
                h.kcat_produce(worker.bootstrap, "sendq.retry", recs, headers=["sendq-bulk=1"] if bulk else [])

            def send_times(lane):
                return sorted(c["time_ms"] for c in sim.requests() if f'"toWxid":"{lane}-' in c["body"])
            # when 20 parks of bulk requests are read back, then 20 of live ones
            parks("parkedbulk", True)
            h.wait_for(lambda: len(send_times("parkedbulk")) == 20, 60, "the 20 parked bulk requests")
            parks("parkedlive", False)
            h.wait_for(lambda: len(send_times("parkedlive")) == 20, 60, "the 20 parked live requests")
            results = h.kcat_results_by_id(worker.bootstrap, 40, 30)
            self.assertEqual({(r["status"], r["attempts"]) for r in results.values()}, {("delivered", 2)})
            self.assertEqual(sorted(results), sorted([f"parkedbulk-{i:02d}" for i in range(20)] +
                                                     [f"parkedlive-{i:02d}" for i in range(20)]))
            # then the bulk ones went at the bulk lane's 2/s, the live ones at the account's 10/s
            bulk, live = send_times("parkedbulk"), send_times("parkedlive")
            bulk_span, live_span = (bulk[-1] - bulk[0]) / 1000, (live[-1] - live[0]) / 1000
            print(f"parks read back: 20 bulk over {bulk_span:.1f} s, 20 live over {live_span:.1f} s "
                  f"(10/s, bulk share 20%)", file=sys.stderr)
            # (at least 9.5 s and 1.9 s; a loaded machine can only stretch them)
            self.assertGreaterEqual(bulk_span, 7.0, "the bulk parks stay within the bulk share")
            self.assertLessEqual(live_span, 5.0, "the live parks get the account's whole limit")
        finally:
            worker.stop()
            sim.stop()


if __name__ == "__main__":
    h.main()
