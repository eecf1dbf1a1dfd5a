#!/usr/bin/python3
"""Instructions per delivery of sendq-worker, counted by callgrind, thread by thread.

  benchmarks/support/worker_instructions.py [--small N1] [--large N2] [--worker PATH] [--cache-sim MB] [--keep]

Runs the end-to-end benchmark's drain (benchmarks/e2e/run) twice, with N1 and N2 requests, the
worker under `valgrind --tool=callgrind --separate-threads=yes`, and prints the instructions
(Ir) per delivery as the difference between the two drains divided by N2 - N1: the worker's
start-up (loading the system CA store alone is hundreds of millions of instructions) cancels
out. Unlike CPU time on a shared VM, instruction counts repeat closely (0.4% apart in a repeat
on 2026-11-24), so a change of a few percent in user space shows. The benchmark polls the
worker's /metrics every 50 ms, which costs instructions per second rather than per delivery:
that is counted apart (the HTTP server's sessions) and left out of the total. The counts leave
out the kernel (system calls, the loopback TCP stack) and, without --cache-sim, cache misses:
check a change's effect on time with thread_cpu.py too.

The worker runs about fifty times slower under callgrind, so max_in_flight is 1,000 here and
Kafka batches are smaller than at full speed: per-batch costs (librdkafka's produce requests,
LZ4 frames) weigh more per delivery than they do in a real drain.

--cache-sim MB adds callgrind's cache simulation (L1 as the host's, a last-level cache of MB
megabytes) and prints the misses per delivery beside the instructions: the same instructions may
cost more cycles in the minutes when the host's other tenants leave this VM less of the L3, and
the misses show which thread's (and, with --keep and callgrind_annotate --show=DLmr, which
function's) memory traffic would pay for it. A simulation of the worker alone in the cache,
serialised as valgrind runs one thread at a time: it ranks the code by misses, it does not
predict the time.

Everything else comes from SENDQ_BUILD_DIR (default ./build-bench): the embedded Kafka, the
simulator, sendqctl. --worker PATH measures another worker binary against the same rest (for
example one built at an older commit). Needs valgrind (scripts/setup installs it).
"""
import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Failure(Exception):
    """A step failed; the message names it (and where its output was kept)."""


def run_drain(n, fake_build, out_dir):
    """One drain of n requests; returns the callgrind files of the drain's worker."""
    env = dict(os.environ, SENDQ_BUILD_DIR=fake_build, SENDQ_BENCH_MAX_IN_FLIGHT="1000")
    results = os.path.join(out_dir, f"e2e-{n}.md")
    log = os.path.join(out_dir, f"e2e-{n}.log")
    with open(log, "w") as f:
        proc = subprocess.Popen([os.path.join(ROOT, "benchmarks", "e2e", "run"), "-n", str(n), "--no-single-thread",
                                 "--latency-seconds", "0.5", "--latency-rate", "200", "--no-wide-latency", "--output", results],
                                env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=3600)
        except BaseException:
            # Timeout or Ctrl-C: SIGTERM lets the benchmark stop the broker, nginx and worker it started.
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if rc != 0:
        raise Failure(f"benchmarks/e2e/run -n {n} failed (exit {rc}); its output: {log}")
    # Three workers run under callgrind, one after the other: the drain's, the memory drain's (at
    # 10,000 in flight) and the latency phase's. callgrind writes at exit, so the oldest output is
    # the drain's; a worker killed before it could write leaves none, and then which is which is
    # unknown.
    outs = glob.glob(os.path.join(out_dir, f"cg-{n}", "callgrind.*"))
    first_write = {}
    for path in outs:
        pid = re.match(r"callgrind\.(\d+)", os.path.basename(path)).group(1)
        first_write[pid] = min(first_write.get(pid, float("inf")), os.path.getmtime(path))
    if len(first_write) != 3:
        raise Failure(f"expected callgrind output from 3 workers (drain, memory drain and latency phase) in the drain of {n}, "
                      f"found {len(first_write)}: a worker may have been killed before it could write; "
                      f"benchmark output: {log}")
    drain_pid = min(first_write, key=first_write.get)
    return sorted(glob.glob(os.path.join(out_dir, f"cg-{n}", f"callgrind.{drain_pid}-*")))


SERVER_SESSIONS = "server.cpp:sendq::http::server::impl::run_session("
# With --cache-sim: the misses of the last-level cache, instruction reads, data reads and writes.
LL_MISSES = ("ILmr", "DLmr", "DLmw")
D1_MISSES = ("I1mr", "D1mr", "D1mw")


