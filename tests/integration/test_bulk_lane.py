#!/usr/bin/env python3
"""Issue 6: replays and re-drives go to the bulk lane (sendq.bulk), which the worker consumes with
a bounded share of each provider's rate limit, so that a large replay never starves live traffic."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from policy_support import write_config  # noqa: E402


class BulkLaneTest(unittest.TestCase):
    def test_a_large_replay_gets_its_share_and_live_traffic_the_rest(self):
        workdir = h.Workdir("bulk").path
        sim = h.Simulator(workdir, ["--threads", "2"])
        config = write_config(workdir, {"bulk_share_percent": 20})
        with open(config) as f:
            text = f.read().replace('app_id = "demo-gewe-app"\nretry_ambiguous = false',
                                    'app_id = "demo-gewe-app"\nretry_ambiguous = false\nrate_limit = "100/1s"', 1)
        with open(config, "w") as f:
            f.write(text)
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


if __name__ == "__main__":
    h.main()
