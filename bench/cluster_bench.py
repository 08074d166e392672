#!/usr/bin/env python3
"""Cluster mode benchmark (issue 14): printed figures, not a timed test
(see bench/cluster-bench.sh).

1. The cost of exactly-once. One agent, `run --once`, the same emulated
   corpus (one tenant, N blobs of 1000 generated records, bodies serialized
   at start-up, no latency, no quota) into a Kafka output on a real broker
   (Apache Kafka, tests/kafka/broker.py, 1 node): without `cluster` (the
   idempotent producer, at-least-once) and with `cluster` (the output in
   the cluster's transactions, state in the state topic). Records per
   second over the collection (from the agent's first API request to its
   exit, from the emulator's request log: joining the group is start-up,
   not throughput) and over the whole run; median of --runs runs in
   alternation. Target: cluster >= 0.8 x single.
2. Takeover after kill -9. Two agents share --tenants tenants (blob
   downloads delayed so collection is under way); one is killed; the time
   until the survivor asks the API for each of the victim's tenants
   (first request, from the request log), for each session.timeout.ms in
   --sessions. The bound the tests hold: 2 x session + one poll interval.

Usage: cluster_bench.py --binary PATH [--quick] [--blobs N] [--runs N]
       [--tenants N] [--sessions 6000,10000] [--skip-eos] [--skip-takeover]
Needs MF_BUILD_ROOT with tests/kafka_client, Java 17, Maven, openssl.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, os.path.join(SRC, "tests", "kafka"))
import broker  # noqa: E402
import harness as h  # noqa: E402


def eos_cost(args, tmp, kc):
    blobs = args.blobs
    sc = h.scenario([h.tenant(h.T1, {"Audit.Exchange": {
        "blobs": blobs, "records_per_blob": 1000, "span": "20h"}}, quota_per_minute=0)],
        seed=5, page_size=1000, pregenerate="startup", cache_mb=max(512, blobs * 2))
    reqlog = os.path.join(tmp, "eos-requests.ndjson")
    print("exactly-once cost: emulator with %d blobs x 1000 records..." % blobs, flush=True)
    emu = h.Emulator(sc, os.path.join(tmp, "emu-eos"), start_timeout=900,
                     extra_args=["--request-log", reqlog])
    rows = {"single": [], "cluster": []}
    try:
        for run in range(args.runs):
            for mode in ("single", "cluster"):
                topic = "eos-%s-%d" % (mode, run)
                kc.create_topic(topic, partitions=3)
                d = os.path.join(tmp, "agent-%s-%d" % (mode, run))
                extra = ["  - name: k", "    type: kafka",
                         "    brokers: \"%s\"" % kc.bootstrap(), "    topic: %s" % topic,
                         "    schema: %s" % args.schema]
                if mode == "cluster":
                    extra += ["cluster:", "  brokers: \"%s\"" % kc.bootstrap(),
                              "  group: bench-%d" % run, "  topic_prefix: bench-%d" % run,
                              "  shards: 8", "  agent_id: bench"]
                a = h.Agent(args.binary, d, emu, content_types=["Audit.Exchange"],
                            schema=args.schema,
                            collect={"max_concurrency": 16, "requests_per_minute": 100000,
                                     "initial_lookback": "24h"},
                            extra_top=extra)
                # the Kafka output alone (the harness's file output goes), and
                # no debug line per blob
                with open(a.cfg) as f:
                    text = f.read()
                start = text.index("  - name: out\n")
                end = text.index("  - name: k\n")
                text = text[:start] + text[end:]
                with open(a.cfg, "w") as f:
                    f.write(text.replace("log_level: debug", "log_level: %s" % args.log_level))
                n0 = len(h.request_log(reqlog))
                tf = os.path.join(d, "time.txt")
                t0 = time.time()
                with open(os.path.join(d, "agent.log"), "wb") as lf:
                    rc = subprocess.call(["/usr/bin/time", "-o", tf, "-f", "%e %U %S %M",
                                          args.binary, "run", "-c", a.cfg, "--once"],
                                         stdout=lf, stderr=lf, timeout=1800)
                t1 = time.time()
                with open(tf) as f:
                    parts = f.read().strip().splitlines()[-1].split()
                cpu = float(parts[1]) + float(parts[2])
                mine = h.request_log(reqlog)[n0:]
                first = min(r["t0"] for r in mine) if mine else t0
                n = len(kc.consume(topic, props={"isolation.level": "read_committed"},
                                   eof=True, idle=5, timeout=600))
                rows[mode].append({"rc": rc, "records": n, "wall": t1 - t0,
                                   "collect": t1 - first, "cpu": cpu,
                                   "rss": int(parts[3]) / 1024.0})
                print("  run %d %-7s: %7d records, wall %6.2f s (%8.0f rec/s), collection "
                      "%6.2f s (%8.0f rec/s), agent cpu %5.2f s, exit %d, load %.1f" % (
                          run, mode, n, t1 - t0, n / (t1 - t0), t1 - first,
                          n / (t1 - first), cpu, rc, os.getloadavg()[0]), flush=True)
    finally:
        emu.stop()
    med = {m: {k: statistics.median(r[k] for r in rows[m])
               for k in ("wall", "collect", "cpu", "rss")} for m in rows}
    n = rows["single"][0]["records"]
    print()
    print("exactly-once cost, %d records, schema %s, Kafka output (3 partitions, 1 broker), "
          "median of %d, %d CPUs, load %.1f" % (n, args.schema, args.runs, os.cpu_count(),
                                                 os.getloadavg()[0]))
    print("%-8s %9s %10s %13s %16s %8s %11s %12s" % (
        "mode", "wall s", "collect s", "rec/s (wall)", "rec/s (collect)", "cpu s",
        "rec/cpu-s", "peak RSS MB"))
    for m in ("single", "cluster"):
        print("%-8s %9.2f %10.2f %13.0f %16.0f %8.2f %11.0f %12.1f" % (
            m, med[m]["wall"], med[m]["collect"], n / med[m]["wall"],
            n / med[m]["collect"], med[m]["cpu"], n / med[m]["cpu"], med[m]["rss"]))
    ratio = med["single"]["collect"] / med["cluster"]["collect"]
    ratio_wall = med["single"]["wall"] / med["cluster"]["wall"]
    print("cluster / single records per agent CPU-second: %.2f (the agent's own cost, "
          "robust to the load)" % (med["single"]["cpu"] / med["cluster"]["cpu"]))
    ok = all(r["rc"] == 0 and r["records"] == n for m in rows for r in rows[m])
    print("cluster / single records per second: %.2f over the collection, %.2f over the "
          "whole run (target >= 0.80 over the collection): %s%s" % (
              ratio, ratio_wall, "PASS" if ratio >= 0.8 else "MISS",
              "" if ok else " (a run did not deliver every record!)"))
    return ratio >= 0.8 and ok


def takeover(args, tmp, kc, session_ms):
    n = args.tenants
    sc = h.scenario([], seed=session_ms, tenant_template={
        "count": n, "quota_per_minute": 0,
        "content": {"Audit.Exchange": {"blobs": 0}}},
        faults=[{"match": {"route": "blob"}, "action": "delay", "delay": "1s"}])
    d = os.path.join(tmp, "takeover-%d" % session_ms)
    reqlog = os.path.join(d, "requests.ndjson")
    os.makedirs(d, exist_ok=True)
    emu = h.Emulator(sc, os.path.join(d, "emu"), extra_args=["--request-log", reqlog])
    agents = []
    try:
        page = emu.ctl("GET", "/_control/tenants", query={"offset": 0, "limit": 1000})
        rows = page.get("tenants", page) if isinstance(page, dict) else page
        tenants = [r["id"] if isinstance(r, dict) else r for r in rows]
        prefix = "takeover-%d" % session_ms
        kc.create_topic(prefix + "-out", partitions=3)
        for name in ("s", "v"):
            extra = ["  - name: k", "    type: kafka",
                     "    brokers: \"%s\"" % kc.bootstrap(), "    topic: %s-out" % prefix,
                     "    schema: raw",
                     "cluster:", "  brokers: \"%s\"" % kc.bootstrap(),
                     "  group: %s" % prefix, "  topic_prefix: %s" % prefix, "  shards: 16",
                     "  agent_id: %s" % name, "  rdkafka:",
                     "    session.timeout.ms: %d" % session_ms,
                     "    heartbeat.interval.ms: %d" % max(1000, session_ms // 6),
                     "    transaction.timeout.ms: %d" % max(10000, session_ms)]
            a = h.Agent(args.binary, os.path.join(d, name), emu, tenants=tenants,
                        content_types=["Audit.Exchange"], collect={"max_concurrency": 1},
                        extra_top=extra)
            a.name = name
            agents.append(a)
            a.start()

        def owning():
            for a in agents:
                try:
                    with open(os.path.join(a.state_dir, "cluster.json")) as f:
                        if not json.load(f).get("n_shards_owned"):
                            return None
                except (OSError, ValueError):
                    return None
            return True
        h.wait_for(owning, 180, "both agents owning shards", interval=0.5)
        for t in tenants:
            emu.publish(t, "Audit.Exchange", count=10, records=5, created="-30m")
        survivor, victim = agents
        h.wait_for(lambda: sum(1 for r in h.request_log(reqlog) if r["route"] == "blob" and
                               h.agent_of(r["agent"]) == "v") >= 5, 60, "the victim collecting",
                   interval=0.2)
        vt = {t for t, a in h.last_agent(h.request_log(reqlog)).items() if a == "v"}
        t_kill = time.time()
        victim.kill9()

        def taken():
            seen = h.first_requests_after(h.request_log(reqlog), vt, t_kill, "v")
            return {t: s - t_kill for t, s in seen.items()} if len(seen) == len(vt) else None
        seen = h.wait_for(taken, 300, "the victim's tenants taken over", interval=0.2)
        with open(os.path.join(survivor.state_dir, "cluster.json")) as f:
            st = json.load(f)
        survivor.terminate(timeout=120)
        v = sorted(seen.values())
        return {"session_ms": session_ms, "tenants": len(vt), "first": v[0],
                "median": statistics.median(v), "last": v[-1],
                "state_read": st.get("last_takeover_seconds", 0),
                "bound": 2 * session_ms / 1000 + 1}
    finally:
        for a in agents:
            a.stop_if_running()
        emu.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--blobs", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--schema", default="ocsf", choices=["ocsf", "ecs", "raw"])
    ap.add_argument("--tenants", type=int, default=40)
    ap.add_argument("--sessions", default="6000,10000")
    ap.add_argument("--log-level", default="info", help="of the exactly-once runs")
    ap.add_argument("--skip-eos", action="store_true")
    ap.add_argument("--skip-takeover", action="store_true")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    if args.quick:
        args.blobs, args.runs, args.tenants, args.sessions = 20, 1, 20, "6000"
    why = broker.unavailable()
    if why:
        print("cluster_bench: Apache Kafka cannot run here: %s" % why)
        return 2
    tmp = tempfile.mkdtemp(prefix="m365fwd-cluster-bench-")
    ok = True
    try:
        with broker.KafkaCluster(brokers=1, server_props={
                "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"}) as kc:
            print("Kafka %s: 1 broker in %.1f s" % (kc.version, kc.start_seconds), flush=True)
            if not args.skip_eos:
                ok = eos_cost(args, tmp, kc) and ok
            if not args.skip_takeover:
                res = [takeover(args, tmp, kc, int(s)) for s in args.sessions.split(",")]
                print()
                print("takeover after kill -9 (2 agents, %d tenants, 16 shards, poll "
                      "interval 1 s): seconds from the kill to the survivor's first request "
                      "for each of the victim's tenants" % args.tenants)
                print("%-18s %8s %8s %8s %8s %12s %8s" % ("session.timeout.ms", "tenants",
                                                         "first", "median", "last",
                                                         "state read", "bound"))
                for r in res:
                    print("%-18d %8d %8.1f %8.1f %8.1f %12.2f %8.0f  %s" % (
                        r["session_ms"], r["tenants"], r["first"], r["median"], r["last"],
                        r["state_read"], r["bound"],
                        "within" if r["last"] <= r["bound"] else "BEYOND"))
    finally:
        h.Certs.cleanup()
        if os.environ.get("MF_BENCH_KEEP"):
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
