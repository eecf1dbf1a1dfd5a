#!/usr/bin/env python3
"""Deadlines, long Retry-Afters and parking, with the real binaries:
- a request whose deadline passes while it waits (rate limit) ends `expired` and is not sent;
- a Retry-After longer than the request's deadline or max_request_age_ms ends it at once, and one
  throttle reply does not stall its account for longer than max_request_age_ms;
- a request too large to park on sendq.retry still gets its final result, whether the producer or
  the broker refuses the park."""
import contextlib
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from policy_support import gewe_account, write_config  # noqa: E402


def now_ms():
    return int(time.time() * 1000)


@contextlib.contextmanager
def worker_and_simulator(name, faults=(), worker_settings=None, account=None):
    """A simulator answering with `faults`, and a ready worker on it, configured with
    `worker_settings` and the account `account(simulator base URL)` makes, if any; both stopped
    after the block."""
    workdir = h.Workdir(name).path
    sim = h.Simulator(workdir)
    if faults:
        sim.set_faults(list(faults))
    config = write_config(workdir, worker_settings, accounts_extra=account(sim.base_url) if account else "")
    worker = h.Worker(workdir, sim, config=config)
    try:
        worker.wait_ready()
        yield sim, worker
    finally:
        h.stop_worker_and_simulator(worker, sim)


class DeadlineTest(unittest.TestCase):
    def test_a_deadline_that_passes_while_waiting_for_the_rate_limit_ends_expired_unsent(self):
        # given an account allowed one request a second, and six requests on six keys due in 2.5 s
        with worker_and_simulator("deadline", account=lambda base: gewe_account("slow", base, rate_limit="1/1s")) as (
                sim, worker):
            deadline = now_ms() + 2500
            reqs = [{"id": f"dl-{i}", "provider": "gewe", "account": "slow", "type": "text", "to": f"dl-{i}@chatroom",
                     "body": {"text": f"t{i}"}, "deadline": deadline} for i in range(6)]
            # when
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(r["to"], json.dumps(r)) for r in reqs])
            results = h.kcat_results_by_id(worker.bootstrap, len(reqs), 60)
            # then: each was either sent before its deadline and delivered, or ended expired and never sent
            calls = sim.requests()
            sent = {r["id"]: [c["time_ms"] for c in calls if f'"toWxid":"{r["to"]}"' in c["body"]] for r in reqs}
            outcomes = {rid: (res["status"], (res["error"] or {}).get("kind")) for rid, res in results.items()}
            expired = sorted(rid for rid, o in outcomes.items() if o == ("expired", "expired"))
            delivered = sorted(rid for rid, o in outcomes.items() if o == ("delivered", None))
            self.assertEqual(sorted(expired + delivered), sorted(r["id"] for r in reqs), outcomes)
            for rid in expired:
                self.assertEqual(sent[rid], [], f"{rid} expired but was sent")
                # waiting for the rate limit, not picked up too late to try at all
                self.assertRegex(results[rid]["error"]["message"], r"^deadline: .*rate limit", results[rid])
            for rid in delivered:
                self.assertEqual(len(sent[rid]), 1, rid)
                # the simulator stamps arrival: allow for the way from the worker's last check to it
                self.assertLessEqual(sent[rid][0], deadline + 500, f"{rid} sent after its deadline")
            # one a second: the first slot is free, and at most three fall within 2.5 s
            self.assertGreaterEqual(len(delivered), 1, outcomes)
            self.assertGreaterEqual(len(expired), 3, outcomes)


class RetryAfterTest(unittest.TestCase):
    def test_a_retry_after_past_the_deadline_ends_the_request_expired_at_once(self):
        # given a provider asking to come back in a day, and a request due in 20 s
        with worker_and_simulator("retryafter", [{"match": "ra-day", "action": "status", "status": 429, "retry_after": 86400}],
                                  {"max_attempts": 5}) as (sim, worker):
            req = {"id": "ra-deadline", "provider": "gewe", "type": "text", "to": "ra-1@chatroom",
                   "body": {"text": "ra-day"}, "deadline": now_ms() + 20000}
            # when
            started = time.monotonic()
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(req["to"], json.dumps(req))])
            r = h.kcat_results_by_id(worker.bootstrap, 1, 15)["ra-deadline"]
            # then: expired after the one attempt, long before the deadline, not parked for a day
            self.assertEqual((r["status"], r["error"]["kind"], r["attempts"]), ("expired", "expired", 1), r)
            self.assertIn("Retry-After", r["error"]["message"])
            self.assertLess(time.monotonic() - started, 10)
            self.assertEqual(len(sim.requests()), 1)
            self.assertEqual(h.kcat_consume_all(worker.bootstrap, "sendq.retry"), [])

    def test_a_retry_after_past_the_age_limit_ends_the_request_and_does_not_stall_its_account(self):
        # given max_request_age_ms of 4 s and a provider asking once to come back in a day
        with worker_and_simulator("retryafterage",
                                  [{"match": "ra-day", "action": "status", "status": 429, "retry_after": 86400, "times": 1}],
                                  {"max_attempts": 5, "max_request_age_ms": 4000},
                                  lambda base: gewe_account("limited", base, rate_limit="100/1s")) as (sim, worker):
            first = {"id": "ra-age", "provider": "gewe", "account": "limited", "type": "text", "to": "ra-2@chatroom",
                     "body": {"text": "ra-day"}}
            # when
            started = time.monotonic()
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(first["to"], json.dumps(first))])
            r = h.kcat_results_by_id(worker.bootstrap, 1, 15)["ra-age"]
            # then: it ends as the age limit ends requests, with a DLQ record, at once
            self.assertEqual((r["status"], r["error"]["kind"], r["attempts"]), ("failed", "timeout", 1), r)
            self.assertIn("max_request_age_ms", r["error"]["message"])
            self.assertLess(time.monotonic() - started, 10)
            self.assertEqual([k for k, _, _ in h.kcat_consume_until(worker.bootstrap, "sendq.dlq", 1, 15)], ["ra-age"])
            self.assertEqual(h.kcat_consume_all(worker.bootstrap, "sendq.retry"), [])
            # and the account's penalty is capped: a later request is delivered within the age limit
            second = {"id": "ra-after", "provider": "gewe", "account": "limited", "type": "text", "to": "ra-3@chatroom",
                      "body": {"text": "after"}}
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(second["to"], json.dumps(second))])
            r = h.kcat_results_by_id(worker.bootstrap, 2, 30)["ra-after"]
            self.assertEqual(r["status"], "delivered", r)
            self.assertLess(time.monotonic() - started, 20)


