#!/usr/bin/python3
"""Where a running worker's CPU goes, thread by thread, per delivery.

  benchmarks/support/thread_cpu.py PID [SECONDS] [--metrics http://127.0.0.1:PORT]

Reads each thread's user + system time and context switches from /proc/PID/task/*/ over SECONDS
(default 5) and the worker's sendq_deliveries_total over the same time from its /metrics (the
address defaults to the process's SENDQ_METRICS_ADDR), and prints microseconds of CPU and
voluntary / involuntary switches per delivery for each thread. The worker names its threads
(sendq-kafka, sendq-producer, sendq-io-N); librdkafka's are rdk:main and rdk:brokerN. Run it
during a drain (benchmarks/e2e/run) to see which thread a change moves.
"""
import argparse
import os
import re
import time
import urllib.request


def metrics_url(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        for item in f.read().split(b"\0"):
            if item.startswith(b"SENDQ_METRICS_ADDR="):
                return "http://" + item.split(b"=", 1)[1].decode()
    raise SystemExit(f"process {pid} has no SENDQ_METRICS_ADDR in its environment: pass --metrics")


def deliveries(url):
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("sendq_deliveries_total"))


def threads(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
        except OSError:
            continue  # the thread ended
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        switches = [int(re.search(rf"^{k}_ctxt_switches:\s+(\d+)", status, re.M).group(1))
                    for k in ("voluntary", "nonvoluntary")]
        out[tid] = (name, int(fields[11]) + int(fields[12]), *switches)  # utime + stime, in ticks
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("seconds", type=float, nargs="?", default=5.0)
    ap.add_argument("--metrics", help="the worker's metrics URL (default: from SENDQ_METRICS_ADDR)")
    args = ap.parse_args()
    if not os.path.isdir(f"/proc/{args.pid}"):
        raise SystemExit(f"pid: no process {args.pid} (pass a running sendq-worker's PID)")
    if args.seconds <= 0:
        raise SystemExit(f"seconds: must be more than 0, not {args.seconds:g}")
    url = args.metrics or metrics_url(args.pid)
    try:
        deliveries(url)
    except OSError as e:
        raise SystemExit(f"--metrics: cannot read {url}/metrics ({e})")
    before, d0 = threads(args.pid), deliveries(url)
    time.sleep(args.seconds)
    after, d1 = threads(args.pid), deliveries(url)
    n = d1 - d0
    if n <= 0:
        raise SystemExit("no deliveries in that time: run it while the worker is busy")
    tick = 1.0 / os.sysconf("SC_CLK_TCK")
    rows = []
    for tid, (name, cpu, vol, invol) in after.items():
        if tid in before:
            b = before[tid]
            rows.append((name, (cpu - b[1]) * tick, vol - b[2], invol - b[3]))
    rows.sort(key=lambda r: -r[1])
    print(f"{n / args.seconds:,.0f} deliveries/s over {args.seconds:g} s")
    print(f"{'thread':16} {'CPU per delivery':>17} {'voluntary':>10} {'involuntary':>12}  (switches per delivery)")
    for name, cpu, vol, invol in rows:
        if cpu > 0 or vol + invol > 0:
            print(f"{name:16} {1e6 * cpu / n:14.1f} µs {vol / n:10.3f} {invol / n:12.3f}")
    print(f"{'all':16} {1e6 * sum(r[1] for r in rows) / n:14.1f} µs")


if __name__ == "__main__":
    main()
