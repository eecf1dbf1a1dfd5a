#!/usr/bin/env python3
"""A real Prometheus server (Debian package prometheus) scrapes a running worker on loopback every
second during a delivery run of mixed requests for all four providers, produced in two halves with
a pause between them. Read back through Prometheus' HTTP API: deliveries by provider and the
latency histograms are there and moving; every expression of the Grafana dashboard is valid PromQL
and its main panels have data; the alert rules load and evaluate without errors.
"""
import collections
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.parse

import yaml  # Debian: python3-yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from mixed_requests import request  # noqa: E402

PROMETHEUS = "prometheus"
RULES = os.path.join(h.ROOT, "deploy", "prometheus", "sendq-alerts.yml")
DASHBOARD = os.path.join(h.ROOT, "deploy", "grafana", "sendq-dashboard.json")
PROVIDERS = ("sender", "gewe", "im", "gps")
HALF = 200  # requests per half of the run


class Prometheus:
    """A Prometheus server on 127.0.0.1 with its own configuration and storage in `workdir`."""

    def __init__(self, workdir, worker_metrics_port):
        self.port = h.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: sendq-worker
    static_configs:
      - targets: ["127.0.0.1:{worker_metrics_port}"]
""")
        self.log_path = os.path.join(workdir, "prometheus.log")
        self.log = open(self.log_path, "w")
        self.proc = h.start_server([PROMETHEUS, f"--config.file={config}",
                                    f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
                                    f"--web.listen-address=127.0.0.1:{self.port}"],
                                   stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            h.wait_for(self._ready, 60, "Prometheus /-/ready")
        except BaseException:  # not left running when it never came up
            h.stop_process(self.proc)
            self.log.close()
            raise

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}; see {self.log_path}")
        try:
            return h.http_get(self.url + "/-/ready", timeout=2)[0] == 200
        except OSError:
            return False

    def api(self, path, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        status, body = h.http_get(f"{self.url}/api/v1/{path}?{query}", timeout=10)
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"{path} {params}: HTTP {status}: {body[:500]}")
        return doc["data"]

    def query(self, expr):
        """Instant vector as [(labels, value)]."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def value(self, expr):
        result = self.query(expr)
        return result[0][1] if result else None

    def stop(self):
        rc = h.stop_process(self.proc)
        self.log.close()
        return rc


def dashboard_targets():
    with open(DASHBOARD) as f:
        d = json.load(f)
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    variables = [v for v in d["templating"]["list"] if v["type"] == "query"]
    return out, variables


def grafana_to_promql(expr):
    """The dashboard's variables, as Grafana would substitute them with "All" selected."""
    for var in ("$job", "$instance", "$provider"):
        expr = expr.replace(var, ".*")
    return expr.replace("$__rate_interval", "1m")


class PrometheusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = h.Workdir("prometheus").path
        cls.sim = h.Simulator(cls.dir)
        cls.worker = h.Worker(cls.dir, cls.sim)
        cls.prom = None
        try:
            cls.worker.wait_ready()
            cls.prom = Prometheus(cls.dir, cls.worker.metrics_port)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.prom:
            cls.prom.stop()
        rc = cls.worker.stop()
        cls.sim.stop()
        if rc != 0:
            print(f"worker exited with {rc}; log in {cls.worker.log_path}", file=sys.stderr)

    def produce_half(self, first):
        now_ms = int(time.time() * 1000)
        reqs = []
        for i in range(first, first + HALF):
            r = request(i, prefix="prom")
            r["created_at"] = now_ms  # end-to-end latency from now, not from the examples' fixed date
            reqs.append(r)
        h.kcat_produce(self.worker.bootstrap, "sendq.requests",
                       [(r["id"], json.dumps(r, ensure_ascii=False)) for r in reqs])
        return reqs

    def wait_prometheus(self, expr, at_least, timeout=60):
        return h.wait_for(lambda: (v := self.prom.value(expr)) is not None and v >= at_least and v, timeout,
                          f"Prometheus to see {expr} >= {at_least}")

    def test_1_delivery_run_is_scraped_and_moves(self):
        # given Prometheus scraping the ready worker every second
        h.wait_for(lambda: self.prom.value('up{job="sendq-worker"}') == 1, 30, "the worker target to be up")
        self.assertEqual(self.prom.value("sum(sendq_requests_consumed_total)"), 0)
        start = time.time()

        # when the first half of the run is delivered
        self.produce_half(0)
        h.kcat_consume_until(self.worker.bootstrap, "sendq.results", HALF, timeout=120)
        self.wait_prometheus("sum(sendq_requests_consumed_total)", HALF)
        first_e2e = self.wait_prometheus("sum(sendq_end_to_end_latency_seconds_count)", HALF)
        first_delivered = self.prom.value('sum(sendq_deliveries_total{status="delivered"})')
        first_buckets = self.prom.query("sendq_provider_request_duration_seconds_bucket")
        time.sleep(3)  # a pause: a few scrapes with nothing new

        # and the second half
        self.produce_half(HALF)
        h.kcat_consume_until(self.worker.bootstrap, "sendq.results", 2 * HALF, timeout=120)
        self.wait_prometheus("sum(sendq_requests_consumed_total)", 2 * HALF)
        second_e2e = self.wait_prometheus("sum(sendq_end_to_end_latency_seconds_count)", 2 * HALF)
        time.sleep(1.5)  # so that the last point of the range query below comes after the last scrape
        end = time.time()

        # then Prometheus has deliveries by provider, for all four
        by_provider = {m["provider"]: v for m, v in
                       self.prom.query('sum by (provider) (sendq_deliveries_total{status="delivered"})')}
        sent = collections.Counter(request(i)["provider"] for i in range(2 * HALF))
        self.assertEqual(set(sent), set(PROVIDERS))
        self.assertEqual({p: int(v) for p, v in by_provider.items()}, dict(sent), "every request delivered, by provider")
        second_delivered = sum(by_provider.values())

        # the latency histograms, with buckets per provider
        self.assertTrue(first_buckets, "no sendq_provider_request_duration_seconds_bucket series")
        bucket_providers = {m["provider"] for m, _ in first_buckets}
        self.assertEqual(bucket_providers, set(PROVIDERS))
        self.assertTrue(all("le" in m for m, _ in first_buckets))
        p99 = {m["provider"]: v for m, v in self.prom.query(
            "histogram_quantile(0.99, sum by (provider, le) (rate(sendq_provider_request_duration_seconds_bucket[1m])))")}
        self.assertEqual(set(p99), set(PROVIDERS), p99)
        self.assertTrue(all(0 < v <= 30 for v in p99.values()), p99)
        e2e_p50 = self.prom.value("histogram_quantile(0.5, sum by (le) (rate(sendq_end_to_end_latency_seconds_bucket[1m])))")
        self.assertIsNotNone(e2e_p50)
        self.assertTrue(0 < e2e_p50 < 30, e2e_p50)

        # and they moved between the two queries taken during the run
        self.assertGreater(second_e2e, first_e2e)
        self.assertGreater(second_delivered, first_delivered)
        # over the whole run, one point a second: 0 before, the first half during the pause, then all
        data = self.prom.api("query_range", query="sum(sendq_requests_consumed_total)",
                             start=f"{start:.3f}", end=f"{end:.3f}", step="1")
        values = [float(v) for _, v in data["result"][0]["values"]]
        self.assertEqual(values, sorted(values), "a counter never goes down")
        self.assertEqual((values[0], values[-1]), (0, 2 * HALF), values)
        self.assertIn(HALF, values, f"the pause between the halves is visible: {values}")
        rate = self.prom.value("sum(rate(sendq_deliveries_total[1m]))")
        self.assertGreater(rate, 0)

    def test_2_dashboard_expressions_are_valid_and_have_data(self):
        targets, variables = dashboard_targets()
        results = {}
        for title, expr in targets:
            with self.subTest(panel=title, expr=expr):
                results.setdefault(title, []).append(self.prom.query(grafana_to_promql(expr)))
        # panels whose series exist after a healthy run
        for title in ("Deliveries/s", "Workers up", "In flight", "Oldest request age",
                      "Deliveries/s by provider and status", "Requests consumed/s by worker",
                      "End-to-end latency p50 / p95 / p99", "End-to-end latency p99 by provider",
                      "Provider request latency p50 / p95 / p99 by provider",
                      "Provider request latency mean and calls/s", "Attempts/s by provider and outcome",
                      "Assigned partitions by worker", "In flight and queued", "Producer queue length", "Build info",
                      "Circuit state by provider/account"):
            self.assertIn(title, results)
            self.assertTrue(all(results[title]), f"panel {title!r} has no data")
        # template variables (Grafana's label_values(metric, label))
        for v in variables:
            q = v["definition"]
            self.assertTrue(q.startswith("label_values(") and q.endswith(")"), q)
            selector, label = [s.strip() for s in q[len("label_values("):-1].rsplit(",", 1)]
            values = self.prom.api(f"label/{label}/values", **{"match[]": grafana_to_promql(selector)})
            self.assertTrue(values, f"variable {v['name']}: no values for {q}")
            if v["name"] == "provider":
                self.assertTrue(set(PROVIDERS) <= set(values), values)

    def test_3_alert_rules_load_and_evaluate(self):
        def evaluated():
            groups = self.prom.api("rules", type="alert")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules if rules and all(not r["lastEvaluation"].startswith("0001") for r in rules) else None

        rules = h.wait_for(evaluated, 30, "every alert rule to be evaluated")
        with open(RULES) as f:
            in_file = [r["alert"] for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]
        self.assertEqual(len(in_file), 8)
        self.assertEqual(sorted(r["name"] for r in rules), sorted(in_file), "every alert of the file is loaded")
        for r in rules:
            self.assertEqual(r["health"], "ok", f"{r['name']}: {r.get('lastError')}")
            self.assertEqual(r["state"], "inactive", f"{r['name']} on a healthy run: {r.get('alerts')}")


if __name__ == "__main__":
    h.main()
