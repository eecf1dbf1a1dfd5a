#!/usr/bin/python3
"""Peak RSS of `sendqctl replay --status` over a small range against a large results topic.

  benchmarks/support/replay_status_memory.py [--results N] [--range N] SENDQCTL [SENDQCTL ...]

Starts the embedded Kafka (16 partitions: it keeps about 5 MB of each), writes N `delivered`
results (default 150,000) to sendq.results, then a later `failed` result for every fifth request
of the range (so that the latest result decides, and --status shows it was read), and a range of
requests (default 100) whose ids are among them to archive.requests, then runs each sendqctl
given with `replay --status delivered --dry-run` over that range (librdkafka's prefetch set to
1 MB) and prints what it would replay (the range less every fifth) and its peak RSS. Since 2026-12-07
replay holds only the ids of its range; before, every id of the results topic. Pass an older
build's sendqctl beside the current one to compare. Everything else comes from SENDQ_BUILD_DIR
(default ./build). Needs GNU time (/usr/bin/time; scripts/setup installs it).
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support"))
import sendq_harness as h  # noqa: E402


# librdkafka's prefetch kept small (1 MB), so that what grows with the topic shows rather than how
# much of sendqctl's 8 MB prefetch happened to fill (the two vary by 15 MB from run to run).
PREFETCH = ["-X", "queued.max.messages.kbytes=1024", "-X", "fetch.max.bytes=1048576",
            "-X", "max.partition.fetch.bytes=262144"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=int, default=150000)
    ap.add_argument("--range", type=int, default=100)
    ap.add_argument("sendqctl", nargs="+")
    args = ap.parse_args()
    if args.range > args.results:
        ap.error("--range must not exceed --results")
    if not os.access("/usr/bin/time", os.X_OK):
        raise SystemExit("replay_status_memory.py: needs GNU time (/usr/bin/time; scripts/setup installs it)")
    workdir = h.Workdir("replay-status-memory").path
    kafka = h.EmbeddedKafka(workdir, partitions=16)
    try:
        def rid(i):
            return f"mem-{i:07d}-0123456789abcdef"
        def produce(topic, lines):
            # Written as they are made, not joined into one large string first.
            kcat = subprocess.Popen(["kcat", "-b", kafka.bootstrap, "-P", "-t", topic, "-K", "\t"], stdin=subprocess.PIPE)
            try:
                for line in lines:
                    kcat.stdin.write(line.encode())
                kcat.stdin.close()
            except BrokenPipeError:
                pass  # kcat ended early: its status says why
            if kcat.wait(timeout=300) != 0:
                raise SystemExit(f"kcat could not produce to {topic}")

        def result(i, status):
            return (f'{rid(i)}\t{{"id":"{rid(i)}","status":"{status}","provider":"gewe","account":"default",'
                    f'"type":"text","to":"user{i}@chatroom","completed_at":1795000000000,"latency_ms":12,'
                    f'"attempts":1,"error":null}}\n')
        produce("sendq.results", (result(i, "delivered") for i in range(args.results)))
        produce("sendq.results", (result(i, "failed") for i in range(0, args.range, 5)))
        produce("archive.requests", (f'k{i}\t{{"id":"{rid(i)}","provider":"gewe","type":"text","to":"user{i}@chatroom",'
                                     f'"body":{{"text":"x"}}}}\n' for i in range(args.range)))
        print(f"{args.results:,} results on sendq.results, a range of {args.range:,} requests "
              f"(every fifth failed later; work folder {workdir})")
        for n, ctl in enumerate(args.sendqctl):
            # GNU time's %M: the peak of the command alone. A child's own ru_maxrss would count
            # this Python process's memory too (a forked child's pages before its exec).
            err_path = os.path.join(workdir, f"replay-{n}.err")
            with open(err_path, "w") as err:
                p = subprocess.run(["/usr/bin/time", "-f", "peak-kb %M", ctl, "replay", "--brokers", kafka.bootstrap,
                                    "--from-topic", "archive.requests", "--status", "delivered", "--dry-run", *PREFETCH],
                                   stdout=subprocess.PIPE, stderr=err, text=True, timeout=600)
            with open(err_path) as f:
                lines = f.read().splitlines()
            if p.returncode != 0 or not lines or not lines[-1].startswith("peak-kb "):
                raise SystemExit(f"{ctl} exited with {p.returncode}; see {err_path}")
            print(f"{ctl}: {p.stdout.strip()!r}, peak RSS {int(lines[-1].split()[1]) / 1024:.1f} MB")
    finally:
        kafka.stop()


if __name__ == "__main__":
    main()
