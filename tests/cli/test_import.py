#!/usr/bin/env python3
"""`m365fwd import`: exit codes, routing through filtered outputs, and the
acknowledgement barrier (an output that cannot make records durable fails the
import). Run as: test_import.py M365FWD_BINARY."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

BIN = None
SRC = os.environ.get("MF_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLES = [os.path.join(SRC, "samples", f) for f in ("contoso-week.json", "purview-export.csv")]


def run(args, stdin=None):
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class ImportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def config(self, outputs, extra=""):
        path = os.path.join(self.d, "m365fwd.yaml")
        with open(path, "w") as f:
            f.write("state_dir: %s/state\n%soutputs:\n%s" % (self.d, extra, outputs))
        return path

    def lines(self, name):
        with open(os.path.join(self.d, name)) as f:
            return [json.loads(l) for l in f if l.strip()]

    def test_routes_every_record_and_filters(self):
        cfg = self.config(
            "  - {name: all, type: file, path: %s/all.ndjson, schema: raw}\n"
            "  - name: siem\n    type: file\n    path: %s/siem.ndjson\n    schema: ocsf\n"
            "    filter: {min_severity: 4}\n" % (self.d, self.d))
        rc, _, err = run(["import", "-c", cfg] + SAMPLES)
        self.assertEqual(rc, 0, err)
        all_ = self.lines("all.ndjson")
        siem = self.lines("siem.ndjson")
        # the aggregate findings (a spray in the week and the success from
        # its address; a sign-in notice hard-deleted from another's mailbox
        # in the export) come with the records, routed by the same filters
        found = [r for r in all_ if "finding" in r["m365fwd"]]
        all_ = [r for r in all_ if "finding" not in r["m365fwd"]]
        self.assertEqual(sorted(f["m365fwd"]["finding"]["rule"] for f in found),
                         ["behavior.evidence_purge/notices_deleted",
                          "identity.password_spray/one_source",
                          "identity.password_spray/success_after_spray"])
        self.assertIn("; 3 aggregate findings", err)
        siem_found = [e for e in siem if e["class_uid"] == 2004 and
                      e["metadata"]["product"]["name"] == "m365fwd"]
        self.assertEqual({e["finding_info"]["uid"] for e in siem_found},
                         {f["m365fwd"]["finding"]["uid"] for f in found})
        siem = [e for e in siem if e not in siem_found]
        # every record of the inputs, counted independently of m365fwd
        with open(SAMPLES[0]) as f:
            expected = len(json.load(f))
        import csv
        with open(SAMPLES[1], encoding="utf-8-sig") as f:
            expected += sum(1 for _ in csv.DictReader(f))
        self.assertEqual(len(all_), expected)
        self.assertEqual(len({r["Id"] for r in all_}), expected)
        self.assertIn("%d records read, %d delivered" % (expected, expected), err)
        # the filtered output holds exactly the severe ones
        severe = [r for r in all_ if r["m365fwd"]["severity"] >= 4]
        self.assertGreater(len(severe), 0)
        self.assertEqual(len(siem), len(severe))
        self.assertTrue(all(e["severity_id"] >= 4 for e in siem))
        self.assertEqual({e["metadata"]["uid"] for e in siem}, {r["Id"] for r in severe})

    def test_keep_raw_per_output(self):
        cfg = self.config(
            "  - {name: a, type: file, path: %s/a.ndjson, schema: ocsf, keep_raw: true}\n"
            "  - {name: b, type: file, path: %s/b.ndjson, schema: ocsf}\n"
            "  - {name: c, type: file, path: %s/c.ndjson, schema: ecs, keep_raw: true}\n"
            % (self.d, self.d, self.d))
        rc, _, err = run(["import", "-c", cfg, SAMPLES[0]])
        self.assertEqual(rc, 0, err)
        a, b, c = self.lines("a.ndjson"), self.lines("b.ndjson"), self.lines("c.ndjson")
        # findings (class 2004 of product m365fwd) have no original record
        a = [e for e in a if e["metadata"]["product"]["name"] != "m365fwd"]
        c = [e for e in c if e["event"]["kind"] != "alert"]
        self.assertTrue(all("raw_data" in e for e in a))
        self.assertFalse(any("raw_data" in e for e in b))
        self.assertTrue(all("original" in e["event"] for e in c))
        self.assertEqual(json.loads(a[0]["raw_data"])["Id"], a[0]["metadata"]["uid"])

    def test_rejected_record_exit_1_with_location(self):
        cfg = self.config("  - {name: all, type: file, path: %s/all.ndjson, schema: ocsf}\n" % self.d)
        bad = os.path.join(self.d, "bad.ndjson")
        with open(bad, "w") as f:
            f.write('{"Id":"1","Operation":"X","CreationTime":"2024-01-01T00:00:00"}\n')
            f.write('{"Id":"2",\n')
            f.write('{"Id":"3","Operation":"Y","CreationTime":"2024-01-01T00:00:00"}\n')
        rc, _, err = run(["import", "-c", cfg, bad])
        self.assertEqual(rc, 1, err)
        self.assertIn(bad + ":2", err)
        self.assertEqual([e["metadata"]["uid"] for e in self.lines("all.ndjson")], ["1", "3"])

    def test_record_size_same_on_cli_and_in_file(self):
        # one parser: 16MB is 16,000,000 bytes for --max-record-size and for
        # max_record_size alike, 16MiB is 16,777,216
        path = os.path.join(self.d, "big.ndjson")
        with open(path, "w") as f:
            f.write(json.dumps({"Id": "big", "Operation": "X", "CreationTime": "2024-01-01T00:00:00",
                                "Blob": "x" * 16400000}) + "\n")
            f.write('{"Id":"small","Operation":"Y","CreationTime":"2024-01-01T00:00:00"}\n')
        for size, want in (("16MB", 1), ("16MiB", 0)):
            rc_cli, _, err = run(["normalize", "--max-record-size", size, "-o", os.devnull, path])
            cfg = self.config("  - {name: all, type: file, path: %s, schema: raw}\n" % os.devnull,
                              "collect:\n  max_record_size: %s\n" % size)
            rc_file, _, err2 = run(["import", "-c", cfg, path])
            self.assertEqual((rc_cli, rc_file), (want, want), size + ": " + err + err2)
            if want:
                self.assertIn("maximum record size", err)
                self.assertIn("maximum record size", err2)

    def test_unacknowledged_output_fails(self):
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        cfg = self.config("  - {name: full, type: file, path: /dev/full, schema: raw}\n")
        rc, _, err = run(["import", "-c", cfg] + SAMPLES)
        self.assertEqual(rc, 1)
        self.assertIn("not acknowledged", err)
        self.assertNotIn(", 0 not acknowledged", err)

    def test_usage_and_config_errors(self):
        rc, _, err = run(["import"])
        self.assertEqual(rc, 2)
        cfg = self.config("  - {name: all, type: file, path: %s/x, schema: ocsf, colour: red}\n" % self.d)
        rc, _, err = run(["import", "-c", cfg, SAMPLES[0]])
        self.assertEqual(rc, 2)
        self.assertIn("m365fwd.yaml:", err)
        self.assertIn("colour", err)
        cfg = self.config("  - {name: all, type: file, path: %s/x, schema: ocsf}\n" % self.d)
        rc, _, err = run(["import", "-c", cfg, "--tenant", "nobody", SAMPLES[0]])
        self.assertEqual(rc, 2)
        self.assertIn("nobody", err)

    def test_stdin_and_tenant_name(self):
        cfg = self.config(
            "  - {name: all, type: file, path: %s/all.ndjson, schema: raw}\n" % self.d,
            extra="tenants:\n  - {id: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0, name: contoso,"
                  " client_id: x, client_secret_env: NOPE}\n")
        rec = b'{"Id":"a","Operation":"X","CreationTime":"2024-01-01T00:00:00"}\n'
        rc, _, err = run(["import", "-c", cfg, "--tenant", "contoso"], stdin=rec)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(self.lines("all.ndjson")), 1)

    def test_tenant_accepted_domains(self):
        """Each record is judged with its own tenant's domains (found by
        OrganizationId), also when the tenants alternate in one file."""
        t1, t2 = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "1c2d3e4f-5061-4283-94a5-b6c7d8e9f0a1"
        cfg = self.config(
            "  - {name: all, type: file, path: %s/all.ndjson, schema: raw}\n" % self.d,
            extra="tenants:\n"
                  "  - {id: %s, name: contoso, client_id: x, client_secret_env: NOPE,\n"
                  "     domains: [contoso.com]}\n"
                  "  - {id: %s, name: partner, client_id: x, client_secret_env: NOPE,\n"
                  "     domains: [partner.example, contoso.com]}\n" % (t1, t2))

        def rec(i, org):
            return json.dumps({
                "Id": "r%d" % i, "CreationTime": "2024-01-01T00:00:0%d" % i,
                "OrganizationId": org, "RecordType": 1, "Operation": "Set-Mailbox",
                "Workload": "Exchange", "ResultStatus": "True", "UserType": 2,
                "UserId": "tech@partner.example",
                "Parameters": [{"Name": "Identity", "Value": "x"},
                               {"Name": "ForwardingSmtpAddress",
                                "Value": "smtp:drop@partner.example"}]})
        data = "\n".join([rec(1, t1), rec(2, t2), rec(3, t1), rec(4, t1), rec(5, t2)]) + "\n"
        rc, _, err = run(["import", "-c", cfg], stdin=data.encode())
        self.assertEqual(rc, 0, err)
        sev = {r["Id"]: r["m365fwd"]["severity"] for r in self.lines("all.ndjson")}
        # partner.example is outside contoso's domains, inside the partner's
        self.assertEqual(sev, {"r1": 5, "r2": 4, "r3": 5, "r4": 5, "r5": 4})
        # --tenant applies its domains to every record
        os.unlink(os.path.join(self.d, "all.ndjson"))
        rc, _, err = run(["import", "-c", cfg, "--tenant", "partner"], stdin=data.encode())
        self.assertEqual(rc, 0, err)
        self.assertEqual({r["m365fwd"]["severity"] for r in self.lines("all.ndjson")}, {4})


class ImportAggregatesTest(unittest.TestCase):
    """Aggregate findings through `import`: on by default, off with
    --no-aggregates, a window carried across two imports by
    --aggregate-state (one finding, the uid of one import)."""

    setUp = ImportTest.setUp
    tearDown = ImportTest.tearDown
    config = ImportTest.config
    lines = ImportTest.lines

    def spray(self, name, first, n):
        path = os.path.join(self.d, name)
        with open(path, "w") as f:
            for i in range(first, first + n):
                f.write(json.dumps({
                    "CreationTime": "2026-03-02T10:00:%02d" % i,
                    "Id": "00000000-0000-4000-8000-0000000000%02d" % i,
                    "Operation": "UserLoginFailed", "OrganizationId": "t-1",
                    "RecordType": 15, "ResultStatus": "Failed", "UserType": 0,
                    "Workload": "AzureActiveDirectory", "ClientIP": "203.0.113.9",
                    "UserId": "u%d@contoso.com" % i, "ErrorNumber": "50126"}) + "\n")
        return path

    def findings(self, name):
        return [r["m365fwd"]["finding"] for r in self.lines(name)
                if "finding" in r["m365fwd"]]

    def test_split_import_fires_once(self):
        cfg = self.config("  - {name: all, type: file, path: %s/all.ndjson, schema: raw}\n"
                          % self.d)
        state = os.path.join(self.d, "agg.state")
        a, b = self.spray("a.ndjson", 0, 3), self.spray("b.ndjson", 3, 3)
        rc, _, err = run(["import", "-c", cfg, "--aggregate-state", state, a])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.findings("all.ndjson"), [])
        rc, _, err = run(["import", "-c", cfg, "--aggregate-state", state, b])
        self.assertEqual(rc, 0, err)
        got = self.findings("all.ndjson")
        self.assertEqual([f["rule"] for f in got], ["identity.password_spray/one_source"])
        # the same records in one import: the same finding (uid)
        one = os.path.join(self.d, "one.yaml")
        with open(one, "w") as f:
            f.write("state_dir: %s/state\noutputs:\n  - {name: all, type: file, "
                    "path: %s/one.ndjson, schema: raw}\n" % (self.d, self.d))
        rc, _, err = run(["import", "-c", one, "--threads", "1", a, b])
        self.assertEqual(rc, 0, err)
        self.assertEqual([f["uid"] for f in self.findings("one.ndjson")], [got[0]["uid"]])

    def test_no_aggregates(self):
        cfg = self.config("  - {name: all, type: file, path: %s/all.ndjson, schema: raw}\n"
                          % self.d)
        rc, _, err = run(["import", "-c", cfg, "--no-aggregates",
                          self.spray("a.ndjson", 0, 8)])
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(self.lines("all.ndjson")), 8)
        self.assertIn("; 0 aggregate findings", err)

if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: test_import.py M365FWD_BINARY", file=sys.stderr)
        sys.exit(2)
    BIN = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