def file_totals(path):
    """{event: count} of one callgrind output file, from its `events:` and `summary:` (or `totals:`) lines."""
    names = counts = None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith(("summary:", "totals:")) and counts is None:
                counts = [int(v) for v in line.split()[1:]]
    if names is None or counts is None:
        raise Failure(f"{path}: not a callgrind output file (no events: or summary: line)")
    # Trailing events that are zero may be left out of the line.
    return {name: counts[i] if i < len(counts) else 0 for i, name in enumerate(names)}


# One column of callgrind_annotate's table: a count with its share ("1,234 (12.5%)", "5 ( 0.5%)"),
# a bare 0, or "." for none of that event.
_COLUMN = re.compile(r"\s*(?:([\d,]+)(?:\s*\(\s*[\d.]+%\))?|(\.))")


def inclusive_of(annotated, pattern):
    """{event: the largest inclusive count of a function whose line contains `pattern`} in the output
    of callgrind_annotate --inclusive=yes, for every event it shows (0 where no line matches)."""
    shown = re.search(r"^Events shown:\s+(.*)$", annotated, re.M)
    if not shown:
        raise ValueError("no 'Events shown:' line in callgrind_annotate's output")
    events = shown.group(1).split()
    best = dict.fromkeys(events, 0)
    for line in annotated.splitlines():
        if pattern not in line or "=>" in line:
            continue
        pos, counts = 0, []
        for _ in events:
            m = _COLUMN.match(line, pos)
            if not m or m.end() == pos:
                break
            counts.append(0 if m.group(2) else int(m.group(1).replace(",", "")))
            pos = m.end()
        if len(counts) == len(events):
            for event, count in zip(events, counts):
                best[event] = max(best[event], count)
    return best


def annotate(path):
    # --threshold=100: every function, however small its share of an event (by default the list
    # stops at 99% of it, and the /metrics sessions' misses could fall below that). Every event the
    # file has is shown, one column each, so the file is read once.
    return subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout


def valgrind_options(out_file, cache_mb):
    """valgrind's options for the worker under callgrind, with the cache simulation when cache_mb."""
    options = ["--tool=callgrind", "--separate-threads=yes"]
    if cache_mb:
        options += ["--cache-sim=yes", f"--LL={cache_mb << 20},16,64"]  # 16-way, 64-byte lines
    return options + [f"--callgrind-out-file={out_file}"]


def totals(path):
    """(thread role, {event: count}, {event: of which serving /metrics}) of one callgrind thread file."""
    try:
        return read_totals(path)
    except (subprocess.CalledProcessError, ValueError) as e:
        raise Failure(f"{path}: could not be read ({e})") from e


def read_totals(path):
    counts = file_totals(path)
    text = annotate(path)
    # The benchmark polls /metrics every 50 ms, served on the first I/O thread: a cost per second,
    # not per delivery (and a slower worker is polled more), so it is counted apart.
    serving = inclusive_of(text, SERVER_SESSIONS)
    role = "librdkafka"
    for pattern, name in (("io_context::run()", "I/O threads (sendq-io-N)"),
                          ("pipeline::impl::consume_loop()", "Kafka thread (sendq-kafka)"),
                          ("rd_kafka_poll", "delivery reports (sendq-producer)"),
                          ("main.cpp:main", "main (start-up, signals)")):
        if pattern in text:
            role = name
            break
    return role, counts, serving


POLLING = "/metrics, the benchmark's polling (not counted)"


def by_role(files):
    """{role: {event: count}}, each role's counts less what serving /metrics cost (POLLING's)."""
    out = {}
    for path in files:
        role, counts, serving = totals(path)
        mine, polling = out.setdefault(role, {}), out.setdefault(POLLING, {})
        for event, count in counts.items():
            mine[event] = mine.get(event, 0) + count - serving.get(event, 0)
            polling[event] = polling.get(event, 0) + serving.get(event, 0)
    return out


def per_delivery(small, large, span):
    """{role: {event: per delivery}}: (the large drain's counts - the small one's) / span."""
    out = {}
    for role in set(small) | set(large):
        events = set(small.get(role, {})) | set(large.get(role, {}))
        out[role] = {e: (large.get(role, {}).get(e, 0) - small.get(role, {}).get(e, 0)) / span for e in events}
    return out


