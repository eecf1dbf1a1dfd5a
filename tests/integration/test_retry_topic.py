#!/usr/bin/env python3
"""Issue 4: a retry due in 60 s travels through sendq.retry and is sent after 60 s, not before,
without a busy loop (the retry partition is paused until the head is due)."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from policy_support import write_config  # noqa: E402


class RetryTopicTest(unittest.TestCase):
    def test_a_retry_due_in_60_s_goes_through_the_retry_topic(self):
        workdir = h.Workdir("retrytopic").path
        sim = h.Simulator(workdir)
        sim.set_faults([{"match": "retry-60", "action": "status", "status": 503, "retry_after": 60, "times": 1}])
        config = write_config(workdir, {"retry_topic_threshold_ms": 30000, "max_attempts": 5})
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()
            req = {"id": "retry-60", "provider": "sender", "type": "text", "from": "u1", "to": "t1", "body": {"text": "later"}}
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(req["id"], json.dumps(req))])
            h.wait_for(lambda: len(sim.requests()) >= 1, 30, "the first attempt")
            # the request is parked on the retry topic with its attempt count and due time
            parked = h.kcat_consume_until(worker.bootstrap, "sendq.retry", 1, timeout=30)
            parked_req = json.loads(parked[0][1])
            self.assertEqual(parked_req["id"], "retry-60")
            self.assertEqual(parked_req["attempt"], 1)
            first = sim.requests()[0]["time_ms"]
            self.assertAlmostEqual(parked_req["not_before"], first + 60000, delta=2000)
            cpu_before = worker.cpu_seconds()
            wait_started = time.monotonic()
            results = h.kcat_consume_until(worker.bootstrap, "sendq.results", 1, timeout=120)
            waited = time.monotonic() - wait_started
            cpu_used = worker.cpu_seconds() - cpu_before
            r = json.loads(results[0][1])
            self.assertEqual(r["status"], "delivered")
            self.assertEqual(r["attempts"], 2)
            calls = sim.requests()
            self.assertEqual(len(calls), 2)
            gap = calls[1]["time_ms"] - calls[0]["time_ms"]
            print(f"retry topic: second attempt {gap} ms after the first; worker CPU {cpu_used:.2f} s over "
                  f"{waited:.0f} s of waiting", file=sys.stderr)
            self.assertGreaterEqual(gap, 60000 - 50)
            self.assertLess(gap, 70000)
            self.assertLess(cpu_used, 0.1 * waited, "no busy loop while the retry waits")
            with open(worker.log_path) as f:
                pauses = sum(1 for line in f if "retry not due yet" in line)
            self.assertLessEqual(pauses, 3, "the partition is paused until due, not polled in a loop")
        finally:
            worker.stop()
            sim.stop()


if __name__ == "__main__":
    h.main()
