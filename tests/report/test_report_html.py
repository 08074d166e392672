#!/usr/bin/env python3
"""The HTML review in a real browser: headless Chromium (Debian's chromium,
driven by playwright-core from tests/report/browser, installed by
scripts/install-deps.sh with `npm ci`; no browser download) opens the page
written by `m365fwd report`, saves a screenshot, and checks the DOM against
`--format json` of the same review (tests/report/browser/check_html.js):
every section present, every number equal to the JSON's, no console error,
no network request, no script element, markup from records shown as text,
and the page prints.

Run as: test_report_html.py M365FWD_BINARY. Exit 77 (skip) with a message
when node, chromium or playwright-core is missing."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_common as rc  # noqa: E402

BROWSER_DIR = os.path.join(rc.HERE, "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def skip(why):
    print("SKIP: %s (scripts/install-deps.sh installs chromium, nodejs and "
          "tests/report/browser's npm packages)" % why)
    sys.exit(77)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    node = shutil.which("node")
    if not node:
        skip("node is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        skip("%s is not installed" % CHROMIUM)
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        skip("playwright-core is not installed in %s" % BROWSER_DIR)
    out_dir = os.path.join(os.environ.get("MF_BUILD_ROOT", tempfile.gettempdir()), "tests")
    os.makedirs(out_dir, exist_ok=True)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        inputs = rc.write_inputs(tmp)
        cases = [
            ("export", rc.PERIOD + inputs, rc.TEXTS),
            # a period with a day of records only and empty days around it
            ("narrow", ["--from", "2026-03-03", "--to", "2026-03-05"] + inputs, [rc.ACTOR]),
            # nothing at all: the page still has every section and says so
            ("empty", ["--from", "2026-01-01", "--to", "2026-01-07"] + inputs,
             ["No record in the period"]),
        ]
        for name, args, texts in cases:
            html = os.path.join(tmp, name + ".html")
            js = os.path.join(tmp, name + ".json")
            shot = os.path.join(out_dir, "report-%s.png" % name)
            for fmt, path in (("html", html), ("json", js)):
                p = rc.run(binary, "report", "--format", fmt, "-o", path, *args)
                if p.returncode != 0:
                    print("not ok: report %s %s exited %d: %s" % (name, fmt, p.returncode,
                                                                  p.stderr))
                    return 1
            p = subprocess.run([node, os.path.join(BROWSER_DIR, "check_html.js"), html, js,
                                shot, *texts], capture_output=True, text=True, timeout=180,
                               cwd=BROWSER_DIR, env=dict(os.environ, CHROMIUM=CHROMIUM))
            try:
                res = json.loads(p.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                print("not ok: %s: check_html.js exited %d: %s %s" % (name, p.returncode,
                                                                      p.stdout, p.stderr))
                failures += 1
                continue
            if p.returncode != 0 or not res["ok"]:
                print("not ok: %s: %s" % (name, "\n  ".join(res["errors"])))
                failures += 1
                continue
            if not os.path.getsize(shot):
                print("not ok: %s: empty screenshot" % name)
                failures += 1
                continue
            print("ok: %s: %d numbers equal to the JSON, sections %s, no request, no console "
                  "error, printed %d bytes of PDF; screenshot %s" % (
                      name, res["numbers_checked"], ",".join(res["sections"]),
                      res["pdf_bytes"], shot))
    print("%d passed, %d failed" % (len(cases) - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
