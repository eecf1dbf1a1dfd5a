#!/usr/bin/python3
"""Who waits for a CPU when the open-loop latency jumps: each thread's CPU time and run-queue wait.

  benchmarks/support/run_queue.py sample OUT [--interval S] [--names NAME,...] [--under PID]
  benchmarks/support/run_queue.py report OUT LATENCY_DUMP [--step MS] [--worst N]

`sample` reads /proc/PID/task/TID/schedstat (CPU time, and time spent runnable but waiting for a
CPU, both in ns) of every thread of the processes named NAME (default: the worker, nginx, the
embedded Kafka and sendqctl, the open-loop producer) every S seconds (default 0.01), and appends
one line per thread to OUT until SIGINT or SIGTERM. --under PID takes only processes descended
from PID (other runs on the machine have the same names). Start it before
`SENDQ_BENCH_LATENCY_DUMP=LATENCY_DUMP benchmarks/e2e/run ...` and stop it after; the dump holds
the last open-loop load of the run (with --no-wide-latency, the one at half the maximum). At 10 ms
it took about 0.09 of a core here.

`report` cuts that load into steps of MS (default 100) by created_at and prints, for the N steps
with the slowest requests (default 8) and a median one: the requests created and completed, the
CPU the sampled threads used and the time they waited for one; each thread's share of the three
slowest steps; then each thread's CPU and wait per request over the whole load. Counters are
interpolated at the step edges. A step whose threads all wait for a CPU longer than usual while
the load arrives evenly is a machine short of CPU; one thread with no CPU in a slow step is a
stall (benchmarks/results/profile-2026-12-05.md, nineteenth pass).
"""
import argparse
import bisect
import collections
import os
import signal
import sys
import time

DEFAULT_NAMES = "sendq-worker,nginx,sendq-embedded-,sendqctl"  # comm is cut at 15 characters

Step = collections.namedtuple("Step", "slowest_ms offset_ms created completed cpu_ms wait_ms threads")


def descendants(root):
    """PIDs (as strings) of `root` and every process below it."""
    children = collections.defaultdict(list)
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        children[stat[stat.rindex(")") + 2:].split()[1]].append(p)
    found, todo = set(), [str(root)]
    while todo:
        p = todo.pop()
        if p not in found:
            found.add(p)
            todo.extend(children.get(p, ()))
    return found


def sample(out_path, interval, names, under):
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    pids, scanned_at = [], 0.0
    with open(out_path, "a") as out:
        while not stopping:
            now = time.time()
            if now - scanned_at > 0.5:  # processes come and go between the benchmark's phases
                scanned_at = now
                allowed = descendants(under) if under else None
                pids = []
                for p in filter(str.isdigit, os.listdir("/proc")):
                    if allowed is not None and p not in allowed:
                        continue
                    try:
                        with open(f"/proc/{p}/comm") as f:
                            if f.read().strip() in names:
                                pids.append(p)
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
            out.flush()
            time.sleep(interval)


def read_latencies(path):
    """[(created_at, completed_at)] ms, sorted, from benchmarks/e2e/run's SENDQ_BENCH_LATENCY_DUMP."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            try:
                out.append((int(parts[1]), int(parts[2])))
            except (IndexError, ValueError):
                sys.exit(f"{path}:{n}: expected 'id created_at completed_at ...', got {line.strip()!r}")
    if not out:
        sys.exit(f"{path}: empty (SENDQ_BENCH_LATENCY_DUMP of benchmarks/e2e/run)")
    return sorted(out)


def read_samples(path):
    """{(pid, tid, comm): [(ms, cpu ns, wait ns)]}, each list sorted by time."""
    series = collections.defaultdict(list)
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                ms, p, t, comm, cpu, wait = line.split()
                series[(p, t, comm)].append((int(ms), int(cpu), int(wait)))
            except ValueError:
                sys.exit(f"{path}:{n}: expected 'ms pid tid comm cpu_ns wait_ns' (run_queue.py sample), got {line.strip()!r}")
    if not series:
        sys.exit(f"{path}: no samples")
    for v in series.values():
        v.sort()
    return series


def counters_at(samples, t):
    """(CPU ms, wait ms) of one thread at time t, interpolated between the samples around it; its
    first or last sample's before or after them (it had not started, or had ended)."""
    i = bisect.bisect_left(samples, (t,))
    if i == len(samples):
        return samples[-1][1] / 1e6, samples[-1][2] / 1e6
    after = samples[i]
    if after[0] == t or i == 0:
        return after[1] / 1e6, after[2] / 1e6
    before = samples[i - 1]
    f = (t - before[0]) / (after[0] - before[0])
    return tuple((b + (a - b) * f) / 1e6 for b, a in zip(before[1:], after[1:]))


def used_between(samples, a, z):
    """(CPU ms, wait ms) of one thread from a to z."""
    start, end = counters_at(samples, a), counters_at(samples, z)
    return end[0] - start[0], end[1] - start[1]


