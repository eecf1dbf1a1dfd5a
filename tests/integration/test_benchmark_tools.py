#!/usr/bin/env python3
"""The benchmark tools still run against the binaries of this build: benchmarks/e2e/run (issue 7's
one command) on a small backlog, and benchmarks/support/alternated_drains.py with two arms. They
are not run anywhere else in CI, and a tool that broke silently would only be found by the next
person measuring. Figures are not judged here (timing belongs in benchmarks/, not in tests): only
that every phase ran, every request got its delivered result, and the tables say so."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import sendq_harness as h  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
N = 4000


def run_tool(args, timeout):
    env = dict(os.environ, SENDQ_BUILD_DIR=h.BUILD)
    p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"{args[0]} exited with {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout + p.stderr


def table(markdown):
    """{measure: value} of the first run's table (| measure | value | target | met |)."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) >= 2 and cells[0] not in ("measure", "---"):
            rows.setdefault(cells[0], cells[1])
    return rows


class EndToEndBenchmarkTest(unittest.TestCase):
    def test_a_small_run_writes_every_row_of_the_table(self):
        folder = tempfile.mkdtemp(prefix="sendq-bench-test-")
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        out = os.path.join(folder, "e2e.md")
        log = run_tool([os.path.join("benchmarks", "e2e", "run"), "--quick", "-n", str(N), "--latency-rate", "500",
                        "--latency-seconds", "2", "--output", out], timeout=500)
        with open(out) as f:
            rows = table(f.read())
        for measure in ("results on the topic (2 threads)", "results on the topic (memory drain)"):
            self.assertEqual(rows.get(measure), f"{N:,}: delivered {N:,}", f"{measure}\n{log[-2000:]}")
        self.assertRegex(rows["HTTP ceiling: wrk, 256 connections"], r"^[\d,]+ req/s \(p99 [\d.]+ ms, 0 errors\)$")
        self.assertRegex(rows["Kafka ceiling: kcat produce"], r"^[\d,]+ msg/s$")
        self.assertRegex(rows["worker deliveries/s (2 threads)"], r"^[\d,]+/s \([\d.]+ s\)$")
        self.assertRegex(rows["worker deliveries/s (1 thread)"], r"^[\d,]+/s; CPU [\d.]+ µs/delivery; RSS [\d.]+ MB$")
        self.assertRegex(rows["ratio to the HTTP ceiling"], r"^\d+%$")
        self.assertRegex(rows["worker CPU per delivery"], r"^[\d.]+ µs \([\d.]+ s per 1,000\)$")
        self.assertRegex(rows["2 threads / 1 thread"], r"^[\d.]+×$")
        # the open-loop load ran at the rate asked, and every one of its requests has a latency
        self.assertRegex(rows["open-loop load (500/s asked)"], r"^[\d,]+/s for 2 s after 2 s of warm-up, 1,000 requests$")
        for q in ("p50", "p99"):
            self.assertRegex(rows[f"created_at → result {q}"], r"^\d+ ms$")
        self.assertRegex(rows["memory drain: worker peak RSS (VmHWM), max_in_flight 10,000"],
                         rf"^[\d.]+ MB \(backlog {N:,}, [\d,]+ in flight at most\)$")


class AlternatedDrainsTest(unittest.TestCase):
    def test_two_arms_each_drain_the_backlog_in_turn(self):
        log = run_tool([os.path.join("benchmarks", "support", "alternated_drains.py"), "-n", str(N), "--rounds", "2",
                        "--per-thread", "base", "small:max_in_flight=64,SENDQ_LOG_LEVEL=info"], timeout=300)
        drains = re.findall(r"^\d\d:\d\d:\d\d +(\S+): +[\d,]+/s +[\d.]+ µs a delivery, peak RSS +[\d.]+ MB", log, re.M)
        self.assertEqual(drains, ["base.0", "small.0", "base.1", "small.1"], log)
        # --per-thread: each drain lists its I/O threads and librdkafka's
        self.assertEqual(len(re.findall(r"^ +sendq-io-0 +on a CPU +[\d.]+ µs, waiting +[\d.]+ µs", log, re.M)), 4, log)
        self.assertEqual(len(re.findall(r"^ +librdkafka +on a CPU", log, re.M)), 4, log)
        summary = re.findall(r"^(base|small): [\d,]+/s \([\d,]+–[\d,]+\); [\d.]+ µs \([\d.]+–[\d.]+\)$", log, re.M)
        self.assertEqual(summary, ["base", "small"], log)

    def test_a_bad_arm_is_refused_by_name_before_anything_starts(self):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "support", "alternated_drains.py"),
                            "base", "x:max_in_flight=lots"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("arm 'x:max_in_flight=lots': max_in_flight must be a whole number of 1 or more, not 'lots'",
                      p.stderr)


if __name__ == "__main__":
    unittest.main()
