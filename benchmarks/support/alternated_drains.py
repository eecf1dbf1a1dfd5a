#!/usr/bin/python3
"""Alternated drains: compare worker settings or builds minute by minute, not hour by hour.

  SENDQ_BUILD_DIR=build-bench benchmarks/support/alternated_drains.py [-n N] [--rounds R]
      [--threads T] [--per-thread] ARM [ARM ...]

This VM's speed moves by a factor of two between runs of the end-to-end benchmark, within minutes,
for the stub and the worker alike. A comparison of two settings therefore needs many short runs of
each, one after the other. This tool starts the embedded Kafka and the nginx stub of
benchmarks/e2e/run once, produces one backlog of N realistic requests (default 200,000), then
drains it R times (default 4) with each ARM in turn, a new worker and consumer group each time, and
prints deliveries/s, worker CPU per delivery, peak RSS, connections and requests in flight per
drain, then each arm's median and range. The order of the arms is reversed every other round
(A B, B A, A B, ...), so that a drift within a round does not always favour the same arm. It uses
the drain of benchmarks/e2e/run, so the figures are the ones that table reports.

An ARM is NAME or NAME:SETTING=VALUE,... with SETTING one of
  max_in_flight=N       the worker's max_in_flight (default: the benchmark's, 4,096)
  worker=PATH           another sendq-worker binary (another build of another commit)
  SENDQ_...=VALUE       an environment variable of the worker (docs/configuration.md); it wins over
                        the benchmark's own settings of the worker
  SENDQ_BENCH_LIBRDKAFKA_KEY=VALUE, SENDQ_BENCH_LOG_LEVEL=LEVEL, SENDQ_BENCH_COUNT_SYSCALLS=1
                        as for benchmarks/e2e/run, for that arm's workers
for example:  base  small:max_in_flight=1024  old:worker=build-bench-ab/services/worker/sendq-worker

SENDQ_BENCH_KEEP_WORK=1 keeps the work folder (the workers' logs, the broker's and nginx's).

Before each drain, benchmarks/machine/machine_probe measures the machine for about a second and a
half: a load of an 8 MB and of a 64 MB pointer chase (the host's L3 cache left to this VM, memory
latency), one loopback TCP exchange within a thread, a wake-up round trip between two CPUs, one
compute step. Its figures follow each drain's line, and the end gives the rank correlation of each
of them with the drains' CPU per delivery (each less its arm's median): which of them, if any, a
slow minute comes with.

--per-thread adds, per drain, each thread group's CPU, its wait for a CPU (runnable, not running)
and its time slices per delivery, from /proc/PID/task/*/schedstat.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load_e2e():
    """benchmarks/e2e/run as a module (it has no .py suffix): its drain, stub and Kafka helpers."""
    path = os.path.join(ROOT, "benchmarks", "e2e", "run")
    loader = importlib.machinery.SourceFileLoader("sendq_e2e", path)
    spec = importlib.util.spec_from_loader("sendq_e2e", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# The benchmark's own variables that it reads each time it starts a worker or a drain; the others
# (SENDQ_BENCH_MAX_IN_FLIGHT, ...) are read once, or only by its other phases.
PER_DRAIN_BENCH_SETTINGS = ("SENDQ_BENCH_LOG_LEVEL", "SENDQ_BENCH_COUNT_SYSCALLS")


def parse_arm(text):
    """'name:k=v,k=v' -> (name, max_in_flight or None, worker path or None, {bench variable: value},
    {worker variable: value})."""
    name, _, rest = text.partition(":")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise SystemExit(f"arm '{text}': a name of letters, digits, '-' or '_' comes first")
    in_flight, worker, bench_env, worker_env = None, None, {}, {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"arm '{text}': '{item}' is not SETTING=VALUE")
        if key == "max_in_flight":
            if not value.isdigit() or int(value) < 1:
                raise SystemExit(f"arm '{text}': max_in_flight must be a whole number of 1 or more, not '{value}'")
            in_flight = int(value)
        elif key == "worker":
            if not os.path.isfile(value) or not os.access(value, os.X_OK):
                raise SystemExit(f"arm '{text}': worker '{value}' is not an executable file")
            worker = os.path.abspath(value)
        elif key.startswith("SENDQ_BENCH_LIBRDKAFKA_") or key in PER_DRAIN_BENCH_SETTINGS:
            bench_env[key] = value
        elif key.startswith("SENDQ_BENCH_"):
            raise SystemExit(f"arm '{text}': {key} is not read per drain (max_in_flight=N sets the worker's limit)")
        elif key.startswith("SENDQ_"):
            worker_env[key] = value
        else:
            raise SystemExit(f"arm '{text}': unknown setting '{key}' (max_in_flight, worker or SENDQ_...)")
    return name, in_flight, worker, bench_env, worker_env


# benchmarks/machine/machine_probe's figures: (JSON key, label, unit, decimals).
PROBE_FIGURES = (("cache_load_ns", "8 MB", "ns", 0), ("memory_load_ns", "64 MB", "ns", 0),
                 ("loopback_us", "loopback", "µs", 1), ("wakeup_us", "wake-up", "µs", 1),
                 ("compute_ns", "compute", "ns", 2))


def machine_probe(build):
    """(benchmarks/machine/machine_probe's figures now, None) after about a second and a half, or
    (None, why not): the probe is not built, or it failed. A failed probe is reported on the drain's
    line; the drains go on without it."""
    path = os.path.join(build, "benchmarks", "machine", "machine_probe")
    if not os.access(path, os.X_OK):
        return None, f"not built ({os.path.relpath(path, ROOT)}: the machine_probe target, SENDQ_BUILD_BENCHMARKS=ON)"
    try:
        p = subprocess.run([path], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            return None, f"failed (exit {p.returncode}: {p.stderr.strip()})"
        figures = json.loads(p.stdout)
        if not isinstance(figures, dict):
            return None, f"failed (its output is not a JSON object: {p.stdout.strip()[:80]})"
        missing = [key for key, _, _, _ in PROBE_FIGURES if not isinstance(figures.get(key), (int, float))]
        if missing:  # a probe built from older sources
            return None, f"failed (no {', '.join(missing)} in its output: rebuild the machine_probe target)"
        return figures, None
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        return None, f"failed ({e})"


def describe_probe(probe, why_not=None):
    """'8 MB 126 ns, 64 MB 178 ns, loopback 9.3 µs, wake-up 42.7 µs, compute 1.65 ns' (a figure the
    probe could not take, such as a wake-up with one CPU, reads n/a), or why there are none."""
    if probe is None:
        return why_not
    return ", ".join(f"{label} {probe[key]:.{decimals}f} {unit}" if probe[key] >= 0 else f"{label} n/a"
                     for key, label, unit, decimals in PROBE_FIGURES)


def ranks(values):
    """The rank of each value (1 = smallest), ties given their mean rank."""
    by_value = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(by_value):
        j = i
        while j + 1 < len(by_value) and values[by_value[j + 1]] == values[by_value[i]]:
            j += 1
        for k in range(i, j + 1):
            out[by_value[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(pairs):
    """Spearman's rank correlation of [(x, y)]: robust to the outliers a shared VM produces, and
    to a relation that is monotonic but not linear. None when either side does not vary."""
    rx, ry = ranks([p[0] for p in pairs]), ranks([p[1] for p in pairs])
    mx, my = statistics.mean(rx), statistics.mean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / (sxx * syy) ** 0.5 if sxx and syy else None


def probe_correlations(probed, medians):
    """'8 MB +0.33 (30), ...': each probe figure's rank correlation with the drains' µs a delivery,
    each less its arm's median, so that a difference between the arms is not read as the machine's.
    A figure the probe could not take (negative) is left out; the drains counted are in brackets."""
    parts = []
    for key, label, _, _ in PROBE_FIGURES:
        pairs = [(p[key], us - medians[arm]) for arm, p, us in probed if p[key] >= 0]
        rho = spearman(pairs) if len(pairs) >= 3 else None
        parts.append(f"{label} " + (f"{rho:+.2f}" if rho is not None else "n/a") + f" ({len(pairs)})")
    return ", ".join(parts)


def order(rounds, arms):
    """(round, arm) in the order they drain: the arms' order reversed every other round."""
    return [(r, arm) for r in range(rounds) for arm in (arms if r % 2 == 0 else arms[::-1])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arms", nargs="+", metavar="ARM")
    ap.add_argument("-n", type=int, default=200_000, help="requests in the backlog (default 200000)")
    ap.add_argument("--rounds", type=int, default=4, help="drains per arm, alternated (default 4)")
    ap.add_argument("--threads", type=int, default=2, help="the workers' I/O threads (default 2)")
    ap.add_argument("--per-thread", action="store_true", help="CPU, wait and time slices per thread group")
    args = ap.parse_args()
    if args.n < 1000:
        raise SystemExit(f"-n: at least 1000 requests, not {args.n}")
    if args.rounds < 1 or args.threads < 1:
        raise SystemExit("--rounds and --threads: 1 or more")
    arms = [parse_arm(a) for a in args.arms]
    if len({a[0] for a in arms}) != len(arms):
        raise SystemExit("each arm needs a name of its own")

    e2e = load_e2e()
    h = e2e.h
    nginx = e2e.required_tools()
    default_worker = h.WORKER
    drains = order(args.rounds, arms)
    names = [f"{arm[0]}.{r}" for r, arm in drains]
    topics = ["bench.requests"] + [f"bench.{kind}.{name}" for name in names
                                   for kind in ("results", "retry", "bulk", "dlq")]
    # `kill <pid>` of this script stops what it started too (the finally below), as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    procs = e2e.Procs()
    work = tempfile.mkdtemp(prefix="sendq-drains-")
    figures = {arm[0]: [] for arm in arms}
    probed = []  # (arm, the probe's figures, µs a delivery) of every drain
    try:
        partitions = e2e.default_partitions(args.n)
        kafka, bootstrap = e2e.start_embedded_kafka(procs, work, partitions, topics)
        nginx_proc, port = e2e.start_stub(procs, work, nginx)
        others = {"Kafka broker": [kafka.pid], "nginx": [nginx_proc.pid] + e2e.child_pids(nginx_proc.pid)}
        lines, _, _ = e2e.backlog(args.n)
        e2e.produce_backlog(bootstrap, "bench.requests", lines)
        del lines
        print(f"backlog of {args.n:,} on {partitions} partitions; {args.rounds} rounds of {len(arms)} arms, "
              f"{args.threads} I/O thread(s)", flush=True)

        for (r, (name, in_flight, worker, bench_env, worker_env)), drain_name in zip(drains, names):
            probe, why_not = machine_probe(h.BUILD)  # before the worker starts: it takes both CPUs a while
            saved = {k: os.environ.get(k) for k in bench_env}
            os.environ.update(bench_env)
            h.WORKER = worker or default_worker
            try:
                d = e2e.drain(procs, work, drain_name, bootstrap, port, "bench.requests", f"bench.results.{drain_name}",
                              args.n, args.threads, timeout=max(120, args.n / 200), others=others,
                              max_in_flight=in_flight, extra_env=worker_env)
            finally:
                h.WORKER = default_worker
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            if d["results"] != args.n or d["statuses"].get("delivered", 0) != args.n:
                raise RuntimeError(f"{drain_name}: {d['results']} results, statuses {d['statuses']}")
            us = d["cpu_per_1000"] * 1000
            figures[name].append((d["rate"], us))
            if probe:
                probed.append((name, probe, us))
            print(f"{time.strftime('%H:%M:%S')} {drain_name:>16}: {d['rate']:9,.0f}/s {us:6.1f} µs a delivery, "
                  f"peak RSS {d['hwm_mb']:5.1f} MB, {d['connections']} connections, "
                  f"{d['peak_in_flight']:,.0f} in flight at most, "
                  f"I/O threads busy {' '.join(f'{b:.2f}' for b in d['io_busy'])}; "
                  f"probe before it: {describe_probe(probe, why_not)}", flush=True)
            if args.per_thread:
                groups = sorted(d["thread_groups"].items(), key=lambda kv: -kv[1][0])
                if not any(run > 0 for _, (run, _, _) in groups):
                    print(f"{'':20}(no per-thread figures: this kernel reports no schedstat)", flush=True)
                for group, (run, wait, slices) in groups:
                    if run > 0.05:
                        print(f"{'':20}{group:16} on a CPU {run:5.1f} µs, waiting {wait:5.1f} µs, "
                              f"{slices:.3f} time slices a delivery", flush=True)
        print("\narm: median deliveries/s (range); median µs a delivery (range)")
        for name, rows in figures.items():
            rates, uss = [x[0] for x in rows], [x[1] for x in rows]
            print(f"{name}: {statistics.median(rates):,.0f}/s ({min(rates):,.0f}–{max(rates):,.0f}); "
                  f"{statistics.median(uss):.1f} µs ({min(uss):.1f}–{max(uss):.1f})")
        if len(probed) >= 3:
            medians = {name: statistics.median(x[1] for x in rows) for name, rows in figures.items() if rows}
            print("\nµs a delivery (less its arm's median) against the probe just before: Spearman's rank correlation, "
                  "the drains counted in brackets (+1: the slower the machine by that figure, the dearer every delivery)")
            print("  " + probe_correlations(probed, medians))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up short
        procs.stop_all()
        if not os.environ.get("SENDQ_BENCH_KEEP_WORK"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
