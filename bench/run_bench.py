#!/usr/bin/env python3
"""Measure `m365fwd normalize` against the jansson floor (bench/README.md).

Runs each case --runs times (median reported), output to /dev/null:
  floor               normalize-floor corpus.ndjson
  ocsf | ecs | raw    m365fwd normalize --schema S --input ndjson corpus.ndjson
  ocsf no aggregates  the same with --no-aggregates (aggregates cost)
  ocsf, 300 MB array  m365fwd normalize --schema ocsf --input json corpus-array.json
Wall time is measured here; CPU (user+sys) and peak RSS come from GNU
time (/usr/bin/time, package "time"). Before timing, a sanity pass checks that each schema emits one line
per input record on a small slice of the corpus.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TIME = "/usr/bin/time"
TARGET_RATIO = 1.0
TARGET_ARRAY_RSS_MB = 32.0
TARGET_AGG_RATIO = 0.9     # normalize with aggregates / without


def run_once(cmd, stdout=subprocess.DEVNULL):
    """Run cmd under GNU time; return wall, cpu, rss_mb, rc, stderr tail.

    The child is started by /usr/bin/time, not forked from Python: Linux
    carries the pre-exec RSS of the forking process into ru_maxrss, so a
    fork from this (~20 MB) interpreter would hide small peaks.
    """
    with tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as tf:
        t0 = time.monotonic()
        p = subprocess.run([TIME, "-f", "%U %S %M", "-o", tf.name, "--"] +
                           cmd, stdin=subprocess.DEVNULL, stdout=stdout,
                           stderr=err)
        wall = time.monotonic() - t0
        lines = [ln for ln in tf.read().splitlines() if ln.strip()]
        err.seek(0, os.SEEK_END)
        size = err.tell()
        err.seek(max(0, size - 2000))
        tail = err.read().decode("utf-8", "replace")
    try:
        user, sys_, rss_kb = lines[-1].split()
        user, sys_, rss_kb = float(user), float(sys_), int(rss_kb)
    except (IndexError, ValueError):
        raise SystemExit("run_bench: cannot read %s output for %s: %r" %
                         (TIME, cmd, lines))
    return {"wall": wall, "cpu": user + sys_, "user": user, "sys": sys_,
            "rss_mb": rss_kb / 1024.0, "rc": p.returncode,
            "stderr_bytes": size, "stderr_tail": tail}


def measure(name, cmd, records, runs):
    res = []
    for i in range(runs):
        r = run_once(cmd)
        res.append(r)
        print("  %-22s run %d/%d: %7.2f s wall, %7.2f s cpu, %7.1f MB, "
              "exit %d" % (name, i + 1, runs, r["wall"], r["cpu"],
                           r["rss_mb"], r["rc"]), file=sys.stderr)
    return summarize(name, cmd, records, res)


def measure_pair(names, cmds, records, runs):
    """Two cases run alternately (a, b, a, b, ...), so that a change of the
    machine's load during the measurement touches both alike."""
    res = ([], [])
    for i in range(runs):
        for k in (0, 1):
            r = run_once(cmds[k])
            res[k].append(r)
            print("  %-22s run %d/%d: %7.2f s wall, %7.2f s cpu, %7.1f MB, "
                  "exit %d" % (names[k], i + 1, runs, r["wall"], r["cpu"],
                               r["rss_mb"], r["rc"]), file=sys.stderr)
    return [summarize(names[k], cmds[k], records, res[k]) for k in (0, 1)]


def summarize(name, cmd, records, res):
    wall = statistics.median(r["wall"] for r in res)
    return {
        "name": name, "cmd": cmd, "records": records, "runs": res,
        "wall": wall,
        "cpu": statistics.median(r["cpu"] for r in res),
        "rss_mb": statistics.median(r["rss_mb"] for r in res),
        "rss_mb_max": max(r["rss_mb"] for r in res),
        "rps": records / wall if wall > 0 else 0.0,
        "rpcpu": (records / statistics.median(r["cpu"] for r in res)
                  if all(r["cpu"] > 0 for r in res) else 0.0),
        "rc": max(r["rc"] for r in res),
        "stderr_tail": res[-1]["stderr_tail"],
        "stderr_bytes": res[-1]["stderr_bytes"],
    }


