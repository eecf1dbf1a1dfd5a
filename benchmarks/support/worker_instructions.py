#!/usr/bin/python3
"""Instructions per delivery of sendq-worker, counted by callgrind, thread by thread.

  benchmarks/support/worker_instructions.py [--small N1] [--large N2] [--worker PATH] [--keep]

Runs the end-to-end benchmark's drain (benchmarks/e2e/run) twice, with N1 and N2 requests, the
worker under `valgrind --tool=callgrind --separate-threads=yes`, and prints the instructions
(Ir) per delivery as the difference between the two drains divided by N2 - N1: the worker's
start-up (loading the system CA store alone is hundreds of millions of instructions) cancels
out. Unlike CPU time on a shared VM, instruction counts repeat closely (0.4% apart in a repeat
on 2026-11-24), so a change of a few percent in user space shows. The benchmark polls the
worker's /metrics every 50 ms, which costs instructions per second rather than per delivery:
that is counted apart (the HTTP server's sessions) and left out of the total. The counts leave
out the kernel (system calls, the loopback TCP stack) and cache misses: check a change's effect
on time with thread_cpu.py too.

The worker runs about fifty times slower under callgrind, so max_in_flight is 1,000 here and
Kafka batches are smaller than at full speed: per-batch costs (librdkafka's produce requests,
LZ4 frames) weigh more per delivery than they do in a real drain.

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


def totals(path):
    """(thread role, instructions, of which serving /metrics) of one callgrind thread file."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", path], capture_output=True, text=True,
                          check=True).stdout
    total = int(re.search(r"^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text, re.M).group(1).replace(",", ""))
    # The benchmark polls /metrics every 50 ms, served on the first I/O thread: a cost per second,
    # not per delivery (and a slower worker is polled more), so it is counted apart.
    serving = 0
    for line in text.splitlines():
        if SERVER_SESSIONS in line and "=>" not in line:
            serving = max(serving, int(line.split()[0].replace(",", "")))
    role = "librdkafka"
    for pattern, name in (("io_context::run()", "I/O threads (sendq-io-N)"),
                          ("pipeline::impl::consume_loop()", "Kafka thread (sendq-kafka)"),
                          ("rd_kafka_poll", "delivery reports (sendq-producer)"),
                          ("main.cpp:main", "main (start-up, signals)")):
        if pattern in text:
            role = name
            break
    return role, total, serving


POLLING = "/metrics, the benchmark's polling (not counted)"


def by_role(files):
    out = {}
    for path in files:
        role, total, serving = totals(path)
        out[role] = out.get(role, 0) + total - serving
        out[POLLING] = out.get(POLLING, 0) + serving
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=10_000, help="requests in the first drain (default 10000)")
    ap.add_argument("--large", type=int, default=30_000, help="requests in the second drain (default 30000)")
    ap.add_argument("--worker", default="", help="worker binary to measure (default: the build's)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the callgrind files (for callgrind_annotate) and print where they are")
    args = ap.parse_args()
    if args.small <= 0 or args.large <= args.small:
        sys.exit(f"--small and --large: need 0 < small < large, got {args.small} and {args.large}")
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
            out_file = shlex.quote(os.path.join(work, f"cg-{n}", "callgrind.%p"))
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec valgrind --tool=callgrind --separate-threads=yes "
                        f"--callgrind-out-file={out_file} {shlex.quote(worker)} \"$@\"\n")
            os.chmod(wrapper, 0o755)
            print(f"drain of {n:,} requests under callgrind ...", file=sys.stderr)
            measured[n] = by_role(run_drain(n, fake, work))
    except Failure as e:
        # Kept, so that the output the message points to is still there.
        sys.exit(f"{e}\n(files kept in {work})")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if args.keep:
        print(f"callgrind files kept in {work}/cg-{args.small} and {work}/cg-{args.large}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)

    span = args.large - args.small
    per = {role: (measured[args.large].get(role, 0) - measured[args.small].get(role, 0)) / span
           for role in set(measured[args.small]) | set(measured[args.large])}
    print(f"worker {worker}")
    print(f"instructions per delivery: (drain of {args.large:,} - drain of {args.small:,}) / {span:,}")
    for role in sorted((r for r in per if r != POLLING), key=lambda r: -per[r]):
        print(f"  {role:44} {per[role]:10,.0f}")
    print(f"  {'all threads':44} {sum(v for r, v in per.items() if r != POLLING):10,.0f}")
    print(f"  {POLLING:44} {per.get(POLLING, 0):10,.0f}")


if __name__ == "__main__":
    main()
