"""Fault scenarios of the output side (issue 11 phase 2): a syslog
receiver that stalls then resets, RELP against rsyslog killed with -9, a
full disk and a file deleted or rotated under the file output, a Kafka
outage beside a healthy file output, import with Kafka down, SIGTERM with
a stuck output, a full state disk.

Each drives the real binary (`import` or `run` against the emulator); the
faults are put in place by the test at a moment it controls (the proxy
holds, the broker is set down, the file system is full) before the agent
can get past them.
"""

import os
import re
import subprocess
import time

from faultlib import (Skip, count_row, expect, h, records, scenario, wait_for,
                      write_ndjson, yaml_config)


def syslog_out(port, **kw):
    o = {"name": "sl", "type": "syslog", "address": "127.0.0.1:%d" % port,
         "transport": "tcp", "framing": "octet-counting"}
    o.update(kw)
    return o


# ---------------------------------------------------------------------------
# defect 2: syslog

@scenario("syslog-stall-then-reset", "issue 11 defect 2")
def syslog_stall_reset(ctx):
    """2,400 records to a receiver behind a proxy that buffers 8 MiB,
    stops reading after 64 KiB, then resets the connection: import must not
    end while records sit unread at the receiver; every record arrives,
    duplicates within the resend window per broken connection."""
    n = 2400
    sink = ctx.syslog_sink()
    proxy = ctx.proxy(sink.port, rcvbuf=8 << 20)
    recs = records(n, "st", pad=600)
    inp = write_ndjson(os.path.join(ctx.dir, "in.ndjson"), recs)
    cfg = yaml_config(os.path.join(ctx.dir, "m365fwd.yaml"), os.path.join(ctx.dir, "state"),
                      [syslog_out(proxy.port, flush_timeout="60s")])
    proxy.hold_after(64 * 1024)
    imp = ctx.imports(cfg, [inp])
    proxy.wait_held(60)
    # the receiver side stalls with everything buffered: import ends
    # (claiming delivery) or waits for the receiver; then the reset
    wait_for(lambda: imp.done() or "waiting up to" in imp.stderr(), 60,
             "import to end or to wait for the receiver")
    ended_before_reset = imp.done()
    proxy.reset()
    proxy.resume()
    rc = imp.wait(120)
    if rc == 0:
        # what import says it delivered is at the receiver
        try:
            wait_for(lambda: len(set(sink.ids())) >= n, 30, "every record at the sink")
        except TimeoutError:
            pass
    row = count_row("syslog-stall-then-reset", [r["Id"] for r in recs], sink.ids(),
                    note="import exit %d%s; %d connections" % (
                        rc, " before the reset" if ended_before_reset else "",
                        proxy.stats()["accepted"]))
    expect(rc == 0, "import exited %d: %s", rc, imp.stderr()[-800:])
    # the bound: the resend window (4096 records) per broken connection
    expect(row.duplicates <= 4096 * max(1, proxy.stats()["resets"]),
           "%d duplicates", row.duplicates)
    return row


# ---------------------------------------------------------------------------
# defect 3: the file output

def file_out(path, **kw):
    o = {"name": "f", "type": "file", "path": path, "schema": "raw"}
    o.update(kw)
    return o


def replay_command(stderr):
    """The replay command import printed (after 'replay them with:')."""
    lines = stderr.splitlines()
    for k, ln in enumerate(lines):
        if "replay them with:" in ln and k + 1 < len(lines):
            return lines[k + 1].split()
    raise AssertionError("import printed no replay command: %s" % stderr[-800:])


