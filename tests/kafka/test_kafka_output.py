#!/usr/bin/env python3
"""The Kafka output against Apache Kafka itself (tests/kafka/broker.py, KRaft
on loopback): `m365fwd import` delivers the sample records (245 Ids) over TLS
with a client certificate (encrypted key, its password from
rdkafka_secret_files) and over SASL_SSL with SCRAM-SHA-512 (password from
rdkafka_secret_files); a read_committed consumer finds every Id exactly once.
An untrusted client certificate or a wrong password fails loudly: exit 1, the
broker's reason in the log, "0 delivered", nothing in the topic, and the
secret never printed.

librdkafka before 2.6.1 (Debian 12 has 2.0.2) cannot log in with SCRAM to
Kafka 4: its client-final nonce is refused since Kafka's fix for
CVE-2024-56128. With such a librdkafka the SCRAM delivery runs on Kafka
broker.SCRAM_COMPAT_VERSION (3.9.x, which still accepts it) and, on Kafka 4,
the test checks that the refusal is loud and loses nothing; with 2.6.1 or
later SCRAM must deliver on Kafka 4 too.

Run as: test_kafka_output.py M365FWD_BINARY (exit 77 when Java 17+, Maven or
openssl are missing; MF_BUILD_ROOT must hold tests/kafka_client)."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import broker  # noqa: E402

BIN = None
SRC = os.environ.get("MF_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
SAMPLES = [os.path.join(SRC, "samples", f) for f in ("contoso-week.json", "purview-export.csv")]
KEY_PASSWORD = "kafka-test-key-password"


def expected_ids():
    """The record Ids of the samples, read without m365fwd."""
    with open(SAMPLES[0]) as f:
        ids = [r["Id"] for r in json.load(f)]
    with open(SAMPLES[1], encoding="utf-8-sig") as f:
        ids += [json.loads(row["AuditData"])["Id"] for row in csv.DictReader(f)]
    return ids


def librdkafka_version():
    p = subprocess.run([broker.tool_path(), "version"], capture_output=True, text=True,
                       timeout=30, check=True)
    return tuple(int(x) for x in p.stdout.strip().split(".")[:3])


class KafkaOutputRealBroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="m365fwd-kafka-test-")
        cls.ids = expected_ids()
        cls.lib = librdkafka_version()
        cls.scram_on_4 = cls.lib >= (2, 6, 1)
        cls.clusters = []
        cls.kc = cls.start(broker.VERSION)
        cls.kc_scram = cls.kc if cls.scram_on_4 else cls.start(broker.SCRAM_COMPAT_VERSION)
        # the client key, encrypted: its password comes from a secret file
        cls.enc_key = os.path.join(cls.tmp, "client-enc.key")
        cls.key_pw = cls.secret_file("key.pw", KEY_PASSWORD)
        subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc",
                        "-in", cls.kc.certs["client_key"], "-out", cls.enc_key,
                        "-passout", "file:" + cls.key_pw], check=True, capture_output=True)

    @classmethod
    def start(cls, version):
        kc = broker.KafkaCluster(brokers=1, version=version)
        cls.clusters.append(kc)
        cls.addClassCleanup(kc.stop)     # runs even when setUpClass fails
        kc.start()
        print("\nKafka %s: 1 broker serving in %.1f s (%s)" % (
            version, kc.start_seconds,
            ", ".join("%s %.1f s" % kv for kv in kc.timings.items())), flush=True)
        return kc

    @classmethod
    def tearDownClass(cls):
        for kc in cls.clusters:
            kc.stop()
            for n in kc.nodes:
                assert n.proc.poll() is not None, "a broker JVM outlived stop()"
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def secret_file(cls, name, value):
        path = os.path.join(cls.tmp, name)
        with open(path, "w") as f:
            f.write(value)
        os.chmod(path, 0o600)
        return path

    # -- helpers
    def import_to(self, kc, listener, topic, rdkafka, secret_files=None, secret_env=None,
                  env=None, flush_timeout=None):
        """Create topic, run m365fwd import of the samples into it through
        listener; return (exit code, stderr)."""
        kc.create_topic(topic, partitions=3)
        d = tempfile.mkdtemp(dir=self.tmp)
        lines = ["state_dir: %s/state" % d, "outputs:",
                 "  - name: k", "    type: kafka",
                 "    brokers: \"%s\"" % kc.bootstrap(listener),
                 "    topic: %s" % topic, "    schema: raw"]
        if flush_timeout:
            lines.append("    flush_timeout: %s" % flush_timeout)
        for key, mapping in (("rdkafka", rdkafka), ("rdkafka_secret_files", secret_files),
                             ("rdkafka_secret_env", secret_env)):
            if mapping:
                lines.append("    %s:" % key)
                lines += ["      %s: \"%s\"" % kv for kv in mapping.items()]
        cfg = os.path.join(d, "m365fwd.yaml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = subprocess.run([BIN, "import", "-c", cfg] + SAMPLES, capture_output=True,
                           text=True, timeout=300, env=dict(os.environ, **(env or {})))
        return p.returncode, p.stdout + p.stderr

    def assert_exactly_once(self, kc, topic, rc, log):
        n = len(self.ids)
        self.assertEqual(rc, 0, log[-3000:])
        self.assertIn("%d records read, %d delivered, 0 rejected, 0 not acknowledged" % (n, n),
                      log)
        recs = kc.consume(topic, props={"isolation.level": "read_committed"}, eof=True)
        got, findings = {}, {}
        for r in recs:
            v = json.loads(r["value"])
            # an aggregate finding of the samples (a spray): keyed by its uid
            finding = (v.get("m365fwd") or {}).get("finding")
            rid = finding["uid"] if finding else v["Id"]
            self.assertEqual(r["headers"].get("m365fwd-id"), rid)
            self.assertEqual(r["key"], rid)
            into = findings if finding else got
            into[rid] = into.get(rid, 0) + 1
        dups = {i: c for i, c in list(got.items()) + list(findings.items()) if c > 1}
        self.assertEqual(dups, {}, "records delivered more than once")
        self.assertEqual(sorted(got), sorted(self.ids))

    def assert_loud_failure(self, kc, topic, rc, log, reason, secret):
        n = len(self.ids)
        self.assertEqual(rc, 1, log[-3000:])
        self.assertIn(reason, log)
        self.assertIn("%d records read, 0 delivered, 0 rejected, %d not acknowledged" % (n, n),
                      log)
        self.assertNotIn(secret, log)
        self.assertEqual(kc.consume(topic, eof=True), [], "records arrived after all")

    # -- TLS with a client certificate
    def test_tls_client_certificate(self):
        t = time.monotonic()
        rc, log = self.import_to(self.kc, "SSL", "tls", {
            "security.protocol": "SSL",
            "ssl.ca.location": self.kc.certs["ca"],
            "ssl.certificate.location": self.kc.certs["client_cert"],
            "ssl.key.location": self.enc_key,
        }, secret_files={"ssl.key.password": self.key_pw})
        self.assert_exactly_once(self.kc, "tls", rc, log)
        self.assertNotIn(KEY_PASSWORD, log)
        print("TLS client certificate: %d records exactly once in %.1f s"
              % (len(self.ids), time.monotonic() - t))

    def test_tls_untrusted_client_certificate_fails(self):
        rc, log = self.import_to(self.kc, "SSL", "tls-untrusted", {
            "security.protocol": "SSL",
            "ssl.ca.location": self.kc.certs["ca"],
            "ssl.certificate.location": self.kc.certs["untrusted_client_cert"],
            "ssl.key.location": self.kc.certs["untrusted_client_key"],
        }, flush_timeout="3s")
        with open(self.kc.certs["untrusted_client_key"]) as f:
            key_line = f.read().splitlines()[1]
        self.assert_loud_failure(self.kc, "tls-untrusted", rc, log,
                                 "certificate unknown", key_line)

    # -- SASL_SSL with SCRAM-SHA-512
    def scram_props(self, kc):
        return {"security.protocol": "SASL_SSL", "ssl.ca.location": kc.certs["ca"],
                "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "m365fwd"}

    def test_scram_sha512(self):
        kc = self.kc_scram
        t = time.monotonic()
        rc, log = self.import_to(kc, "SASL_SSL", "scram", self.scram_props(kc),
                                 secret_files={"sasl.password": kc.password_file("m365fwd")})
        self.assert_exactly_once(kc, "scram", rc, log)
        print("SASL_SSL SCRAM-SHA-512 (Kafka %s): %d records exactly once in %.1f s"
              % (kc.version, len(self.ids), time.monotonic() - t))

    def test_scram_wrong_password_fails(self):
        kc = self.kc_scram
        wrong = "not-the-password-%d" % os.getpid()
        rc, log = self.import_to(kc, "SASL_SSL", "scram-wrong", self.scram_props(kc),
                                 secret_env={"sasl.password": "MF_TEST_KAFKA_PW"},
                                 env={"MF_TEST_KAFKA_PW": wrong}, flush_timeout="3s")
        self.assert_loud_failure(kc, "scram-wrong", rc, log,
                                 "Authentication failed", wrong)

    def test_scram_on_kafka4(self):
        kc = self.kc
        rc, log = self.import_to(kc, "SASL_SSL", "scram-k4", self.scram_props(kc),
                                 secret_files={"sasl.password": kc.password_file("m365fwd")},
                                 flush_timeout="3s")
        if self.scram_on_4:
            self.assert_exactly_once(kc, "scram-k4", rc, log)
            return
        # the right password, refused: librdkafka's SCRAM nonce bug
        self.assert_loud_failure(kc, "scram-k4", rc, log, "Authentication failed",
                                 broker.DEFAULT_USERS["m365fwd"])
        print("librdkafka %s cannot log in with SCRAM to Kafka %s (needs 2.6.1): "
              "refused loudly, nothing delivered" % (".".join(map(str, self.lib)), kc.version))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: test_kafka_output.py M365FWD_BINARY", file=sys.stderr)
        sys.exit(2)
    BIN = os.path.abspath(sys.argv.pop(1))
    broker.exit_unless_runnable()
    unittest.main(verbosity=2)
