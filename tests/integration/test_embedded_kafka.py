#!/usr/bin/env python3
"""sendq-embedded-kafka's command line: topics with their own partition counts (--topic NAME:N,
which the end-to-end benchmark uses for its open-loop topic), the default count for the others,
and a clear error, exit 2, for a bad --topic."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import sendq_harness as h  # noqa: E402


def partitions_by_topic(bootstrap):
    """{topic: partition count} from kcat -L."""
    out = subprocess.run(["kcat", "-b", bootstrap, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    found = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith('topic "'):
            name = line.split('"')[1]
            found[name] = int(line.split(" with ")[1].split()[0])
    return found


class EmbeddedKafkaCommandLineTest(unittest.TestCase):
    def test_a_topic_can_have_its_own_partition_count(self):
        with tempfile.TemporaryDirectory() as work:
            kafka = h.EmbeddedKafka(work, partitions=5, topics=["one.partition:1", "three:3", "default"])
            try:
                self.assertEqual(partitions_by_topic(kafka.bootstrap), {"one.partition": 1, "three": 3, "default": 5})
                # records go to and come back from the one-partition topic
                subprocess.run(["kcat", "-b", kafka.bootstrap, "-P", "-t", "one.partition", "-K", "\t"],
                               input=b"k1\tfirst\nk2\tsecond\n", check=True, timeout=30)
                got = subprocess.run(["kcat", "-b", kafka.bootstrap, "-C", "-t", "one.partition", "-o", "beginning",
                                      "-c", "2", "-q", "-f", "%p %k %s\n"], capture_output=True, text=True,
                                     timeout=30, check=True).stdout
                self.assertEqual(got.splitlines(), ["0 k1 first", "0 k2 second"])
            finally:
                kafka.stop()

    def test_a_bad_topic_argument_is_refused_with_its_reason(self):
        cases = {
            "t:0": "--topic NAME:N: '0' is not a number within 1..1000",
            "t:x": "--topic NAME:N: 'x' is not a number within 1..1000",
            "t:": "--topic NAME:N: '' is not a number within 1..1000",
            ":3": "--topic needs a topic name (NAME or NAME:N)",
            "": "--topic needs a topic name (NAME or NAME:N)",
        }
        for arg, message in cases.items():
            with self.subTest(arg=arg):
                p = subprocess.run([h.EMBEDDED_KAFKA, "--topic", arg], capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(message, p.stderr)

    def test_a_bad_failure_count_is_refused_with_its_reason(self):
        for arg in ("0", "-1", "x", "1001"):
            with self.subTest(arg=arg):
                p = subprocess.run([h.EMBEDDED_KAFKA, "--fail-offset-commits", arg], capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(f"--fail-offset-commits: '{arg}' is not a number within 1..1000", p.stderr)

    def test_help_names_the_partition_suffix(self):
        p = subprocess.run([h.EMBEDDED_KAFKA, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--topic NAME[:N]", p.stdout)
        self.assertIn("NOT durable", p.stdout)


if __name__ == "__main__":
    unittest.main()