def sanity(binary, schemas, ndjson, n, tmpdir):
    """One output line per input record on the first n records?"""
    part = os.path.join(tmpdir, "sanity.ndjson")
    got = 0
    with open(ndjson, "rb") as f, open(part, "wb") as o:
        for line in f:
            o.write(line)
            got += 1
            if got >= n:
                break
    problems = []
    for s in schemas:
        out = os.path.join(tmpdir, "sanity-%s.out" % s)
        with open(out, "wb") as o:
            # one line per record: the aggregate findings are extra lines
            r = run_once([binary, "normalize", "--schema", s, "--input",
                          "ndjson", "--no-aggregates", part], stdout=o)
        with open(out, "rb") as o:
            lines = sum(1 for _ in o)
        ok = r["rc"] == 0 and lines == got
        print("  sanity %-5s %d records in, %d lines out, exit %d%s" %
              (s, got, lines, r["rc"], "" if ok else "  <-- PROBLEM"),
              file=sys.stderr)
        if not ok:
            problems.append("%s: %d in, %d out, exit %d; stderr: %s" %
                            (s, got, lines, r["rc"],
                             r["stderr_tail"].strip()[-300:]))
    return problems


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="m365fwd binary")
    ap.add_argument("--floor", required=True, help="normalize-floor binary")
    ap.add_argument("--work", required=True, help="dir with manifest.json")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--schemas", default="ocsf,ecs,raw")
    ap.add_argument("--no-array", action="store_true")
    ap.add_argument("--json", help="also write results as JSON here")
    args = ap.parse_args()

    with open(os.path.join(args.work, "manifest.json")) as f:
        man = json.load(f)
    nd, nd_n = man["ndjson"], man["ndjson_records"]
    ar, ar_n = man["array"], man["array_records"]
    schemas = [s for s in args.schemas.split(",") if s]

    for p in (args.bin, args.floor, TIME):
        if not os.access(p, os.X_OK):
            print("run_bench: %s is not an executable" % p, file=sys.stderr)
            return 2

    print("run_bench: warming the page cache", file=sys.stderr)
    warm(nd)
    if not args.no_array:
        warm(ar)

    with tempfile.TemporaryDirectory(prefix="m365fwd-bench.") as tmp:
        problems = sanity(args.bin, schemas, nd, 2000, tmp)

    load0 = os.getloadavg()[0]
    results = []
    print("run_bench: measuring (%d runs each, median)" % args.runs,
          file=sys.stderr)
    floor = measure("floor (jansson)", [args.floor, nd], nd_n, args.runs)
    results.append(floor)
    noagg = None
    for s in schemas:
        cmd = [args.bin, "normalize", "--schema", s, "--input", "ndjson", nd]
        if s != "ocsf":
            results.append(measure("normalize %s" % s, cmd, nd_n, args.runs))
            continue
        # aggregates on and off, alternately: their ratio is a target
        with_agg, noagg = measure_pair(
            ("normalize ocsf", "normalize ocsf no agg"),
            (cmd, cmd[:-1] + ["--no-aggregates", nd]), nd_n, args.runs)
        results.append(with_agg)
    if noagg is not None:
        results.append(noagg)
    arr = None
    if not args.no_array:
        arr = measure("normalize ocsf array",
                      [args.bin, "normalize", "--schema", "ocsf", "--input",
                       "json", ar], ar_n, args.runs)
        results.append(arr)

    load1 = os.getloadavg()[0]
    ncpu = os.cpu_count() or 1

    # ---------------------------------------------------------------- table
    print()
    print("corpus: %s: %d records, %.0f MB NDJSON; %s: %d records, %.0f MB "
          "single array; %d unique source records" %
          (os.path.basename(nd), nd_n, man["ndjson_bytes"] / 1e6,
           os.path.basename(ar), ar_n, man["array_bytes"] / 1e6,
           man["unique_records"]))
    print("machine: %s, %d CPUs, load average %.1f before / %.1f after; "
          "median of %d runs; output to /dev/null" %
          (os.uname().machine, ncpu, load0, load1, args.runs))
    print()
    hdr = ("case", "records", "wall s", "records/s", "cpu s", "rec/cpu-s",
           "peak RSS MB", "vs floor", "cpu vs floor", "exit")
    fmt = "%-22s %8s %7s %10s %7s %10s %12s %9s %13s %5s"
    print(fmt % hdr)
    print(fmt % tuple("-" * len(h) if i else "-" * 22
                      for i, h in enumerate(hdr)))
    for r in results:
        if r is floor:
            ratio = cratio = ""
        else:
            ratio = "%.2fx" % (r["rps"] / floor["rps"])
            cratio = ("%.2fx" % (r["rpcpu"] / floor["rpcpu"])
                      if floor["rpcpu"] else "-")
        print(fmt % (r["name"], r["records"], "%.2f" % r["wall"],
                     "%.0f" % r["rps"], "%.2f" % r["cpu"],
                     "%.0f" % r["rpcpu"], "%.1f" % r["rss_mb"], ratio,
                     cratio, r["rc"]))
    print()
    if max(load0, load1) > 0.75 * ncpu:
        print("warning: the machine was busy (load %.1f on %d CPUs): wall "
              "times and records/s are noisy; the CPU-time columns are the "
              "steadier comparison" % (max(load0, load1), ncpu))
        print()

    verdicts = []
    for r in results[1:1 + len(schemas)]:
        ratio = r["rps"] / floor["rps"]
        cratio = r["rpcpu"] / floor["rpcpu"] if floor["rpcpu"] else 0.0
        verdicts.append(("%s/floor ratio %.2f >= %.1f (cpu %.2f)" %
                         (r["name"], ratio, TARGET_RATIO, cratio),
                         ratio >= TARGET_RATIO and r["rc"] == 0))
    if noagg is not None:
        with_agg = results[1 + schemas.index("ocsf")]
        ratio = with_agg["rps"] / noagg["rps"]
        cratio = (with_agg["rpcpu"] / noagg["rpcpu"]) if noagg["rpcpu"] else 0.0
        # judged on CPU time: the two ran alternately, and CPU time is what
        # the aggregates add; wall time on a shared machine is noise
        verdicts.append(("normalize ocsf aggregates on/off cpu %.2f >= %.1f (wall %.2f)" %
                         (cratio, TARGET_AGG_RATIO, ratio),
                         cratio >= TARGET_AGG_RATIO and with_agg["rc"] == 0))
    if arr is not None:
        verdicts.append(("peak RSS %.1f MB < %.0f MB on the %.0f MB array" %
                         (arr["rss_mb_max"], TARGET_ARRAY_RSS_MB,
                          man["array_bytes"] / 1e6),
                         arr["rss_mb_max"] < TARGET_ARRAY_RSS_MB and
                         arr["rc"] == 0))
    for text, ok in verdicts:
        print("target: %-58s %s" % (text, "PASS" if ok else "FAIL"))
    for r in results:
        if r["rc"] != 0:
            print("note: %s exited %d; stderr (%d bytes) ends with: %s" %
                  (r["name"], r["rc"], r["stderr_bytes"],
                   r["stderr_tail"].strip().splitlines()[-1:]))
    for p in problems:
        print("sanity problem: %s" % p)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"manifest": man, "results": results,
                       "verdicts": [{"target": t, "pass": ok}
                                    for t, ok in verdicts],
                       "sanity_problems": problems}, f, indent=1)
            f.write("\n")
    ok = all(v for _, v in verdicts) and not problems
    print("bench: %s" % ("all targets met" if ok else "targets NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
