"""Starts sendq's real binaries on loopback for integration tests and the demo.

Everything binds 127.0.0.1 on ports the harness picks; every process started here is stopped
here, by its PID. Kafka is reached only with kcat, as a user would.
"""
import atexit
import contextlib
import json
import re
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SENDQ_BUILD_DIR", os.path.join(ROOT, "build"))
WORKER = os.path.join(BUILD, "services", "worker", "sendq-worker")
SIMULATOR = os.path.join(BUILD, "services", "simulator", "sendq-simulator")
EMBEDDED_KAFKA = os.path.join(BUILD, "services", "embedded-kafka", "sendq-embedded-kafka")
DEMO_CONFIG = os.path.join(ROOT, "deploy", "sendq.example.toml")

# Every server the harness starts, so that none outlives its test script: a failed setUpClass
# skips tearDownClass, and an unhandled error skips a test's own clean-up (stop_leftovers() stops
# what is left, by PID, at exit); a script killed outright (ctest's timeout) takes them with it:
# each starts under `setpriv --pdeathsig TERM` (util-linux), which execs it with PR_SET_PDEATHSIG
# (no preexec_fn, which may deadlock with threads running). The signal comes when the thread that
# started it ends: start servers from the main thread.
_STARTED = []  # (Popen, program name)


def start_server(args, **popen_kwargs):
    """subprocess.Popen for a server process of a test: stopped at the script's exit if the test
    did not stop it, and sent SIGTERM should the script die first."""
    proc = subprocess.Popen(["setpriv", "--pdeathsig", "TERM", *args], **popen_kwargs)
    _STARTED.append((proc, os.path.basename(args[0])))
    return proc


def stop_leftovers():
    """Stops, by PID, every server started here that is still running."""
    for proc, name in reversed(_STARTED):
        if proc.poll() is None:
            print(f"stopping {name} (pid {proc.pid}), left running by its test", file=sys.stderr)
            stop_process(proc, timeout=10)