def remount(path, size_kib):
    r = subprocess.run(["mount", "-o", "remount,size=%dk" % size_kib, path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    expect(r.returncode == 0, "remount %s: %s", path, r.stderr.decode()[:200])


def check_lines(path):
    """Every line of the output is one complete record (no torn line, no
    record glued to a partial one)."""
    o = h.read_output(path)
    expect(o.torn == 0 and o.merged == 0 and not o.bad,
           "%s: %d torn lines, %d records glued to a torn line", path, o.torn, o.merged)
    return o


@scenario("file-disk-full-import", "issue 11 defect 3")
def file_disk_full_import(ctx):
    """import of 6,000 records to a file system with room for 5,000 and a
    half: the first barrier's 5,000 are delivered, the rest fails with
    ENOSPC: the file is rolled back to its last complete line, the records
    are sent again with backoff, then counted, named and kept in
    state_dir/undelivered; exit 1. Once space is freed the printed replay
    command delivers them: every record once, no torn line."""
    recs = records(6000, "df", pad=200)
    inp = write_ndjson(os.path.join(ctx.dir, "in.ndjson"), recs)
    # the size of what the records make in the file, measured
    probe = os.path.join(ctx.dir, "probe.ndjson")
    cfg = yaml_config(os.path.join(ctx.dir, "probe.yaml"), os.path.join(ctx.dir, "pstate"),
                      [file_out(probe)])
    expect(ctx.imports(cfg, [inp]).wait(120) == 0, "probe import failed")
    with open(probe, "rb") as f:
        data = f.read()
    first = len(b"\n".join(data.split(b"\n")[:5000])) + 1
    fs = ctx.small_fs((first + (len(data) - first) // 2) // 1024)
    out = os.path.join(fs, "out.ndjson")
    cfg = yaml_config(os.path.join(ctx.dir, "m365fwd.yaml"), os.path.join(ctx.dir, "state"),
                      [file_out(out, flush_timeout="2s")])
    imp = ctx.imports(cfg, [inp])
    rc = imp.wait(120)
    err = imp.stderr()
    expect(rc == 1, "import exited %d on a full disk: %s", rc, err[-600:])
    expect("No space left on device" in err, "ENOSPC not reported: %s", err[-600:])
    expect("sending them again" in err, "no retry with backoff: %s", err[-600:])
    got = check_lines(out).ids()
    m = re.search(r"output f: (\d+) records not delivered", err)
    expect(m and int(m.group(1)) == 6000 - len(set(got)),
           "the count of records not delivered is not named right (%d delivered): %s",
           len(set(got)), err[-600:])
    expect(5000 <= len(got) < 6000 and len(got) == len(set(got)),
           "%d records (%d distinct) delivered before the disk was full", len(got),
           len(set(got)))
    remount(fs, 64 * 1024)
    cmd = replay_command(err)
    cmd[0] = ctx.binary
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    expect(r.returncode == 0, "the replay exited %d: %s", r.returncode,
           r.stderr.decode()[-600:])
    got = check_lines(out).ids()
    row = count_row("file-disk-full-import", [x["Id"] for x in recs], got,
                    verdict="reported",
                    note="%s not delivered and kept, replayed after the remount" % m.group(1))
    expect(row.duplicates == 0, "%d duplicates", row.duplicates)
    return row


CT = "Audit.Exchange"
FAST = {"poll_interval": "1s", "max_backoff": "2s", "request_timeout": "5s"}


def emu_blobs(ctx, blobs, records_per_blob, end=0):
    """blobs over 3 hours up to end (emulator time spec: 0 now, "-2h")."""
    return ctx.emu(h.scenario([h.tenant(h.T1, {CT: {"blobs": blobs,
                                                    "records_per_blob": records_per_blob,
                                                    "span": "3h", "end": end}})]))


def run_agent(ctx, emu, collect=None, **kw):
    coll = dict(FAST)
    coll.update(collect or {})
    return ctx.agent(emu, content_types=[CT], collect=coll, **kw)


def served(emu):
    return emu.visible_ids(h.T1, CT)


@scenario("file-disk-full-run", "issue 11 defect 3")
def file_disk_full_run(ctx):
    """run with its file output on a file system too small for the records
    available: the failed writes leave no partial line (rolled back to the
    last acknowledgement), blobs come again with backoff (errors in the
    log), and once space is freed every record is there; duplicates at
    most what status counts as redelivered (records of a blob that a flush
    before the failure acknowledged)."""
    fs = ctx.small_fs(256)
    out = os.path.join(fs, "out.ndjson")
    e = emu_blobs(ctx, 12, 100)
    a = run_agent(ctx, e, output_path=out)
    a.start()
    wait_for(lambda: b"No space left on device" in a.all_logs(), 60, "ENOSPC in the log")
    check_lines(out)
    remount(fs, 64 * 1024)
    ids = served(e)
    wait_for(lambda: set(h.read_output(out).ids()) >= ids, 90,
             "every record once the disk has room")
    rc = a.terminate()
    expect(rc == 0, "SIGTERM exit %d", rc)
    check_lines(out)
    redelivered = sum(s.get("redelivered", 0) for s in h.status_streams(a.status()))
    row = count_row("file-disk-full-run", ids, h.read_output(out).ids(),
                    note="full, then remounted larger; duplicates <= redelivered (%d)"
                    % redelivered)
    # records of a blob acknowledged before the disk filled, whose blob is
    # sent again: counted by status as redelivered
    expect(row.duplicates <= redelivered, "%d duplicates, %d redelivered",
           row.duplicates, redelivered)
    return row


@scenario("file-rotated-deleted", "issue 11 defect 3")
def file_rotated_deleted(ctx):
    """The output file is renamed under the running agent (rotation), then
    deleted: each time the path is opened again for what follows; records
    of the rotated file stay there, none is lost or doubled."""
    e = emu_blobs(ctx, 4, 25)
    a = run_agent(ctx, e)
    a.start()
    first = served(e)
    wait_for(lambda: set(a.read_output().ids()) >= first, 60, "the first records")
    rotated = a.output + ".1"
    os.rename(a.output, rotated)
    e.publish(h.T1, CT, count=2, records=20, created="-30s")
    second = served(e) - first
    wait_for(lambda: set(a.read_output().ids()) >= second, 60,
             "the next records in a new file at the path")
    seen_second = a.read_output().ids()
    expect(os.path.getsize(rotated) > 0, "the rotated file is empty")
    os.unlink(a.output)
    e.publish(h.T1, CT, count=2, records=20, created="-20s")
    third = served(e) - first - second
    wait_for(lambda: set(a.read_output().ids()) >= third, 60,
             "records in a new file after the deletion")
    rc = a.terminate()
    expect(rc == 0, "SIGTERM exit %d", rc)
    got = check_lines(rotated).ids() + seen_second + check_lines(a.output).ids()
    return count_row("file-rotated-deleted", first | second | third, got,
                     note="renamed, then deleted, reopened each time")


# ---------------------------------------------------------------------------
# defect 6: each output acknowledges on its own

def kafka_lines(bootstrap, topic, flush_timeout="2s"):
    return ["  - name: k", "    type: kafka", "    brokers: \"%s\"" % bootstrap,
            "    topic: %s" % topic, "    schema: raw", "    flush_timeout: %s" % flush_timeout]


@scenario("kafka-outage-file-healthy", "issue 11 defect 6")
def kafka_outage_file_healthy(ctx):
    """3,000 records to a file output and a Kafka output whose brokers are
    down from the start: the file gets every record exactly once while
    Kafka is down (each output acknowledges blobs on its own; a blob comes
    again only for Kafka); once the brokers are back Kafka gets every
    record; the checkpoint waits for both."""
    k = ctx.mock_kafka(["fo:1"])
    k.down()
    # all of them listed at the first listing (older than the last hour,
    # which the collector lists again later)
    e = emu_blobs(ctx, 30, 100, end="-2h")
    a = run_agent(ctx, e, extra_top=kafka_lines(k.bootstrap, "fo"))
    a.start()
    ids = served(e)
    wait_for(lambda: set(a.read_output().ids()) >= ids, 120,
             "every record in the file while Kafka is down")
    # the checkpoint waits for Kafka
    first = min(h.parse_created(b["created"]) for b in e.content(h.T1, CT))
    for s in h.status_streams(a.status()):
        expect(s.get("checkpoint_ms", 0) <= first * 1000,
               "the checkpoint moved past blobs Kafka does not have")
    k.up()
    wait_for(lambda: set(k.ids("fo")) >= ids, 120, "every record in Kafka once it is back")
    rc = a.terminate()
    expect(rc == 0, "SIGTERM exit %d", rc)
    file_ids = a.read_output().ids()
    kafka_ids = k.ids("fo")
    frow = count_row("file", ids, file_ids)
    krow = count_row("kafka", ids, kafka_ids)
    expect(frow.duplicates == 0, "%d duplicates in the healthy file output", frow.duplicates)
    row = count_row("kafka-outage-file-healthy", ids, [i for i in file_ids if i in set(kafka_ids)],
                    note="file: %d lines, %d duplicates; kafka: %d records, %d duplicates"
                    % (len(file_ids), frow.duplicates, len(kafka_ids), krow.duplicates))
    row.lost = frow.lost + krow.lost
    row.duplicates = frow.duplicates + krow.duplicates
    return row


def spray_records(n, ip="203.0.113.77", ago_s=2 * 3600 + 600):
    """n failed sign-ins from one address to n accounts within a minute,
    ago_s seconds ago (among the other records' times, as a real stream
    has them): an identity.password_spray finding fires on the fifth."""
    t0 = (int(time.time()) - ago_s) // 300 * 300 + 10   # early in a 5-minute window
    return [{"CreationTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i)),
             "Id": "5f0000aa-0000-4000-8000-0000000000%02d" % i,
             "Operation": "UserLoginFailed", "OrganizationId": h.T1, "RecordType": 15,
             "ResultStatus": "Failed", "UserType": 0, "Workload": "AzureActiveDirectory",
             "ClientIP": ip, "UserId": "u%d@contoso.com" % i, "ErrorNumber": "50126"}
            for i in range(n)]


@scenario("finding-kafka-outage", "issue 12 (findings follow their blob)")
def finding_kafka_outage(ctx):
    """A blob holding a password spray, to a file output and a Kafka output
    whose brokers are down: the file gets the records and the finding once;
    the blob comes again for Kafka only, and when the brokers are back the
    record that fired the window yields the same finding (same uid) for
    Kafka: the finding is lost nowhere, doubled in no healthy output."""
    k = ctx.mock_kafka(["ff:1"])
    k.down()
    e = emu_blobs(ctx, 3, 20, end="-2h")
    e.publish(h.T1, CT, record_list=spray_records(6), created="-2h")
    a = run_agent(ctx, e, extra_top=kafka_lines(k.bootstrap, "ff"))
    a.start()
    ids = served(e)
    wait_for(lambda: set(a.read_output().ids()) >= ids and a.read_output().findings, 120,
             "every record and the finding in the file while Kafka is down")
    uid = a.read_output().findings[0]["m365fwd"]["finding"]["uid"]
    k.up()
    wait_for(lambda: set(k.ids("ff")) >= ids | {uid}, 120,
             "every record and the finding in Kafka once it is back")
    rc = a.terminate()
    expect(rc == 0, "SIGTERM exit %d", rc)
    out = a.read_output()
    uids = [f["m365fwd"]["finding"]["uid"] for f in out.findings]
    expect(uids == [uid], "the healthy file has findings %s, not [%s] once", uids, uid)
    kafka = k.ids("ff")
    expect(uid in kafka, "the finding %s never reached Kafka", uid)
    row = count_row("finding-kafka-outage", ids | {uid}, [i for i in kafka],
                    note="finding %s: file once, Kafka %d time(s)" % (uid[:8], kafka.count(uid)))
    frow = count_row("file", ids, out.ids())
    row.lost += frow.lost
    row.duplicates += frow.duplicates
    return row


# ---------------------------------------------------------------------------
# defect 7: import with Kafka down

@scenario("import-kafka-down", "issue 11 defect 7")
def import_kafka_down(ctx):
    """import of 2,000 records to a file output and a Kafka output whose
    brokers are down past flush_timeout: the file takes every record once;
    Kafka's are counted, named by Id and kept in state_dir/undelivered, exit
    1; once the brokers are back the printed replay (import --output k)
    delivers them to Kafka only: 0 lost, 0 duplicates."""
    k = ctx.mock_kafka(["imp:1"])
    k.down()
    recs = records(2000, "kd")
    sent = [r["Id"] for r in recs]
    inp = write_ndjson(os.path.join(ctx.dir, "in.ndjson"), recs)
    out = os.path.join(ctx.dir, "out.ndjson")
    cfg = yaml_config(os.path.join(ctx.dir, "m365fwd.yaml"), os.path.join(ctx.dir, "state"),
                      [file_out(out), {"name": "k", "type": "kafka", "brokers": k.bootstrap,
                                       "topic": "imp", "schema": "raw",
                                       "flush_timeout": "2s"}])
    imp = ctx.imports(cfg, [inp])
    rc = imp.wait(120)
    err = imp.stderr()
    expect(rc == 1, "import exited %d with Kafka down: %s", rc, err[-600:])
    m = re.search(r"output k: (\d+) records not delivered", err)
    expect(m and int(m.group(1)) == 2000, "the count is not named: %s", err[-800:])
    named = re.findall(r"output=k id=([^ ]+) .*not delivered; kept in", err)
    expect(len(named) >= 1 and set(named) <= set(sent), "no Id named: %s", err[-800:])
    frow = count_row("file", sent, check_lines(out).ids())
    expect(frow.lost == 0 and frow.duplicates == 0, "file output: %d lost, %d duplicates",
           frow.lost, frow.duplicates)
    k.up()
    cmd = replay_command(err)
    cmd[0] = ctx.binary
    expect("--output" in cmd and "k" in cmd, "the replay is not for output k: %s", cmd)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    expect(r.returncode == 0, "the replay exited %d: %s", r.returncode,
           r.stderr.decode()[-600:])
    kids = k.ids("imp")
    frow = count_row("file", sent, check_lines(out).ids())
    expect(frow.duplicates == 0, "the replay doubled the file output (%d)", frow.duplicates)
    row = count_row("import-kafka-down", sent, kids, verdict="reported",
                    note="2000 named and kept, replayed to Kafka only; file 0 duplicates")
    return row


# ---------------------------------------------------------------------------
# SIGTERM with a stuck output

@scenario("sigterm-stuck-output", "issue 11 defect 9, plan §6 row 10")
def sigterm_stuck_output(ctx):
    """run delivering to a file and a Kafka output whose brokers are down:
    SIGTERM ends the agent within flush_timeout (plus the time to stop
    collection), exit 0; what Kafka did not acknowledge was not committed
    and comes at the next start, to Kafka only: 0 lost, 0 duplicates in the
    file."""
    k = ctx.mock_kafka(["st:1"])
    k.down()
    e = emu_blobs(ctx, 10, 50, end="-2h")
    a = run_agent(ctx, e, extra_top=kafka_lines(k.bootstrap, "st", flush_timeout="3s"))
    a.start()
    ids = served(e)
    wait_for(lambda: b"not acknowledged within" in a.all_logs(), 60,
             "a flush that Kafka did not acknowledge")
    t0 = time.monotonic()
    rc = a.terminate(timeout=60)
    took = time.monotonic() - t0
    expect(rc == 0, "SIGTERM exit %d", rc)
    expect(took < 3 + 10, "SIGTERM took %.1fs with flush_timeout 3s", took)
    k.up()
    a.start()
    wait_for(lambda: set(k.ids("st")) >= ids, 120, "every record in Kafka after the restart")
    wait_for(lambda: set(a.read_output().ids()) >= ids, 60, "every record in the file")
    a.terminate()
    file_ids = a.read_output().ids()
    kafka_ids = k.ids("st")
    frow = count_row("file", ids, file_ids)
    krow = count_row("kafka", ids, kafka_ids)
    expect(frow.duplicates == 0, "%d duplicates in the file", frow.duplicates)
    row = count_row("sigterm-stuck-output", ids, [i for i in file_ids if i in set(kafka_ids)],
                    note="stopped in %.1fs; kafka %d duplicates" % (took, krow.duplicates))
    row.lost = frow.lost + krow.lost
    row.duplicates = frow.duplicates + krow.duplicates
    return row


# ---------------------------------------------------------------------------
# plan §6 row 12: the state disk full

@scenario("state-disk-full", "plan §6 row 12")
def state_disk_full(ctx):
    """state_dir on a file system that fills up (spool, state.db): the
    agent says so loudly (errors naming state_dir and the full disk), keeps
    running and does not move the checkpoint; once space is freed
    collection completes: nothing lost, duplicates counted as
    redelivered."""
    fs = ctx.small_fs(1024)
    state = os.path.join(fs, "state")
    e = emu_blobs(ctx, 30, 200, end="-2h")
    a = run_agent(ctx, e, state_dir=state)
    a.start()
    wait_for(lambda: b"is full: " in a.all_logs() or
             b"level=error state: in-flight mark: database or disk is full" in a.all_logs(),
             60, "the full state disk reported as an error")
    expect(a.alive(), "the agent stopped on a full state disk")
    remount(fs, 64 * 1024)
    ids = served(e)
    wait_for(lambda: set(a.read_output().ids()) >= ids, 120, "every record once there is room")
    rc = a.terminate()
    expect(rc == 0, "SIGTERM exit %d", rc)
    redelivered = sum(s.get("redelivered", 0) for s in h.status_streams(a.status()))
    row = count_row("state-disk-full", ids, a.read_output().ids(),
                    note="duplicates <= redelivered (%d)" % redelivered)
    expect(row.duplicates <= redelivered, "%d duplicates, %d counted as redelivered",
           row.duplicates, redelivered)
    return row


@scenario("relp-rsyslog-kill-9", "issue 11 defect 2")
def relp_rsyslog_kill9(ctx):
    """20,000 records over `transport: relp` to rsyslog (imrelp) through a
    proxy that stops forwarding after 256 KiB; rsyslogd is killed with -9
    while import is blocked, started again on the same port, then the proxy
    goes on: every record arrives (a record counts only once rsyslog
    answered it), duplicates bounded by what was sent since the last
    acknowledgement barrier."""
    n = 20000
    rs = ctx.rsyslog_relp()
    proxy = ctx.proxy(rs.port)
    recs = records(n, "rl")
    inp = write_ndjson(os.path.join(ctx.dir, "in.ndjson"), recs)
    cfg = yaml_config(os.path.join(ctx.dir, "m365fwd.yaml"), os.path.join(ctx.dir, "state"),
                      [syslog_out(proxy.port, transport="relp", flush_timeout="60s",
                                  max_in_flight=1000)])
    proxy.hold_after(256 * 1024)
    imp = ctx.imports(cfg, [inp])
    proxy.wait_held(60)
    wait_for(lambda: len(rs.ids()) >= 100, 30, "100 records at rsyslog before the kill")
    expect(not imp.done(), "import ended while the proxy held its stream: %s",
           imp.stderr()[-600:])
    rs.kill9()
    before = len(rs.ids())
    rs.start()
    proxy.resume()
    rc = imp.wait(300)
    with open(os.path.join(ctx.dir, "import.err"), "w") as f:
        f.write(imp.stderr())
    expect(rc == 0, "import exited %d: %s", rc, imp.stderr()[-800:])
    expect(before < n, "import was done before the kill")
    row = count_row("relp-rsyslog-kill-9", [r["Id"] for r in recs], rs.ids(),
                    note="%d at rsyslog before the kill -9, %d RELP sessions" % (
                        before, proxy.stats()["accepted"]))
    # the bound: what was sent since the last barrier (5,000 records) plus
    # the queue (max_in_flight)
    expect(row.duplicates <= 5000 + 1000, "%d duplicates", row.duplicates)
    return row
