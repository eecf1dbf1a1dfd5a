#!/usr/bin/python3
"""Who waits for a CPU when the open-loop latency jumps: each thread's CPU time and run-queue wait.

  benchmarks/support/run_queue.py sample OUT [--interval S] [--names NAME,...]
  benchmarks/support/run_queue.py report OUT LATENCY_DUMP [--step MS] [--worst N]

`sample` reads /proc/PID/task/TID/schedstat (CPU time and time spent runnable but waiting for a
CPU, both in ns) of every thread of the processes named NAME (default: the worker, nginx, the
embedded Kafka and sendqctl, the open-loop producer) every S seconds (default 0.01) and appends
one line per thread to OUT until SIGINT or SIGTERM. Start it before benchmarks/e2e/run with
SENDQ_BENCH_LATENCY_DUMP=LATENCY_DUMP, stop it after. It costs a few tenths of a core itself.

`report` cuts the open-loop load into steps of MS (default 100) by created_at and prints, for the
steps with the slowest requests and for a median one: the requests created and completed, the CPU
the sampled threads used and the time they waited for one; then each thread's CPU and wait per
delivery over the whole load. A step whose threads wait for a CPU as long as they run is a machine
out of CPU, not a component stalled (benchmarks/results/profile-2026-12-05.md, nineteenth pass).
"""
import argparse
import bisect
import collections
import os
import signal
import sys
import time

DEFAULT_NAMES = "sendq-worker,nginx,sendq-embedded-,sendqctl"  # comm is cut at 15 characters


def sample(out_path, interval, names):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    pids, scanned = {}, 0.0
    with open(out_path, "a") as out:
        while not stop:
            now = time.time()
            if now - scanned > 0.5:  # processes come and go between the benchmark's phases
                scanned, pids = now, {}
                for p in filter(str.isdigit, os.listdir("/proc")):
                    try:
                        with open(f"/proc/{p}/comm") as f:
                            if f.read().strip() in names:
                                pids[p] = True
                    except OSError:
                        pass
            ms = int(time.time() * 1000)
            lines = []
            for p in pids:
                try:
                    tids = os.listdir(f"/proc/{p}/task")
                except OSError:
                    continue
                for t in tids:
                    try:
                        with open(f"/proc/{p}/task/{t}/schedstat") as f:
                            cpu_ns, wait_ns = f.read().split()[:2]
                        with open(f"/proc/{p}/task/{t}/comm") as f:
                            comm = f.read().strip().replace(" ", "_")
                    except (OSError, ValueError):
                        continue
                    lines.append(f"{ms} {p} {t} {comm} {cpu_ns} {wait_ns}\n")
            out.writelines(lines)
            time.sleep(interval)


def report(samples_path, dump_path, step, worst):
    lat = []  # (created_at, completed_at) ms
    with open(dump_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] != "None":
                lat.append((int(parts[1]), int(parts[2])))
    if not lat:
        sys.exit(f"{dump_path}: no results with a created_at (SENDQ_BENCH_LATENCY_DUMP of benchmarks/e2e/run)")
    lat.sort()
    series = collections.defaultdict(list)  # (pid, tid, comm) -> [(ms, cpu ns, wait ns)]
    with open(samples_path) as f:
        for line in f:
            ms, p, t, comm, cpu, wait = line.split()
            series[(p, t, comm)].append((int(ms), int(cpu), int(wait)))
    if not series:
        sys.exit(f"{samples_path}: no samples")
    for v in series.values():
        v.sort()

    def used(v, a, z):
        """(CPU ms, wait ms) of one thread between a and z, from its first and last sample in them."""
        lo, hi = bisect.bisect_left(v, (a,)), bisect.bisect_right(v, (z, float("inf")))
        if hi - lo < 2:
            return 0.0, 0.0
        return (v[hi - 1][1] - v[lo][1]) / 1e6, (v[hi - 1][2] - v[lo][2]) / 1e6

    created = [c for c, _ in lat]
    completed = sorted(d for _, d in lat)
    start, end = created[0], created[-1]
    steps = []
    for t in range(start, end - step + 1, step):
        lo, hi = bisect.bisect_left(created, t), bisect.bisect_left(created, t + step)
        slowest = max((d - c for c, d in lat[lo:hi]), default=0)
        done = bisect.bisect_left(completed, t + step) - bisect.bisect_left(completed, t)
        cpu = wait = 0.0
        for v in series.values():
            c, w = used(v, t, t + step)
            cpu, wait = cpu + c, wait + w
        steps.append((slowest, t - start, hi - lo, done, cpu, wait))
    if not steps:
        sys.exit("the load is shorter than one step")
    print(f"{len(lat):,} requests over {(end - start) / 1000:.1f} s; steps of {step} ms "
          f"(the sampled threads' CPU and run-queue wait, ms per step; {os.cpu_count()} CPUs = {os.cpu_count() * step} ms)")
    print("| step (ms into the load) | slowest request (ms) | created | completed | CPU (ms) | waiting for a CPU (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    median = sorted(steps, key=lambda s: s[0])[len(steps) // 2]
    for s in sorted(steps, reverse=True)[:worst] + [median]:
        label = f"+{s[1]:,}" + (" (median step)" if s is median else "")
        print(f"| {label} | {s[0]} | {s[2]:,} | {s[3]:,} | {s[4]:.0f} | {s[5]:.0f} |")
    n = len(lat)
    print(f"\nper thread over the load, µs per request: CPU / waiting for a CPU")
    rows = []
    for (p, t, comm), v in series.items():
        c, w = used(v, start, end)
        if (c + w) / n * 1000 >= 0.005:  # shown as 0.00 / 0.00 otherwise
            rows.append((c, w, comm, p, t))
    for c, w, comm, p, t in sorted(rows, reverse=True):
        print(f"  {comm:<16} pid {p:>7} tid {t:>7}  {c / n * 1000:6.2f} / {w / n * 1000:6.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="sample the threads' schedstat until SIGINT/SIGTERM")
    s.add_argument("out")
    s.add_argument("--interval", type=float, default=0.01)
    s.add_argument("--names", default=DEFAULT_NAMES, help=f"process names, comma-separated (default {DEFAULT_NAMES})")
    r = sub.add_parser("report", help="bursts and per-thread figures from samples and a latency dump")
    r.add_argument("samples")
    r.add_argument("latency_dump")
    r.add_argument("--step", type=int, default=100, help="ms per step (default 100)")
    r.add_argument("--worst", type=int, default=8, help="steps with the slowest requests to show (default 8)")
    args = ap.parse_args()
    if args.cmd == "sample":
        if args.interval <= 0:
            ap.error("--interval: must be above 0")
        sample(args.out, args.interval, set(n for n in args.names.split(",") if n))
    else:
        if args.step < 1:
            ap.error("--step: must be at least 1 ms")
        report(args.samples, args.latency_dump, args.step, args.worst)


if __name__ == "__main__":
    main()
