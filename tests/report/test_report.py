#!/usr/bin/env python3
"""`m365fwd report`: options and exit codes, the JSON document against
docs/report.schema.json, the numbers it shows against the records, the
Markdown format, and the rollup `import` keeps (the review from report.db is
the review of the export).

Run as: test_report.py M365FWD_BINARY [unittest args]."""

import csv
import html.parser
import json
import os
import re
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_common as rc  # noqa: E402

BIN = None


class Elements(html.parser.HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, attrs))


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def strip_volatile(doc):
    """The parts of two reviews of the same records that may differ."""
    doc = json.loads(json.dumps(doc))
    for k in ("generated_at", "source"):
        doc.pop(k, None)
    return doc


class ReportTest(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        self.inputs = rc.write_inputs(self.d)

    def tearDown(self):
        self.tmp.cleanup()

    def report(self, *args, stdin=None):
        p = rc.run(BIN, "report", *args, stdin=stdin)
        return p.returncode, p.stdout, p.stderr

    def json_report(self, *args):
        code, out, err = self.report("--format", "json", *args)
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def config(self, extra=""):
        path = os.path.join(self.d, "m365fwd.yaml")
        with open(path, "w") as f:
            f.write("state_dir: %s/state\n%soutputs:\n"
                    "  - {name: all, type: file, path: %s/all.ndjson, schema: raw}\n"
                    % (self.d, extra, self.d))
        return path

    # ---- the command line ------------------------------------------------------

    def test_usage_errors_exit_2(self):
        bad = [
            ["--days", "7", "--from", "2026-03-01", "--to", "2026-03-02"],
            ["--from", "2026-03-01"],
            ["--from", "2026-03-05", "--to", "2026-03-01"],
            ["--from", "2026-02-30", "--to", "2026-03-01"],
            ["--days", "0"],
            ["--days", "7x"],
            ["--format", "pdf"],
            ["--input", "xml"],
            ["--bogus"],
        ]
        for args in bad:
            code, out, err = self.report(*args, rc.SAMPLES[0])
            self.assertEqual(code, 2, "%s: %s" % (args, err))
            self.assertEqual(out, "")
            self.assertIn("Usage: m365fwd report", err)
        code, out, _ = self.report("--help")
        self.assertEqual(code, 0)
        for opt in ("-c", "--tenant", "--days", "--from", "--to", "--format", "-o"):
            self.assertIn(opt, out)
        code, out, _ = rc.run(BIN, "help", "report").returncode, None, None
        self.assertEqual(code, 0)

    def test_table_errors_exit_2_with_location(self):
        bad = os.path.join(self.d, "checks.yaml")
        with open(bad, "w") as f:
            f.write("version: 1\nchecks:\n  - id: x\n    title: X\n    area: nowhere\n")
        code, out, err = self.report("--checks-file", bad, rc.SAMPLES[0])
        self.assertEqual(code, 2)
        self.assertIn("checks.yaml:5: check x: unknown area 'nowhere'", err)
        code, out, err = self.report("--plan-file", os.path.join(self.d, "none.yaml"),
                                     rc.SAMPLES[0])
        self.assertEqual(code, 2)
        self.assertIn("none.yaml: cannot read", err)

    # ---- the document ---------------------------------------------------------

    def test_json_matches_schema_and_records(self):
        doc = self.json_report(*rc.PERIOD, *self.inputs)
        errors = rc.validate(doc, rc.load_schema())
        self.assertEqual(errors, [], "\n".join(errors[:20]))
        # counted independently of m365fwd: every record of the inputs
        with open(rc.SAMPLES[0]) as f:
            n = len(json.load(f))
        with open(rc.SAMPLES[1], encoding="utf-8-sig") as f:
            n += sum(1 for _ in csv.DictReader(f))
        n += 2   # hostile.ndjson
        self.assertEqual(doc["source"]["records_read"], n)
        self.assertEqual(doc["summary"]["records"], n)
        self.assertEqual(sum(t["records"] for t in doc["tenants"]), n)
        self.assertEqual(sum(c["records"] for c in doc["coverage"]["content_types"]), n)
        self.assertEqual(sum(d["records"] for d in doc["coverage"]["days"]), n)
        self.assertEqual(doc["period"], {"from": "2026-03-01", "to": "2026-03-10", "days": 10})
        self.assertEqual(len(doc["coverage"]["days"]), 10)
        # the record's own text comes back as it was
        data = next(a for a in doc["exposure"]["areas"] if a["area"] == "data_protection")
        self.assertIn(rc.ACTOR, [x["name"] for x in data["actors"]])
        self.assertTrue(any(e["object"] == rc.FILE and e["user_agent"] == rc.AGENT
                            for e in data["events"]))
        # the demo's spray (samples/contoso-week.json) is an aggregate finding
        ident = next(a for a in doc["exposure"]["areas"] if a["area"] == "identity_access")
        spray = [f for f in ident["findings"] if f["id"] == "password_spray"]
        self.assertEqual(len(spray), 1, ident["findings"])
        self.assertGreaterEqual(spray[0]["distinct"], 10)
        # every finding has its plan action; the plan cites the evidence
        findings = {c["id"]: c for c in doc["checks"] if c["status"] == "finding"}
        planned = [a for h in doc["plan"]["horizons"] for a in h["actions"]]
        self.assertEqual({a["check"] for a in planned}, set(findings))
        for a in planned:
            self.assertEqual(a["evidence"], findings[a["check"]]["evidence"])
            self.assertEqual(a["why"], findings[a["check"]]["text"])
            self.assertGreater(a["evidence"], 0)
        self.assertEqual([a["priority"] for a in planned], list(range(1, len(planned) + 1)))
        self.assertEqual(doc["summary"]["actions"], len(planned))
        # checks that cannot be judged say so (no record states MFA here)
        mfa = next(c for c in doc["checks"] if c["id"] == "signin_without_mfa")
        self.assertEqual(mfa["status"], "no_evidence")
        self.assertEqual(mfa["evidence"], 0)

    def test_period_and_tenant_filters(self):
        doc = self.json_report("--from", "2026-03-04", "--to", "2026-03-04", *self.inputs)
        whole = self.json_report(*rc.PERIOD, *self.inputs)
        day = next(d for d in whole["coverage"]["days"] if d["day"] == "2026-03-04")
        self.assertEqual(doc["summary"]["records"], day["records"])
        self.assertEqual(doc["source"]["records_outside_period"],
                         whole["summary"]["records"] - day["records"])
        # --days counts back from the newest record of an export
        last = max(d["day"] for d in whole["coverage"]["days"] if d["records"])
        doc = self.json_report("--days", "2", *self.inputs)
        self.assertEqual(doc["period"]["to"], last)
        self.assertEqual(doc["period"]["days"], 2)
        # a tenant filter by id; another tenant has nothing
        doc = self.json_report("--tenant", rc.TENANT, *rc.PERIOD, *self.inputs)
        self.assertEqual(doc["summary"]["records"], whole["summary"]["records"])
        doc = self.json_report("--tenant", "fabrikam", *rc.PERIOD, *self.inputs)
        self.assertEqual(doc["summary"]["records"], 0)
        self.assertEqual(doc["tenants"], [])
        self.assertIn("No record in the period: the review has nothing to rest on.",
                      doc["coverage"]["notes"])

    def test_rejected_records_exit_1_report_still_written(self):
        broken = os.path.join(self.d, "broken.ndjson")
        with open(broken, "w") as f:
            f.write('{"Id":"ok","CreationTime":"2026-03-03T00:00:00","Operation":"UserLoggedIn"}\n'
                    '{"Id": truncated\n')
        out = os.path.join(self.d, "r.json")
        code, stdout, err = self.report("--format", "json", "-o", out, broken,
                                        os.path.join(self.d, "missing.csv"))
        self.assertEqual(code, 1, err)
        self.assertEqual(stdout, "")
        self.assertIn("broken.ndjson:2", err)
        self.assertIn("missing.csv", err)
        doc = load_json(out)
        self.assertEqual(doc["source"]["records_read"], 2)
        self.assertEqual(doc["source"]["records_rejected"], 1)
        self.assertEqual(doc["summary"]["records"], 1)
        self.assertIn("1 records could not be read and are not counted.",
                      doc["coverage"]["notes"])

    def test_stdin_and_markdown(self):
        with open(self.inputs[-1]) as f:
            hostile = f.read()
        code, out, err = self.report("--format", "md", stdin=hostile)
        self.assertEqual(code, 0, err)
        for h in ("# Microsoft 365 security and governance review", "## 1. Exposure today",
                  "## 2. Protections owned but not used properly", "## 3. 30/60/90-day plan",
                  "## 4. Coverage", "### Within 30 days"):
            self.assertIn(h, out)
        self.assertNotIn("<script", out)
        self.assertNotIn("<img", out)
        self.assertIn("&lt;script&gt;alert\\('actor'\\)&lt;/script&gt;@evil.example", out)

    def test_html_is_self_contained_and_escaped(self):
        out = os.path.join(self.d, "r.html")
        code, _, err = self.report("-o", out, *rc.PERIOD, *self.inputs)
        self.assertEqual(code, 0, err)
        self.assertIn("wrote %s" % out, err)
        with open(out, encoding="utf-8") as f:
            html = f.read()
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        # no element that loads or runs anything, no attribute that points
        # outside or handles an event (parsed as a browser would)
        tags = Elements()
        tags.feed(html)
        names = {t for t, _ in tags.seen}
        for bad in ("script", "img", "link", "iframe", "object", "embed", "base", "form"):
            self.assertNotIn(bad, names)
        for t, attrs in tags.seen:
            for k, v in attrs:
                self.assertFalse(k.startswith("on"), "%s %s=%s" % (t, k, v))
                if k in ("src", "href", "action", "xlink:href"):
                    self.assertTrue((v or "").startswith("#"), "%s %s=%s" % (t, k, v))
        self.assertNotIn("url(", html)
        self.assertNotIn("@import", html)
        self.assertIn("default-src 'none'", html)
        self.assertIn("@media print", html)
        self.assertIn("&lt;script&gt;alert(&#39;actor&#39;)&lt;/script&gt;@evil.example", html)
        for sec in ("summary", "exposure", "checks", "plan", "coverage"):
            self.assertIn('<section id="%s">' % sec, html)

    # ---- the rollup ---------------------------------------------------------------

    def test_rollup_from_import_equals_export(self):
        cfg = self.config()
        code, _, err = self.report("-c", cfg, "--format", "json")
        self.assertEqual(code, 1)
        self.assertIn("no rollup", err)
        p = rc.run(BIN, "import", "-c", cfg, *self.inputs)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.d, "state", "report.db")))
        from_rollup = self.json_report("-c", cfg, *rc.PERIOD)
        from_export = self.json_report(*rc.PERIOD, *self.inputs)
        self.assertEqual(from_rollup["source"]["kind"], "rollup")
        self.assertEqual(rc.validate(from_rollup, rc.load_schema()), [])
        self.assertEqual(strip_volatile(from_rollup), strip_volatile(from_export))
        # a second import of the same records is a second delivery: counted
        p = rc.run(BIN, "import", "-c", cfg, self.inputs[0])
        self.assertEqual(p.returncode, 0, p.stderr)
        again = self.json_report("-c", cfg, *rc.PERIOD)
        with open(rc.SAMPLES[0]) as f:
            n0 = len(json.load(f))
        self.assertEqual(again["summary"]["records"], from_export["summary"]["records"] + n0)
        # --days with -c ends today: the sample's March is outside the last 3 days
        doc = self.json_report("-c", cfg, "--days", "3")
        self.assertEqual(doc["period"]["days"], 3)

    def test_rollup_off(self):
        """report.rollup: false - import delivers, keeps no report.db, and
        report -c says there is no rollup."""
        cfg = self.config("report: {rollup: false, retention: 30d}\n")
        p = rc.run(BIN, "import", "-c", cfg, *self.inputs)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.d, "state", "report.db")))
        code, _, err = self.report("-c", cfg, "--format", "json")
        self.assertEqual(code, 1)
        self.assertIn("no rollup", err)

    def test_rollup_tenant_names_from_config(self):
        cfg = self.config("tenants:\n  - {id: \"%s\", name: contoso, client_id: x, "
                          "client_secret_env: NOPE}\n" % rc.TENANT)
        p = rc.run(BIN, "import", "-c", cfg, rc.SAMPLES[0])
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = self.json_report("-c", cfg, "--tenant", "contoso", *rc.PERIOD)
        self.assertEqual([(t["id"], t["name"]) for t in doc["tenants"]], [(rc.TENANT, "contoso")])
        self.assertGreater(doc["summary"]["records"], 0)
        # the same names for an export read with -c
        doc = self.json_report("-c", cfg, *rc.PERIOD, rc.SAMPLES[0])
        self.assertEqual(doc["source"]["kind"], "export")
        self.assertEqual(doc["tenants"][0]["name"], "contoso")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    BIN = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
