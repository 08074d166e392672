#!/usr/bin/env python3
"""Benchmark `m365fwd report` (bench/README.md, "Report benchmark").

In one run, on the same recorded export:
  normalize   m365fwd normalize --schema ocsf --input ndjson export.ndjson
  report      m365fwd report --input ndjson export.ndjson            (html)
  report json m365fwd report --input ndjson --format json export.ndjson
each --runs times, median wall time, CPU and peak RSS (GNU time). Then a
1,000,000-record export streamed into `report` (never stored), whose HTML
size and peak RSS are measured; and `import` of the export into a state
directory, with and without the rollup, for the rollup's cost and
footprint (rows and bytes of report.db).

The export is made from the records bench/gen_corpus.py collects (the
repository's samples, tests and ../shared's attack traces), with fresh Ids,
times spread over --days days, three tenants and a growing set of actors
and objects, so the report sees many days and distinct keys.

Targets: report rate >= 0.8 x normalize rate; HTML of 1,000,000 records
< 2 MB. Exit 0 when both hold, 1 when one does not, 2 on errors.
"""

import argparse
import datetime
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_corpus  # noqa: E402
import run_bench  # noqa: E402

TARGET_RATIO = 0.8
TARGET_HTML_BYTES = 2 * 1000 * 1000
TENANTS = ["6b2f3a10-1c4d-4e5f-8a9b-0c1d2e3f4a51", "7c3a4b21-2d5e-4f60-9b0c-1d2e3f4a5b62",
           "8d4b5c32-3e6f-4071-8c1d-2e3f4a5b6c73"]


def seeds():
    files = sorted(
        [os.path.join(ROOT, "tests", "data", "golden", f)
         for f in os.listdir(os.path.join(ROOT, "tests", "data", "golden"))
         if f.endswith(".in.json")] +
        [os.path.join(ROOT, "samples", f) for f in os.listdir(os.path.join(ROOT, "samples"))])
    shared = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "det-eng-samples")
    if os.path.isdir(shared):
        files += sorted(os.path.join(shared, f) for f in os.listdir(shared)
                        if f.endswith((".json", ".csv")))
    recs, _ = gen_corpus.collect(files)
    if not recs:
        raise SystemExit("report_bench: no records to build the export from")
    return recs


def export_lines(recs, count, days, seed):
    """count NDJSON lines (bytes) of the export."""
    rng = random.Random(seed)
    enc = gen_corpus.encoder()
    end = datetime.datetime(2026, 3, 31, tzinfo=datetime.timezone.utc)
    span = days * 86400
    for i in range(count):
        rec = dict(recs[i % len(recs)])
        rec["Id"] = gen_corpus.fresh_id(rng)
        t = end - datetime.timedelta(seconds=rng.randrange(span))
        rec["CreationTime"] = t.strftime("%Y-%m-%dT%H:%M:%S")
        rec["OrganizationId"] = TENANTS[i % 3]
        if i % 3 == 0:   # a long tail of actors and objects
            rec["UserId"] = "user%05d@tenant%d.example" % (rng.randrange(20000), i % 3)
            if "ObjectId" in rec:
                rec["ObjectId"] = "object-%06d" % rng.randrange(100000)
        yield (enc(rec) + "\n").encode("utf-8", "surrogatepass")


def write_export(path, recs, count, days, seed):
    size = 0
    with open(path, "wb", buffering=1 << 20) as f:
        for b in export_lines(recs, count, days, seed):
            f.write(b)
            size += len(b)
    return size


