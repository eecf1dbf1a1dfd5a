#!/usr/bin/python3
"""Instructions per delivery of sendq-worker, counted by callgrind, thread by thread.

  benchmarks/support/worker_instructions.py [--small N1] [--large N2] [--worker PATH]

Runs the end-to-end benchmark's drain (benchmarks/e2e/run) twice, with N1 and N2 requests, the
worker under `valgrind --tool=callgrind --separate-threads=yes`, and prints the instructions
(Ir) per delivery as the difference between the two drains divided by N2 - N1: the worker's
start-up (loading the system CA store alone is hundreds of millions of instructions) cancels
out. Unlike CPU time on a shared VM, instruction counts repeat to within a few percent, so a
change of a few percent in user space shows. They do not count the kernel (system calls, the
loopback TCP stack) nor cache misses: check a change's effect on time with thread_cpu.py too.

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
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_drain(n, fake_build, out_dir):
    """One drain of n requests; returns the callgrind files of the drain's worker."""
    env = dict(os.environ, SENDQ_BUILD_DIR=fake_build, SENDQ_BENCH_MAX_IN_FLIGHT="1000")
    results = os.path.join(out_dir, f"e2e-{n}.md")
    log = os.path.join(out_dir, f"e2e-{n}.log")
    with open(log, "w") as f:
        rc = subprocess.call([os.path.join(ROOT, "benchmarks", "e2e", "run"), "-n", str(n), "--no-single-thread",
                              "--latency-seconds", "0.5", "--latency-rate", "200", "--output", results],
                             env=env, stdout=f, stderr=subprocess.STDOUT, timeout=3600)
    if rc != 0:
        sys.exit(f"benchmarks/e2e/run -n {n} failed (exit {rc}); its output is in {log}")
    # The first worker the benchmark starts is the drain's (then come the latency phase's).
    outs = sorted(glob.glob(os.path.join(out_dir, f"cg-{n}", "callgrind.*")), key=os.path.getmtime)
    pids = []
    for path in outs:
        pid = re.match(r"callgrind\.(\d+)", os.path.basename(path)).group(1)
        if pid not in pids:
            pids.append(pid)
    if not pids:
        sys.exit(f"no callgrind output from the drain of {n}: see {log}")
    return sorted(glob.glob(os.path.join(out_dir, f"cg-{n}", f"callgrind.{pids[0]}-*")))


def totals(path):
    """(thread role, instructions) of one callgrind thread file."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", path], capture_output=True, text=True,
                          check=True).stdout
    total = int(re.search(r"^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text, re.M).group(1).replace(",", ""))
    role = "librdkafka"
    for pattern, name in (("io_context::run()", "I/O threads (sendq-io-N)"),
                          ("pipeline::impl::consume_loop()", "Kafka thread (sendq-kafka)"),
                          ("rd_kafka_poll", "delivery reports (sendq-producer)"),
                          ("main.cpp:main", "main (start-up, signals)")):
        if pattern in text:
            role = name
            break
    return role, total


def by_role(files):
    out = {}
    for path in files:
        role, total = totals(path)
        out[role] = out.get(role, 0) + total
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=10_000, help="requests in the first drain (default 10000)")
    ap.add_argument("--large", type=int, default=30_000, help="requests in the second drain (default 30000)")
    ap.add_argument("--worker", default="", help="worker binary to measure (default: the build's)")
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
            os.makedirs(os.path.join(fake, "services", service))
            for name in os.listdir(src):
                if name.startswith("sendq"):
                    os.symlink(os.path.join(src, name), os.path.join(fake, "services", service, name))
        os.makedirs(os.path.join(fake, "services", "worker"))
        wrapper = os.path.join(fake, "services", "worker", "sendq-worker")
        measured = {}
        for n in (args.small, args.large):
            os.makedirs(os.path.join(work, f"cg-{n}"))
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec valgrind --tool=callgrind --separate-threads=yes "
                        f"--callgrind-out-file={work}/cg-{n}/callgrind.%p {worker} \"$@\"\n")
            os.chmod(wrapper, 0o755)
            print(f"drain of {n:,} requests under callgrind ...", file=sys.stderr)
            measured[n] = by_role(run_drain(n, fake, work))
        span = args.large - args.small
        roles = sorted(set(measured[args.small]) | set(measured[args.large]),
                       key=lambda r: -(measured[args.large].get(r, 0) - measured[args.small].get(r, 0)))
        print(f"worker {worker}")
        print(f"instructions per delivery: (drain of {args.large:,} - drain of {args.small:,}) / {span:,}")
        all_ = 0
        for role in roles:
            per = (measured[args.large].get(role, 0) - measured[args.small].get(role, 0)) / span
            all_ += per
            print(f"  {role:36} {per:10,.0f}")
        print(f"  {'all threads':36} {all_:10,.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
