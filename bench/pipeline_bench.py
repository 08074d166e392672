#!/usr/bin/env python3
"""Pipeline benchmark (issue 10): what forwarding costs next to normalizing,
measured in one run on the same recorded corpus.

  normalize   m365fwd normalize --schema ocsf  (to /dev/null): the baseline
  kafka       m365fwd import -> Kafka (librdkafka mock cluster), OCSF
  three       m365fwd import -> file (ECS) + Kafka (OCSF) + syslog TCP (OCSF)

Each case runs --runs times, interleaved, and the median wall time counts
(start-up and the final acknowledgement barrier included: import exits once
every output acknowledged everything). Every run is checked: Kafka's high
watermark, the syslog receiver's frame count and the file's lines equal the
number of records plus the aggregate findings import reports (its summary
line; the corpus holds sprays, and records far out of time order make the
count vary a little from run to run: docs/aggregates.md), and import
exits 0. Prints records/s, CPU and peak RSS
per case and the ratios to normalize, with the targets of issue 10.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import forward_bench as fb  # noqa: E402  (Mock, fill, count_lines, read_time)

TARGETS = {"kafka": 0.6, "three": 0.4}
LABELS = {"normalize": "normalize --schema ocsf",
          "kafka": "import -> kafka (ocsf)",
          "three": "import -> file ecs + kafka ocsf + syslog tcp ocsf"}


def timed(cmd, logpath, stdout=subprocess.DEVNULL):
    tfile = logpath + ".time"
    with open(logpath, "wb") as lf:
        t0 = time.monotonic()
        rc = subprocess.call([fb.TIME, "-f", "%U %S %M", "-o", tfile, "--"] + cmd,
                             stdout=stdout if stdout is not None else lf, stderr=lf)
        wall = time.monotonic() - t0
    cpu, rss = fb.read_time(tfile)
    return rc, wall, cpu, rss


def run_normalize(a, r):
    log = os.path.join(a.work, "normalize-%d.log" % r)
    rc, wall, cpu, rss = timed([a.bin, "normalize", "--schema", "ocsf", "--input",
                                "ndjson", a.corpus], log)
    return {"ok": rc == 0, "rc": rc, "wall": wall, "cpu": cpu, "rss": rss,
            "check": "exit %d" % rc}


def run_import(a, r, case, mock, n):
    rundir = os.path.join(a.work, "%s-%d" % (case, r))
    shutil.rmtree(rundir, ignore_errors=True)
    os.makedirs(rundir)
    topic = "%s-%d" % (case, r)
    mock.topic(topic)
    values = {"BROKERS": mock.brokers, "TOPIC": topic}
    sink = None
    out = os.path.join(rundir, "out.ndjson")
    if case == "three":
        sink = subprocess.Popen([a.tcp, "sink", str(n), "octet-counting"],
                                stdout=subprocess.PIPE, text=True)
        port = sink.stdout.readline().strip()
        values.update({"ADDRESS": "127.0.0.1:" + port, "FILE": out})
        tmpl = "m365fwd-three.yaml"
    else:
        tmpl = "m365fwd-kafka.yaml"
    conf = os.path.join(rundir, "m365fwd.yaml")
    fb.fill(os.path.join(a.conf, tmpl), conf, values)
    rc, wall, cpu, rss = timed([a.bin, "import", "-c", conf, "--input", "ndjson",
                                a.corpus], os.path.join(rundir, "import.log"),
                               stdout=None)
    with open(os.path.join(rundir, "import.log"), errors="replace") as f:
        m = re.search(r"; (\d+) aggregate findings", f.read())
    findings = int(m.group(1)) if m else 0
    want = n + findings
    checks = ["exit %d" % rc, "findings %d" % findings]
    hwm = mock.watermark(topic)
    checks.append("hwm %d" % hwm)
    ok = rc == 0 and m is not None and hwm == want
    if sink is not None:
        try:
            line, _ = sink.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            sink.kill()
            line, _ = sink.communicate()
        total = re.search(r"(?m)^total (\d+)", line)
        frames = int(total.group(1)) if total else -1
        lines = fb.count_lines(out) if os.path.exists(out) else -1
        checks += ["frames %d" % frames, "lines %d" % lines]
        ok = ok and frames == want and lines == want
    return {"ok": ok, "rc": rc, "wall": wall, "cpu": cpu, "rss": rss,
            "check": ", ".join(checks)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--hwm", required=True)
    ap.add_argument("--tcp", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    os.makedirs(a.work, exist_ok=True)
    n = fb.count_lines(a.corpus)
    load0 = os.getloadavg()[0]
    mock = fb.Mock(a.hwm, [])
    res = {c: [] for c in LABELS}
    try:
        for r in range(1, a.runs + 1):
            for case in LABELS:
                fb.log("run %d/%d: %s" % (r, a.runs, LABELS[case]))
                x = run_normalize(a, r) if case == "normalize" else \
                    run_import(a, r, case, mock, n)
                fb.log("  %.2f s, %s%s" % (x["wall"], x["check"],
                                            "" if x["ok"] else " (FAILED)"))
                res[case].append(x)
    finally:
        mock.close()
    load1 = os.getloadavg()[0]
    summ = {}
    for case, runs in res.items():
        wall = statistics.median(x["wall"] for x in runs)
        cpu = statistics.median(x["cpu"] or 0 for x in runs)
        rss = max(x["rss"] or 0 for x in runs)
        summ[case] = {"rps": n / wall, "wall": wall, "cpu": cpu, "rss": rss,
                      "ok": all(x["ok"] for x in runs)}
    base = summ["normalize"]["rps"]
    print("machine: %d CPUs; load average %.2f before, %.2f after" %
          (os.cpu_count() or 1, load0, load1))
    print("corpus: %s, %d records; median of %d runs" % (a.corpus, n, a.runs))
    print("%-52s %10s %7s %7s %8s %7s  %s" % ("case", "records/s", "wall s", "cpu s",
                                            "RSS MiB", "ratio", "checks"))
    verdicts = []
    for case, s in summ.items():
        ratio = s["rps"] / base
        print("%-52s %10.0f %7.2f %7.2f %8.1f %6.2fx  %s" % (
            LABELS[case], s["rps"], s["wall"], s["cpu"], s["rss"], ratio, "ok" if s["ok"] else "FAILED: " +
            "; ".join(x["check"] for x in res[case])))
        if case in TARGETS:
            verdicts.append(("%s >= %.1fx normalize" % (LABELS[case], TARGETS[case]),
                             s["ok"] and ratio >= TARGETS[case]))
    for text, good in verdicts:
        print("target: %-66s %s" % (text, "PASS" if good else "FAIL"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"records": n, "runs": res, "summary": summ,
                       "load": [load0, load1]}, f, indent=1)
    if not all(s["ok"] for s in summ.values()):
        return 2
    return 0 if all(g for _, g in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