def report(samples_path, dump_path, step_ms, worst):
    lat = read_latencies(dump_path)
    series = read_samples(samples_path)
    created = [c for c, _ in lat]
    completed = sorted(d for _, d in lat)
    start, end = created[0], created[-1]
    steps = []
    for t in range(start, end - step_ms + 1, step_ms):
        lo, hi = bisect.bisect_left(created, t), bisect.bisect_left(created, t + step_ms)
        per_thread = {key: used_between(v, t, t + step_ms) for key, v in series.items()}
        steps.append(Step(slowest_ms=max((d - c for c, d in lat[lo:hi]), default=0), offset_ms=t - start,
                          created=hi - lo,
                          completed=bisect.bisect_left(completed, t + step_ms) - bisect.bisect_left(completed, t),
                          cpu_ms=sum(c for c, _ in per_thread.values()), wait_ms=sum(w for _, w in per_thread.values()),
                          threads=per_thread))
    if not steps:
        sys.exit(f"the load ({(end - start) / 1000:.1f} s) is shorter than one step of {step_ms} ms")
    cpus = os.cpu_count() or 1
    by_slowest = sorted(steps, key=lambda s: (-s.slowest_ms, s.offset_ms))
    median = sorted(steps, key=lambda s: (s.slowest_ms, s.offset_ms))[len(steps) // 2]
    shown = [s for s in by_slowest[:worst] if s is not median] + [median]
    print(f"{len(lat):,} requests over {(end - start) / 1000:.1f} s; steps of {step_ms} ms "
          f"(the sampled threads' CPU and wait for a CPU, ms per step; {cpus} CPUs = {cpus * step_ms} ms)")
    print("| step (ms into the load) | slowest request (ms) | created | completed | CPU (ms) | waiting for a CPU (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s in shown:
        label = f"+{s.offset_ms:,}" + (" (median step)" if s is median else "")
        print(f"| {label} | {s.slowest_ms} | {s.created:,} | {s.completed:,} | {s.cpu_ms:.0f} | {s.wait_ms:.0f} |")

    def label(key):
        pid, tid, comm = key
        return f"{comm:<16} pid {pid:>7} tid {tid:>7}"

    slowest3 = [s for s in by_slowest[:3]]
    print(f"\nper thread in the slowest steps and the median one, ms CPU / waiting for a CPU:")
    header = "  " + " " * 38 + "".join(f"{'+' + format(s.offset_ms, ','):>16}" for s in slowest3 + [median])
    print(header)
    busy = sorted(series, key=lambda k: -sum(sum(s.threads[k]) for s in slowest3 + [median]))
    for key in busy:
        cells = [s.threads[key] for s in slowest3 + [median]]
        if all(c + w < 0.05 for c, w in cells):
            continue
        print(f"  {label(key)} " + "".join(f"{c:7.1f} / {w:6.1f}" for c, w in cells))
    n = len(lat)
    print(f"\nper thread over the load, µs per request: CPU / waiting for a CPU")
    rows = []
    for key, v in series.items():
        c, w = used_between(v, start, end)
        if (c + w) / n * 1000 >= 0.005:  # shown as 0.00 / 0.00 otherwise
            rows.append((c, w, key))
    for c, w, key in sorted(rows, reverse=True):
        print(f"  {label(key)}  {c / n * 1000:6.2f} / {w / n * 1000:6.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="sample the threads' schedstat until SIGINT/SIGTERM")
    s.add_argument("out")
    s.add_argument("--interval", type=float, default=0.01, help="seconds between samples (default 0.01)")
    s.add_argument("--names", default=DEFAULT_NAMES, help=f"process names, comma-separated (default {DEFAULT_NAMES})")
    s.add_argument("--under", type=int, default=0, help="only processes descended from this PID")
    r = sub.add_parser("report", help="slow steps and per-thread figures from samples and a latency dump")
    r.add_argument("samples")
    r.add_argument("latency_dump")
    r.add_argument("--step", type=int, default=100, help="ms per step (default 100)")
    r.add_argument("--worst", type=int, default=8, help="steps with the slowest requests to show (default 8)")
    args = ap.parse_args()
    if args.cmd == "sample":
        if args.interval <= 0:
            ap.error("--interval: must be above 0")
        if args.under and not os.path.exists(f"/proc/{args.under}"):
            ap.error(f"--under: no process {args.under}")
        sample(args.out, args.interval, {n for n in args.names.split(",") if n}, args.under)
    else:
        if args.step < 1:
            ap.error("--step: must be at least 1 ms")
        if args.worst < 1:
            ap.error("--worst: must be at least 1")
        for path in (args.samples, args.latency_dump):
            if not os.path.isfile(path):
                ap.error(f"no such file: {path}")
        report(args.samples, args.latency_dump, args.step, args.worst)


if __name__ == "__main__":
    main()