def report(per, cache_mb):
    """The printed table: instructions per delivery by role, and with a cache simulation its misses."""
    def misses(counts, events):
        return sum(counts.get(e, 0) for e in events)

    lines = []
    header = f"  {'':48} {'instructions':>12}"
    if cache_mb:
        header += f" {'L1 misses':>10} {f'LL misses ({cache_mb} MB)':>18}"
    lines.append(header)
    roles = sorted((r for r in per if r != POLLING), key=lambda r: -per[r].get("Ir", 0))
    everything = {}
    for role in roles:
        for e, v in per[role].items():
            everything[e] = everything.get(e, 0) + v
    for name, counts in [(r, per[r]) for r in roles] + [("all threads", everything), (POLLING, per.get(POLLING, {}))]:
        line = f"  {name:48} {counts.get('Ir', 0):12,.0f}"
        if cache_mb:
            line += f" {misses(counts, D1_MISSES):10,.0f} {misses(counts, LL_MISSES):18,.0f}"
        lines.append(line)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=10_000, help="requests in the first drain (default 10000)")
    ap.add_argument("--large", type=int, default=30_000, help="requests in the second drain (default 30000)")
    ap.add_argument("--worker", default="", help="worker binary to measure (default: the build's)")
    ap.add_argument("--cache-sim", type=int, default=0, metavar="MB",
                    help="also simulate the caches (callgrind --cache-sim, about twice as slow), with a last-level cache "
                         "of MB megabytes (a power of two: what the host's L3 leaves this VM is not known), and print "
                         "L1 and last-level misses per delivery")
    ap.add_argument("--keep", action="store_true",
                    help="keep the callgrind files (for callgrind_annotate) and print where they are")
    args = ap.parse_args()
    if args.small <= 0 or args.large <= args.small:
        sys.exit(f"--small and --large: need 0 < small < large, got {args.small} and {args.large}")
    if args.cache_sim and (args.cache_sim < 1 or args.cache_sim > 1024 or args.cache_sim & (args.cache_sim - 1)):
        sys.exit(f"--cache-sim: the last-level cache's size in MB must be a power of two from 1 to 1024, got {args.cache_sim}")
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        sys.exit("valgrind is not installed: run scripts/setup (or apt-get install valgrind)")
    build = os.path.abspath(os.environ.get("SENDQ_BUILD_DIR", os.path.join(ROOT, "build-bench")))
    worker = os.path.abspath(args.worker or os.path.join(build, "services", "worker", "sendq-worker"))
    if not os.access(worker, os.X_OK):
        sys.exit(f"no worker binary at {worker}: build the benchmarks first (see README) or pass --worker")

    work = tempfile.mkdtemp(prefix="sendq-instr-")
    try:
        # A build directory whose worker is a script running the real one under callgrind.
        fake = os.path.join(work, "build")
        for service in ("simulator", "embedded-kafka", "gateway", "ctl"):
            src = os.path.join(build, "services", service)
            if not os.path.isdir(src):
                raise Failure(f"no {src}: build the benchmarks first (see README), or set SENDQ_BUILD_DIR")
            os.makedirs(os.path.join(fake, "services", service))
            for name in os.listdir(src):
                if name.startswith("sendq"):
                    os.symlink(os.path.join(src, name), os.path.join(fake, "services", service, name))
        os.makedirs(os.path.join(fake, "services", "worker"))
        wrapper = os.path.join(fake, "services", "worker", "sendq-worker")
        measured = {}
        for n in (args.small, args.large):
            os.makedirs(os.path.join(work, f"cg-{n}"))
            out_file = os.path.join(work, f"cg-{n}", "callgrind.%p")
            with open(wrapper, "w") as f:
                options = " ".join(shlex.quote(o) for o in valgrind_options(out_file, args.cache_sim))
                f.write(f"#!/bin/sh\nexec valgrind {options} {shlex.quote(worker)} \"$@\"\n")
            os.chmod(wrapper, 0o755)
            print(f"drain of {n:,} requests under callgrind ...", file=sys.stderr)
            measured[n] = by_role(run_drain(n, fake, work))
    except Failure as e:
        # Kept, so that the output the message points to is still there.
        sys.exit(f"{e}\n(files kept in {work})")
    except BaseException:
        if not args.keep:  # with --keep, what the drains took minutes to write stays
            shutil.rmtree(work, ignore_errors=True)
        raise
    if args.keep:
        print(f"callgrind files kept in {work}/cg-{args.small} and {work}/cg-{args.large}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)

    span = args.large - args.small
    print(f"worker {worker}")
    print(f"per delivery: (drain of {args.large:,} - drain of {args.small:,}) / {span:,}")
    print(report(per_delivery(measured[args.small], measured[args.large], span), args.cache_sim))


if __name__ == "__main__":
    main()