def _ephemeral_low():
    """The lowest port the kernel hands out for bind(0) and outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports handed out by free_port() in any test process of this user, as files: between the check
# and the service's bind another test script (eight run at once) could pick the same port, which
# happened ("Address already in use"). A claim older than ten minutes is stale (its script died).
_PORT_CLAIMS = os.path.join(tempfile.gettempdir(), f"sendq-test-ports-{os.getuid()}")
_CLAIMED = []


def _claim(port):
    """True when this process now holds `port`'s claim (no other live claim on it)."""
    os.makedirs(_PORT_CLAIMS, exist_ok=True)
    path = os.path.join(_PORT_CLAIMS, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime < 600:
                    return False
                os.remove(path)
            except OSError:
                return False
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        _CLAIMED.append(path)
        return True
    return False


@atexit.register
def _at_exit():
    stop_leftovers()  # first: their ports are claimed until they are gone
    for path in _CLAIMED:
        try:
            os.remove(path)
        except OSError:
            pass


def free_port():
    """A port free now, for a service about to be started. Picked at random below the kernel's
    ephemeral range: a port from bind(0) can be handed to a client's outgoing connection (Kafka
    clients open many) before the service binds it, likelier with eight tests at a time. Claimed
    for this script (_claim), so that no other test script picks it meanwhile."""
    low = _ephemeral_low()
    if low > 11000:
        rng = random.SystemRandom()
        for _ in range(200):
            port = rng.randrange(10000, low)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            if _claim(port):
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timeout_scale():
    """How many times slower the services under test run: SENDQ_TEST_TIMEOUT_SCALE, set by
    scripts/sanitize for ThreadSanitizer builds (docs/hardening.md); 1 otherwise."""
    value = os.environ.get("SENDQ_TEST_TIMEOUT_SCALE", "1")
    try:
        scale = float(value)
    except ValueError:
        raise ValueError(f"SENDQ_TEST_TIMEOUT_SCALE: not a number: {value!r}") from None
    if not scale > 0:
        raise ValueError(f"SENDQ_TEST_TIMEOUT_SCALE: must be more than 0, not {value!r}")
    return scale


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def http_send(method, url, body=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Simulator:
    def __init__(self, workdir, extra_args=()):
        self.port_file = os.path.join(workdir, "simulator.port")
        self.log = open(os.path.join(workdir, "simulator.log"), "w")
        self.proc = start_server([SIMULATOR, "--listen", "127.0.0.1:0", "--port-file", self.port_file, *extra_args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.port = int(wait_for(lambda: self._read_port(), 20, "the simulator's port file"))
        except BaseException:  # not left running when it never came up (or the wait was interrupted)
            self.stop()
            raise
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _read_port(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"simulator exited with {self.proc.returncode}")
        try:
            with open(self.port_file) as f:
                text = f.read().strip()
            return text or None
        except FileNotFoundError:
            return None

    def requests(self):
        status, body = http_get(self.base_url + "/_sim/requests")
        assert status == 200, body
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def set_faults(self, rules):
        status, body = http_send("POST", self.base_url + "/_sim/faults", rules)
        assert status == 200, body

    def stop(self):
        stop_process(self.proc)
        self.log.close()


class EmbeddedKafka:
    """The mock cluster as its own process, so that workers can be killed and restarted."""

    def __init__(self, workdir, partitions=8, topics=(), extra_args=()):
        self.bootstrap_file = os.path.join(workdir, "kafka.bootstrap")
        self.log = open(os.path.join(workdir, "kafka.log"), "w")
        topic_args = [a for t in topics for a in ("--topic", t)]
        self.proc = start_server([EMBEDDED_KAFKA, "--partitions", str(partitions), "--bootstrap-file", self.bootstrap_file,
                                  *topic_args, *extra_args],
                                 stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.bootstrap = wait_for(self._read, 20, "the embedded Kafka's bootstrap file")
        except BaseException:  # not left running when it never came up (or the wait was interrupted)
            self.stop()
            raise

    def _read(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"sendq-embedded-kafka exited with {self.proc.returncode}")
        try:
            with open(self.bootstrap_file) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def pause(self):
        """Stops the broker (SIGSTOP): requests to it, acknowledgements too, wait until resume()."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self):
        """pause() for the block."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def stop(self):
        stop_process(self.proc)
        self.log.close()


class Worker:
    def __init__(self, workdir, simulator, config=DEMO_CONFIG, env_extra=None, metrics_port=None, brokers="", name="worker",
                 provider_urls=True):
        """provider_urls: point every provider's default account at `simulator` by
        SENDQ_<PROVIDER>_BASE_URL (the config must define the four: the variable makes no account);
        else the config's accounts keep their own URLs."""
        self.workdir = workdir
        self.bootstrap_file = os.path.join(workdir, "bootstrap")
        if os.path.exists(self.bootstrap_file):
            os.remove(self.bootstrap_file)
        self.metrics_port = metrics_port or free_port()
        env = dict(os.environ)
        env.update({
            "SENDQ_KAFKA_BROKERS": brokers,
            "SENDQ_KAFKA_EMBEDDED_BOOTSTRAP_FILE": self.bootstrap_file,
            "SENDQ_METRICS_ADDR": f"127.0.0.1:{self.metrics_port}",
            "SENDQ_LOG_FORMAT": "json",
        })
        for p in ("SENDER", "GEWE", "IM", "GPS"):
            if provider_urls:
                env[f"SENDQ_{p}_BASE_URL"] = simulator.base_url
            else:
                env.pop(f"SENDQ_{p}_BASE_URL", None)
        env.update(env_extra or {})
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "a")
        self.proc = start_server([WORKER, "--config", config], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        try:
            self.bootstrap = brokers or wait_for(self._read_bootstrap, 30, "the embedded Kafka bootstrap file")
        except BaseException:  # not left running when it never came up (or the wait was interrupted)
            self.stop()
            raise
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"

    def _read_bootstrap(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}; see {self.log_path}")
        try:
            with open(self.bootstrap_file) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def wait_ready(self, timeout=60):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}; see {self.log_path}")
            try:
                return http_get(self.metrics_url + "/readyz", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(ready, timeout, "/readyz to answer 200")

    def metrics(self):
        status, body = http_get(self.metrics_url + "/metrics")
        assert status == 200, body
        return parse_metrics(body)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        rc = stop_process(self.proc, sig, timeout)
        self.log.close()
        return rc

    def cpu_seconds(self):
        """user + system CPU seconds the worker used so far (from /proc)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_worker_and_simulator(worker, simulator):
    """Stops a test class's worker, then its simulator; says where the log is when the worker did not exit 0."""
    rc = worker.stop()
    simulator.stop()
    if rc != 0:
        print(f"worker exited with {rc}; log in {worker.log_path}", file=sys.stderr)
    return rc


def stop_process(proc, sig=signal.SIGTERM, timeout=30):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        labels = {}
        if "{" in name_labels:
            name, _, rest = name_labels.partition("{")
            for part in rest.rstrip("}").split(","):
                if part:
                    k, _, v = part.partition("=")
                    labels[k] = v.strip('"')
        else:
            name = name_labels
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def metric(metrics, name, **labels):
    """Sum of the series of `name` whose labels include `labels`."""
    total = 0.0
    for (n, ls), v in metrics.items():
        if n == name and all((k, v2) in ls for k, v2 in labels.items()):
            total += v
    return total


def kcat_produce(bootstrap, topic, records, partition=None, headers=()):
    """Produces (key, value) records with kcat, one per line (values must not contain newlines),
    to `partition` if given, each with `headers` ("name=value", ...)."""
    lines = []
    for key, value in records:
        assert "\n" not in value and "\t" not in key
        lines.append(f"{key}\t{value}")
    data = ("\n".join(lines) + "\n").encode()
    extra = (["-p", str(partition)] if partition is not None else []) + [a for hd in headers for a in ("-H", hd)]
    subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", topic, "-K", "\t", *extra],
                   input=data, check=True, timeout=120)


def parse_headers(headers):
    """kcat's %h ("name=value,name=value") as a dict. Values may hold commas (an error message, a
    sendq-added-members range): a new header starts only at ",sendq-"."""
    return dict(h.split("=", 1) for h in re.split(r",(?=sendq-)", headers) if h)


def kcat_records(bootstrap, topic, timeout=60):
    """Every record on `topic` now, as dicts: partition, offset, timestamp (ms), key, headers
    (parse_headers), value."""
    proc = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                           "-f", "%p\t%o\t%T\t%k\t%h\t%s\n"], capture_output=True, timeout=timeout, check=True)
    out = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        partition, offset, ts, key, headers, value = line.split("\t", 5)
        out.append({"partition": int(partition), "offset": int(offset), "timestamp": int(ts), "key": key,
                    "headers": parse_headers(headers), "value": value})
    return out


@contextlib.contextmanager
def reaped(proc):
    """Yields `proc` (a Popen); kills it if still running, waits, and closes its pipes after."""
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


def kcat_consume(bootstrap, topic, count, timeout=120, with_headers=False):
    """Reads `count` records from the beginning of `topic` with kcat; returns [(key, value, headers)]."""
    fmt = "%k\t%h\t%s\n" if with_headers else "%k\t\t%s\n"
    proc = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", str(count),
                           "-f", fmt, "-q"], capture_output=True, timeout=timeout)
    out = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        if not line:
            continue
        key, headers, value = line.split("\t", 2)
        out.append((key, value, headers))
    return out


