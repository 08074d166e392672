#!/usr/bin/env python3
"""The demo's pipeline (demo/run-demo.sh) against a built m365fwd.

Usage: test_demo.py M365FWD_BINARY [unittest args]

Runs demo/run-demo.sh once without installing or building
(MF_DEMO_NO_BUILD=1, MF_BIN=the binary), with the mock Kafka cluster when
the build has one (MF_BUILD_ROOT/tests/mock_kafka, or next to the binary's
build tree), then checks, from the files the demo leaves in its work
directory:
  - every record the emulator served (/_control/served) is in the file
    output, once;
  - every attack trace of demo/make_records.py raised its tags, and the
    password spray is found again from the events;
  - with Kafka: every record is on topic m365.<tenant>.<area of its most
    severe tag> ("none" when untagged);
  - the emulator and the mock broker are gone when the script returns, and
    the demo's client secret is in no log or output.
Exit 77 when python3, bash or openssl is missing.
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
DEMO = os.path.join(SRC, "demo")
SECRET = "demo-only-Secret-4f2a9c"      # demo/scenario.json, run-demo.sh
TENANTS = {"6b2f3a10-1c4d-4e5f-8a9b-0c1d2e3f4a51": "contoso",
           "7c3a4b21-2d5e-4f60-9b0c-1d2e3f4a5b62": "fabrikam",
           "8d4b5c32-3e6f-4071-8c1d-2e3f4a5b6c73": "northwind"}
sys.dont_write_bytecode = True

BINARY = None
MOCK = None


def find_mock(binary):
    cands = []
    if os.environ.get("MF_BUILD_ROOT"):
        cands.append(os.path.join(os.environ["MF_BUILD_ROOT"], "tests",
                                  "mock_kafka"))
    cands.append(os.path.join(os.path.dirname(os.path.dirname(binary)),
                              "tests", "mock_kafka"))
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    return None


def read_ndjson(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purpose
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class DemoRun(unittest.TestCase):
    """One run of the demo shared by the tests (it takes ~20 s)."""

    work = None
    rc = None
    output = ""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="m365fwd-test-demo-")
        cls.report = os.path.join(cls.work, "review.html")
        env = dict(os.environ, MF_DEMO_NO_BUILD="1", MF_BIN=BINARY,
                   MF_DEMO_DIR=cls.work, MF_MOCK_KAFKA=MOCK or "none",
                   MF_DEMO_REPORT=cls.report)
        p = subprocess.run(["bash", os.path.join(DEMO, "run-demo.sh")],
                           cwd=SRC, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=400)
        cls.rc = p.returncode
        cls.output = p.stdout.decode("utf-8", "replace")
        cls.events = []
        ev_path = os.path.join(cls.work, "events.ocsf.ndjson")
        if os.path.exists(ev_path):
            cls.events = read_ndjson(ev_path)
        # the aggregate findings (docs/aggregates.md) are not records
        cls.findings = [e for e in cls.events if e.get("class_uid") == 2004 and
                        e["metadata"]["product"]["name"] == "m365fwd"]
        cls.events = [e for e in cls.events if e not in cls.findings]
        cls.by_id = collections.defaultdict(list)
        for e in cls.events:
            cls.by_id[e["metadata"]["uid"]].append(e)

    @classmethod
    def tearDownClass(cls):
        if cls.work and os.environ.get("MF_DEMO_KEEP") != "1":
            shutil.rmtree(cls.work, ignore_errors=True)

    def load(self, name):
        path = os.path.join(self.work, name)
        self.assertTrue(os.path.exists(path), "%s missing; demo output:\n%s"
                        % (name, self.output[-3000:]))
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    @staticmethod
    def tags_of(ev):
        return {e["value"]: e["data"] for e in ev.get("enrichments", [])
                if e.get("name") == "risk_tag"}

    # ---- the run itself

    def test_run_exit_zero(self):
        self.assertEqual(self.rc, 0, "run-demo.sh exited %s:\n%s"
                         % (self.rc, self.output[-4000:]))
        for heading in ("Records by area", "Records by risk tag",
                        "Riskiest actors", "Where each record went",
                        "m365fwd status"):
            self.assertIn(heading, self.output)

    def test_run_served_all_in_file(self):
        served = self.load("served.json")
        ids = set(served["ids"])
        # the scenario serves every record of make_records, and more than
        # a handful: a run that collected nothing must not pass
        expected = self.load("records/expected.json")
        self.assertEqual(len(ids), expected["records"])
        self.assertGreater(served["records_served"], len(ids),
                           "the scenario's duplicate records were not served")
        missing = ids - set(self.by_id)
        extra = set(self.by_id) - ids
        dups = [i for i, evs in self.by_id.items() if len(evs) > 1]
        self.assertEqual(sorted(missing), [], "served, not in the file")
        self.assertEqual(sorted(extra), [], "in the file, never served")
        self.assertEqual(dups, [], "delivered twice")

    def test_run_traces_raise_tags(self):
        expected = self.load("records/expected.json")
        self.assertGreaterEqual(len(expected["traces"]), 20)
        wanted = set()
        for tr in expected["traces"]:
            wanted.update(tr["tags"])
            evs = self.by_id.get(tr["id"])
            self.assertTrue(evs, "trace %s %s not delivered"
                            % (tr["tenant"], tr["operation"]))
            ev = evs[0]
            self.assertEqual(TENANTS.get(ev["metadata"]["tenant_uid"]),
                             tr["tenant"])
            self.assertEqual(ev["metadata"]["event_code"], tr["operation"])
            got = self.tags_of(ev)
            for t in tr["tags"]:
                self.assertIn(t, got, "%s %s (%s): tag %s not raised; got %s"
                              % (tr["tenant"], tr["operation"], tr["story"],
                                 t, sorted(got)))
                self.assertIn(t, ev["metadata"]["labels"])
        # the list, at least
        for t in ("identity.login_failed", "identity.mfa_disabled",
                  "behavior.inbox_rule_forwarding",
                  "behavior.inbox_rule_hiding",
                  "collab.anonymous_link_created", "collab.guest_user_added",
                  "monitor.ual_disabled",
                  "identity.privileged_role_assigned",
                  "identity.app_consent_granted",
                  "identity.mailbox_full_access_granted", "data.dlp_match",
                  "identity.device_code_login"):
            self.assertIn(t, wanted)

    def test_run_spray_found(self):
        summary = self.load("summary.json")
        sprays = [(s["tenant"], s["ip"], s["success_user"])
                  for s in summary["sprays"]]
        self.assertEqual(sprays, [("contoso", "45.153.160.2",
                                   "dave@contoso.com")])
        # recount from the events: one address, >= 10 accounts failed
        users = {e["actor"]["user"]["name"] for e in self.events
                 if e.get("class_uid") == 3002 and e.get("status_id") == 2
                 and e.get("src_endpoint", {}).get("ip") == "45.153.160.2"}
        self.assertGreaterEqual(len(users), 10)
        # and m365fwd's own aggregate findings say it as it streamed
        found = {(f["finding_info"]["analytic"]["uid"], f["unmapped"]["m365fwd"]["key"])
                 for f in self.findings}
        self.assertIn(("identity.password_spray/one_source", "ClientIP=45.153.160.2"),
                      found)
        self.assertIn(("identity.password_spray/success_after_spray",
                       "ClientIP=45.153.160.2"), found)

    def test_run_riskiest_actor(self):
        summary = self.load("summary.json")
        top = summary["actors"][0]
        self.assertEqual((top["tenant"], top["actor"]),
                         ("contoso", "dave@contoso.com"))
        self.assertEqual(top["max_severity"], 5)

    def test_run_kafka_topics(self):
        if MOCK is None:
            self.skipTest("no mock_kafka in this build")
        self.assertNotIn("has no Kafka output", self.output,
                         "%s was built without the Kafka output "
                         "(mf_output_kafka_ops not linked in?)" % BINARY)
        path = os.path.join(self.work, "kafka-messages.tsv")
        self.assertTrue(os.path.exists(path), self.output[-3000:])
        topic_of = collections.defaultdict(set)
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 4:
                    topic_of[parts[3]].add(parts[0])
        self.assertEqual(sorted(set(self.by_id) - set(topic_of)), [],
                         "records of the file output not in Kafka")
        found = {f["finding_info"]["uid"]: f for f in self.findings}
        self.assertTrue(set(found) <= set(topic_of), "findings not in Kafka")
        for rid, topics in topic_of.items():
            if rid in found:   # an aggregate finding: routed by its tag
                f = found[rid]
                area = f["enrichments"][0]["data"]["area"]
                tenant = TENANTS[f["metadata"]["tenant_uid"]]
                self.assertEqual(topics, {"m365.%s.%s" % (tenant, area)})
                continue
            self.assertIn(rid, self.by_id, "Kafka message %s not in the file"
                          % rid)
            ev = self.by_id[rid][0]
            tags = self.tags_of(ev)
            tenant = TENANTS[ev["metadata"]["tenant_uid"]]
            if tags:
                top = max(d["severity_id"] for d in tags.values())
                areas = {d["area"] for d in tags.values()
                         if d["severity_id"] == top}
            else:
                areas = {"none"}
            allowed = {"m365.%s.%s" % (tenant, a) for a in areas}
            self.assertTrue(topics <= allowed, "%s on %s, expected one of %s"
                            % (rid, sorted(topics), sorted(allowed)))

    def test_run_review_of_the_tenants(self):
        """The demo ends with the review's path; the review, from the
        rollup `run` kept, counts every delivered record once and finds the
        scenario's stories."""
        last = [l for l in self.output.splitlines() if l.strip()][-1]
        self.assertEqual(last, "the security and governance review of the three "
                         "tenants: %s" % self.report)
        with open(self.report, encoding="utf-8") as f:
            html = f.read()
        for sec in ("summary", "exposure", "checks", "plan", "coverage"):
            self.assertIn('<section id="%s">' % sec, html)
        self.assertNotIn("<script", html.lower())
        now = self.load("records/expected.json")["now"][:10]
        p = subprocess.run([BINARY, "report", "-c", os.path.join(self.work, "m365fwd.yaml"),
                            "--format", "json", "--from", "2020-01-01", "--to", now],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["source"]["kind"], "rollup")
        self.assertEqual(sorted(t["name"] for t in doc["tenants"]),
                         ["contoso", "fabrikam", "northwind"])
        self.assertEqual(doc["summary"]["records"], len(self.by_id))
        per_tenant = collections.Counter(TENANTS[e["metadata"]["tenant_uid"]]
                                         for e in self.events)
        self.assertEqual({t["name"]: t["records"] for t in doc["tenants"]}, dict(per_tenant))
        ident = next(a for a in doc["exposure"]["areas"] if a["area"] == "identity_access")
        self.assertEqual([(f["id"], f["tenant"], f["key"]) for f in ident["findings"]
                          if f["id"] == "password_spray"],
                         [("password_spray", "contoso", "45.153.160.2")])
        status = {c["id"]: c["status"] for c in doc["checks"]}
        for cid in ("audit_turned_off", "mfa_turned_off", "external_forwarding",
                    "sharing_without_review", "device_code_flow"):
            self.assertEqual(status[cid], "finding", cid)
        self.assertIn("dave@contoso.com", [a["name"] for a in ident["actors"]])

    def test_run_stops_everything(self):
        ready = self.load("emu.ready")
        pids = [ready["pid"]]
        with open(os.path.join(self.work, "emu.pid")) as f:
            pids.append(int(f.read()))
        kp = os.path.join(self.work, "kafka.pid")
        if os.path.exists(kp):
            with open(kp) as f:
                pids.append(int(f.read()))
        for pid in pids:
            self.assertFalse(pid_alive(pid), "pid %d still running" % pid)

    def test_run_log_clean(self):
        """No sanitizer report and no error line in the agent's log."""
        with open(os.path.join(self.work, "agent.log"), encoding="utf-8",
                  errors="replace") as f:
            log = f.read()
        for bad in ("runtime error:", "Sanitizer", "level=error"):
            self.assertNotIn(bad, log)

    def test_run_secret_not_logged(self):
        texts = [self.output]
        for name in ("agent.log", "events.ocsf.ndjson", "summary.json"):
            p = os.path.join(self.work, name)
            if os.path.exists(p):
                with open(p, encoding="utf-8", errors="replace") as f:
                    texts.append(f.read())
        for t in texts:
            self.assertNotIn(SECRET, t)
        mode = os.stat(os.path.join(self.work, "client.secret")).st_mode
        self.assertEqual(mode & 0o077, 0)


