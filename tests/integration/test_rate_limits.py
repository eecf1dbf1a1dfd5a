#!/usr/bin/env python3
"""Issue 4 rate limits: a configured 200 requests/s on one account, measured at the simulator over
10 s, is within 5%, while a second account runs at its own 50/s unaffected."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from policy_support import gewe_account, results_by_id, write_config  # noqa: E402


# A limiter's slots are fixed in time: a thread that wakes late sends the slots it missed at once,
# so a window may hold the slots of a stall before it too. Over 2.9 s the account's 20/s allow 58;
# 6 more cover a stall of 150 ms on a loaded machine (a 900 ms window with 2 more had room for a
# 100 ms one only). Each worker applying the limit whole gives some 116.
WINDOW_MS = 2900
ALLOWED_IN_WINDOW = 58
LATE_WAKE_UP = 6


def busiest_window(times):
    """The most calls (times in ms, sorted) that fall within any WINDOW_MS."""
    return max(sum(1 for t in times[i:] if t < start + WINDOW_MS) for i, start in enumerate(times))


class RateLimitTest(unittest.TestCase):
    def test_200_per_second_within_5_percent_and_a_second_account_unaffected(self):
        workdir = h.Workdir("ratelimit").path
        sim = h.Simulator(workdir, ["--threads", "2"])
        # The default gewe account gets its limit through the file as well.
        config = write_config(workdir, {"max_in_flight": 8192}, accounts_extra=gewe_account("second", sim.base_url, rate_limit="50/1s"),
                              gewe_rate_limit="200/1s, 12000/1m")
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()
            reqs = []
            for i in range(2800):
                reqs.append({"id": f"rl-a-{i:05d}", "provider": "gewe", "type": "text", "to": f"acct1-{i % 50}@chatroom",
                             "body": {"text": f"a{i}"}})
            for i in range(700):
                reqs.append({"id": f"rl-b-{i:05d}", "provider": "gewe", "account": "second", "type": "text",
                             "to": f"acct2-{i % 50}@chatroom", "body": {"text": f"b{i}"}})
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(r["id"], json.dumps(r)) for r in reqs])
            results = h.kcat_consume_until(worker.bootstrap, "sendq.results", len(reqs), timeout=120)
            self.assertTrue(all(json.loads(v)["status"] == "delivered" for _, v, _ in results))
            calls = sim.requests()
            a = sorted(x["time_ms"] for x in calls if '"toWxid":"acct1-' in x["body"])
            b = sorted(x["time_ms"] for x in calls if '"toWxid":"acct2-' in x["body"])
            self.assertEqual((len(a), len(b)), (2800, 700))
            # measure 10 s of steady state, after the first second
            start = a[0] + 1000
            rate_a = sum(1 for t in a if start <= t < start + 10000) / 10.0
            rate_b = sum(1 for t in b if start <= t < start + 10000) / 10.0
            print(f"rate limits: account default {rate_a:.1f}/s (configured 200), account second {rate_b:.1f}/s "
                  f"(configured 50)", file=sys.stderr)
            self.assertAlmostEqual(rate_a, 200, delta=10)
            self.assertAlmostEqual(rate_b, 50, delta=2.5)
            m = worker.metrics()
            self.assertGreater(h.metric(m, "sendq_rate_limit_wait_seconds_total", provider="gewe", account="default"), 0)
        finally:
            worker.stop()
            sim.stop()


class SlotPastAgeLimitTest(unittest.TestCase):
    def test_a_slot_further_out_than_the_age_limit_ends_the_request_instead_of_sending_it_late(self):
        # given an account allowed one request per 10 s and requests held 3 s at most
        workdir = h.Workdir("ratelimit-age").path
        sim = h.Simulator(workdir)
        config = write_config(workdir, {"max_request_age_ms": 3000},
                              accounts_extra=gewe_account("paced", sim.base_url, rate_limit="1/10s"))
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()
            # when three requests of different keys come at once
            reqs = [{"id": f"age-{i}", "provider": "gewe", "account": "paced", "type": "text",
                     "to": f"age{i}@chatroom", "body": {"text": f"age{i}"}} for i in range(3)]
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(r["to"], json.dumps(r)) for r in reqs])
            h.kcat_consume_until(worker.bootstrap, "sendq.results", 3, timeout=60)
            by_id = results_by_id(h.kcat_consume_all(worker.bootstrap, "sendq.results"))
            # then one is sent at once, and the two whose slots come 10 and 20 s later end failed
            # (timeout) at once, naming the limit, rather than being sent past the 3 s
            self.assertEqual(sorted(by_id), ["age-0", "age-1", "age-2"])
            self.assertTrue(all(len(v) == 1 for v in by_id.values()), by_id)
            delivered = [i for i, v in by_id.items() if v[0]["status"] == "delivered"]
            self.assertEqual(len(delivered), 1, by_id)
            for i, (r,) in by_id.items():
                if i in delivered:
                    continue
                self.assertEqual((r["status"], r["error"]["kind"]), ("failed", "timeout"), r)
                self.assertTrue(r["error"]["message"].startswith(
                    "the rate limit's next slot comes after the request would have been held longer than "
                    "worker.max_request_age_ms (3000 ms)"), r["error"]["message"])
                self.assertLess(r["latency_ms"], 3000, r)
            # and the provider saw the delivered one only
            self.assertEqual([json.loads(c["body"])["content"] for c in sim.requests()], [delivered[0].replace("-", "")])
        finally:
            h.stop_worker_and_simulator(worker, sim)


class SharedHostTest(unittest.TestCase):
    def test_an_account_waiting_for_its_rate_limit_does_not_hold_back_another_on_the_same_host(self):
        """Two accounts on one provider host share its connections. Deliveries that wait for their
        account's rate limit hold only their own route's gate, not a connection: the other
        account's requests go out meanwhile instead of trickling at the first one's rate."""
        workdir = h.Workdir("sharedhost").path
        sim = h.Simulator(workdir, ["--threads", "2"])
        # 2 I/O threads, 4 connections each to the one simulator host: the limited account's route
        # gates alone admit enough deliveries to hold all of them.
        config = write_config(workdir, {"threads": 2, "max_connections_per_host": 8},
                              accounts_extra=gewe_account("unlimited", sim.base_url), gewe_rate_limit="20/1s")
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()
            limited = [{"id": f"sh-a-{i:04d}", "provider": "gewe", "type": "text", "to": f"lim-{i % 20}@chatroom",
                        "body": {"text": f"a{i}"}} for i in range(100)]
            free = [{"id": f"sh-b-{i:04d}", "provider": "gewe", "account": "unlimited", "type": "text",
                     "to": f"free-{i % 20}@chatroom", "body": {"text": f"b{i}"}} for i in range(300)]
            # The limited account's requests first, so that they are admitted first.
            h.kcat_produce(worker.bootstrap, "sendq.requests", [(r["id"], json.dumps(r)) for r in limited + free])
            results = [json.loads(v) for _, v, _ in
                       h.kcat_consume_until(worker.bootstrap, "sendq.results", len(limited) + len(free), timeout=60)]
            self.assertEqual(sorted(r["id"] for r in results), sorted(r["id"] for r in limited + free))
            self.assertEqual({r["status"] for r in results}, {"delivered"})
            self.assertEqual({r["account"] for r in results if r["id"].startswith("sh-b-")}, {"unlimited"})
            limited_done = sorted(r["completed_at"] for r in results if r["id"].startswith("sh-a-"))
            free_done = max(r["completed_at"] for r in results if r["id"].startswith("sh-b-"))
            print(f"shared host: the unlimited account's 300 done {free_done - limited_done[0]} ms after the limited "
                  f"account's first; the limited account's 100 took {limited_done[-1] - limited_done[0]} ms",
                  file=sys.stderr)
            # The limit held: 100 requests at 20/s take about 5 s.
            self.assertGreater(limited_done[-1] - limited_done[0], 4000)
            # At 20/s the limited account's 50th result comes about 2.5 s after its first: every
            # request of the other account must be done by then (held back, they would trickle at
            # about the limited rate and take 15 s).
            self.assertLess(free_done, limited_done[49])
        finally:
            worker.stop()
            sim.stop()


class GroupRateLimitTest(unittest.TestCase):
    def test_two_workers_of_a_group_keep_to_one_accounts_limit_together(self):
        """worker.rate_limit_scope = "group" (the default): each of two workers holding 2 of the 4
        request partitions takes half of the account's 20/s, so that together they keep to 20/s
        (at most 58 + 6 = 64 calls in any 2.9 s: 20/s, and 6 for a late wake-up), where each applying it whole
        would send up to 40/s."""
        workdir = h.Workdir("grouprate").path
        kafka = h.EmbeddedKafka(workdir, partitions=4)
        sim = h.Simulator(workdir, ["--threads", "2"])
        config = write_config(workdir, {}, accounts_extra=gewe_account("shared", sim.base_url, rate_limit="20/1s"))
        workers = []
        try:
            for name in ("w1", "w2"):
                workers.append(h.Worker(workdir, sim, config=config, brokers=kafka.bootstrap, name=name))
            for w in workers:
                w.wait_ready(timeout=90)

            def shares():
                return [h.metric(w.metrics(), "sendq_rate_limit_share") for w in workers]
            # (requests, retry and bulk topics: 12 partitions shared out, 2 of requests' 4 each)
            h.wait_for(lambda: shares() == [0.5, 0.5], 90, "each worker's half of the rate limits")
            reqs = [{"id": f"grp-{i:03d}", "provider": "gewe", "account": "shared", "type": "text",
                     "to": f"grp-{i % 40}@chatroom", "body": {"text": f"grp-{i:03d}"}} for i in range(100)]
            h.kcat_produce(kafka.bootstrap, "sendq.requests", [(r["to"], json.dumps(r)) for r in reqs])
            results = h.kcat_results_by_id(kafka.bootstrap, len(reqs), timeout=120)
            self.assertEqual(set(results), {r["id"] for r in reqs})
            self.assertTrue(all(r["status"] == "delivered" for r in results.values()))
            delivered = [h.metric(w.metrics(), "sendq_deliveries_total") for w in workers]
            self.assertEqual(sum(delivered), 100)
            self.assertTrue(all(d > 0 for d in delivered), delivered)
            times = sorted(x["time_ms"] for x in sim.requests() if '"toWxid":"grp-' in x["body"])
            self.assertEqual(len(times), 100)
            # (each worker's limiter spaces its 10/s 100 ms apart, counted when a call is sent)
            busiest = busiest_window(times)
            span = (times[-1] - times[0]) / 1000
            print(f"group rate limit: {delivered} delivered by the two workers; at most {busiest} calls in any "
                  f"{WINDOW_MS} ms (the account allows 20/s); all 100 in {span:.1f} s", file=sys.stderr)
            self.assertLessEqual(busiest, ALLOWED_IN_WINDOW + LATE_WAKE_UP)
            # and 100 calls at 20/s take at least 4 s (each worker's 50 at 10/s: 4.9 s)
            self.assertGreaterEqual(span, 4.0)
        finally:
            for w in workers:
                w.stop()
            sim.stop()
            kafka.stop()

    def test_a_worker_joining_mid_run_takes_half_and_the_group_stays_within_the_limit(self):
        """The share changes with the assignment: a worker alone takes the whole 20/s (4 of 4
        partitions); when a second joins, each takes half, and the calls of the whole run, both
        workers' and what the rebalance handed over, keep to 20/s (as above, over any 2.9 s). (The mock
        broker holds the rebalance for most of session.timeout.ms, so the two rates do not overlap:
        nothing is sent in between.)"""
        workdir = h.Workdir("grouprate-join").path
        kafka = h.EmbeddedKafka(workdir, partitions=4)
        sim = h.Simulator(workdir, ["--threads", "2"])
        # (8 in flight: the backlog waits in Kafka, so that after the rebalance each worker sends
        # its own partitions' requests, instead of the first one holding them all in memory)
        config = write_config(workdir, {"max_in_flight": 8},
                              accounts_extra=gewe_account("shared", sim.base_url, rate_limit="20/1s"))
        workers = []
        try:
            workers.append(h.Worker(workdir, sim, config=config, brokers=kafka.bootstrap, name="w1"))
            workers[0].wait_ready(timeout=90)
            def shared(worker, partitions):
                with open(worker.log_path, errors="replace") as f:
                    return any('"msg":"rate limits shared with the group by partitions"' in line and
                               f'"partitions":"{partitions}","of":"4"' in line for line in f)
            h.wait_for(lambda: shared(workers[0], 4), 30, "w1's whole share (4 of 4 partitions)")
            reqs = [{"id": f"join-{i:03d}", "provider": "gewe", "account": "shared", "type": "text",
                     "to": f"join-{i % 40}@chatroom", "body": {"text": f"join-{i:03d}"}} for i in range(300)]
            h.kcat_produce(kafka.bootstrap, "sendq.requests", [(r["to"], json.dumps(r)) for r in reqs])
            h.wait_for(lambda: h.metric(workers[0].metrics(), "sendq_deliveries_total") >= 40, 30, "w1 under way")
            # when a second worker joins the group mid-run
            workers.append(h.Worker(workdir, sim, config=config, brokers=kafka.bootstrap, name="w2"))
            workers[1].wait_ready(timeout=90)
            h.wait_for(lambda: [h.metric(w.metrics(), "sendq_rate_limit_share") for w in workers] == [0.5, 0.5], 60,
                       "each worker's half")
            by_id = h.wait_for(lambda: (lambda r: r if set(r) == {q["id"] for q in reqs} else None)(
                results_by_id(h.kcat_consume_all(kafka.bootstrap, "sendq.results"))), 120, "a result for every id")
            # then every id was delivered (each result of it, records the rebalance handed over
            # being sent again by their new owner), the simulator got each one's text, both worked,
            # and no second saw more than 20 calls (those sent again count too)
            self.assertTrue(all(r["status"] == "delivered" for v in by_id.values() for r in v), by_id)
            calls = [x for x in sim.requests() if '"toWxid":"join-' in x["body"]]
            self.assertEqual({json.loads(x["body"])["content"] for x in calls}, {r["id"] for r in reqs})
            self.assertTrue(shared(workers[0], 2) and shared(workers[1], 2))
            self.assertGreaterEqual(h.metric(workers[1].metrics(), "sendq_deliveries_total"), 50)
            times = sorted(x["time_ms"] for x in calls)
            busiest = busiest_window(times)
            print(f"group rate limit, a worker joining: {len(by_id)} ids, {len(times)} calls, at most {busiest} in "
                  f"any {WINDOW_MS} ms (the account allows 20/s)", file=sys.stderr)
            self.assertLessEqual(busiest, ALLOWED_IN_WINDOW + LATE_WAKE_UP)
        finally:
            for w in workers:
                w.stop()
            sim.stop()
            kafka.stop()


if __name__ == "__main__":
    h.main()
