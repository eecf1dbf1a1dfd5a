#!/usr/bin/env python3
"""Issue 5: accounts and rate limits reload on SIGHUP without a restart and without losing
in-flight work, an invalid file is refused with a clear log line and the old configuration stays;
a 429 whose reply comes after a reload holds the account on its new limits; and no secret from
the configuration appears in logs, /metrics, results or the DLQ."""
import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from policy_support import gewe_account, write_config  # noqa: E402

GEWE_SECRET = "gewe-TOKEN-planted-5f1c9a"
SIGN_SECRET = "sender-SIGN-planted-77ab2e"


def gewe_text(rid, account="default"):
    return {"id": rid, "provider": "gewe", "account": account, "type": "text", "to": "room@chatroom",
            "body": {"text": rid}}


class ReloadAndSecretsTest(unittest.TestCase):
    def test_sighup_reload_and_no_secret_anywhere(self):
        workdir = h.Workdir("reload").path
        sim = h.Simulator(workdir, ["--gewe-token", GEWE_SECRET, "--sender-sign", SIGN_SECRET])
        sim.set_faults([{"match": "slow-", "action": "latency", "latency_ms": 1500}])
        base = write_config(workdir, {"max_attempts": 2})
        with open(base) as f:
            text = f.read().replace('token = "demo-gewe-token"', f'token = "{GEWE_SECRET}"').replace(
                'sign = "demo-sign"', f'sign = "{SIGN_SECRET}"')
        with open(base, "w") as f:
            f.write(text)
        worker = h.Worker(workdir, sim, config=base, env_extra={"SENDQ_LOG_LEVEL": "debug"})
        try:
            worker.wait_ready()
            # given: account "extra" does not exist yet
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("a", json.dumps(gewe_text("before-extra", "extra")))])
            first = json.loads(h.kcat_consume_until(worker.bootstrap, "sendq.results", 1)[0][1])
            self.assertEqual((first["status"], first["error"]["kind"]), ("rejected", "unknown_account"))

            # when: a slow request is in flight and the file gains account "extra" with a rate limit
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("b", json.dumps(gewe_text("slow-in-flight")))])
            h.wait_for(lambda: any("slow-in-flight" in x["body"] for x in sim.requests()), 20, "the slow call")
            with open(base, "a") as f:
                f.write(gewe_account("extra", sim.base_url, token=GEWE_SECRET, rate_limit="5/1s"))
            worker.proc.send_signal(signal.SIGHUP)
            h.wait_for(lambda: "configuration reloaded" in open(worker.log_path).read(), 10, "the reload log line")
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("c", json.dumps(gewe_text("after-extra", "extra")))])
            results = h.kcat_results_by_id(worker.bootstrap, 3, timeout=30)
            # then the new account works and the in-flight request was not lost
            self.assertEqual(results["after-extra"]["status"], "delivered")
            self.assertEqual(results["slow-in-flight"]["status"], "delivered")

            # when: an invalid file is sent
            with open(base, "a") as f:
                f.write("\n[metrics]\nadress = \"127.0.0.1:1\"\n")
            worker.proc.send_signal(signal.SIGHUP)
            h.wait_for(lambda: "configuration reload refused" in open(worker.log_path).read(), 10, "the refusal")
            log = open(worker.log_path).read()
            refusal = [l for l in log.splitlines() if "configuration reload refused" in l][0]
            self.assertIn("metrics.adress: unknown key", refusal, "the log line names the bad key")
            # then the running configuration stays
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("d", json.dumps(gewe_text("after-refusal", "extra")))])
            results = h.kcat_results_by_id(worker.bootstrap, 4, timeout=30)
            self.assertEqual(results["after-refusal"]["status"], "delivered")
            m = worker.metrics()
            self.assertEqual(h.metric(m, "sendq_config_reloads_total", result="ok"), 1)
            self.assertEqual(h.metric(m, "sendq_config_reloads_total", result="error"), 1)

            # and a failing request (the provider refuses it) to get DLQ records with error text
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("e", json.dumps(
                {"id": "sender-bad", "provider": "sender", "type": "voice", "from": "u", "to": "t",
                 "body": {"name": "x.mp3", "format": "mp3", "duration_ms": 61000}}))])
            h.kcat_consume_until(worker.bootstrap, "sendq.results", 5, timeout=30)

            # No secret anywhere: logs, /metrics, results, DLQ (values and headers).
            _, metrics_text = h.http_get(worker.metrics_url + "/metrics")
            results_text = "\n".join(v for _, v, _ in h.kcat_consume_all(worker.bootstrap, "sendq.results"))
            dlq = h.kcat_consume(worker.bootstrap, "sendq.dlq", 2, with_headers=True)
            dlq_text = "\n".join(v + " " + hd for _, v, hd in dlq)
            log = open(worker.log_path).read()
            self.assertGreater(len(log.splitlines()), 10)
            for secret in (GEWE_SECRET, SIGN_SECRET):
                for name, text in (("log", log), ("metrics", metrics_text), ("results", results_text), ("dlq", dlq_text)):
                    self.assertNotIn(secret, text, f"{secret} leaked into {name}")
        finally:
            worker.stop()
            sim.stop()