class ParkTooLargeTest(unittest.TestCase):
    def test_a_request_too_large_to_park_gets_a_final_result_and_frees_its_slot(self):
        # given a gewe request without a key whose `to` is 560,000 characters: parked, it would carry
        # that twice (as `to` and as the default key), over the producer's message.max.bytes
        with worker_and_simulator("parklarge", [{"match": "park-large", "action": "status", "status": 503, "retry_after": 3}],
                                  {"retry_topic_threshold_ms": 1000, "max_attempts": 5}) as (sim, worker):
            req = {"id": "park-large", "provider": "gewe", "type": "text", "to": "w" * 560000,
                   "body": {"text": "park-large"}}
            # when
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("park-large", json.dumps(req))])
            r = h.kcat_results_by_id(worker.bootstrap, 1, 30)["park-large"]
            # then
            self.assertEqual((r["status"], r["error"]["kind"], r["attempts"]), ("failed", "too_large", 1),
                             {k: v for k, v in r.items() if k != "to"})
            self.assertIn("message.max.bytes (1114112)", r["error"]["message"])
            self.assertIn("sendq.retry", r["error"]["message"])
            h.wait_for(lambda: h.metric(worker.metrics(), "sendq_requests_in_flight") == 0, 15,
                       "the in-flight gauge to return to 0")
            self.assertEqual([k for k, _, _ in h.kcat_consume_until(worker.bootstrap, "sendq.dlq", 1, 15)], ["park-large"])


class ParkRefusedByBrokerTest(unittest.TestCase):
    def test_a_park_the_broker_refuses_for_its_size_ends_its_request_failed_too_large(self):
        # given a provider whose first reply, after 5 s, is 503 with Retry-After 3 s (a park), and a
        # broker that will refuse the next record produced as too large (a retry topic whose
        # max.message.bytes is below the producer's: the mock broker enforces none, so it is told to)
        workdir = h.Workdir("parkrefused").path
        kafka = h.EmbeddedKafka(workdir, partitions=2)
        sim = h.Simulator(workdir)
        sim.set_faults([{"match": "park-refused", "action": "status", "status": 503, "retry_after": 3, "times": 1,
                         "latency_ms": 5000}])
        config = write_config(workdir, {"retry_topic_threshold_ms": 1000, "max_attempts": 5})
        worker = h.Worker(workdir, sim, config=config, brokers=kafka.bootstrap)
        try:
            worker.wait_ready()
            req = {"id": "park-refused", "provider": "gewe", "type": "text", "to": "pr-1@chatroom",
                   "body": {"text": "park-refused"}}
            h.kcat_produce(kafka.bootstrap, "sendq.requests", [(req["to"], json.dumps(req))])
            h.wait_for(lambda: len(sim.requests()) >= 1, 30, "the first attempt")
            # (while the reply is held back, nothing else is produced: the next record is the park)
            kafka.proc.send_signal(signal.SIGUSR2)
            with open(os.path.join(workdir, "kafka.log")) as log:
                h.wait_for(lambda: "the next Produce request fails with MSG_SIZE_TOO_LARGE" in (log.seek(0) or log.read()),
                           4, "the broker to take the refusal")
            # when the park is refused
            r = h.kcat_results_by_id(kafka.bootstrap, 1, 30)["park-refused"]
            # then the request ends failed/too_large, naming the retry topic and the limits to fix
            self.assertEqual((r["status"], r["error"]["kind"], r["attempts"]), ("failed", "too_large", 1), r)
            self.assertIn("sendq.retry", r["error"]["message"])
            self.assertIn("the broker refused the record", r["error"]["message"])
            self.assertIn("max.message.bytes", r["error"]["message"])
            self.assertEqual([k for k, _, _ in h.kcat_consume_until(kafka.bootstrap, "sendq.dlq", 1, 15)], ["park-refused"])
            self.assertEqual(len(sim.requests()), 1)
            # and the worker goes on: its slot is free, and the next request is delivered
            h.wait_for(lambda: h.metric(worker.metrics(), "sendq_requests_in_flight") == 0, 15,
                       "the in-flight gauge to return to 0")
            after = dict(req, id="after-refusal", body={"text": "after"})
            h.kcat_produce(kafka.bootstrap, "sendq.requests", [(after["to"], json.dumps(after))])
            r = h.kcat_results_by_id(kafka.bootstrap, 2, 30)["after-refusal"]
            self.assertEqual((r["status"], r["attempts"]), ("delivered", 1), r)
        finally:
            h.stop_worker_and_simulator(worker, sim)
            kafka.stop()


if __name__ == "__main__":
    h.main()
