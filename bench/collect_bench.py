#!/usr/bin/env python3
"""Collection benchmark of `m365fwd run` against the emulator (issue 3 §7).

Printed figures, not a timed test (see bench/collect-bench.sh):

1. Throughput: 100 ms latency injected per request, 1000-record blobs,
   `run --once` with max_concurrency 1, 4 and 16; records/s by wall time,
   CPU seconds and peak RSS from GNU time. The emulator's quota is off and
   the agent's requests_per_minute is high, so the figures show how the
   downloads scale; the quota ceiling (requests_per_minute x records per
   blob / 60) is printed next to them, and a last run at the highest
   concurrency under the default requests_per_minute (1800) shows the
   agent holding to it.
2. 1,000 tenants with little content: `run` as a daemon; time until the
   first poll of every tenant was delivered, then CPU (% of one core) and
   RSS while idle between two polls, and peak RSS (VmHWM).

Usage: collect_bench.py --binary PATH [--quick] [--concurrency 1,4,16]
       [--blobs N] [--latency 100ms] [--tenants 1000] [--idle 30]
       [--schema ocsf] [--skip-throughput] [--skip-tenants]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import harness as h  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK   # utime + stime


def proc_mem(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0]) / 1024.0     # MiB
    return out


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(
                lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def throughput(args, tmp):
    blobs = args.blobs
    span_h = 20
    sc = h.scenario([h.tenant(h.T1, {"Audit.Exchange": {
        "blobs": blobs, "records_per_blob": 1000, "span": "%dh" % span_h}},
        quota_per_minute=0)],
        seed=5, latency=args.latency, page_size=1000,
        pregenerate="startup", cache_mb=max(512, blobs * 2))
    print("throughput: starting the emulator (%d blobs x 1000 records, "
          "latency %s, bodies serialized at start-up)..." % (blobs,
                                                              args.latency),
          flush=True)
    t0 = time.monotonic()
    emu = h.Emulator(sc, os.path.join(tmp, "emu-tp"), start_timeout=900)
    print("  emulator ready in %.0fs" % (time.monotonic() - t0), flush=True)
    rows = []
    # every concurrency without a request limit, then the highest one under
    # the default requests_per_minute (1800): the quota ceiling, honoured
    runs = [(str(c), c, 100000) for c in args.concurrency]
    runs.append(("%d @1800/min" % max(args.concurrency), max(args.concurrency), 1800))
    try:
        for label, c, rpm in runs:
            # blobs are spread evenly over span_h hours: the lookback picks
            # how many a run collects (fewer at low concurrency)
            want = min(blobs, args.blobs_per_run.get(c, blobs))
            lookback_min = max(1, int(want * span_h * 60 / blobs))
            d = os.path.join(tmp, "agent-c%d-%d" % (c, rpm))
            a = h.Agent(args.binary, d, emu, content_types=["Audit.Exchange"],
                        schema=args.schema,
                        collect={"max_concurrency": c,
                                 "requests_per_minute": rpm,
                                 "initial_lookback": "%dm" % lookback_min,
                                 "request_timeout": "60s"})
            tf = os.path.join(d, "time.txt")
            served0 = emu.counter("records_served")
            t0 = time.monotonic()
            with open(os.path.join(d, "agent.log"), "wb") as lf:
                rc = subprocess.call(
                    ["/usr/bin/time", "-o", tf, "-f", "%e %U %S %M",
                     args.binary, "run", "-c", a.cfg, "--once"],
                    stdout=lf, stderr=lf)
            wall = time.monotonic() - t0
            with open(tf) as f:
                parts = f.read().strip().splitlines()[-1].split()
            cpu = float(parts[1]) + float(parts[2])
            rss = int(parts[3]) / 1024.0
            n = count_lines(a.output)
            served = emu.counter("records_served") - served0
            rows.append((label, n // 1000, n, wall, n / wall, cpu, rss, rc,
                         served, os.getloadavg()[0]))
            print("  max_concurrency %s: %7d records in %6.2fs = %8.0f "
                  "records/s (exit %d)" % (label, n, wall, n / wall, rc),
                  flush=True)
            os.unlink(a.output)     # keep the disk use down
    finally:
        emu.stop()
    base = rows[0][4] if rows else 1
    print()
    print("latency %s per request, 1000-record blobs, schema %s, file output "
          "(fsync), %d CPUs, load %.2f" % (args.latency, args.schema,
                                           os.cpu_count(),
                                           os.getloadavg()[0]))
    print("%-15s %6s %9s %8s %10s %8s %8s %10s %11s %5s %5s" % (
        "max_concurrency", "blobs", "records", "wall s", "records/s",
        "speedup", "cpu s", "rec/cpu-s", "peak RSS MB", "load", "exit"))
    for c, b, n, wall, rate, cpu, rss, rc, served, load in rows:
        print("%-15s %6d %9d %8.2f %10.0f %7.2fx %8.2f %10.0f %11.1f %5.1f %5d"
              % (c, b, n, wall, rate, rate / base, cpu, n / cpu if cpu else 0,
                 rss, load, rc))
    if os.getloadavg()[0] > 0.75 * os.cpu_count():
        print("  the machine is busy (load above 0.75 x CPUs): wall-time rates"
              " are noisy and the agent shares 2 cores with the Python "
              "emulator; rec/cpu-s is the agent's own cost")
    for c, b, n, wall, rate, cpu, rss, rc, served, load in rows:
        if served != n:
            print("  note: c=%s: emulator served %d records, output has %d"
                  % (c, served, n))
    print("quota ceiling: requests_per_minute 1800 (default) x 1000 records "
          "/ 60 = %d records/s per tenant" % (1800 * 1000 // 60))
    return rows


def tenants_idle(args, tmp):
    n = args.tenants
    content = {
        "Audit.AzureActiveDirectory": {"blobs": 1, "records_per_blob": 3,
                                       "span": "12h"},
        "Audit.Exchange": {"blobs": 1, "records_per_blob": 3, "span": "12h"},
        "Audit.SharePoint": {"blobs": 1, "records_per_blob": 3,
                             "span": "12h"},
        "Audit.General": {"blobs": 1, "records_per_blob": 3, "span": "12h"},
        "DLP.All": {"blobs": 1, "records_per_blob": 1, "span": "12h"}}
    sc = h.scenario([], seed=1000,
                    tenant_template={"count": n, "quota_per_minute": 2000,
                                     "content": content})
    print("\n%d tenants: starting the emulator..." % n, flush=True)
    emu = h.Emulator(sc, os.path.join(tmp, "emu-tenants"), start_timeout=900)
    try:
        ids = []
        while len(ids) < n:
            page = emu.ctl("GET", "/_control/tenants",
                           query={"offset": len(ids), "limit": 500})
            rows = page.get("tenants", page) if isinstance(page, dict) \
                else page
            if not rows:
                break
            ids += [r["id"] if isinstance(r, dict) else r for r in rows]
        expected = n * 13
        d = os.path.join(tmp, "agent-tenants")
        a = h.Agent(args.binary, d, emu, tenants=ids, schema=args.schema,
                    collect={"poll_interval": "%ds" % args.poll_interval,
                             "max_concurrency": 8,
                             "requests_per_minute": 1800,
                             "request_timeout": "60s"})
        # the tenant names must be unique: harness names them t1..tN
        t0 = time.monotonic()
        proc = a.start()
        try:
            h.wait_for(lambda: count_lines(a.output) >= expected
                       or proc.poll() is not None, args.collect_timeout,
                       "%d records from %d tenants" % (expected, n),
                       interval=0.5)
        except TimeoutError as e:
            print("  %s (have %d)" % (e, count_lines(a.output)))
        first = time.monotonic() - t0
        if proc.poll() is not None:
            print("  agent exited %d: %s" % (proc.returncode, a.last_log()))
            return None
        got = count_lines(a.output)
        mem0 = proc_mem(proc.pid)
        # idle between polls: the next poll is poll_interval after the first
        c0, w0 = proc_cpu(proc.pid), time.monotonic()
        time.sleep(args.idle)           # the measurement window itself
        c1, w1 = proc_cpu(proc.pid), time.monotonic()
        mem1 = proc_mem(proc.pid)
        idle_pct = 100.0 * (c1 - c0) / (w1 - w0)
        total_cpu = c1
        fds = len(os.listdir("/proc/%d/fd" % proc.pid))
        rc = a.terminate(timeout=120)
        print()
        print("%d tenants x 5 content types, %d records expected, "
              "poll_interval %ds" % (n, expected, args.poll_interval))
        print("  first poll of every tenant delivered: %d records in %.1fs "
              "(cpu %.1fs)" % (got, first, c0))
        print("  idle %.0fs between polls: cpu %.2f%% of one core "
              "(target < 1%%)" % (w1 - w0, idle_pct))
        print("  RSS after first poll %.1f MB, at end of idle %.1f MB; peak "
              "RSS (VmHWM) %.1f MB (target < 64 MB)" % (
                  mem0.get("VmRSS", 0), mem1.get("VmRSS", 0),
                  mem1.get("VmHWM", 0)))
        print("  open fds %d; total cpu %.1fs; SIGTERM exit %d" % (
            fds, total_cpu, rc))
        return {"idle_pct": idle_pct, "peak_rss": mem1.get("VmHWM", 0)}
    finally:
        emu.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--quick", action="store_true",
                    help="small sizes: a smoke run of the harness")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--blobs", type=int, default=240,
                    help="blobs in the emulator (1000 records each)")
    ap.add_argument("--latency", default="100ms")
    ap.add_argument("--schema", default="ocsf", choices=["ocsf", "ecs", "raw"])
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=30.0,
                    help="seconds of idle measurement")
    ap.add_argument("--poll-interval", type=int, default=600)
    ap.add_argument("--collect-timeout", type=float, default=900)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-tenants", action="store_true")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    if args.quick:
        args.blobs, args.tenants, args.idle = 40, 50, 5.0
    # a run at concurrency c collects about 15 s worth at 100 ms/blob
    args.blobs_per_run = {c: min(args.blobs, 40 * c) for c in
                          args.concurrency}
    if not shutil.which("openssl"):
        print("collect_bench: openssl is missing (emulator certificates)")
        return 2
    if not os.path.exists("/usr/bin/time"):
        print("collect_bench: GNU time (/usr/bin/time) is missing")
        return 2
    tmp = tempfile.mkdtemp(prefix="m365fwd-collect-bench-")
    try:
        if not args.skip_throughput:
            throughput(args, tmp)
        if not args.skip_tenants:
            tenants_idle(args, tmp)
    finally:
        h.Certs.cleanup()
        if os.environ.get("MF_BENCH_KEEP"):
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
