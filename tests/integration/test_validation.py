#!/usr/bin/env python3
"""Every validation rule, end to end: each example in proto/examples/requests/invalid (the
contract's shape) and proto/examples/requests/provider_invalid (the limits of the provider
documents) is produced to the worker; each ends `rejected` with the expected error kind and a
message that starts with the field's name, goes to the DLQ, and the simulator receives no HTTP call
for any of them. Valid examples produced after them are delivered (the offset moves on)."""
import glob
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import sendq_harness as h  # noqa: E402

EXAMPLES = os.path.join(h.ROOT, "proto", "examples", "requests")


def load_cases(folder):
    cases = []
    for path in sorted(glob.glob(os.path.join(EXAMPLES, folder, "*"))):
        if ".expect." in path:
            continue
        stem = os.path.splitext(path)[0]
        with open(stem + ".expect.json") as f:
            expect = json.load(f)
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            raw = f.read()
        cases.append((os.path.basename(path), raw, expect))
    return cases


class ValidationTest(unittest.TestCase):
    def test_every_rule_rejects_before_sending(self):
        cases = load_cases("invalid") + load_cases("provider_invalid")
        self.assertGreater(len(cases), 40)
        valid = []
        for path in sorted(glob.glob(os.path.join(EXAMPLES, "valid", "*.json"))):
            with open(path) as f:
                valid.append(json.load(f))

        workdir = h.Workdir("validation").path
        sim = h.Simulator(workdir)
        worker = h.Worker(workdir, sim)
        try:
            worker.wait_ready()
            # kcat takes one record per line: fold the examples' whitespace, bytes otherwise unchanged.
            records = [(name, " ".join(raw.split("\n")).replace("\r", " ").replace("\t", " ").strip())
                       for name, raw, _ in cases]
            records += [(r["id"], json.dumps(r, ensure_ascii=False)) for r in valid]
            h.kcat_produce(worker.bootstrap, "sendq.requests", records)

            h.kcat_consume_until(worker.bootstrap, "sendq.results", len(records), timeout=120)
            # then the whole topic: one result per record, no more (a second result would show here)
            results = h.kcat_consume_all(worker.bootstrap, "sendq.results")
            self.assertEqual(len(results), len(records), [json.loads(v)["id"] for _, v, _ in results])
            rejected = [json.loads(v) for _, v, _ in results if json.loads(v)["status"] == "rejected"]
            delivered = [json.loads(v) for _, v, _ in results if json.loads(v)["status"] == "delivered"]
            self.assertEqual(len(rejected), len(cases))
            self.assertEqual(sorted(r["id"] for r in delivered), sorted(r["id"] for r in valid))

            # Each case takes one rejected result with its id (when it has a usable one), kind and field.
            pool = list(rejected)
            for name, raw, expect in cases:
                try:
                    rid = json.loads(raw).get("id")
                except (ValueError, AttributeError):
                    rid = None
                def fits(r):
                    same_id = r["id"] == rid if isinstance(rid, str) and rid and expect["field"] != "id" else True
                    return (same_id and r["error"]["kind"] == expect["kind"]
                            and r["error"]["message"].startswith(expect["field"] + ":") and r["attempts"] == 0)
                match = next((r for r in pool if fits(r)), None)
                self.assertIsNotNone(match, f"{name}: no rejected result with {expect}; got "
                                            f"{[(r['id'], r['error']) for r in rejected if r['id'] == rid][:3]}")
                pool.remove(match)

            # proto/examples/results/rejected_undecodable.json is what the worker writes for a record
            # that is not a JSON object (not_json.txt): every field but the record's own position and times.
            with open(os.path.join(EXAMPLES, "..", "results", "rejected_undecodable.json")) as f:
                example = json.load(f)
            undecodable = [r for r in rejected if r["error"]["message"] == example["error"]["message"]]
            self.assertTrue(undecodable, f"no result says {example['error']['message']!r}")
            own = ("id", "created_at", "completed_at", "latency_ms", "source")
            got = undecodable[0]
            self.assertEqual({k: v for k, v in got.items() if k not in own}, {k: v for k, v in example.items() if k not in own})
            src = got["source"]
            self.assertEqual(got["id"], f"{src['topic']}:{src['partition']}:{src['offset']}")
            self.assertEqual(got["latency_ms"], got["completed_at"] - got["created_at"])

            # The DLQ has one record per rejected request, keyed by its result's id, and no provider
            # saw any of them.
            h.kcat_consume_until(worker.bootstrap, "sendq.dlq", len(cases), timeout=60)
            dlq = h.kcat_consume_all(worker.bootstrap, "sendq.dlq")
            self.assertEqual(sorted(k for k, _, _ in dlq), sorted(r["id"] for r in rejected))
            calls = sim.requests()
            self.assertEqual(len(calls), len(valid), "only the valid examples reached the providers")
            self.assertTrue(all(c["accepted"] for c in calls), [c for c in calls if not c["accepted"]][:2])
        finally:
            worker.stop()
            sim.stop()


if __name__ == "__main__":
    h.main()