def kcat_consume_all(bootstrap, topic, timeout=60, with_partition=False, with_headers=False):
    """Every record on `topic` now (kcat -e stops at the end of each partition), as [(key, value, "")],
    with `with_partition` [(key, value, partition)], with `with_headers` [(key, value, "name=value,...")]."""
    assert not (with_partition and with_headers), "one or the other"
    fmt = "%p\t%k\t%s\n" if with_partition else "%h\t%k\t%s\n" if with_headers else "\t%k\t%s\n"
    proc = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-f", fmt, "-q"],
                          capture_output=True, timeout=timeout)
    out = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line:
            first, key, value = line.split("\t", 2)
            out.append((key, value, int(first) if with_partition else first if with_headers else ""))
    return out


def kcat_consume_until(bootstrap, topic, count, timeout=120):
    """Like kcat_consume but keeps re-reading until `count` records exist or time runs out."""
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        try:
            got = kcat_consume(bootstrap, topic, count, timeout=max(1, min(10, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            got = []
        if len(got) >= count:
            return got
    raise TimeoutError(f"only {len(got)} of {count} records on {topic} after {timeout}s")


def kcat_results_by_id(bootstrap, count, timeout=120):
    """The first `count` records of sendq.results (kcat_consume_until), as {id: result}."""
    return {r["id"]: r for r in (json.loads(v) for _, v, _ in kcat_consume_until(bootstrap, "sendq.results", count, timeout))}


# Work folders made for tests, removed by main() when every test of the file passed.
_TEST_WORKDIRS = []


class Workdir:
    """A fresh folder under the system's temp dir for one test's logs, configs and port files.

    The demo and the soak run keep theirs and print where it is (ctest's demo_once removes its
    folder when it passed). A test file run through main()
    removes the folders of its tests when they all passed, and keeps them (and names them) when one
    failed, since the logs there are what explains a failure. SENDQ_KEEP_WORKDIRS=1 keeps them all.
    """

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"sendq-{name}-")
        _TEST_WORKDIRS.append(self.path)


def main():
    """unittest.main() for the integration tests, then the work folders' clean-up (Workdir)."""
    program = unittest.main(verbosity=2, exit=False)
    stop_leftovers()  # before their work folders go
    passed = program.result.wasSuccessful()
    if passed and os.environ.get("SENDQ_KEEP_WORKDIRS", "") in ("", "0"):
        for path in _TEST_WORKDIRS:
            shutil.rmtree(path, ignore_errors=True)
    elif _TEST_WORKDIRS:
        print("logs and files of these tests kept in: " + " ".join(_TEST_WORKDIRS), file=sys.stderr)
    sys.exit(0 if passed else 1)


GATEWAY = os.path.join(BUILD, "services", "gateway", "sendq-gateway")
SENDQCTL = os.path.join(BUILD, "services", "ctl", "sendqctl")


class Gateway:
    """sendq-gateway on a free loopback port, producing to `brokers`."""

    def __init__(self, workdir, brokers, env_extra=None, name="gateway", args=()):
        self.port = free_port()
        self.metrics_port = free_port()
        env = dict(os.environ)
        env.update({"SENDQ_KAFKA_BROKERS": brokers, "SENDQ_GATEWAY_ADDR": f"127.0.0.1:{self.port}",
                    "SENDQ_GATEWAY_METRICS_ADDR": f"127.0.0.1:{self.metrics_port}", "SENDQ_LOG_FORMAT": "json"})
        env.update(env_extra or {})
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "a")
        self.proc = start_server([GATEWAY, *args], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}; see {self.log_path}")
            try:
                return http_get(self.url + "/healthz", timeout=2)[0] == 200
            except OSError:
                return False
        try:
            wait_for(up, 30, "the gateway's /healthz")
        except BaseException:  # not left running when it never came up
            self.stop()
            raise

    def post(self, path, body, headers=None, timeout=30, with_headers=False):
        """(status, body), or (status, body, response headers) with `with_headers`."""
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out = r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            out = e.code, e.read().decode(), dict(e.headers)
        return out if with_headers else out[:2]

    def stop(self):
        rc = stop_process(self.proc)
        self.log.close()
        return rc


def sendqctl(*args, input_bytes=None, timeout=300, env_extra=None):
    """Runs sendqctl; returns CompletedProcess (stdout/stderr decoded)."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([SENDQCTL, *args], input=input_bytes, capture_output=True, timeout=timeout, env=env)
