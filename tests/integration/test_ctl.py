#!/usr/bin/env python3
"""Issue 6's sendqctl checks with the real binaries: enqueue validates and summarizes rejects;
replay of a time window of 10,000 requests re-delivers exactly those (and --dry-run produces
nothing); redrive filtered by error kind moves exactly the matching DLQ records; tail and stats
read the results."""
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from mixed_requests import request  # noqa: E402

TOPICS = ["sendq.requests", "sendq.results", "sendq.dlq", "sendq.retry", "sendq.bulk", "archive.requests",
          "redrive.target"]
WINDOW = 10000


def now_ms():
    return int(time.time() * 1000)


class CtlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = h.Workdir("ctl").path
        cls.kafka = h.EmbeddedKafka(cls.dir, partitions=4, topics=TOPICS)
        cls.b = cls.kafka.bootstrap
        cls.sim = h.Simulator(cls.dir)
        cls.worker = h.Worker(cls.dir, cls.sim, brokers=cls.b)
        cls.worker.wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.worker.stop()
        cls.sim.stop()
        cls.kafka.stop()

    def ctl(self, *args, input_bytes=None):
        p = h.sendqctl(*args, "--brokers", self.b, input_bytes=input_bytes)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def result_ids(self, prefix):
        return [json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.b, "sendq.results")
                if json.loads(v)["id"].startswith(prefix)]

    def wait_results(self, prefix, count, timeout=300):
        return h.wait_for(lambda: (lambda ids: ids if len(ids) >= count else None)(self.result_ids(prefix)),
                          timeout, f"{count} results for {prefix}")

    def test_1_enqueue_produces_the_valid_lines_and_summarizes_rejects(self):
        # given 200 good lines and three bad ones between them
        lines = [json.dumps(request(i, prefix="enq")) for i in range(200)]
        lines.insert(3, "not json at all")
        lines.insert(50, json.dumps({"id": "enq-bad-no-to", "provider": "gewe", "type": "text", "body": {"text": "x"}}))
        lines.insert(100, json.dumps({"id": "enq-bad-type", "provider": "gewe", "type": "fax", "to": "x", "body": {}}))
        path = os.path.join(self.dir, "enqueue.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        # when
        rc, out, err = self.ctl("enqueue", path, "--rate", "2000/s")
        # then
        self.assertEqual(rc, 3, err)
        self.assertIn("enqueued 200 of 203 requests to sendq.requests", err)
        self.assertIn("rejected 3 (", err)
        self.assertIn("line 4: invalid_json", err)
        self.assertIn("line 51 (id enq-bad-no-to): invalid_field: to", err)
        self.assertIn("enq-bad-type", err)
        good_ids = sorted(request(i, prefix="enq")["id"] for i in range(200))
        self.assertEqual(sorted(self.wait_results("enq-", 200)), good_ids)
        # and stdin works too; --help exists for every command
        stdin_request = request(0, prefix="enqstdin")
        rc, _, err = self.ctl("enqueue", "-", input_bytes=(json.dumps(stdin_request) + "\n").encode())
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.wait_results("enqstdin-", 1), [stdin_request["id"]])
        # (by then a rejected line, had it been produced after all, would have its result too)
        self.assertEqual(sorted(self.result_ids("enq-")), good_ids)
        for cmd in ("enqueue", "replay", "redrive", "tail", "stats"):
            p = h.sendqctl(cmd, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn(f"sendqctl {cmd}", p.stdout.decode())

    def test_2_replay_of_a_time_window_redelivers_exactly_those(self):
        # given an archive topic: 1,000 before, 10,000 in the window, 1,000 after
        def produce(prefix, n):
            h.kcat_produce(self.b, "archive.requests",
                           [(r["id"], json.dumps(r, ensure_ascii=False)) for r in (request(i, prefix=prefix) for i in range(n))])
        produce("rp-before", 1000)
        time.sleep(0.2)
        since = now_ms()
        time.sleep(0.05)
        produce("rp-window", WINDOW)
        time.sleep(0.05)
        until = now_ms()
        time.sleep(0.2)
        produce("rp-after", 1000)
        before_requests = len(h.kcat_consume_all(self.b, "sendq.requests"))

        # when a dry run is made
        rc, out, err = self.ctl("replay", "--from-topic", "archive.requests", "--since", str(since), "--until", str(until),
                                "--topic", "sendq.requests", "--dry-run")
        # then it counts the window and produces nothing
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), f"would replay {WINDOW}", err)
        self.assertEqual(len(h.kcat_consume_all(self.b, "sendq.requests")), before_requests)

        # when replayed for real (provider filter that keeps all but one provider is checked below)
        rc, out, err = self.ctl("replay", "--from-topic", "archive.requests", "--since", str(since), "--until", str(until),
                                "--topic", "sendq.requests")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), f"replay {WINDOW}", err)
        # then exactly the window's requests are delivered again, none from before or after
        ids = self.wait_results("rp-window", WINDOW, timeout=420)
        self.assertEqual(sorted(set(ids)), sorted(r["id"] for r in (request(i, prefix="rp-window") for i in range(WINDOW))))
        self.assertEqual(self.result_ids("rp-before") + self.result_ids("rp-after"), [])

        # a filtered dry run: only gewe requests of the window
        rc, out, err = self.ctl("replay", "--from-topic", "archive.requests", "--since", str(since), "--until", str(until),
                                "--provider", "gewe", "--dry-run")
        expected = sum(1 for i in range(WINDOW) if request(i)["provider"] == "gewe")
        self.assertEqual(out.strip(), f"would replay {expected}", err)
        # by result status: every window request was delivered, none failed
        rc, out, err = self.ctl("replay", "--from-topic", "archive.requests", "--since", str(since), "--until", str(until),
                                "--status", "failed", "--dry-run")
        self.assertEqual(out.strip(), "would replay 0", err)
        # and the latest result of an id decides: three window requests end failed after their delivery,
        # and a result for an id outside the window counts for nothing
        later = [{"id": request(i, prefix="rp-window")["id"], "status": "failed", "provider": "gewe",
                  "error": {"kind": "http_5xx", "message": "later"}} for i in (1, 5, 9)]
        later.append({"id": request(0, prefix="rp-after")["id"], "status": "failed", "provider": "gewe"})
        h.kcat_produce(self.b, "sendq.results", [(r["id"], json.dumps(r)) for r in later])
        rc, out, err = self.ctl("replay", "--from-topic", "archive.requests", "--since", str(since), "--until", str(until),
                                "--status", "failed", "--topic", "replay.failed")
        self.assertEqual((rc, out.strip()), (0, "replay 3"), err)
        self.assertIn(f"{WINDOW - 3} skipped (status)", err)
        self.assertEqual(sorted(json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.b, "replay.failed")),
                         sorted(r["id"] for r in later[:3]))
        rc, out, err = self.ctl("replay", "--from-topic", "archive.requests", "--since", str(since), "--until", str(until),
                                "--status", "delivered", "--dry-run")
        self.assertEqual((rc, out.strip()), (0, f"would replay {WINDOW - 3}"), err)
        # and requests without any result (those before the window were never delivered) are skipped
        rc, out, err = self.ctl("replay", "--from-topic", "archive.requests", "--until", str(since),
                                "--status", "delivered", "--status", "failed", "--dry-run")
        self.assertEqual((rc, out.strip()), (0, "would replay 0"), err)
        self.assertIn("1000 skipped (no result)", err)

    def test_3_redrive_moves_exactly_the_records_of_the_chosen_kinds(self):
        # given DLQ records of three kinds
        def dlq(kind, n):
            h.kcat_produce(self.b, "sendq.dlq", [(f"dlq-{kind}-{i}", json.dumps(request(i, prefix=f"dlq-{kind}")))
                                                 for i in range(n)], headers=[f"sendq-error-kind={kind}"])
        dlq("http_5xx", 5)
        dlq("timeout", 4)
        dlq("invalid_field", 3)
        # and one whose original bytes were too large to keep (null value, sendq-value-omitted)
        subprocess.run(["kcat", "-b", self.b, "-P", "-t", "sendq.dlq", "-K", "\t", "-Z", "-H", "sendq-error-kind=http_5xx",
                        "-H", "sendq-value-omitted=2000000 bytes: Broker: Message size too large"],
                       input=b"dlq-omitted-0\t\n", check=True, timeout=60)
        # when a dry run, then a real redrive of http_5xx and timeout
        rc, out, err = self.ctl("redrive", "--kind", "http_5xx", "--kind", "timeout", "--topic", "redrive.target", "--dry-run")
        self.assertEqual(out.strip(), "would redrive 9", err)
        self.assertIn("1 skipped (original bytes not kept)", err)
        self.assertEqual(h.kcat_consume_all(self.b, "redrive.target"), [])
        rc, out, err = self.ctl("redrive", "--kind", "http_5xx", "--kind", "timeout", "--topic", "redrive.target")
        self.assertEqual(rc, 0, err)
        # then exactly those nine, with their bytes, keyed as sendq.bulk is: by the ordering key (the
        # DLQ's key is the request's id; kept, the redriven requests of one chat would spread over
        # partitions and could be sent out of order)
        moved = h.kcat_consume_all(self.b, "redrive.target")
        expected = [request(i, prefix="dlq-http_5xx") for i in range(5)] + [request(i, prefix="dlq-timeout") for i in range(4)]
        self.assertEqual(sorted(json.loads(v)["id"] for _, v, _ in moved), sorted(r["id"] for r in expected))
        by_id = {r["id"]: r for r in expected}
        for k, v, _ in moved:
            r = by_id[json.loads(v)["id"]]
            self.assertEqual(json.loads(v), r)
            self.assertEqual(k, f"{r['provider']}:{r['to']}")

    def test_3b_redrive_puts_each_keys_records_back_in_the_order_they_entered_the_dlq(self):
        # given the DLQ records of two chats' requests (the DLQ's key is the id, so they are spread
        # over its four partitions), written one after another as the worker ended them
        chat_a = [dict(request(i, prefix="order-a"), key="chat-a") for i in range(8)]
        chat_b = [dict(request(i, prefix="order-b"), key="chat-b") for i in range(4)]
        written = [chat_a[0], chat_b[0], chat_a[1], chat_a[2], chat_b[1], chat_a[3], chat_a[4], chat_b[2], chat_a[5],
                   chat_a[6], chat_b[3], chat_a[7]]
        partitions = [3, 1, 2, 0, 3, 1, 0, 2, 3, 1, 2, 0]  # not in the order written
        for r, part in zip(written, partitions):
            h.kcat_produce(self.b, "dlq.ordered", [(r["id"], json.dumps(r))], partition=part,
                           headers=["sendq-error-kind=http_5xx"])
            time.sleep(0.005)  # (each a later timestamp: the worker's records are stamped as written)
        self.assertEqual(sorted({p for _, _, p in h.kcat_consume_all(self.b, "dlq.ordered", with_partition=True)}),
                         [0, 1, 2, 3])
        # when they are redriven
        rc, out, err = self.ctl("redrive", "--dlq-topic", "dlq.ordered", "--topic", "redrive.ordered")
        self.assertEqual((rc, out.strip()), (0, "redrive 12"), err)
        self.assertNotIn("order was not always kept", err)
        # then each chat's requests are on its partition of the target in the order they were written
        moved = h.kcat_consume_all(self.b, "redrive.ordered")
        self.assertEqual([json.loads(v)["id"] for k, v, _ in moved if k == "chat-a"], [r["id"] for r in chat_a])
        self.assertEqual([json.loads(v)["id"] for k, v, _ in moved if k == "chat-b"], [r["id"] for r in chat_b])

    def test_3c_redrive_keeps_the_order_of_a_keys_requests_the_worker_ended_in_one_millisecond(self):
        # given 40 requests of one chat for an account the worker does not know: it rejects them one
        # after another, many in the same millisecond, and their DLQ records (keyed by id) land on
        # all four partitions
        reqs = [dict(request(i, prefix="rej-order"), key="chat-rejected", account="not-configured") for i in range(40)]
        h.kcat_produce(self.b, "sendq.requests", [("chat-rejected", json.dumps(r)) for r in reqs])
        self.wait_results("rej-order", 40)
        dlq = [r for r in h.kcat_records(self.b, "sendq.dlq") if r["key"].startswith("rej-order")]
        self.assertEqual(sorted(r["key"] for r in dlq), sorted(r["id"] for r in reqs))
        self.assertEqual(sorted({r["partition"] for r in dlq}), [0, 1, 2, 3])
        # (how many share their millisecond with a record on another partition: what the tie-break orders)
        ties = sum(1 for r in dlq if any(o["timestamp"] == r["timestamp"] and o["partition"] != r["partition"] for o in dlq))
        print(f"redrive order: {ties} of 40 DLQ records share their millisecond with one on another partition",
              file=sys.stderr)
        # when they are redriven once the account exists
        rc, out, err = self.ctl("redrive", "--kind", "unknown_account", "--topic", "redrive.rejected")
        self.assertEqual(rc, 0, err)
        # then they are on the chat's partition in the order they were sent
        moved = [json.loads(v)["id"] for k, v, _ in h.kcat_consume_all(self.b, "redrive.rejected") if k == "chat-rejected"]
        self.assertEqual(moved, [r["id"] for r in reqs])

    def test_4_tail_and_stats_read_the_results(self):
        # given, among the results, a rejected request whose provider name needs escaping in JSON
        odd = {"id": "ctl-odd-provider", "provider": "we\"ird\\", "type": "text", "to": "x", "body": {"text": "x"}}
        h.kcat_produce(self.b, "sendq.requests", [("x", json.dumps(odd))])
        self.wait_results("ctl-odd-provider", 1)
        def counts_on_topic():
            counts = {}
            for _, v, _ in h.kcat_consume_all(self.b, "sendq.results"):
                r = json.loads(v)
                by = counts.setdefault(r["provider"] or "-", {})  # as stats names an undecodable record's
                by[r["status"]] = by.get(r["status"], 0) + 1
            return counts
        on_topic = {v for _, v, _ in h.kcat_consume_all(self.b, "sendq.results")}
        # when tail shows five of gewe's results
        rc, out, err = self.ctl("tail", "--from-beginning", "--count", "5", "--provider", "gewe")
        self.assertEqual(rc, 0, err)
        # then each is a result on the topic, byte for byte, and they are five different ones
        lines = out.splitlines()
        self.assertEqual(len(set(lines)), 5, lines)
        for line in lines:
            self.assertIn(line, on_topic)
            self.assertEqual(json.loads(line)["provider"], "gewe", line)
        # and stats counts what is on the topic, by provider and status
        before = counts_on_topic()
        rc, out, err = self.ctl("stats", "--since", "-1h", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(counts_on_topic(), before, "no result arrived while stats read (the comparison would not hold)")
        stats = json.loads(out)  # valid JSON, the odd name included
        self.assertEqual(stats["providers"], before)
        self.assertEqual(stats["providers"]["we\"ird\\"], {"rejected": 1})
        self.assertGreaterEqual(sum(before["gewe"].values()), 200)
        # and as a table: gewe's row says the same
        rc, out, err = self.ctl("stats", "--since", "-1h")
        self.assertEqual(rc, 0, err)
        header, *rows = out.splitlines()
        columns = header.split()
        self.assertEqual(columns[0], "PROVIDER")
        (gewe_row,) = [r.split() for r in rows if r.split()[0] == "gewe"]
        for status, n in before["gewe"].items():
            self.assertEqual(int(gewe_row[columns.index(status)]), n, (status, out))
        self.assertEqual(int(gewe_row[-1]), sum(before["gewe"].values()), out)


class CtlEnqueueInputTest(unittest.TestCase):
    """enqueue's refusals: lines Kafka's producer refuses end the run (no retry forever), and
    inputs that are not one readable file are usage errors; enqueue and replay stopped by a signal
    (exit 130 only when it cut something short). Only a broker is needed."""

    @classmethod
    def setUpClass(cls):
        cls.dir = h.Workdir("ctl-input").path
        cls.kafka = h.EmbeddedKafka(cls.dir, partitions=1, topics=["sendq.requests"])
        cls.b = cls.kafka.bootstrap

    @classmethod
    def tearDownClass(cls):
        cls.kafka.stop()

    def ctl(self, *args):
        # A short timeout: these used to hang forever.
        p = h.sendqctl(*args, "--brokers", self.b, timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def write(self, name, lines):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def test_a_line_over_the_workers_max_request_bytes_is_rejected_as_too_large(self):
        # given a valid line of 2,000,000 characters of text (over the worker's default limit, 1 MiB)
        big = {"id": "enq-big", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": "a" * 2000000}}
        path = self.write("big.jsonl", [json.dumps(request(0, prefix="enqbig-ok")), json.dumps(big)])
        # when
        rc, _, err = self.ctl("enqueue", path)
        # then the other line is produced and the big one is a rejected line, named
        self.assertEqual(rc, 3, err)
        self.assertIn("enqueued 1 of 2 requests", err)
        self.assertIn("rejected 1 (too_large 1)", err)
        self.assertIn("rejected line 2: too_large: message: 2000095 bytes is over the limit of 1048576", err)

    def test_lines_up_to_the_workers_max_request_bytes_are_produced_whole(self):
        # given a line under the worker's default limit (1 MiB) but over librdkafka's default
        # message.max.bytes (1,000,000), and a 2,000,000-character one with a config that allows it
        near = {"id": "enq-near", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": "n" * 1040000}}
        big = {"id": "enq-big-ok", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": "b" * 2000000}}
        config = os.path.join(self.dir, "big.toml")
        with open(config, "w") as f:
            f.write("[worker]\nmax_request_bytes = 3000000\n")
        # when
        rc_near, _, err_near = self.ctl("enqueue", self.write("near.jsonl", [json.dumps(near)]))
        rc_big, _, err_big = self.ctl("enqueue", self.write("big-ok.jsonl", [json.dumps(big)]), "--config", config)
        # then both are produced (the producer takes what the worker's would), and are on the topic whole
        self.assertEqual((rc_near, rc_big), (0, 0), err_near + err_big)
        self.assertIn("enqueued 1 of 1 requests", err_near)
        self.assertIn("enqueued 1 of 1 requests", err_big)
        on_topic = {json.loads(v)["id"]: json.loads(v)["body"]["text"] for _, v, _ in h.kcat_consume_all(self.b, "sendq.requests")
                    if json.loads(v)["id"] in ("enq-near", "enq-big-ok")}
        self.assertEqual(on_topic, {"enq-near": "n" * 1040000, "enq-big-ok": "b" * 2000000})

    def test_any_other_refusal_by_the_producer_ends_with_exit_1_naming_the_line(self):
        # given a transactional producer, which refuses every record outside a transaction (enqueue
        # begins none); a bad topic name no longer reaches the producer: --topic is checked first
        path = self.write("one.jsonl", [json.dumps(request(0, prefix="enqrefused"))])
        # when
        rc, _, err = self.ctl("enqueue", path, "-X", "transactional.id=sendqctl-refusal-test")
        # then
        self.assertEqual(rc, 1, err)
        self.assertIn("Kafka refused 1 records (first: line 1 (id enqrefused-00000-", err)
        self.assertIn("not produced: Local: Erroneous state", err)

    def test_a_pipe_is_read_once_and_every_line_enqueued(self):
        # given requests on a named pipe (as <(zcat reqs.jsonl.gz) gives): it can be read only once,
        # so counting its lines first for the progress bar left nothing to enqueue (exit 0)
        fifo = os.path.join(self.dir, "requests.fifo")
        os.mkfifo(fifo)
        lines = [json.dumps(request(i, prefix="enqfifo")) for i in range(25)]
        writer = subprocess.Popen(["sh", "-c", 'cat > "$0"', fifo], stdin=subprocess.PIPE)
        try:
            writer.stdin.write(("\n".join(lines) + "\n").encode())
            writer.stdin.close()
            # when
            rc, out, err = self.ctl("enqueue", fifo)
            writer.wait(timeout=30)
        finally:
            writer.kill()  # if sendqctl never opened the pipe, the writer would block on it for ever
            writer.wait()
        # then all 25 are on the topic
        self.assertEqual(rc, 0, err)
        self.assertIn("enqueued 25 of 25", err)
        got = [json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.b, "sendq.requests")
               if json.loads(v)["id"].startswith("enqfifo")]
        self.assertEqual(sorted(got), sorted(json.loads(line)["id"] for line in lines))

    def test_ctrl_c_while_waiting_on_input_flushes_what_was_read_and_summarizes(self):
        for source in ("stdin", "fifo"):
            with self.subTest(source):
                # given an enqueue reading an open pipe (a terminal, a slow producer, <(...)), three lines in
                prefix = f"enqint{source}"
                lines = [json.dumps(request(i, prefix=prefix)) for i in range(3)]
                with contextlib.ExitStack() as procs:
                    if source == "stdin":
                        p = procs.enter_context(h.reaped(subprocess.Popen(
                            [h.SENDQCTL, "enqueue", "-", "--brokers", self.b], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
                        p.stdin.write(("\n".join(lines) + "\n").encode())
                        p.stdin.flush()
                    else:
                        fifo = os.path.join(self.dir, "interrupted.fifo")
                        os.mkfifo(fifo)
                        # the writer keeps the FIFO open after its lines
                        writer = procs.enter_context(h.reaped(subprocess.Popen(["sh", "-c", 'cat > "$0"', fifo],
                                                                               stdin=subprocess.PIPE)))
                        writer.stdin.write(("\n".join(lines) + "\n").encode())
                        writer.stdin.flush()
                        p = procs.enter_context(h.reaped(subprocess.Popen(
                            [h.SENDQCTL, "enqueue", fifo, "--brokers", self.b], stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
                    h.wait_for(lambda: len([1 for _, v, _ in h.kcat_consume_all(self.b, "sendq.requests")
                                            if json.loads(v)["id"].startswith(prefix)]) == 3, 30, "the three lines on the topic")
                    # when it is interrupted while it waits for more (it used to die there, without its summary)
                    p.send_signal(signal.SIGINT)
                    # (its input stays open until it exits: closed first, the input would have ended, and
                    # a signal after the end of the input cuts nothing short)
                    p.wait(timeout=70)
                    err = p.stderr.read()
                # then it stops, says how far it got, and exits 130
                self.assertEqual(p.returncode, 130, err)
                self.assertEqual(err.decode(), "enqueued 3 of 3 requests to sendq.requests\n"
                                               "interrupted after line 3: the lines after it were not read\n")

    def test_a_signal_after_the_whole_input_was_read_cuts_nothing_short(self):
        for source in ("file", "stdin"):
            with self.subTest(source):
                # given an enqueue that has read all of its input (a file; stdin, closed) and waits for
                # Kafka to acknowledge it
                prefix = f"enqlate{source}"
                lines = [json.dumps(request(i, prefix=prefix)) for i in range(3)]
                path = self.write(f"late-{source}.jsonl", lines)
                self.kafka.pause()  # (before it starts: else it could be acknowledged, and done, at once)
                try:
                    with h.reaped(subprocess.Popen(
                            [h.SENDQCTL, "enqueue", path if source == "file" else "-", "--brokers", self.b],
                            stdin=subprocess.PIPE if source == "stdin" else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)) as p:
                        if source == "stdin":
                            with open(path, "rb") as f:
                                p.stdin.write(f.read())
                            p.stdin.close()
                        # (it reads the three lines at once: nothing waits but the acknowledgements)
                        time.sleep(3 * h.timeout_scale())
                        # when a signal comes then
                        p.send_signal(signal.SIGINT)
                        time.sleep(0.5)
                        self.kafka.resume()
                        p.wait(timeout=70)
                        err = p.stderr.read()
                finally:
                    self.kafka.resume()
                # then the acknowledgements are still waited for, and nothing was cut short: exit 0, not 130
                self.assertEqual((p.returncode, err.decode()), (0, "enqueued 3 of 3 requests to sendq.requests\n"))
                got = [json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.b, "sendq.requests")
                       if json.loads(v)["id"].startswith(prefix)]
                self.assertEqual(got, [json.loads(line)["id"] for line in lines])

    def test_config_topic_names_are_the_defaults(self):
        # given a deployment whose configuration renamed the requests and bulk topics
        path = os.path.join(self.dir, "renamed.toml")
        with open(path, "w") as f:
            f.write(f'[kafka]\nbrokers = "{self.b}"\nrequests_topic = "prod.requests"\nbulk_topic = "prod.bulk"\n')
        recs = [request(i, prefix="renamed") for i in range(3)]
        lines = self.write("renamed.jsonl", [json.dumps(r) for r in recs])
        # when enqueue and replay are given only --config (no --brokers, no --topic)
        enq = h.sendqctl("enqueue", lines, "--config", path, timeout=60)
        rep = h.sendqctl("replay", "--config", path, timeout=60)
        # then they write and read where the workers of that file do
        self.assertEqual(enq.returncode, 0, enq.stderr)
        self.assertEqual(enq.stderr.decode(), "enqueued 3 of 3 requests to prod.requests\n")
        self.assertEqual(rep.returncode, 0, rep.stderr)
        self.assertIn("replay: read 3 records of prod.requests, 3 matched; produced 3 to prod.bulk\n", rep.stderr.decode())
        ids = sorted(r["id"] for r in recs)  # (auto-created topics of several partitions: compared as sets)
        self.assertEqual(sorted(json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.b, "prod.requests")), ids)
        self.assertEqual(sorted(json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.b, "prod.bulk")), ids)
        # and a flag still wins
        enq = h.sendqctl("enqueue", lines, "--config", path, "--topic", "other.requests", timeout=60)
        self.assertEqual(enq.stderr.decode(), "enqueued 3 of 3 requests to other.requests\n")

    def test_an_enqueue_kafka_takes_nothing_from_for_60_s_stops_with_exit_1(self):
        # given a broker that takes nothing (stopped), and a producer queue of 5 records whose
        # records fail after 2 s (so its queue keeps emptying, with no record ever acknowledged)
        lines = [json.dumps(request(i, prefix="enqstall")) for i in range(400)]  # 5 each 2 s: 160 s of them
        path = self.write("stall.jsonl", lines)
        started = time.monotonic()
        with self.kafka.paused():
            p = h.sendqctl("enqueue", path, "--brokers", self.b, "-X", "queue.buffering.max.messages=5",
                           "-X", "message.timeout.ms=2000", timeout=150)
        took = time.monotonic() - started
        # then it gives up after 60 s without an acknowledgement, says where it stopped, exits 1
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, err)
        stopped = re.search(r"^enqueue: Kafka took no record for 60 s \(the producer's queue stayed full: broker down, "
                            r"no authorization\?\); stopped after line (\d+): the lines after it were not produced$",
                            err, re.M)
        self.assertIsNotNone(stopped, err)
        self.assertLess(int(stopped.group(1)), len(lines), err)
        self.assertIsNotNone(re.search(r"^enqueued 0 of \d+ requests to sendq.requests$", err, re.M), err)
        self.assertIn("Kafka did not acknowledge", err)
        self.assertGreaterEqual(took, 60)
        self.assertLess(took, 120)
        # and nothing of it was written
        self.assertEqual([v for _, v, _ in h.kcat_consume_all(self.b, "sendq.requests") if "enqstall" in v], [])

    def test_a_signal_after_the_whole_range_was_read_cuts_nothing_short(self):
        # given a replay of two records at one every 6 s, whose second waits for its acknowledgement
        recs = [request(i, prefix="lateint") for i in range(2)]
        h.kcat_produce(self.b, "archive.lateint", [("one", json.dumps(r)) for r in recs])

        def copied():
            return [json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.b, "sendq.bulk")
                    if json.loads(v)["id"].startswith("lateint")]
        with h.reaped(subprocess.Popen([h.SENDQCTL, "replay", "--brokers", self.b, "--from-topic", "archive.lateint",
                                        "--rate", "10/m"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)) as p:
            h.wait_for(lambda: len(copied()) == 1, 30, "the first record copied")
            with self.kafka.paused():
                time.sleep(7.5)  # the second is produced 6 s after the first, and waits
                # when a signal comes then
                p.send_signal(signal.SIGINT)
                time.sleep(0.5)
            _, err = p.communicate(timeout=70)
        # then the copy is complete: exit 0, not 130
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("replay: read 2 records of archive.lateint, 2 matched; produced 2 to sendq.bulk\n", err.decode())
        self.assertEqual(sorted(copied()), [r["id"] for r in recs])

    def test_an_interrupted_replay_says_where_each_partition_goes_on_from(self):
        # given 8 requests on one partition of an archive topic
        recs = [request(i, prefix="resume") for i in range(8)]
        h.kcat_produce(self.b, "archive.resume", [("one", json.dumps(r)) for r in recs])
        part = h.kcat_consume_all(self.b, "archive.resume", with_partition=True)[0][2]

        def copied():
            return [json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(self.b, "sendq.bulk")
                    if json.loads(v)["id"].startswith("resume")]
        # when a replay of them at one a second is interrupted after its second
        with h.reaped(subprocess.Popen([h.SENDQCTL, "replay", "--brokers", self.b, "--from-topic", "archive.resume",
                                        "--rate", "1/s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)) as p:
            h.wait_for(lambda: len(copied()) >= 2, 30, "two records copied")
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=70)
        # then it exits 130 and says the first offset it did not copy, and how to go on from there
        done = copied()
        self.assertEqual(p.returncode, 130, err)
        # (in offset order on the archive; on sendq.bulk each key has its own partition)
        self.assertEqual(sorted(done), [r["id"] for r in recs[:len(done)]])
        self.assertLess(len(done), 8)
        self.assertIn(f"replay: interrupted: {8 - len(done)} records of the range were not copied: the copy is incomplete; "
                      f"run it again from where it stopped\n"
                      f"replay: partition {part}: not copied from offset {len(done)} (the range ends before 8); "
                      f"resume with --partition {part} --start-offset {len(done)} --end-offset 8 and the same filters\n",
                      err.decode())
        # and the copies are keyed by the requests' ordering key, not by the archive's key ("one")
        keys = {json.loads(v)["id"]: k for k, v, _ in h.kcat_consume_all(self.b, "sendq.bulk")
                if json.loads(v)["id"].startswith("resume")}
        self.assertEqual(keys, {r["id"]: f"{r['provider']}:{r['to']}" for r in recs[:len(done)]})

    def test_a_start_offset_below_the_oldest_record_left_is_named_as_deleted(self):
        # given a partition the broker has trimmed (the mock keeps about 5 MB): its first offsets are gone
        rnd = random.Random(7)  # values that do not compress
        values = "".join("".join(chr(33 + rnd.randrange(90)) for _ in range(10000)) + "\n" for _ in range(1000))
        subprocess.run(["kcat", "-b", self.b, "-P", "-t", "archive.trimmed", "-p", "0"], input=values.encode(),
                       check=True, timeout=120)
        low = int(subprocess.run(["kcat", "-b", self.b, "-C", "-t", "archive.trimmed", "-p", "0", "-o", "beginning",
                                  "-c", "1", "-f", "%o\n", "-q"], capture_output=True, timeout=30, check=True).stdout)
        self.assertGreater(low, 0, "the broker kept every record: nothing to test")
        # when a replay asks for them from offset 0
        rc, out, err = self.ctl("replay", "--from-topic", "archive.trimmed", "--start-offset", "0", "--dry-run")
        # then it says which were deleted before it could read them, and exits 1
        self.assertEqual(rc, 1, err)
        self.assertIn(f"replay: archive.trimmed partition 0: offsets 0 to {low - 1} were deleted (retention) before they "
                      f"were read: the copy is incomplete\n", err)
        # and of a range that ends before the oldest record, only what it asked for
        rc, out, err = self.ctl("replay", "--from-topic", "archive.trimmed", "--start-offset", "0", "--end-offset", "5",
                                "--dry-run")
        self.assertEqual(rc, 1, err)
        self.assertIn("replay: archive.trimmed partition 0: offsets 0 to 4 were deleted (retention) before they "
                      "were read: the copy is incomplete\n", err)
        # (A --since whose first offset a broker finds above the trimmed part narrows the range first;
        # the mock cluster cannot look offsets up by time, so that case is not shown here.)

    def test_a_directory_or_two_files_are_usage_errors(self):
        path = self.write("ok.jsonl", [json.dumps(request(0, prefix="enqtwo"))])
        rc, out, err = self.ctl("enqueue", self.dir)
        self.assertEqual(rc, 2, err)
        self.assertIn(f"cannot read '{self.dir}'", err)
        self.assertNotIn("enqueued", err)
        rc, out, err = self.ctl("enqueue", path, path)
        self.assertEqual(rc, 2, err)
        self.assertIn("one FILE only", err)

    def test_a_zero_rate_a_bad_topic_name_and_an_inverted_range_are_usage_errors_naming_the_options(self):
        path = self.write("rate.jsonl", [json.dumps(request(0, prefix="enqrate"))])
        cases = [
            (("enqueue", path, "--rate", "0/s"), ["--rate: '0/s' must be more than 0"]),
            (("enqueue", path, "--topic", "t" * 600), [f"--topic: '{'t' * 600}' is not a Kafka topic name"]),
            (("replay", "--topic", "bad topic", "--dry-run"), ["--topic: 'bad topic' is not a Kafka topic name"]),
            (("redrive", "--dlq-topic", "a b", "--dry-run"), ["--dlq-topic: 'a b' is not a Kafka topic name"]),
            (("replay", "--start-offset", "10", "--end-offset", "5", "--dry-run"), ["--start-offset (10) is after --end-offset (5)"]),
            (("stats", "--since", "now", "--until", "-1h"), ["--since now (", "is after --until -1h ("]),
            (("tail", "--status", "deliverd"), ["--status: 'deliverd' is not one of delivered, failed, rejected, expired"]),
            (("tail", "--kind", "http_500"), ["--kind: 'http_500' is not an error kind (invalid_json, invalid_field, ",
                                             ", tls, internal)"]),
            (("redrive", "--kind", "timeot", "--dry-run"), ["--kind: 'timeot' is not an error kind ("]),
            (("stats", "--rate", "10/s"), ["--rate: stats produces nothing (--rate is for enqueue, replay, redrive)"]),
            (("tail", "--rate", "10/s"), ["--rate: tail produces nothing"]),
        ]
        for args, wanted in cases:
            rc, out, err = self.ctl(*args)
            self.assertEqual(rc, 2, (args, err))
            for w in wanted:
                self.assertIn(w, err, args)
            self.assertNotIn("enqueued", err, args)

    def test_no_command_is_a_usage_error_on_stderr_and_version_names_the_build(self):
        p = h.sendqctl()
        self.assertEqual((p.returncode, p.stdout.decode()), (2, ""))
        self.assertTrue(p.stderr.decode().startswith("Usage: sendqctl COMMAND"), p.stderr)
        p = h.sendqctl("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.decode(), r"^sendqctl \d+\.\d+\.\d+ \(([0-9a-f]{7,}|unknown)\)\n$")


if __name__ == "__main__":
    h.main()