class EmptiedFileReloadTest(unittest.TestCase):
    def test_a_reload_that_would_leave_no_accounts_is_refused(self):
        # given a worker whose only account is in its file (no SENDQ_<PROVIDER>_BASE_URL)
        workdir = h.Workdir("emptied").path
        sim = h.Simulator(workdir)
        config = os.path.join(workdir, "sendq.toml")
        with open(config, "w") as f:
            f.write(gewe_account("default", sim.base_url))
        worker = h.Worker(workdir, sim, config=config, provider_urls=False)
        try:
            worker.wait_ready()
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("a", json.dumps(gewe_text("before-empty")))])
            self.assertEqual(h.kcat_results_by_id(worker.bootstrap, 1, timeout=30)["before-empty"]["status"], "delivered")
            # when the file is emptied (a truncating editor, a bad deploy: valid TOML, no accounts) and reloaded
            open(config, "w").close()
            worker.proc.send_signal(signal.SIGHUP)
            h.wait_for(lambda: "configuration reload refused" in open(worker.log_path).read(), 10, "the refusal")
            # then the reload is refused, saying why, and the account goes on delivering (it used
            # to reload as no accounts: every request from then on ended rejected)
            refusal = [json.loads(l) for l in open(worker.log_path) if "configuration reload refused" in l][0]
            self.assertEqual(refusal["error"], "it has no provider accounts, where the running one has 1 "
                                               "(restart the worker to run with none)")
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("b", json.dumps(gewe_text("after-empty")))])
            results = h.kcat_results_by_id(worker.bootstrap, 2, timeout=30)
            self.assertEqual((results["after-empty"]["status"], results["after-empty"]["account"]), ("delivered", "default"))
            m = worker.metrics()
            self.assertEqual((h.metric(m, "sendq_config_reloads_total", result="error"),
                              h.metric(m, "sendq_config_reloads_total", result="ok")), (1, 0))
        finally:
            h.stop_worker_and_simulator(worker, sim)


class ThrottleAcrossReloadTest(unittest.TestCase):
    def test_a_429_answered_after_a_reload_holds_the_account_on_its_new_limiter(self):
        # given an account limited to 100/s, and a provider that answers its first call after
        # 2.5 s with 429 and Retry-After: 3
        workdir = h.Workdir("throttlereload").path
        sim = h.Simulator(workdir)
        sim.set_faults([{"match": "ra-during-reload", "action": "status", "status": 429, "retry_after": 3,
                         "latency_ms": 2500, "times": 1}])
        config = write_config(workdir, {"max_attempts": 3},
                              accounts_extra=gewe_account("limited", sim.base_url, rate_limit="100/1s"))
        worker = h.Worker(workdir, sim, config=config)
        try:
            worker.wait_ready()
            first = gewe_text("ra-during-reload", "limited")
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("k1", json.dumps(first))])
            h.wait_for(lambda: any("ra-during-reload" in c["body"] for c in sim.requests()), 20, "the first call")
            # when the account's limits change while that call waits for its reply (a new limiter)
            with open(config) as f:
                text = f.read()
            self.assertIn('rate_limit = "100/1s"', text)
            with open(config, "w") as f:
                f.write(text.replace('rate_limit = "100/1s"', 'rate_limit = "200/1s"'))
            worker.proc.send_signal(signal.SIGHUP)
            h.wait_for(lambda: "configuration reloaded" in open(worker.log_path).read(), 10, "the reload log line")
            self.assertEqual(h.metric(worker.metrics(), "sendq_provider_throttled_total", account="limited"), 0,
                             "the 429 came back before the reload: nothing to test")
            # and the 429 comes back after the reload, and another request of the account follows
            h.wait_for(lambda: h.metric(worker.metrics(), "sendq_provider_throttled_total", account="limited") >= 1,
                       10, "the 429")
            # (another recipient: nothing but the account's limiter stands between it and the provider)
            second = dict(gewe_text("after-429", "limited"), to="another-room@chatroom")
            h.kcat_produce(worker.bootstrap, "sendq.requests", [("k2", json.dumps(second))])
            results = h.kcat_results_by_id(worker.bootstrap, 2, timeout=30)
            # then both are delivered, and the later one waited out the Retry-After on the new limiter
            self.assertEqual((results["ra-during-reload"]["status"], results["ra-during-reload"]["attempts"]),
                             ("delivered", 2), results)
            self.assertEqual(results["after-429"]["status"], "delivered", results)
            calls = sim.requests()
            first_calls = [c["time_ms"] for c in calls if "ra-during-reload" in c["body"]]
            later_calls = [c["time_ms"] for c in calls if "after-429" in c["body"]]
            self.assertEqual((len(first_calls), len(later_calls)), (2, 1), calls)
            throttled_ms = first_calls[0] + 2500  # the simulator stamps a call's arrival; it answered 2.5 s later
            # (created_at: when kcat produced it) soon enough that only the penalty can hold it 2.5 s
            self.assertLess(results["after-429"]["created_at"], throttled_ms + 2000, "produced too late to test anything")
            self.assertGreaterEqual(later_calls[0], throttled_ms + 2500,
                                    f"sent {later_calls[0] - throttled_ms} ms after the 429 with Retry-After: 3")
        finally:
            h.stop_worker_and_simulator(worker, sim)


if __name__ == "__main__":
    h.main()
