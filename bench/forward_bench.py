#!/usr/bin/env python3
"""Forwarding benchmark: m365fwd against rsyslog, syslog-ng and kcat
(bench/README.md, issue 4 section 6, ../shared/docs/reliability.md section 7).

One run feeds the same recorded corpus (NDJSON, one record a line) to
  kafka:   m365fwd import (normalize to OCSF + produce)
           rsyslog   imfile -> mmjsonparse -> omkafka   (%$!all-json-plain%)
           syslog-ng file() -> json-parser() -> kafka-c  ($(format-json))
           kcat -P   the already-normalized lines (the librdkafka ceiling)
           each into a fresh 1-partition topic of one librdkafka mock
           cluster (forward-bench-hwm mock);
  syslog:  m365fwd import to a syslog output (TCP, RFC 5424, octet-counting)
           and a plain socket writer sending the already-normalized lines
           (one write() per line, and 64 KiB buffered), into a loopback
           receiver that counts frames (forward-bench-tcp sink).
Completion: the partition high watermark (or the receiver's frame count)
reaches N; the mock keeps only ~5 MiB per partition, so nothing is consumed.
Wall time runs from the start of the subject to completion and includes
its start-up. CPU (user+sys) and peak RSS of the subject process come from
GNU time; daemons (rsyslog, syslog-ng) get SIGTERM at completion.
"""

import argparse
import glob
import json
import os
import shutil
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TIME = "/usr/bin/time"
TARGET_VS_PEER = 1.0
TARGET_RSS_MIB = 64.0
KAFKA_SUBJECTS = ["kcat", "m365fwd", "rsyslog", "syslog-ng"]
SYSLOG_SUBJECTS = ["m365fwd-syslog", "writer-line", "writer-buffered"]
LABELS = {
    "kcat": "kcat -P (normalized lines)",
    "m365fwd": "m365fwd import -> kafka",
    "rsyslog": "rsyslog JSON -> omkafka",
    "syslog-ng": "syslog-ng JSON -> kafka-c",
    "m365fwd-syslog": "m365fwd import -> syslog tcp",
    "writer-line": "socket writer, write/line",
    "writer-buffered": "socket writer, 64 KiB buf",
}


def log(msg):
    print("forward-bench: " + msg, file=sys.stderr, flush=True)


def fill(template, out, values):
    with open(template) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, v)
    with open(out, "w") as f:
        f.write(text)


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n
            n += b.count(b"\n")


