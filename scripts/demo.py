"""Runs the demo: simulator + worker (embedded Kafka) + sample requests, then prints the results
and where to look. See scripts/demo."""
import glob
import json
import os
import shutil
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
import sendq_harness as h  # noqa: E402


USAGE = """Usage: scripts/demo [--once]

Runs the provider simulator and the worker (with its embedded, in-memory Kafka), sends a sample
of every provider and type plus two bad requests, and prints the results and where to look.
  --once      stop after printing the results (implied without a terminal)
  -h, --help  this help
"""


def main():
    args = sys.argv[1:]
    if "-h" in args or "--help" in args:
        print(USAGE, end="")
        return
    unknown = [a for a in args if a != "--once"]
    if unknown:
        print(f"scripts/demo: unknown argument {unknown[0]!r}\n{USAGE}", end="", file=sys.stderr)
        sys.exit(2)
    once = "--once" in args or not sys.stdin.isatty()
    # SIGTERM and SIGHUP (a closed terminal) stop the demo the way Ctrl-C does, so that the
    # simulator and the worker it started are stopped too, not left running.
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    workdir = h.Workdir("demo").path
    print(f"demo: logs in {workdir}")
    sim = worker = None
    ok = False
    try:
        sim = h.Simulator(workdir)
        print(f"demo: provider simulator on {sim.base_url} (all four provider APIs)")
        worker = h.Worker(workdir, sim, metrics_port=9464 if port_free(9464) else None)
        print(f"demo: worker started; embedded Kafka at {worker.bootstrap} (in memory, NOT durable)")
        worker.wait_ready()
        samples = []
        for path in sorted(glob.glob(os.path.join(h.ROOT, "proto", "examples", "requests", "valid", "*.json"))):
            with open(path) as f:
                req = json.load(f)
            samples.append((req["id"], json.dumps(req, ensure_ascii=False)))
        # Two bad ones, to show what a rejection looks like.
        samples.append(("bad-1", json.dumps({"id": "demo-missing-to", "provider": "gewe", "type": "text", "body": {"text": "hi"}})))
        samples.append(("bad-2", "not json at all"))
        h.kcat_produce(worker.bootstrap, "sendq.requests", samples)
        print(f"demo: produced {len(samples)} requests to sendq.requests with kcat")
        results = [json.loads(v) for _, v, _ in h.kcat_consume_until(worker.bootstrap, "sendq.results", len(samples), timeout=120)]
        print()
        print(f"{'id':<40} {'provider':<8} {'type':<9} {'status':<10} {'att':>3}  provider id / error")
        print("-" * 110)
        for r in results:
            detail = r["provider_message_id"] if r["status"] == "delivered" else f"{r['error']['kind']}: {r['error']['message']}"
            print(f"{r['id'][:40]:<40} {r['provider'][:8]:<8} {r['type']:<9} {r['status']:<10} {r['attempts']:>3}  {detail}")
        # The demo doubles as a smoke test (ctest runs it): every sample must end as expected.
        ok = all(r["status"] == "delivered" for r in results if r["id"] not in ("demo-missing-to",) and not r["id"].startswith("sendq.requests:"))
        ok = ok and sum(1 for r in results if r["status"] == "rejected") == 2
        m = worker.metrics()
        print()
        print("metrics: consumed={:.0f} delivered={:.0f} rejected={:.0f}".format(
            h.metric(m, "sendq_requests_consumed_total"), h.metric(m, "sendq_deliveries_total", status="delivered"),
            h.metric(m, "sendq_deliveries_total", status="rejected")))
        print()
        print("Look around:")
        print(f"  results:  kcat -b {worker.bootstrap} -C -t sendq.results -o beginning -e")
        print(f"  DLQ:      kcat -b {worker.bootstrap} -C -t sendq.dlq -o beginning -e -f '%h %s\\n'")
        print(f"  send:     echo '{samples[0][1][:60]}...' | kcat -b {worker.bootstrap} -P -t sendq.requests")
        print(f"  metrics:  curl -s {worker.metrics_url}/metrics | grep ^sendq_")
        print(f"  health:   curl -s {worker.metrics_url}/readyz")
        print(f"  received: curl -s {sim.base_url}/_sim/requests   (what the simulated providers got)")
        if not once:
            print("\nRunning until Ctrl-C.")
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        # A second signal must not cut the clean-up short, leaving a process behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if worker:
            worker.stop()
        if sim:
            sim.stop()
        print("demo: stopped")
    if not ok:
        print("demo: FAILED: a sample did not end as expected (see the table above)", file=sys.stderr)
        sys.exit(1)
    # ctest's run of the demo (demo_once) removes its folder when it passed; people keep theirs.
    if os.environ.get("SENDQ_DEMO_REMOVE_WORKDIR") == "1":
        shutil.rmtree(workdir, ignore_errors=True)


def port_free(port):
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


if __name__ == "__main__":
    main()
