#!/usr/bin/env python3
"""The operations files in deploy/ against the real worker and the real tools.

- promtool: `check rules` on the alert rules, `test rules` on their unit tests (a firing and a
  quiet case per alert), `check config` on the compose Prometheus configuration.
- Every metric the Grafana dashboard and the alert rules use exists in a running worker's
  /metrics (after a little traffic, so that labelled families have series).
- /readyz answers 503 before the worker is assigned partitions and 200 after.
- The YAML files parse; the Kubernetes manifests hang together (kustomization, probes, grace
  period, Secret keys); the ConfigMap's sendq.toml is accepted by the worker; the systemd unit
  passes `systemd-analyze verify`.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import sendq_harness as h  # noqa: E402

import yaml  # noqa: E402  (Debian: python3-yaml)

DEPLOY = os.path.join(h.ROOT, "deploy")
RULES = os.path.join(DEPLOY, "prometheus", "sendq-alerts.yml")
RULE_TESTS = os.path.join(DEPLOY, "prometheus", "sendq-alerts.test.yml")
PROM_CONFIG = os.path.join(DEPLOY, "prometheus", "prometheus.yml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "sendq-dashboard.json")
K8S = os.path.join(DEPLOY, "kubernetes")
VALID_REQUESTS = os.path.join(h.ROOT, "proto", "examples", "requests", "valid")

METRIC_NAME = re.compile(r"\bsendq_[a-z_]+\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def dashboard_expressions(dashboard):
    """Every PromQL expression of the dashboard: panel targets and template variable queries."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("expr", "definition") and isinstance(v, str):
                    out.append(v)
                elif k == "query" and isinstance(v, str) and "(" in v:
                    out.append(v)
                elif k == "query" and isinstance(v, dict) and isinstance(v.get("query"), str):
                    out.append(v["query"])
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dashboard)
    return out


def rule_expressions(rules):
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def exposed_families(text):
    """({family: type} from # TYPE lines, {sample names}) of a Prometheus text exposition."""
    types, samples = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind.strip()
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{ ]", line, 1)[0])
    return types, samples


def is_exposed(name, types, samples):
    if name in types or name in samples:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return True
    return False


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def documented_metrics():
    """The sendq_* names deploy/README.md's metrics tables give."""
    with open(os.path.join(DEPLOY, "README.md")) as f:
        return set(re.findall(r"`(sendq_[a-z0-9_]+)`", f.read()))


