#!/usr/bin/env python3
"""Issue 8 point 5 (Kafka): TLS and SASL settings in [kafka.librdkafka] reach librdkafka in every
binary. An unusable TLS setup (a CA file that does not exist) stops the worker, the gateway and
sendqctl at start-up with a message naming the setting, instead of retrying for ever; a usable one
with the cluster down does not. (The embedded Kafka, librdkafka's mock cluster, speaks neither TLS
nor SASL, so no test here completes a handshake: libs/kafka/tests/kafka_security_test.cpp shows
the SASL settings reaching the connection.)"""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sendq_harness as h  # noqa: E402
from policy_support import write_config  # noqa: E402

BAD_CA = "/nonexistent/ca.pem"
NAMED = f'kafka.librdkafka.ssl.ca.location = "{BAD_CA}": No such file or directory'


def kafka_section(brokers, librdkafka):
    lines = ["[kafka]", f'brokers = "{brokers}"', "[kafka.librdkafka]"]
    lines += [f'"{k}" = "{v}"' for k, v in librdkafka.items()]
    return "\n".join(lines) + "\n"


def read(path):
    with open(path) as f:
        return f.read()


def closed_port():
    return h.free_port()  # bound and released: nothing listens there


class KafkaSecurityTest(unittest.TestCase):
    def setUp(self):
        self.workdir = h.Workdir("kafka-security").path
        self.brokers = f"127.0.0.1:{closed_port()}"
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("SENDQ_") and k != "SENDQ_BUILD_DIR":
                del self.env[k]  # the file alone decides
        self.env.update({"SENDQ_METRICS_ADDR": "127.0.0.1:0", "SENDQ_GATEWAY_ADDR": "127.0.0.1:0",
                         "SENDQ_GATEWAY_METRICS_ADDR": "127.0.0.1:0", "SENDQ_LOG_FORMAT": "json"})

    def config(self, librdkafka):
        return write_config(self.workdir, accounts_extra=kafka_section(self.brokers, librdkafka))

    def run_to_exit(self, argv, timeout=30):
        start = time.monotonic()
        p = subprocess.run(argv, capture_output=True, timeout=timeout, env=self.env)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace"), time.monotonic() - start

    def test_worker_stops_at_start_up_naming_an_unusable_tls_setting(self):
        cfg = self.config({"security.protocol": "ssl", "ssl.ca.location": BAD_CA})
        rc, out, took = self.run_to_exit([h.WORKER, "--config", cfg])
        self.assertEqual(rc, 1, out)  # not 134: no abort from the running I/O threads
        self.assertIn("fatal: kafka producer: ssl.ca.location failed", out)
        self.assertIn(NAMED.replace('"', '\\"'), out)  # JSON log line
        self.assertNotIn("terminate called", out)
        self.assertLess(took, 15, out)

    def test_worker_with_usable_tls_waits_for_a_cluster_that_is_down(self):
        # Same file, a CA that exists: the worker starts and waits for the brokers (no fast exit),
        # and SIGTERM still stops it cleanly.
        ca = next((p for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
                   if os.path.isfile(p)), None)
        if ca is None:
            self.skipTest("no system CA bundle to use as a readable ssl.ca.location")
        cfg = self.config({"security.protocol": "ssl", "ssl.ca.location": ca})
        log_path = os.path.join(self.workdir, "worker-usable.log")
        with open(log_path, "w") as log:
            proc = h.start_server([h.WORKER, "--config", cfg], stdout=log, stderr=subprocess.STDOUT, env=self.env)
            try:
                time.sleep(4)
                self.assertIsNone(proc.poll(), read(log_path))
            finally:
                rc = h.stop_process(proc, timeout=60)
        out = read(log_path)
        self.assertEqual(rc, 0, out)
        self.assertIn("ssl://127.0.0.1:", out)  # it did try TLS towards the (closed) broker

    def test_a_password_env_that_is_not_set_is_a_configuration_error(self):
        cfg = self.config({"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512",
                           "sasl.username": "sendq", "sasl.password_env": "SENDQ_TEST_UNSET_KAFKA_PASSWORD"})
        rc, out, _ = self.run_to_exit([h.WORKER, "--config", cfg])
        self.assertEqual(rc, 2, out)
        self.assertIn("kafka.librdkafka.sasl.password_env: environment variable SENDQ_TEST_UNSET_KAFKA_PASSWORD "
                      "is not set", out)

    def test_gateway_stops_at_start_up_naming_an_unusable_tls_setting(self):
        cfg = self.config({"security.protocol": "ssl", "ssl.ca.location": BAD_CA})
        rc, out, took = self.run_to_exit([h.GATEWAY, "--config", cfg])
        self.assertEqual(rc, 1, out)
        self.assertIn("fatal: kafka producer: ssl.ca.location failed", out)
        self.assertIn(NAMED.replace('"', '\\"'), out)
        self.assertLess(took, 15, out)

    def test_sendqctl_uses_the_workers_kafka_settings(self):
        cfg = self.config({"security.protocol": "ssl", "ssl.ca.location": BAD_CA})
        # (an empty $SENDQ_KAFKA_BROKERS, the worker's "embedded", does not hide the file's brokers)
        for cmd, client in (("stats", "reader"), ("tail", "reader"), ("replay", "reader"), ("enqueue", "producer")):
            p = h.sendqctl(cmd, "--config", cfg, input_bytes=b"", timeout=30, env_extra={"SENDQ_KAFKA_BROKERS": ""})
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 1, f"{cmd}: {err}")
            self.assertIn(f"sendqctl {cmd}: kafka {client}: ssl.ca.location failed", err)
            self.assertIn(NAMED, err)
        # -X sets one librdkafka setting, over the file's
        p = h.sendqctl("stats", "--brokers", self.brokers, "-X", "security.protocol=bogus", timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('kafka.librdkafka.security.protocol: Invalid value "bogus"', p.stderr.decode())


if __name__ == "__main__":
    h.main()
