#!/usr/bin/env python3
"""End to end: emulator -> m365fwd run -> Kafka (librdkafka's mock cluster)
and syslog (a real rsyslogd over TCP) at once, with kill -9 in the middle of
the collection and a restart: every Id the emulator served arrives at both
outputs. Duplicates are allowed only from blobs in flight at the kill; they
are counted and printed, and bounded by what m365fwd itself reports as
redelivered.

Run as: test_outputs_e2e.py M365FWD_BINARY (exit 77 when openssl, rsyslogd or
the mock_kafka helper are missing)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "syslog"))

BIN = None
BUILD = os.environ.get("MF_BUILD_ROOT", "")
MOCK_KAFKA = os.path.join(BUILD, "tests", "mock_kafka")
APP = "11111111-2222-3333-4444-555555555555"
SECRET = "e2e-secret-value"
TENANTS = [("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "contoso"),
           ("1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1", "fabrikam")]
CTS = ["Audit.Exchange", "Audit.SharePoint"]
DEADLINE = 180


def wait_for(pred, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %ds waiting for %s" % (deadline, what))
        time.sleep(0.05)   # polling interval; the condition is what we wait on


class KafkaAndSyslog(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import mkcerts
        import test_emulator as te
        import test_syslog as ts
        cls.ts = ts
        cls.tmp = tempfile.mkdtemp()
        te.TMP = ts.TMP = cls.tmp
        cls.certs = te.CERTS = ts.CERTS = mkcerts.make_certs(os.path.join(cls.tmp, "certs"))
        content = {ct: {"blobs": 12, "records_per_blob": 40, "span": "10h"} for ct in CTS}
        cls.emu = te.Emu({"seed": 5, "page_size": 5,
                          "clients": [{"client_id": APP, "secret": SECRET}],
                          "tenants": [{"id": tid, "domain": "%s.onmicrosoft.com" % n,
                                       "content": content} for tid, n in TENANTS]})
        # slow blobs down so the kill lands in the middle of the collection
        cls.emu.ctl("POST", "/_control/config", {"latency": 0.15})
        # stderr to a file: a pipe nobody reads would fill and stall the mock
        cls.kafka_log = open(os.path.join(cls.tmp, "mock_kafka.log"), "wb")
        cls.kafka = subprocess.Popen([MOCK_KAFKA, "-t", "e2e:1"], stdout=subprocess.PIPE,
                                     stderr=cls.kafka_log, text=True)
        cls.bootstrap = cls.kafka.stdout.readline().strip()
        if not cls.bootstrap:
            raise RuntimeError("mock_kafka did not start")
        cls.rsyslog = ts.Rsyslog("e2e", "tcp").start()

    @classmethod
    def tearDownClass(cls):
        for stop in (lambda: cls.rsyslog.stop(), lambda: cls.emu.stop()):
            try:
                stop()
            except Exception:   # best effort: never mask the test's result
                pass
        if cls.kafka.poll() is None:
            cls.kafka.terminate()
            cls.kafka.wait(10)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def config(self, d):
        root = "https://127.0.0.1:%d" % self.emu.port
        secret = os.path.join(d, "secret")
        with open(secret, "w") as f:
            f.write(SECRET)
        os.chmod(secret, 0o600)
        tenants = "".join(
            "  - {id: %s, name: %s, client_id: %s, client_secret_file: %s,\n"
            "     login_endpoint: \"%s\", api_endpoint: \"%s\", ca_file: %s,\n"
            "     content_types: [%s]}\n" % (tid, name, APP, secret, root, root,
                                              self.certs["ca"], ", ".join(CTS))
            for tid, name in TENANTS)
        path = os.path.join(d, "m365fwd.yaml")
        with open(path, "w") as f:
            f.write("state_dir: %s/state\ncollect:\n  max_concurrency: 2\n"
                    "  poll_interval: 2s\ntenants:\n%soutputs:\n"
                    "  - {name: kafka, type: kafka, brokers: \"%s\", topic: e2e, schema: raw}\n"
                    "  - {name: siem, type: syslog, address: \"127.0.0.1:%d\", transport: tcp,\n"
                    "     framing: octet-counting, format: rfc5424, payload: json, schema: ocsf}\n"
                    % (d, tenants, self.bootstrap, self.rsyslog.port))
        return path

    def kafka_ids(self):
        # a consumer needs a while to join and fetch on a busy machine: stop at
        # the high watermark, or after 20 s without a new record
        hw = subprocess.run([MOCK_KAFKA, "--watermark", self.bootstrap, "e2e"],
                            capture_output=True, text=True, timeout=60).stdout.strip()
        p = subprocess.run([MOCK_KAFKA, "--consume", self.bootstrap, "e2e", "--count",
                            hw or "1", "--timeout", "20"],
                           capture_output=True, text=True, timeout=120)
        ids = {}
        for line in p.stdout.splitlines():
            i = line.split("\t")[-1]
            ids[i] = ids.get(i, 0) + 1
        return ids

    def syslog_ids(self):
        return self.ts.ids_in(self.rsyslog.lines(), self.ts.parse_5424, self.ts.sd_id)

    def test_kill9_midway_then_restart(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        cfg = self.config(d)
        log = open(os.path.join(d, "agent.log"), "wb")
        agent = subprocess.Popen([BIN, "run", "-c", cfg], stdout=log, stderr=log)
        total = len(TENANTS) * len(CTS) * 12 * 40

        def some_delivered():
            if agent.poll() is not None:
                raise AssertionError("m365fwd exited early: %s" % agent.returncode)
            return len(self.syslog_ids()) >= total // 4
        wait_for(some_delivered, "a quarter of the records at the syslog receiver")
        agent.send_signal(signal.SIGKILL)
        agent.wait(30)
        got_before = len(self.syslog_ids())
        self.assertLess(got_before, total, "the kill came too late to test anything")

        p = subprocess.run([BIN, "run", "-c", cfg, "--once", "--timeout", "150"],
                           stdout=log, stderr=log, timeout=200)
        log.close()
        with open(os.path.join(d, "agent.log"), "rb") as f:
            agent_log = f.read().decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, agent_log[-3000:])

        served = set(self.emu.ctl("GET", "/_control/served")["ids"])
        self.assertEqual(len(served), total)
        last = {}

        def all_in_kafka():
            last["k"] = self.kafka_ids()
            return last["k"] if served <= set(last["k"]) else None
        try:
            kafka = wait_for(all_in_kafka, "every served Id in Kafka", deadline=60)
        except AssertionError:
            wm = subprocess.run([MOCK_KAFKA, "--watermark", self.bootstrap, "e2e"],
                                capture_output=True, text=True, timeout=60)
            print("kafka holds %d ids (high watermark %s %s), %d of the served missing; "
                  "agent log:\n%s" % (len(last.get("k", {})), wm.stdout.strip(),
                                      wm.stderr.strip()[-300:],
                                      len(served - set(last.get("k", {}))),
                                      agent_log[-3000:]))
            raise
        syslog = wait_for(lambda: (lambda s: s if served <= set(s) else None)(self.syslog_ids()),
                          "every served Id at the syslog receiver", deadline=60)
        dup_k = sum(n - 1 for n in kafka.values())
        dup_s = sum(n - 1 for n in syslog.values())
        st = json.loads(subprocess.run([BIN, "status", "-c", cfg, "--json"],
                                       capture_output=True, text=True, check=True).stdout)
        redelivered = sum(s["redelivered"] for s in st["streams"])
        print("\nserved %d; kafka %d unique, %d duplicates; syslog %d unique, %d duplicates; "
              "m365fwd reports %d records delivered again after the kill"
              % (len(served), len(kafka), dup_k, len(syslog), dup_s, redelivered))
        self.assertEqual(set(kafka) - served, set())
        self.assertEqual(set(syslog) - served, set())
        # duplicates only from what was in flight at the kill, which m365fwd
        # counts (Kafka's producer may add its own retries on top: none here)
        self.assertLessEqual(dup_s, redelivered)
        self.assertLessEqual(dup_k, redelivered)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: test_outputs_e2e.py M365FWD_BINARY", file=sys.stderr)
        sys.exit(2)
    BIN = os.path.abspath(sys.argv.pop(1))
    missing = [w for w, ok in (("openssl", shutil.which("openssl")),
                               ("rsyslogd", shutil.which("rsyslogd")
                                or os.path.exists("/usr/sbin/rsyslogd")),
                               ("mock_kafka", os.access(MOCK_KAFKA, os.X_OK))) if not ok]
    if missing:
        print("SKIP: missing %s" % ", ".join(missing))
        sys.exit(77)
    unittest.main(verbosity=2)