class Records(unittest.TestCase):
    """demo/make_records.py and demo/summarize.py on their own."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="m365fwd-test-demo-rec-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def make(self, name, now):
        out = os.path.join(self.tmp, name)
        subprocess.run([sys.executable, os.path.join(DEMO, "make_records.py"),
                        "--out", out, "--now", now], check=True,
                       stdout=subprocess.DEVNULL)
        return out

    @staticmethod
    def tree(d):
        out = {}
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, d)] = fh.read()
        return out

    def test_records_deterministic(self):
        a = self.tree(self.make("a", "2026-03-04T12:00:00Z"))
        b = self.tree(self.make("b", "2026-03-04T12:00:00Z"))
        c = self.tree(self.make("c", "2026-03-04T13:00:00Z"))
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        # 3 tenants x 5 content types + expected.json
        self.assertEqual(len(a), 16)

    def test_records_fit_the_window(self):
        d = self.make("w", "2026-03-04T12:00:00Z")
        with open(os.path.join(d, "expected.json")) as f:
            exp = json.load(f)
        ids = set()
        n = 0
        for t in exp["tenants"]:
            for ct in t["records"]:
                with open(os.path.join(d, t["name"], ct + ".json")) as f:
                    recs = json.load(f)
                for r in recs:
                    n += 1
                    ids.add(r["Id"])
                    self.assertEqual(r["OrganizationId"], t["id"])
                    # inside the agent's first 24-hour window
                    self.assertTrue("2026-03-03T12:00:00" < r["CreationTime"]
                                    <= "2026-03-04T12:00:00", r)
                    self.assertNotIn("Z", r["CreationTime"])
        self.assertEqual(n, exp["records"])
        self.assertEqual(len(ids), n, "Ids are not unique")

    def test_summary_detects_a_missed_trace(self):
        """summarize.py must fail when an attack trace lost its tag."""
        d = self.make("s", "2026-03-04T12:00:00Z")
        with open(os.path.join(d, "expected.json")) as f:
            exp = json.load(f)
        target = next(t for t in exp["traces"]
                      if "monitor.ual_disabled" in t["tags"])
        tid = {t["name"]: t["id"] for t in exp["tenants"]}
        events = []
        for tr in exp["traces"]:
            tags = [] if tr["id"] == target["id"] else tr["tags"]
            events.append({
                "class_uid": 6003, "severity_id": 1, "time": 0,
                "metadata": {"uid": tr["id"], "tenant_uid": tid[tr["tenant"]],
                             "event_code": tr["operation"], "labels": tags},
                "enrichments": [{"name": "risk_tag", "value": t,
                                 "data": {"area": "identity_access",
                                          "severity_id": 3, "attack": []}}
                                for t in tags]})
        ev_path = os.path.join(self.tmp, "events.ndjson")
        with open(ev_path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        p = subprocess.run([sys.executable,
                            os.path.join(DEMO, "summarize.py"),
                            "--events", ev_path, "--expected",
                            os.path.join(d, "expected.json")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 1, out)
        self.assertIn("missing monitor.ual_disabled", out)
        self.assertIn("spray from 45.153.160.2", out)


def main():
    global BINARY, MOCK
    if len(sys.argv) < 2:
        sys.stderr.write("usage: test_demo.py M365FWD_BINARY [unittest args]\n")
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    for tool in ("python3", "bash", "openssl"):
        if shutil.which(tool) is None:
            sys.stderr.write("SKIP: %s not found (the demo needs it)\n" % tool)
            return 77
    if not os.access(BINARY, os.X_OK):
        sys.stderr.write("SKIP: %s is not executable\n" % BINARY)
        return 77
    MOCK = find_mock(BINARY)
    if MOCK is None:
        sys.stderr.write("note: no mock_kafka found; the Kafka part is "
                         "skipped\n")
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False,
                         verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