class PromtoolTest(unittest.TestCase):
    def setUp(self):
        if not shutil.which("promtool"):
            self.fail("promtool is missing: scripts/setup installs the Debian package prometheus")

    def test_check_rules(self):
        r = run(["promtool", "check", "rules", RULES])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: 8 rules found", r.stdout + r.stderr)

    def test_rule_unit_tests(self):
        r = run(["promtool", "test", "rules", RULE_TESTS])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_every_alert_has_a_firing_and_a_quiet_test(self):
        with open(RULES) as f:
            rules = yaml.safe_load(f)
        with open(RULE_TESTS) as f:
            tests = yaml.safe_load(f)
        alerts = [r["alert"] for g in rules["groups"] for r in g["rules"]]
        self.assertEqual(sorted(alerts), sorted(["SendqWorkerDown", "SendqConsumerLagGrowing", "SendqFailureRatioHigh",
                                                 "SendqDlqGrowing", "SendqCircuitOpenTooLong", "SendqOldestRequestStuck",
                                                 "SendqGatewayDown", "SendqGatewayRecordsNotAcknowledged"]))
        # each runbook link has its section in deploy/README.md
        with open(os.path.join(DEPLOY, "README.md")) as f:
            sections = {line[4:].strip().lower() for line in f if line.startswith("### ")}
        for rule in (r for g in rules["groups"] for r in g["rules"]):
            self.assertIn(rule["alert"].lower(), sections, f"deploy/README.md has no ### {rule['alert']}")
            self.assertIn(f"deploy/README.md#{rule['alert'].lower()}", rule["annotations"]["runbook"])
        for rule in (r for g in rules["groups"] for r in g["rules"]):
            self.assertIn(rule["labels"].get("severity"), ("page", "ticket"), rule["alert"])
            for a in ("summary", "description", "runbook"):
                self.assertTrue(rule["annotations"].get(a), f"{rule['alert']}: no {a} annotation")
        fires, quiet = set(), set()
        for t in tests["tests"]:
            for case in t["alert_rule_test"]:
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
        self.assertEqual(fires, set(alerts), "alerts without a firing test case")
        self.assertEqual(quiet, set(alerts), "alerts without a quiet test case")

    def test_compose_prometheus_config(self):
        r = run(["promtool", "check", "config", PROM_CONFIG])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class FilesTest(unittest.TestCase):
    def test_yaml_files_parse(self):
        paths = []
        for d, _, files in os.walk(DEPLOY):
            paths += [os.path.join(d, f) for f in files if f.endswith((".yml", ".yaml"))]
        self.assertGreaterEqual(len(paths), 14, paths)
        for p in paths:
            with self.subTest(path=os.path.relpath(p, h.ROOT)):
                self.assertTrue(load_yaml_docs(p), "empty YAML file")

    def test_dashboard(self):
        with open(DASHBOARD) as f:
            d = json.load(f)
        names = [v["name"] for v in d["templating"]["list"]]
        self.assertIn("datasource", names)
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        titles = " | ".join(p["title"] for p in d["panels"])
        for wanted in ("Deliveries/s by provider and status", "Failure ratio by provider", "End-to-end latency",
                       "Provider request latency", "Attempts/s", "Retries/s", "DLQ records/s by error kind",
                       "Consumer lag by partition", "Circuit state", "Rate-limit wait", "Throttled",
                       "In flight and queued", "Producer queue length", "Oldest request age", "Build info",
                       "Gateway requests/s by endpoint and code", "Gateway records/s by result", "Gateway request latency",
                       "Gateway records in flight and refusals/s"):
            self.assertIn(wanted, titles)
        for p in d["panels"]:
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            self.assertTrue(p["targets"], p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
        for q in (0.5, 0.95, 0.99):
            self.assertIn(f"histogram_quantile({q}, sum by (le) (rate(sendq_end_to_end_latency_seconds_bucket",
                          json.dumps(d))
            self.assertIn(f"histogram_quantile({q}, sum by (provider, le) (rate(sendq_provider_request_duration_seconds_bucket",
                          json.dumps(d))

    def test_compose_file(self):
        (c,) = load_yaml_docs(os.path.join(DEPLOY, "compose", "docker-compose.yml"))
        s = c["services"]
        self.assertEqual(set(s), {"kafka", "kafka-init", "simulator", "worker", "gateway", "prometheus", "grafana"})
        gw = s["gateway"]
        self.assertEqual(gw["environment"]["SENDQ_KAFKA_BROKERS"], "kafka:9092")
        self.assertEqual(gw["command"], ["sendq-gateway", "--config", "/etc/sendq/sendq.toml"])
        self.assertIn("http://127.0.0.1:8080/healthz", gw["healthcheck"]["test"])
        self.assertEqual(gw["environment"]["SENDQ_GATEWAY_ADDR"], "0.0.0.0:8080")
        # its metrics port is the one prometheus.yml scrapes as job sendq-gateway, on the gateway service
        with open(PROM_CONFIG) as f:
            jobs = {j["job_name"]: j for j in yaml.safe_load(f)["scrape_configs"]}
        (sd,) = jobs["sendq-gateway"]["dns_sd_configs"]
        self.assertEqual((sd["names"], sd["port"]), (["gateway"], 9465))
        self.assertEqual(gw["environment"]["SENDQ_GATEWAY_METRICS_ADDR"], "0.0.0.0:9465")
        (sd,) = jobs["sendq-worker"]["dns_sd_configs"]
        self.assertEqual((sd["names"], sd["port"]), (["worker"], 9464))
        self.assertIn("broker,controller", s["kafka"]["environment"]["KAFKA_PROCESS_ROLES"])
        env = s["worker"]["environment"]
        self.assertEqual(env["SENDQ_KAFKA_BROKERS"], "kafka:9092")
        self.assertEqual(env["SENDQ_METRICS_ADDR"], "0.0.0.0:9464")
        for p in ("SENDER", "GEWE", "IM", "GPS"):
            self.assertEqual(env[f"SENDQ_{p}_BASE_URL"], "http://simulator:8900")
        init = s["kafka-init"]["command"][0]
        for topic in ("sendq.requests:16", "sendq.results", "sendq.dlq", "sendq.retry", "sendq.bulk"):
            self.assertIn(topic, init)
        compose_dir = os.path.join(DEPLOY, "compose")
        for svc in s.values():
            for v in svc.get("volumes", []):
                src = v.split(":")[0]
                if src.startswith("."):
                    self.assertTrue(os.path.exists(os.path.join(compose_dir, src)), v)
        self.assertTrue(os.path.exists(os.path.join(compose_dir, s["worker"]["build"]["context"],
                                                    s["worker"]["build"]["dockerfile"])))

    def test_the_runtime_image_installs_every_library_the_binaries_link(self):
        # The image's runtime stage installs libraries by hand; a dependency added later (jemalloc)
        # was missing there, and the worker could not start in the image. Each library the built
        # binaries need must come from a package that stage installs, or from debian:12-slim itself.
        with open(os.path.join(DEPLOY, "compose", "Dockerfile")) as f:
            dockerfile = f.read()
        runtime = dockerfile[dockerfile.index("AS runtime"):]
        install = re.search(r"apt-get install -y --no-install-recommends((?:\s*\\\n)?[^&]*)&&", runtime)
        self.assertIsNotNone(install, "the runtime stage's apt-get install")
        installed = set(install.group(1).replace("\\", " ").split())
        base = {"libc6", "libstdc++6", "libgcc-s1"}  # in debian:12-slim (apt needs them)
        for binary in (h.WORKER, h.SIMULATOR, h.GATEWAY, h.SENDQCTL):
            out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
            self.assertIn("libc.so.6", needed, binary)
            for lib in needed:
                if re.match(r"lib(asan|tsan|ubsan|lsan)\.", lib):
                    continue  # a sanitizer build's runtime: such builds never go into the image
                owners = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True).stdout
                packages = {line.split(":")[0] for line in owners.splitlines() if ":" in line}
                self.assertTrue(packages & (installed | base),
                                f"{os.path.basename(binary)} needs {lib} (package {sorted(packages)}), which the "
                                f"runtime stage of deploy/compose/Dockerfile does not install")

    def test_kubernetes_manifests(self):
        (k,) = load_yaml_docs(os.path.join(K8S, "kustomization.yaml"))
        docs = {}  # (kind, name) -> document
        for res in k["resources"]:
            for d in load_yaml_docs(os.path.join(K8S, res)):
                docs[d["kind"], d["metadata"]["name"]] = d
                self.assertNotIn("namespace", d["metadata"], f"{res} must not name a namespace")
        self.assertEqual(set(docs), {("ConfigMap", "sendq-worker-config"), ("Secret", "sendq-provider-credentials"),
                                     ("Secret", "sendq-gateway-api-keys"), ("Deployment", "sendq-worker"),
                                     ("Service", "sendq-worker"), ("PodDisruptionBudget", "sendq-worker"),
                                     ("PodMonitor", "sendq-worker"), ("PodMonitor", "sendq-gateway"),
                                     ("Deployment", "sendq-gateway"),
                                     ("Service", "sendq-gateway"), ("PodDisruptionBudget", "sendq-gateway")})

        dep = docs["Deployment", "sendq-worker"]
        spec = dep["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        self.assertEqual(dep["spec"]["replicas"], 3)
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual([p["containerPort"] for p in c["ports"] if p["name"] == "metrics"], [9464])
        self.assertTrue(c["resources"]["requests"] and c["resources"]["limits"])
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertTrue(spec["securityContext"]["runAsNonRoot"])

        toml_cfg = tomllib.loads(docs["ConfigMap", "sendq-worker-config"]["data"]["sendq.toml"])
        self.assertTrue(toml_cfg["kafka"]["brokers"], "the ConfigMap must not use the embedded Kafka")
        self.assertEqual(toml_cfg["metrics"]["addr"], "0.0.0.0:9464")
        # the grace, then up to 2 s per I/O thread and 10 s of producer flush (pipeline stop())
        self.assertGreaterEqual(spec["terminationGracePeriodSeconds"] * 1000, toml_cfg["worker"]["shutdown_grace_ms"] + 20000)

        # every *_env names a variable the container sets from the Secret; every *_file a mounted key
        secret_keys = set(docs["Secret", "sendq-provider-credentials"]["stringData"])
        env_from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in c["env"] if "valueFrom" in e}
        self.assertEqual({e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e},
                         {"sendq-provider-credentials"})
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        secret_volume = next(v for v in spec["volumes"] if "secret" in v)
        files = {os.path.join(mounts[secret_volume["name"]], i["path"]): i["key"] for i in secret_volume["secret"]["items"]}
        used = set()
        for provider, accounts in toml_cfg["providers"].items():
            for account, keys in accounts.items():
                for key, value in keys.items():
                    if key.endswith("_env"):
                        self.assertIn(value, env_from_secret, f"{provider}.{account}.{key}")
                        used.add(env_from_secret[value])
                    elif key.endswith("_file"):
                        self.assertIn(value, files, f"{provider}.{account}.{key}")
                        used.add(files[value])
        self.assertEqual(used, secret_keys, "Secret keys and the config's *_env / *_file must match")

        self.assertEqual(docs["PodDisruptionBudget", "sendq-worker"]["spec"]["maxUnavailable"], 1)
        monitor = docs["PodMonitor", "sendq-worker"]
        self.assertEqual(monitor["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(labels[monitor["spec"]["jobLabel"]], "sendq-worker", "job label of the alerts")
        self.assertEqual(monitor["spec"]["selector"]["matchLabels"], {"app.kubernetes.io/name": "sendq-worker"},
                         "the PodMonitor must not select the gateway's pods (they have no /metrics)")
        (scrape,) = load_yaml_docs(os.path.join(K8S, "prometheus-scrape-config.yaml"))
        kept = {j["job_name"]: [r["regex"] for r in j["relabel_configs"] if r.get("action") == "keep"]
                for j in scrape["scrape_configs"]}
        self.assertEqual(kept, {"sendq-worker": ["sendq-worker", "metrics"], "sendq-gateway": ["sendq-gateway", "metrics"]})

        # the gateway: the workers' ConfigMap, its keys from its own Secret, the port its Service names
        gdep = docs["Deployment", "sendq-gateway"]
        gspec = gdep["spec"]["template"]["spec"]
        (g,) = gspec["containers"]
        self.assertEqual(g["command"] + g["args"], ["sendq-gateway", "--config", "/etc/sendq/sendq.toml"])
        genv = {e["name"]: e for e in g["env"]}
        self.assertEqual(genv["SENDQ_GATEWAY_ADDR"]["value"], "0.0.0.0:8080")
        self.assertEqual(genv["SENDQ_GATEWAY_API_KEYS"]["valueFrom"]["secretKeyRef"],
                         {"name": "sendq-gateway-api-keys", "key": "api-keys"})
        self.assertEqual(docs["Secret", "sendq-gateway-api-keys"]["stringData"], {"api-keys": ""},
                         "a placeholder key in the template would be a working key anyone can read")
        self.assertEqual([p["containerPort"] for p in g["ports"] if p["name"] == "http"], [8080])
        self.assertEqual([p["containerPort"] for p in g["ports"] if p["name"] == "metrics"], [9465])
        self.assertEqual(genv["SENDQ_GATEWAY_METRICS_ADDR"]["value"], "0.0.0.0:9465")
        self.assertEqual(g["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "metrics"})
        self.assertEqual(g["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "metrics"})
        gmon = docs["PodMonitor", "sendq-gateway"]
        self.assertEqual(gmon["spec"]["selector"]["matchLabels"], {"app.kubernetes.io/name": "sendq-gateway"})
        self.assertEqual(gmon["spec"]["podMetricsEndpoints"][0]["port"], "metrics")
        self.assertEqual(gdep["spec"]["template"]["metadata"]["labels"][gmon["spec"]["jobLabel"]], "sendq-gateway")
        self.assertEqual(gspec["volumes"], [{"name": "config", "configMap": {"name": "sendq-worker-config"}}])
        self.assertTrue(g["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(g["securityContext"]["allowPrivilegeEscalation"])
        self.assertTrue(gspec["securityContext"]["runAsNonRoot"])
        # its grace covers the drain: produce_timeout_ms + 2 s of answers, then produce_timeout_ms of flush, and the preStop pause
        produce_timeout_s = toml_cfg.get("gateway", {}).get("produce_timeout_ms", 30000) / 1000
        pre_stop = int(g["lifecycle"]["preStop"]["exec"]["command"][1])
        self.assertGreater(gspec["terminationGracePeriodSeconds"], 2 * produce_timeout_s + 2 + pre_stop)
        self.assertEqual(docs["Service", "sendq-gateway"]["spec"]["ports"][0]["targetPort"], "http")

        for name in ("sendq-worker", "sendq-gateway"):
            pod_labels = docs["Deployment", name]["spec"]["template"]["metadata"]["labels"]
            for kind in ("Service", "PodDisruptionBudget"):
                sel = docs[kind, name]["spec"]["selector"]
                sel = sel.get("matchLabels", sel)
                self.assertTrue(all(pod_labels.get(k) == v for k, v in sel.items()), (kind, name))
                other = "sendq-gateway" if name == "sendq-worker" else "sendq-worker"
                other_labels = docs["Deployment", other]["spec"]["template"]["metadata"]["labels"]
                self.assertFalse(all(other_labels.get(k) == v for k, v in sel.items()), f"{kind} {name} selects {other}")

    def test_systemd_units(self):
        self.assertTrue(shutil.which("systemd-analyze"),
                        "systemd-analyze is missing: scripts/setup installs it (Debian package systemd)")
        tmp = h.Workdir("systemd").path
        for name, binary, env_file, stop_timeout in (("sendq-worker", h.WORKER, "/etc/sendq/env", 30),
                                                     ("sendq-gateway", h.GATEWAY, "/etc/sendq/gateway.env", 70)):
            with self.subTest(unit=name):
                with open(os.path.join(DEPLOY, "systemd", name + ".service")) as f:
                    text = f.read()
                for line in (f"ExecStart=/usr/local/bin/{name} --config /etc/sendq/sendq.toml", "Restart=on-failure",
                             f"EnvironmentFile={env_file}", "KillSignal=SIGTERM", f"TimeoutStopSec={stop_timeout}",
                             "RestartPreventExitStatus=2", "NoNewPrivileges=yes", "ProtectSystem=strict"):
                    self.assertIn(line + "\n", text)
                # only the worker reloads on SIGHUP; the gateway has no reload
                self.assertEqual("ExecReload=/bin/kill -HUP $MAINPID\n" in text, name == "sendq-worker")
                copy = os.path.join(tmp, name + ".service")
                with open(copy, "w") as f:  # verify checks that ExecStart exists: point it at the build
                    f.write(text.replace(f"/usr/local/bin/{name}", os.path.abspath(binary)))
                r = run(["systemd-analyze", "verify", copy])
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertEqual(r.stdout + r.stderr, "")


class WorkerTest(unittest.TestCase):
    """One worker from its start: /readyz before and after assignment, then /metrics after traffic."""

    @classmethod
    def setUpClass(cls):
        cls.dir = h.Workdir("ops-files").path
        cls.sim = h.Simulator(cls.dir)
        # the first sender calls are throttled (429) or fail (503), so that retries, throttled replies
        # and attempts of more than one outcome class get series; every request is delivered in the end
        cls.sim.set_faults([{"match": "/sender/", "action": "status", "status": 429, "times": 2},
                            {"match": "/sender/", "action": "status", "status": 503, "times": 1}])
        # the example configuration with a rate limit on gewe, so that requests wait for it
        with open(h.DEMO_CONFIG) as f:
            text = f.read()
        limited = text.replace('app_id = "demo-gewe-app"', 'app_id = "demo-gewe-app"\nrate_limit = "3/1s"', 1)
        assert limited != text, "the example configuration changed: no gewe app_id line"
        config = os.path.join(cls.dir, "sendq.toml")
        with open(config, "w") as f:
            f.write(limited)
        try:
            cls.worker = h.Worker(cls.dir, cls.sim, config=config, env_extra={"SENDQ_WORKER_RETRY_BACKOFF_MS": "50"})
        except Exception:
            cls.sim.stop()
            raise
        try:
            cls.start_and_drive()
        except Exception:
            cls.tearDownClass()  # unittest does not call it when setUpClass fails
            raise

    @classmethod
    def start_and_drive(cls):
        # /readyz from the start: the first HTTP answer, then until 200
        cls.readyz = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cls.worker.proc.poll() is not None:
                break
            try:
                status, _ = h.http_get(cls.worker.metrics_url + "/readyz", timeout=2)
                cls.readyz.append((round(time.monotonic(), 3), status))
                if status == 200:
                    break
            except OSError:
                pass  # not listening yet
            time.sleep(0.05)
        cls.metrics_text = None
        cls.reload_error = "not tried: the worker never became ready"
        if cls.readyz and cls.readyz[-1][1] == 200:
            cls.healthz = h.http_get(cls.worker.metrics_url + "/healthz")[0]
            cls.ready_metrics = cls.worker.metrics()
            cls.drive_traffic()
            status, cls.metrics_text = h.http_get(cls.worker.metrics_url + "/metrics")
            assert status == 200, status
            cls.reload()

    @classmethod
    def reload(cls):
        """A configuration reload (SIGHUP, as `systemctl reload` sends it) gives
        sendq_config_reloads_total a series; on success, /metrics is read again."""
        cls.worker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if cls.worker.proc.poll() is not None:
                cls.reload_error = f"the worker exited with {cls.worker.proc.returncode} on SIGHUP"
                return
            try:
                status, text = h.http_get(cls.worker.metrics_url + "/metrics")
            except OSError as e:
                cls.reload_error = f"/metrics after SIGHUP: {e}"
                time.sleep(0.1)
                continue
            if status == 200 and "sendq_config_reloads_total{" in text:
                cls.metrics_text, cls.reload_error = text, None
                return
            time.sleep(0.1)
        cls.reload_error = cls.reload_error or "no sendq_config_reloads_total series 10 s after SIGHUP"

    @classmethod
    def drive_traffic(cls):
        """Every valid example, a junk record (rejected, DLQ) and a request for an unknown account, so
        that labelled families have series; waits for all their results."""
        records = []
        for name in sorted(os.listdir(VALID_REQUESTS)):
            with open(os.path.join(VALID_REQUESTS, name)) as f:
                req = json.load(f)
            req.pop("deadline", None)
            records.append((req["id"], json.dumps(req, ensure_ascii=False)))
        records.append(("junk", "not json"))
        unknown = {"id": "ops-unknown-account", "provider": "gewe", "account": "nobody", "type": "text",
                   "to": "x@chatroom", "body": {"text": "x"}}
        records.append((unknown["id"], json.dumps(unknown)))
        h.kcat_produce(cls.worker.bootstrap, "sendq.requests", records)
        h.kcat_consume_until(cls.worker.bootstrap, "sendq.results", len(records), timeout=120)

    @classmethod
    def tearDownClass(cls):
        h.stop_worker_and_simulator(cls.worker, cls.sim)

    def test_readyz_503_before_assignment_200_after(self):
        statuses = [s for _, s in self.readyz]
        self.assertTrue(statuses, "/readyz never answered")
        self.assertEqual(statuses[0], 503, f"first answer of /readyz: {statuses[:5]}")
        self.assertEqual(statuses[-1], 200, f"/readyz never answered 200: {statuses[-5:]}")
        self.assertEqual(set(statuses), {503, 200})
        # read when /readyz first answered 200
        self.assertGreater(h.metric(self.ready_metrics, "sendq_assigned_partitions"), 0)
        self.assertEqual(self.healthz, 200)

    def test_every_metric_of_the_dashboard_and_the_rules_exists(self):
        self.assertIsNotNone(self.metrics_text, "the worker never became ready")
        # the gateway's (sendq_gateway_*): GatewayMetricsTest
        with open(DASHBOARD) as f:
            dashboard_names = {n for e in dashboard_expressions(json.load(f)) for n in METRIC_NAME.findall(e)
                               if not n.startswith("sendq_gateway_")}
        with open(RULES) as f:
            rule_names = {n for e in rule_expressions(yaml.safe_load(f)) for n in METRIC_NAME.findall(e)
                          if not n.startswith("sendq_gateway_")}
        self.assertGreaterEqual(len(dashboard_names), 15, dashboard_names)
        self.assertGreaterEqual(len(rule_names), 5, rule_names)

        def missing_in(text):
            types, samples = exposed_families(text)
            missing = {}
            for where, names in (("dashboard", dashboard_names), ("alert rules", rule_names)):
                for n in sorted(names):
                    if not is_exposed(n, types, samples):
                        missing.setdefault(n, []).append(where)
            return missing, types

        # some gauges are set periodically (consumer lag from librdkafka's statistics): give them a
        # few scrapes
        text = self.metrics_text
        deadline = time.monotonic() + 15
        missing, types = missing_in(text)
        while missing and time.monotonic() < deadline and self.worker.proc.poll() is None:
            time.sleep(0.5)
            status, text = h.http_get(self.worker.metrics_url + "/metrics")
            missing, types = missing_in(text)
        self.assertEqual(missing, {}, "used but not in the worker's /metrics (a family with no series prints "
                                      f"nothing); exposed: {sorted(types)}")

    def test_every_exposed_metric_is_documented(self):
        self.assertIsNotNone(self.metrics_text, "the worker never became ready")
        types, _ = exposed_families(self.metrics_text)
        names = {n for n in types if n.startswith("sendq_")}
        self.assertIn("sendq_bulkhead_parked_total", names)
        self.assertGreaterEqual(len(names), 20, sorted(names))
        self.assertEqual(sorted(names - documented_metrics()), [],
                         "on the worker's /metrics but not in deploy/README.md's metrics table")

    def test_histograms_and_delivery_labels(self):
        self.assertIsNotNone(self.metrics_text, "the worker never became ready")
        types, _ = exposed_families(self.metrics_text)
        self.assertEqual(types.get("sendq_provider_request_duration_seconds"), "histogram")
        self.assertEqual(types.get("sendq_end_to_end_latency_seconds"), "histogram")
        self.assertEqual(types.get("sendq_worker_latency_seconds"), "histogram")
        m = h.parse_metrics(self.metrics_text)
        labels = {k for (n, ls), _ in m.items() if n == "sendq_deliveries_total" for k, _ in ls}
        self.assertEqual(labels, {"provider", "account", "status", "error_kind"})
        for provider in ("sender", "gewe", "im", "gps"):
            self.assertGreater(h.metric(m, "sendq_deliveries_total", provider=provider), 0, provider)
            # a series per provider (an injected reset or timeout leaves it at 0)
            self.assertIn(("sendq_provider_request_duration_seconds_count", frozenset({("provider", provider)})), m)
            # every request ends with a result, so each provider's time in the worker is observed
            self.assertGreater(h.metric(m, "sendq_worker_latency_seconds_count", provider=provider), 0, provider)
        self.assertGreater(h.metric(m, "sendq_dlq_records_total"), 0)

    def test_sighup_reloads_the_configuration(self):
        self.assertIsNone(self.reload_error)
        m = h.parse_metrics(self.metrics_text)
        self.assertEqual(h.metric(m, "sendq_config_reloads_total", result="ok"), 1)
        self.assertEqual(self.worker.proc.poll(), None, "the worker keeps running after SIGHUP")


class GatewayMetricsTest(unittest.TestCase):
    def test_every_gateway_metric_of_the_rules_and_the_dashboard_exists(self):
        # given a gateway that produced one record
        tmp = h.Workdir("ops-gateway").path
        kafka = h.EmbeddedKafka(tmp, topics=["sendq.requests"])
        try:
            gw = h.Gateway(tmp, kafka.bootstrap, name="gateway-ops")
            try:
                req = {"id": "ops-gw-1", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": "hi"}}
                self.assertEqual(gw.post("/v1/messages", req)[0], 202)
                self.assertEqual(gw.post("/v1/messages", b"x" * 5_000_000)[0], 413)
                status, text = h.http_get(gw.metrics_url + "/metrics")
            finally:
                gw.stop()
        finally:
            kafka.stop()
        # then every sendq_gateway_* name the alert rules and the dashboard use is in its /metrics
        # (the refusals counter gets its series from a refusal)
        self.assertEqual(status, 200)
        with open(RULES) as f:
            names = {n for e in rule_expressions(yaml.safe_load(f)) for n in METRIC_NAME.findall(e)
                     if n.startswith("sendq_gateway_")}
        self.assertEqual(names, {"sendq_gateway_records_total"})
        with open(DASHBOARD) as f:
            names |= {n for e in dashboard_expressions(json.load(f)) for n in METRIC_NAME.findall(e)
                      if n.startswith("sendq_gateway_")}
        self.assertEqual(len(names), 5, names)
        types, samples = exposed_families(text)
        self.assertEqual({n: is_exposed(n, types, samples) for n in names}, {n: True for n in names},
                         f"exposed: {sorted(types)}")
        # and every family the gateway exposes is in deploy/README.md's metrics table
        exposed = {n for n in types if n.startswith("sendq_")}
        self.assertGreaterEqual(len(exposed), 5, sorted(exposed))
        self.assertEqual(sorted(exposed - documented_metrics()), [],
                         "on the gateway's /metrics but not in deploy/README.md's metrics table")


class KubernetesConfigTest(unittest.TestCase):
    def test_configmap_sendq_toml_is_accepted_by_the_worker(self):
        (k,) = [d for d in load_yaml_docs(os.path.join(K8S, "configmap.yaml"))]
        text = k["data"]["sendq.toml"]
        tmp = h.Workdir("k8s-config").path
        secrets = os.path.join(tmp, "secrets")
        os.mkdir(secrets)
        with open(os.path.join(secrets, "gps-token"), "w") as f:
            f.write("test-gps-token\n")
        config = os.path.join(tmp, "sendq.toml")
        with open(config, "w") as f:
            f.write(text.replace("/etc/sendq/secrets/", secrets + "/"))
        sim = h.Simulator(tmp)
        worker = None
        try:
            # the embedded Kafka (SENDQ_KAFKA_BROKERS="") instead of the cluster named in the file
            worker = h.Worker(tmp, sim, config=config, env_extra={"SENDER_SIGN": "s", "GEWE_TOKEN": "t"})
            worker.wait_ready()
        finally:
            rc = worker.stop() if worker else None
            sim.stop()
        self.assertEqual(rc, 0, f"worker log: {worker.log_path if worker else '-'}")

    def test_the_gateway_serves_on_the_configmap_with_the_environment_of_its_deployment(self):
        # given the gateway pod's command line and environment (a free loopback port for its
        # 0.0.0.0:8080) and the ConfigMap's sendq.toml at its mount path's place, whose provider
        # secrets (*_env) the gateway pod does not have
        (cm,) = load_yaml_docs(os.path.join(K8S, "configmap.yaml"))
        dep = load_yaml_docs(os.path.join(K8S, "gateway-deployment.yaml"))[0]
        secret = next(d for d in load_yaml_docs(os.path.join(K8S, "secret.yaml"))
                      if d["metadata"]["name"] == "sendq-gateway-api-keys")
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        (mount,) = c["volumeMounts"]
        env = {}
        for e in c["env"]:
            env[e["name"]] = e["value"] if "value" in e else secret["stringData"][e["valueFrom"]["secretKeyRef"]["key"]]
        # h.Gateway's loopback ports instead of 0.0.0.0
        self.assertEqual((env.pop("SENDQ_GATEWAY_ADDR"), env.pop("SENDQ_GATEWAY_METRICS_ADDR")),
                         ("0.0.0.0:8080", "0.0.0.0:9465"))
        tmp = h.Workdir("k8s-gateway").path
        config = os.path.join(tmp, "sendq.toml")
        with open(config, "w") as f:
            f.write(cm["data"]["sendq.toml"])
        args = [config if a == mount["mountPath"] else a for a in c["args"]]
        self.assertEqual(c["command"], ["sendq-gateway"])
        # when it starts with the Secret template's empty key list, it refuses to (no placeholder key works)
        r = subprocess.run([h.GATEWAY, *args], capture_output=True, text=True, timeout=30,
                           env={**os.environ, **env, "SENDQ_KAFKA_BROKERS": "127.0.0.1:9"})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("SENDQ_GATEWAY_API_KEYS: set but holds no key", r.stderr)
        # and with keys in the Secret it serves
        env["SENDQ_GATEWAY_API_KEYS"] = "key-of-a,key-of-b"
        kafka = h.EmbeddedKafka(tmp, topics=["sendq.requests"])
        gw = None
        try:
            gw = h.Gateway(tmp, kafka.bootstrap, env_extra=env, name="gateway-k8s", args=args)
            # when a caller without a key and one with the second key post a request
            req = {"id": "k8s-1", "provider": "gewe", "type": "text", "to": "x@chatroom", "body": {"text": "hi"}}
            refused = gw.post("/v1/messages", req)
            taken = gw.post("/v1/messages", req, headers={"X-API-Key": "key-of-b"})
            # then the first is refused, the second produced to the ConfigMap's requests topic
            self.assertEqual(refused[0], 401, refused)
            self.assertEqual((taken[0], json.loads(taken[1])), (202, {"id": "k8s-1"}))
            self.assertEqual([json.loads(v)["id"] for _, v, _ in h.kcat_consume_all(kafka.bootstrap, "sendq.requests")],
                             ["k8s-1"])
            # and its readiness probe's path answers on the metrics port
            probe = c["readinessProbe"]["httpGet"]["path"]
            self.assertEqual(h.http_get(gw.metrics_url + probe)[0], 200)
        finally:
            rc = gw.stop() if gw else None
            kafka.stop()
        self.assertEqual(rc, 0, f"gateway log: {gw.log_path if gw else '-'}")

if __name__ == "__main__":
    h.main()