def stream_report(binary, recs, count, days, seed, out_html):
    """`report` reading count records from a pipe; its GNU time figures."""
    with tempfile.NamedTemporaryFile("r") as tf:
        t0 = time.monotonic()
        p = subprocess.Popen([run_bench.TIME, "-f", "%U %S %M", "-o", tf.name, "--", binary,
                              "report", "--input", "ndjson", "-o", out_html],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        errs = []
        t = threading.Thread(target=lambda: errs.append(p.stderr.read()))
        t.start()
        buf = []
        for b in export_lines(recs, count, days, seed):
            buf.append(b)
            if len(buf) >= 2000:
                p.stdin.write(b"".join(buf))
                buf = []
        p.stdin.write(b"".join(buf))
        p.stdin.close()
        rc = p.wait()
        t.join()
        wall = time.monotonic() - t0
        user, sys_, rss = tf.read().split()[-3:]
    return {"rc": rc, "wall": wall, "cpu": float(user) + float(sys_),
            "rss_mb": int(rss) / 1024.0, "stderr": errs[0].decode("utf-8", "replace")[-500:]}


def import_rate(binary, export, records, work, runs, rollup):
    """`import` of the export into a file output; with rollup False
    report.db cannot be opened (a directory of that name stands in its
    place: permissions would not stop root), so the rollup is skipped."""
    state = os.path.join(work, "state-%s" % ("rollup" if rollup else "none"))
    res = []
    for _ in range(runs):
        shutil.rmtree(state, ignore_errors=True)
        os.makedirs(state)
        if not rollup:
            os.makedirs(os.path.join(state, "report.db"))
        cfg = os.path.join(work, "import.yaml")
        with open(cfg, "w") as f:
            f.write("state_dir: %s\noutputs:\n  - {name: f, type: file, path: %s, schema: ocsf}\n"
                    % (state, os.path.join(work, "import-out.ndjson")))
        r = run_bench.run_once([binary, "import", "-c", cfg, "--input", "ndjson", export])
        os.unlink(os.path.join(work, "import-out.ndjson"))
        if r["rc"] != 0:
            raise SystemExit("report_bench: import exited %d: %s" % (r["rc"], r["stderr_tail"]))
        res.append(r)
    med = statistics.median(x["wall"] for x in res)
    out = {"wall": med, "rate": records / med,
           "cpu": statistics.median(x["cpu"] for x in res)}
    if rollup:
        db = os.path.join(state, "report.db")
        size = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        out["db_rows"] = sum(con.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                             for t in ("tenant", "ct", "tag", "fact", "top", "burst",
                                       "event", "gap"))
        out["db_days"] = con.execute("SELECT count(DISTINCT day) FROM ct").fetchone()[0]
        con.close()
        out["db_bytes"] = size
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--big", type=int, default=1000000,
                    help="records of the streamed export whose HTML is measured")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-import", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    recs = seeds()
    export = os.path.join(a.work, "report-export.ndjson")
    size = write_export(export, recs, a.records, a.days, a.seed)
    print("export: %d records (%d distinct sources), %.0f MB, %d days, 3 tenants"
          % (a.records, len(recs), size / 1e6, a.days), file=sys.stderr)
    # the outputs are not the point: /dev/null (html and json to stdout)
    cases = [
        ("normalize ocsf", [a.bin, "normalize", "--schema", "ocsf", "--input", "ndjson", export]),
        ("report html", [a.bin, "report", "--input", "ndjson", export]),
        ("report json", [a.bin, "report", "--input", "ndjson", "--format", "json", export]),
    ]
    results = {}
    for name, cmd in cases:
        run_bench.warm(export)
        r = run_bench.measure(name, cmd, a.records, a.runs)
        if r["rc"] != 0:
            print("%s exited %d: %s" % (name, r["rc"], r["stderr_tail"]), file=sys.stderr)
            return 2
        results[name] = r
    base = results["normalize ocsf"]
    print("%-16s %9s %8s %10s %8s %10s %8s %9s" % ("case", "records", "wall s", "records/s",
                                                   "cpu s", "rec/cpu-s", "RSS MB",
                                                   "vs normalize"))
    for name, _ in cases:
        r = results[name]
        print("%-16s %9d %8.2f %10.0f %8.2f %10.0f %8.1f %9.2fx" % (
            name, a.records, r["wall"], r["rps"], r["cpu"], a.records / r["cpu"],
            r["rss_mb"], r["rps"] / base["rps"]))
    ratio = results["report html"]["rps"] / base["rps"]
    cpu_ratio = (a.records / results["report html"]["cpu"]) / (a.records / base["cpu"])
    ok = ratio >= TARGET_RATIO
    print("target: report rate / normalize rate %.2f >= %.1f (cpu %.2f)  %s"
          % (ratio, TARGET_RATIO, cpu_ratio, "PASS" if ok else "FAIL"))

    big_html = os.path.join(a.work, "report-big.html")
    big = stream_report(a.bin, recs, a.big, a.days, a.seed + 1, big_html)
    if big["rc"] != 0:
        print("report of the streamed export exited %d: %s" % (big["rc"], big["stderr"]),
              file=sys.stderr)
        return 2
    html_bytes = os.path.getsize(big_html)
    ok_html = html_bytes < TARGET_HTML_BYTES
    print("target: HTML of %d records %d bytes < %d  %s (report peak RSS %.1f MB, "
          "%.0f records/s through a pipe)" % (a.big, html_bytes, TARGET_HTML_BYTES,
                                              "PASS" if ok_html else "FAIL", big["rss_mb"],
                                              a.big / big["wall"]))
    out = {"records": a.records, "cases": results, "ratio": ratio, "cpu_ratio": cpu_ratio,
           "big": dict(big, records=a.big, html_bytes=html_bytes)}
    if not a.no_import:
        with_r = import_rate(a.bin, export, a.records, a.work, a.runs, True)
        without = import_rate(a.bin, export, a.records, a.work, a.runs, False)
        print("import to a file (ocsf): %.0f records/s with the rollup, %.0f without "
              "(%.2fx); report.db %.1f MB, %s rows for %s days of 3 tenants" % (
                  with_r["rate"], without["rate"], with_r["rate"] / without["rate"],
                  with_r["db_bytes"] / 1e6, with_r["db_rows"], with_r["db_days"]))
        out["import"] = {"rollup": with_r, "no_rollup": without}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if ok and ok_html else 1


if __name__ == "__main__":
    sys.exit(main())