def child_pid(ppid):
    """The pid of a child of ppid (the subject under /usr/bin/time)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        if int(fields[1]) == ppid:
            return int(d)
    return None


class Mock:
    """The mock cluster helper: one broker, topics created on demand."""

    def __init__(self, hwm, prefix):
        self.hwm = hwm
        self.p = subprocess.Popen(prefix + [hwm, "mock"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.brokers = self.p.stdout.readline().strip()
        if not self.brokers:
            raise SystemExit("forward-bench: the mock cluster did not start")

    def topic(self, name):
        self.p.stdin.write("topic %s\n" % name)
        self.p.stdin.flush()
        ans = self.p.stdout.readline().strip()
        if ans != "ok " + name:
            raise SystemExit("forward-bench: cannot create topic %s: %r" %
                             (name, ans))

    def watermark(self, topic):
        out = subprocess.run([self.hwm, "query", self.brokers, topic],
                             capture_output=True, text=True)
        try:
            return int(out.stdout.strip())
        except ValueError:
            return -1

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


def read_time(path):
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    for ln in reversed(lines):
        parts = ln.split()
        if len(parts) == 3:
            try:
                return float(parts[0]) + float(parts[1]), int(parts[2]) / 1024.0
            except ValueError:
                continue
    return None, None


def run_subject(name, cmd, env, logpath, waiter, daemon_pidfile, timeout,
                stdin_path=None):
    """Start cmd under GNU time, wait for the completion line of waiter
    (a Popen whose stdout says when N arrived), stop a daemon, collect."""
    tfile = logpath + ".time"
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    with open(logpath, "wb") as lf:
        t0 = time.monotonic()
        p = subprocess.Popen([TIME, "-f", "%U %S %M", "-o", tfile, "--"] + cmd,
                             stdin=stdin, stdout=lf, stderr=lf, env=env)
    if stdin_path:
        stdin.close()
    done_line = waiter_line(waiter, timeout, p)
    t1 = time.monotonic()
    ok = done_line is not None and "timeout" not in done_line and \
        not done_line.startswith("error")
    if daemon_pidfile is not None:
        pid = None
        try:
            with open(daemon_pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pid = child_pid(p.pid)
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    try:
        rc = p.wait(timeout=60 if ok else 5)
    except subprocess.TimeoutExpired:
        pid = child_pid(p.pid)
        if pid:
            os.kill(pid, signal.SIGKILL)
        rc = p.wait()
    if not ok and waiter.poll() is None:
        waiter.kill()
    reap(waiter)
    cpu, rss = read_time(tfile)
    if not ok:
        done_line = "%s; exit %s; log: %s" % (
            done_line or "no completion", rc, log_tail(logpath))
    return {"subject": name, "ok": ok, "wall": t1 - t0, "cpu": cpu,
            "rss_mib": rss, "rc": rc, "done": done_line, "log": logpath}


def waiter_line(waiter, timeout, proc, grace=15.0):
    """The completion line of waiter ("hwm ...", "frames ...", "error ..."),
    read as soon as it is printed. None at EOF, after timeout, or when the
    subject proc has exited and nothing arrived within grace seconds."""
    deadline = time.monotonic() + timeout + 30
    exited = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            return None
        if exited is None and proc.poll() is not None:
            exited = now
        if exited is not None and now - exited > (
                grace if proc.returncode == 0 else 1.0):
            return None
        ready, _, _ = select.select([waiter.stdout], [], [], 0.5)
        if not ready:
            continue
        ln = waiter.stdout.readline()
        if not ln:
            return None
        if ln.startswith(("hwm ", "frames ", "error")):
            return ln.strip()


def log_tail(path, n=300):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def reap(waiter):
    try:
        waiter.wait(timeout=30)
    except subprocess.TimeoutExpired:
        waiter.kill()
        waiter.wait()


def kafka_run(name, r, a, mock, env_sng, n):
    topic = "%s-%d" % (name, r)
    mock.topic(topic)
    rundir = os.path.join(a.work, "runs", topic)
    shutil.rmtree(rundir, ignore_errors=True)
    os.makedirs(rundir)
    logpath = os.path.join(rundir, "subject.log")
    env = dict(os.environ)
    pidfile = None
    stdin_path = None
    if name == "kcat":
        cmd = ["kcat", "-P", "-b", mock.brokers, "-t", topic, "-p", "0",
               "-X", "linger.ms=50"]
        stdin_path = a.normalized
    elif name == "m365fwd":
        conf = os.path.join(rundir, "m365fwd.yaml")
        fill(os.path.join(a.conf, "m365fwd-kafka.yaml"), conf,
             {"BROKERS": mock.brokers, "TOPIC": topic})
        cmd = [a.bin, "import", "-c", conf, "--input", "ndjson", a.corpus]
    elif name == "rsyslog":
        conf = os.path.join(rundir, "rsyslog.conf")
        state = os.path.join(rundir, "state")
        os.makedirs(state)
        fill(os.path.join(a.conf, "rsyslog-json.conf"), conf,
             {"BROKERS": mock.brokers, "TOPIC": topic, "CORPUS": a.corpus,
              "WORKDIR": state})
        pidfile = os.path.join(rundir, "rsyslogd.pid")
        cmd = [a.rsyslogd, "-n", "-f", conf, "-i", pidfile]
    elif name == "syslog-ng":
        conf = os.path.join(rundir, "syslog-ng.conf")
        fill(os.path.join(a.conf, "syslog-ng-json.conf"), conf,
             {"BROKERS": mock.brokers, "TOPIC": topic, "CORPUS": a.corpus})
        pidfile = os.path.join(rundir, "syslog-ng.pid")
        root = a.syslog_ng_root
        cmd = [os.path.join(root, "usr/sbin/syslog-ng"), "-F", "--no-caps",
               "-f", conf,
               "--module-path=" + a.syslog_ng_modules,
               "--persist-file=" + os.path.join(rundir, "syslog-ng.persist"),
               "--pidfile=" + pidfile,
               "--control=" + os.path.join(rundir, "syslog-ng.ctl")]
        env = env_sng
    else:
        raise ValueError(name)
    cmd = a.subject_prefix + cmd
    waiter = subprocess.Popen([a.hwm, "wait", mock.brokers, topic, str(n),
                               str(a.timeout)], stdout=subprocess.PIPE,
                              text=True)
    res = run_subject(name, cmd, env, logpath, waiter, pidfile, a.timeout,
                      stdin_path)
    res["hwm"] = mock.watermark(topic)
    res["records"] = n
    if r == 1 and a.check_output:
        res["sample"] = sample_message(mock, topic)
    return res


def sample_message(mock, topic, count=200):
    """The last `count` messages of the topic (the mock keeps ~5 MiB): mean
    size and how many parse as JSON. Not timed."""
    try:
        out = subprocess.run(["kcat", "-C", "-b", mock.brokers, "-t", topic,
                              "-p", "0", "-o", "-%d" % count, "-c", str(count),
                              "-e", "-q"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    msgs = [m for m in out.stdout.split(b"\n") if m]
    if not msgs:
        return None
    valid = 0
    for m in msgs:
        try:
            json.loads(m)
            valid += 1
        except ValueError:
            pass
    return {"messages": len(msgs), "json": valid,
            "mean_bytes": sum(len(m) for m in msgs) / len(msgs),
            "head": msgs[-1][:160].decode("utf-8", "replace")}


def syslog_run(name, r, a, n):
    rundir = os.path.join(a.work, "runs", "%s-%d" % (name, r))
    shutil.rmtree(rundir, ignore_errors=True)
    os.makedirs(rundir)
    framing = "octet-counting" if name == "m365fwd-syslog" else "lf"
    sink = subprocess.Popen([a.tcp, "sink", str(n), framing],
                            stdout=subprocess.PIPE, text=True)
    port = sink.stdout.readline().strip()
    if not port.isdigit():
        sink.kill()
        raise SystemExit("forward-bench: the TCP receiver did not start")
    if name == "m365fwd-syslog":
        conf = os.path.join(rundir, "m365fwd.yaml")
        fill(os.path.join(a.conf, "m365fwd-syslog.yaml"), conf,
             {"ADDRESS": "127.0.0.1:" + port})
        cmd = [a.bin, "import", "-c", conf, "--input", "ndjson", a.corpus]
    else:
        mode = "line" if name == "writer-line" else "buffered"
        cmd = [a.tcp, "send", port, a.normalized, mode]
    cmd = a.subject_prefix + cmd
    res = run_subject(name, cmd, dict(os.environ),
                      os.path.join(rundir, "subject.log"), sink, None,
                      a.timeout)
    res["records"] = n
    res["hwm"] = None
    if res["done"] and res["done"].startswith("frames "):
        parts = res["done"].split()
        res["frames"] = int(parts[1])
        res["bytes_out"] = int(parts[2])
    return res


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(name, runs, n, in_bytes):
    ok = [x for x in runs if x["ok"]]
    s = {"subject": name, "label": LABELS[name], "runs": len(runs),
         "ok_runs": len(ok), "records": n}
    if not ok:
        s["failed"] = True
        s["why"] = runs[-1].get("done") if runs else "not run"
        s["log"] = runs[-1].get("log") if runs else None
        return s
    wall = median([x["wall"] for x in ok])
    cpu = median([x["cpu"] for x in ok])
    s.update({"wall": wall, "rps": n / wall, "mbps": in_bytes / wall / 1e6,
              "cpu": cpu,
              "cpu_per_100k": cpu * 100000.0 / n if cpu is not None else None,
              "rss_mib": median([x["rss_mib"] for x in ok]),
              "rc": [x["rc"] for x in runs],
              "hwm": [x.get("hwm") for x in runs]})
    return s


def fmt(v, spec, width):
    return ("%" + str(width) + "s") % ("-" if v is None else spec % v)


def table(sums, title):
    lines = [title,
             "%-30s %8s %7s %10s %6s %7s %10s %9s  %s" %
             ("subject", "records", "wall s", "records/s", "MB/s", "cpu s",
              "cpu/100k", "RSS MiB", "check")]
    for s in sums:
        if s.get("failed"):
            lines.append("%-30s %8d  FAILED: %s (see %s)" %
                         (s["label"], s["records"], s.get("why"), s.get("log")))
            continue
        check = s.get("check", "")
        lines.append("%-30s %8d %s %s %s %s %s %s  %s" % (
            s["label"], s["records"], fmt(s["wall"], "%.2f", 7),
            fmt(s["rps"], "%.0f", 10), fmt(s["mbps"], "%.1f", 6),
            fmt(s["cpu"], "%.2f", 7), fmt(s["cpu_per_100k"], "%.2f", 10),
            fmt(s["rss_mib"], "%.1f", 9), check))
    return lines


def kafka_check(s, n):
    """hwm == N in every run (duplicates from retries would exceed it)."""
    hw = s.get("hwm") or []
    bad = [h for h in hw if h != n]
    if s.get("ok_runs") != s.get("runs"):
        return "%d/%d runs completed" % (s["ok_runs"], s["runs"])
    return "hwm=N" if not bad else "hwm %s" % bad


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="m365fwd binary")
    ap.add_argument("--hwm", required=True, help="forward-bench-hwm binary")
    ap.add_argument("--tcp", required=True, help="forward-bench-tcp binary")
    ap.add_argument("--corpus", required=True, help="NDJSON corpus")
    ap.add_argument("--work", required=True)
    ap.add_argument("--conf", required=True, help="bench/conf")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=300,
                    help="seconds allowed per subject run")
    ap.add_argument("--rsyslogd", default="/usr/sbin/rsyslogd")
    ap.add_argument("--syslog-ng-root", default="",
                    help="unpacked syslog-ng tree (dpkg-deb -x)")
    ap.add_argument("--skip", action="append", default=[],
                    help="subject to leave out (repeatable)")
    ap.add_argument("--pin", action="store_true",
                    help="taskset: mock on CPU 0, subjects on CPU 1")
    ap.add_argument("--no-check-output", dest="check_output",
                    action="store_false")
    ap.add_argument("--json", help="write every run here")
    a = ap.parse_args()

    for p in (a.bin, a.hwm, a.tcp, a.corpus):
        if not os.path.exists(p):
            raise SystemExit("forward-bench: missing %s" % p)
    a.work = os.path.abspath(a.work)
    a.corpus = os.path.abspath(a.corpus)
    a.subject_prefix = ["taskset", "-c", "1"] if a.pin else []
    mock_prefix = ["taskset", "-c", "0"] if a.pin else []
    os.makedirs(os.path.join(a.work, "runs"), exist_ok=True)

    n = count_lines(a.corpus)
    in_bytes = os.path.getsize(a.corpus)

    # The already-normalized lines for kcat and the socket writer (not timed).
    a.normalized = os.path.join(a.work, "normalized-ocsf.ndjson")
    stamp = a.normalized + ".src"
    src_id = "%s %d %d %d" % (a.corpus, in_bytes, int(os.path.getmtime(a.corpus)),
                              int(os.path.getmtime(a.bin)))
    have = open(stamp).read() if os.path.exists(stamp) else ""
    if have != src_id or not os.path.exists(a.normalized):
        log("normalizing the corpus once for kcat and the socket writer")
        with open(a.normalized, "wb") as out:
            p = subprocess.run([a.bin, "normalize", "--schema", "ocsf",
                                "--input", "ndjson", a.corpus], stdout=out,
                               stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise SystemExit("forward-bench: m365fwd normalize failed (%d): %s"
                             % (p.returncode, p.stderr[-500:].decode()))
        with open(stamp, "w") as f:
            f.write(src_id)
    n_norm = count_lines(a.normalized)
    if n_norm != n:
        raise SystemExit("forward-bench: %d records normalized of %d" %
                         (n_norm, n))

    kafka = [s for s in KAFKA_SUBJECTS if s not in a.skip]
    sysl = [s for s in SYSLOG_SUBJECTS if s not in a.skip]
    env_sng = dict(os.environ)
    if "syslog-ng" in kafka:
        root = a.syslog_ng_root
        if not root or not os.path.exists(os.path.join(root, "usr/sbin/syslog-ng")):
            log("syslog-ng tree not found (--syslog-ng-root): skipped")
            kafka.remove("syslog-ng")
        else:
            mods = sorted(glob.glob(os.path.join(root, "usr/lib/syslog-ng/3.*")))
            a.syslog_ng_modules = mods[-1] if mods else ""
            libs = [os.path.join(root, "usr/lib/syslog-ng"),
                    os.path.join(root, "usr/lib/x86_64-linux-gnu")]
            env_sng["LD_LIBRARY_PATH"] = ":".join(
                libs + [env_sng.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    if "rsyslog" in kafka and not os.path.exists(a.rsyslogd):
        log("rsyslogd not found: skipped")
        kafka.remove("rsyslog")
    if "kcat" in kafka and not shutil.which("kcat"):
        log("kcat not found: skipped")
        kafka.remove("kcat")

    load0 = os.getloadavg()[0]
    t_start = time.monotonic()
    mock = Mock(a.hwm, mock_prefix)
    results = {s: [] for s in kafka + sysl}
    try:
        for r in range(1, a.runs + 1):
            for s in kafka:
                log("run %d/%d: %s" % (r, a.runs, LABELS[s]))
                res = kafka_run(s, r, a, mock, env_sng, n)
                log("  %.2f s, hwm %s%s" % (res["wall"], res["hwm"],
                                            "" if res["ok"] else " (FAILED)"))
                results[s].append(res)
            for s in sysl:
                log("run %d/%d: %s" % (r, a.runs, LABELS[s]))
                res = syslog_run(s, r, a, n)
                log("  %.2f s%s" % (res["wall"], "" if res["ok"] else
                                    " (FAILED)"))
                results[s].append(res)
    finally:
        mock.close()
    elapsed = time.monotonic() - t_start
    load1 = os.getloadavg()[0]

    sums = {s: summarize(s, results[s], n, in_bytes) for s in results}
    for s in kafka:
        if not sums[s].get("failed"):
            sums[s]["check"] = kafka_check(sums[s], n)
            smp = results[s][0].get("sample")
            if smp:
                sums[s]["check"] += ", out ~%.0f B/rec%s" % (
                    smp["mean_bytes"], "" if smp["json"] == smp["messages"]
                    else ", %d/%d NOT JSON" % (smp["messages"] - smp["json"],
                                               smp["messages"]))
    for s in sysl:
        if not sums[s].get("failed"):
            fr = [x.get("frames") for x in results[s]]
            sums[s]["check"] = "frames=N" if all(f == n for f in fr) else \
                "frames %s" % fr

    lines = []
    cpus = os.cpu_count() or 1
    lines.append("machine: %d CPUs, %s; load average %.2f before, %.2f after%s" % (
        cpus, cpu_model(), load0, load1,
        "  (busy: trust the cpu columns)" if max(load0, load1) > 0.75 * cpus
        else ""))
    lines.append("corpus: %s, %d records, %.1f MB (MB/s below = input MB)" % (
        a.corpus, n, in_bytes / 1e6))
    lines.append("median of %d runs%s; wall includes start-up; %.0f s in all" % (
        a.runs, ", pinned (taskset)" if a.pin else "", elapsed))
    lines.append("")
    lines += table([sums[s] for s in kafka], "Kafka (librdkafka mock, 1-partition topic per subject and run)")
    lines.append("")
    lines += table([sums[s] for s in sysl], "Syslog over TCP (loopback frame-counting receiver)")
    lines.append("")

    def get(s, k):
        x = sums.get(s)
        return None if not x or x.get("failed") else x.get(k)

    verdicts = []
    peers = [s for s in ("rsyslog", "syslog-ng") if get(s, "rps")]
    best = max(peers, key=lambda s: get(s, "rps")) if peers else None
    m_rps = get("m365fwd", "rps")
    r1 = ratio(m_rps, get(best, "rps")) if best else None
    lines.append("ratios (records/s):")
    lines.append("  %-44s %s" % ("m365fwd / faster JSON peer (%s)" % (
        best or "none"), "-" if r1 is None else "%.2fx" % r1))
    if r1 is not None:
        verdicts.append(("m365fwd >= %.1fx the faster of rsyslog and syslog-ng "
                         "(JSON mode)" % TARGET_VS_PEER, r1 >= TARGET_VS_PEER))
    for peer in ("rsyslog", "syslog-ng"):
        rp = ratio(m_rps, get(peer, "rps"))
        if rp is not None:
            lines.append("  %-44s %.2fx" % ("m365fwd / " + peer, rp))
    rk = ratio(m_rps, get("kcat", "rps"))
    lines.append("  %-44s %s" % ("m365fwd / kcat (librdkafka ceiling)",
                                  "-" if rk is None else "%.2fx" % rk))
    if best and get("m365fwd", "cpu_per_100k") and get(best, "cpu_per_100k"):
        best_cpu = min(get(p, "cpu_per_100k") for p in peers)
        lines.append("  %-44s %.2fx (%.2f s vs %.2f s)" % (
            "cpu per 100k: m365fwd / best JSON peer",
            get("m365fwd", "cpu_per_100k") / best_cpu,
            get("m365fwd", "cpu_per_100k"), best_cpu))
    rs1 = ratio(get("m365fwd-syslog", "rps"), get("writer-line", "rps"))
    rs2 = ratio(get("m365fwd-syslog", "rps"), get("writer-buffered", "rps"))
    lines.append("  %-44s %s per line, %s buffered" % (
        "m365fwd syslog / socket writer",
        "-" if rs1 is None else "%.2fx" % rs1,
        "-" if rs2 is None else "%.2fx" % rs2))
    for s in ("m365fwd", "m365fwd-syslog"):
        rss = get(s, "rss_mib")
        if rss is not None:
            verdicts.append(("%s peak RSS %.1f MiB <= %.0f MiB" % (
                LABELS[s], rss, TARGET_RSS_MIB), rss <= TARGET_RSS_MIB))
    for s in ("m365fwd", "m365fwd-syslog"):
        if s in sums:
            verdicts.append(("%s delivered every record in every run" % LABELS[s],
                             not sums[s].get("failed") and
                             sums[s]["ok_runs"] == sums[s]["runs"] and
                             all(rc == 0 for rc in sums[s]["rc"]) and
                             (s != "m365fwd" or sums[s]["check"].startswith("hwm=N"))))
    lines.append("")
    for text, good in verdicts:
        lines.append("target: %-66s %s" % (text, "PASS" if good else "FAIL"))
    print("\n".join(lines), flush=True)

    if a.json:
        with open(a.json, "w") as f:
            json.dump({"records": n, "input_bytes": in_bytes, "runs": results,
                       "summary": sums, "load": [load0, load1]}, f, indent=1,
                      default=str)
    failed = any(x.get("failed") for x in sums.values())
    if failed:
        return 2
    return 0 if all(g for _, g in verdicts) else 1


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
