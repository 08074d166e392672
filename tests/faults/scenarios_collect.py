"""Fault scenarios of the collection side (issue 11 phase 1): the token
endpoint, the API's answers, clocks, the state directory, the metrics
listener. Each drives `m365fwd run` against the emulator.

Phase 2 (outputs: syslog stall and RELP, disk full, Kafka outage, import
refused records, SIGTERM with a stuck output) goes in scenarios_outputs.py.
"""

import json
import os
import socket
import subprocess
import time
import urllib.request

from faultlib import Row, Skip, expect, h, log_has, scenario, tally, wait_for, gap_names

CT = "Audit.Exchange"
FAST = {"poll_interval": "1s", "max_backoff": "2s", "request_timeout": "5s"}


def content(blobs=4, records=10, span="3h", **kw):
    c = {"blobs": blobs, "records_per_blob": records, "span": span}
    c.update(kw)
    return c


def one_tenant(ctx, blobs=4, records=10, span="3h", emu_kw=None, **sc):
    return ctx.emu(h.scenario([h.tenant(h.T1, {CT: content(blobs, records, span)})],
                              **sc), **(emu_kw or {}))


def agent(ctx, emu, collect=None, **kw):
    coll = dict(FAST)
    coll.update(collect or {})
    return ctx.agent(emu, content_types=[CT], collect=coll, **kw)


def once(a, rc=0, timeout=120, args=()):
    got = a.run_once(timeout=timeout, args=list(args))
    expect(got == rc if rc is not None else got != 0,
           "run --once exited %d (expected %s); log tail:\n%s", got,
           rc if rc is not None else "non-zero", a.last_log()[-1500:])
    return got


def stream_status(a):
    st = a.status()
    for s in h.status_streams(st):
        if s.get("content_type") == CT:
            return st, s
    raise AssertionError("no stream in status: %s" % json.dumps(st)[:500])


def fault(emu, **f):
    return emu.add_faults([f])["ids"][0]


def unfault(emu, fid):
    emu.ctl("DELETE", "/_control/faults?id=%d" % fid)


# ---------------------------------------------------------------------------
# baseline

@scenario("baseline", "plan §6 row 1")
def baseline(ctx):
    """No fault: every record once."""
    e = one_tenant(ctx, blobs=6, records=20)
    a = agent(ctx, e)
    once(a)
    row = tally("baseline", e, a)
    expect(row.lost == 0 and row.duplicates == 0, "baseline lost %d dup %d", row.lost,
           row.duplicates)
    return row


@scenario("api-faults-mixed", "plan §6 row 13")
def api_faults(ctx):
    """500 AF50000, 503, resets before and in the middle of a body, an
    expired token (401), AF429 (403) on the way: all retried, all healed."""
    e = one_tenant(ctx, blobs=6, records=10)
    for f in ({"match": {"route": "content"}, "action": "status", "status": 500,
               "count": 2},
              {"match": {"route": "blob"}, "action": "status", "status": 503, "count": 1},
              {"match": {"route": "blob"}, "action": "reset", "count": 1, "after": 1},
              {"match": {"route": "blob"}, "action": "reset_mid_body", "count": 1,
               "after": 2},
              {"match": {"route": "blob"}, "action": "expire_token", "count": 1,
               "after": 3},
              {"match": {"route": "content"}, "action": "throttle403", "count": 1,
               "after": 3}):
        e.add_faults([f])
    a = agent(ctx, e)
    once(a)
    return tally("api-faults-mixed", e, a, note="6 kinds of API faults")


@scenario("kill-9-mid-delivery", "plan §6 row 9")
def kill9(ctx):
    """kill -9 while blobs are being delivered, then a restart: nothing
    lost, duplicates bounded by the blobs in flight (status: redelivered)."""
    e = one_tenant(ctx, blobs=12, records=40)
    fault(e, match={"route": "blob"}, action="drip", chunk=4000, interval="50ms")
    a = agent(ctx, e, collect={"max_concurrency": 2})
    a.start()
    wait_for(lambda: a.output_lines() >= 80, 60, "records before the kill")
    a.kill9()
    e.ctl("DELETE", "/_control/faults")
    once(a)
    row = tally("kill-9-mid-delivery", e, a)
    _, s = stream_status(a)
    expect(row.duplicates <= s.get("redelivered", 0),
           "%d duplicates but %s counted as redelivered", row.duplicates,
           s.get("redelivered"))
    row.note = "duplicates <= redelivered (%d)" % s.get("redelivered", 0)
    return row


# ---------------------------------------------------------------------------
# defect 1: the token endpoint

@scenario("token-5xx-transient", "issue 11 defect 1")
def token_transient(ctx):
    """503/500 and AADSTS bodies with temporarily_unavailable/server_error
    from the token endpoint: retried with backoff, the run completes."""
    e = one_tenant(ctx)
    for kind, n in (("temporarily_unavailable", 2), ("server_error", 2)):
        fault(e, match={"route": "token"}, action="token_error", kind=kind, count=n)
    fault(e, match={"route": "token"}, action="status", status=503, body="", count=1,
          after=4)
    a = agent(ctx, e)
    once(a)
    log = a.all_logs()
    expect(b"temporarily_unavailable" in log and b"server_error" in log,
           "the token errors are not in the log")
    row = tally("token-5xx-transient", e, a)
    expect(row.lost == 0, "lost %d", row.lost)
    row.note = "5 token errors, then a token"
    return row


@scenario("token-config-error-fixed", "issue 11 defect 1")
def token_config_fixed(ctx):
    """A wrong client secret: reported as a configuration error (log,
    status), retried at the slow cadence; the secret file is fixed while the
    service runs and collection recovers without a restart. Under --once
    the same error exits 1 at once."""
    e = one_tenant(ctx)
    a = agent(ctx, e)
    secret = os.path.join(a.dir, "client.secret")
    h._write_secret(secret, "not-the-secret\n")
    t0 = time.monotonic()
    once(a, rc=1, timeout=60)
    expect(time.monotonic() - t0 < 30, "--once took %.0fs on a configuration error",
           time.monotonic() - t0)
    expect(b"configuration error" in a.all_logs(), "not reported as a configuration error")
    a.start()
    wait_for(lambda: "configuration error" in (stream_status(a)[1].get("last_error") or ""),
             30, "status naming the configuration error")
    expect(a.output_lines() == 0, "records delivered with a wrong secret")
    h._write_secret(secret, h.SECRET + "\n")
    ids = e.visible_ids(h.T1, CT)
    wait_for(lambda: set(a.read_output().ids()) >= ids, 60,
             "collection after the secret was fixed")
    expect(a.alive(), "the service stopped")
    rc = a.terminate()
    expect(rc == 0, "SIGTERM exit %d", rc)
    return tally("token-config-error-fixed", e, a,
                 note="wrong secret reported, fixed in the file, recovered")


@scenario("token-incident-config-like", "issue 11 defect 1")
def token_incident(ctx):
    """Entra ID answers 'no consent' (AADSTS65001) for a while (an incident
    or a consent granted later): reported, retried slowly, recovers when
    the emulator stops answering so."""
    e = one_tenant(ctx)
    fid = fault(e, match={"route": "token"}, action="token_error", kind="no_consent")
    a = agent(ctx, e)
    a.start()
    log_has(a, "AADSTS65001")
    wait_for(lambda: "AADSTS65001" in (stream_status(a)[1].get("last_error") or ""), 30,
             "status naming AADSTS65001")
    unfault(e, fid)
    ids = e.visible_ids(h.T1, CT)
    wait_for(lambda: set(a.read_output().ids()) >= ids, 60, "collection after the incident")
    a.terminate()
    return tally("token-incident-config-like", e, a, note="AADSTS65001 until switched off")


@scenario("token-stall-timeout", "issue 11 defect 1")
def token_stall(ctx):
    """A token endpoint that accepts the connection and never answers: the
    request is given up after request_timeout (2 s), not a fixed minute."""
    e = one_tenant(ctx)
    fault(e, match={"route": "token"}, action="stall", stall_max="120s", count=1)
    a = agent(ctx, e, collect={"request_timeout": "2s"})
    t0 = time.monotonic()
    once(a, timeout=120)
    took = time.monotonic() - t0
    expect(took < 30, "--once took %.0fs with request_timeout 2s", took)
    return tally("token-stall-timeout", e, a, note="done in %.0fs" % took)


# ---------------------------------------------------------------------------
# defect 4: clock skew

def skewed_run(ctx, name, offset, auth):
    """Blobs over the last 3 hours, some listed late; the agent's clock is
    off by offset. Two --once runs with a blob published in between: every
    record arrives, the checkpoint never gets ahead of the API's clock, and
    status reports the skew."""
    prefix = ctx.faketime(offset)
    e = ctx.emu(h.scenario([h.tenant(h.T1, {CT: content(6, 10, "3h", late=2,
                                                         late_delay="20m")})]))
    a = agent(ctx, e, collect={"initial_lookback": "6h"}, auth=auth)
    a.prefix = prefix
    a.env = ctx.faketime_env(ctx.binary)
    once(a, timeout=120)
    e.publish(h.T1, CT, count=1, records=7, created="-30s")
    e.publish(h.T1, CT, count=1, records=5, created="-2m", available="0s")
    once(a, timeout=120)
    st, s = stream_status(a)
    expect(s["checkpoint_ms"] <= e.now() * 1000 + 60000,
           "checkpoint %d is ahead of the API's clock %d", s["checkpoint_ms"], e.now() * 1000)
    skew = st.get("clock_skew") or []
    expect(skew and abs(abs(skew[0]["seconds"]) - 7200) < 120 and skew[0]["warning"],
           "status does not report the skew: %s", json.dumps(st)[:400])
    expect(b"ahead of" in a.all_logs() or b"behind" in a.all_logs(),
           "no skew warning in the log")
    row = tally(name, e, a)
    row.note = "agent clock %s, %s auth; status skew %+d s" % (offset, auth,
                                                               skew[0]["seconds"])
    return row


@scenario("clock-ahead-2h", "issue 11 defect 4", needs=("faketime",))
def clock_ahead(ctx):
    """The agent's clock 2 h ahead (faketime), certificate auth: blobs
    listed late are collected, the checkpoint never gets ahead of the
    API's clock, status and the log report the skew."""
    return skewed_run(ctx, "clock-ahead-2h", "+2h", "certificate")


@scenario("clock-behind-2h", "issue 11 defect 4", needs=("faketime",))
def clock_behind(ctx):
    """The agent's clock 2 h behind, secret auth: the same."""
    return skewed_run(ctx, "clock-behind-2h", "-2h", "secret")


# ---------------------------------------------------------------------------
# defect 5: one agent per state_dir

@scenario("two-agents-one-state-dir", "issue 11 defect 5")
def two_agents(ctx):
    """A second agent on the state_dir of a running one exits non-zero,
    naming the directory and the first one's PID; nothing is delivered
    twice."""
    e = one_tenant(ctx)
    a = agent(ctx, e)
    a.start()
    ids = e.visible_ids(h.T1, CT)
    wait_for(lambda: set(a.read_output().ids()) >= ids, 60, "the first agent's delivery")
    b = ctx.agent(e, sub="agent", content_types=[CT], collect=dict(FAST))
    rc = b.run_once(timeout=60)
    log = b.all_logs().decode("utf-8", "replace")
    expect(rc != 0, "the second agent exited 0")
    expect(a.state_dir in log and str(a.proc.pid) in log,
           "the refusal does not name the directory and PID %d: %s", a.proc.pid, log[-400:])
    a.terminate()
    row = tally("two-agents-one-state-dir", e, a, verdict="reported",
                note="second agent refused: exit %d" % rc)
    expect(row.duplicates == 0, "%d duplicates", row.duplicates)
    return row


# ---------------------------------------------------------------------------
# defect 8: unbounded inputs

@scenario("gzip-bomb-blob", "issue 11 defect 8")
def gzip_bomb(ctx):
    """A blob that inflates to 32 MiB with collect.max_blob_size 1MiB: a gap
    naming its contentId, the other blobs delivered, --once exits 1, the
    spool never holds more than the cap."""
    e = one_tenant(ctx, blobs=4)
    victim = e.content(h.T1, CT)[1]["contentId"]
    fault(e, match={"route": "blob", "contentId": victim}, action="gzip_bomb",
          size=32 << 20)
    try:
        # the state (and its spool) on 16 MiB: the bomb alone would fill it
        state_dir = os.path.join(ctx.small_fs(16384), "state")
        where = "state_dir on a 16 MiB tmpfs"
    except Skip as why:
        state_dir, where = None, "state_dir on the test disk (%s)" % why
    a = agent(ctx, e, collect={"max_blob_size": "1MiB"}, state_dir=state_dir)
    once(a, rc=1)
    out = a.read_output()
    expect(gap_names(out.gaps, victim), "no gap event names %s", victim)
    return tally("gzip-bomb-blob", e, a, reported_blobs=[victim], verdict="reported",
                 note="1 blob over max_blob_size reported as a gap; %s" % where)


@scenario("retry-after-one-day", "issue 11 defect 8")
def retry_after(ctx):
    """429 with Retry-After: 86400: honoured up to collect.max_retry_after
    (3 s here), so collection goes on the same minute."""
    e = one_tenant(ctx)
    fault(e, match={"route": "content"}, action="throttle429", retry_after=86400, count=1)
    a = agent(ctx, e, collect={"max_retry_after": "3s"})
    t0 = time.monotonic()
    once(a, timeout=90, args=["--timeout", "60"])
    expect(b"max_retry_after" in a.all_logs(), "the cut Retry-After is not logged")
    return tally("retry-after-one-day", e, a, note="done in %.0fs" % (time.monotonic() - t0))


@scenario("nextpage-loop", "issue 11 defect 8")
def nextpage_loop(ctx):
    """A NextPageUri that points to the page just listed, for as long as the
    fault is on: detected and reported, retried with backoff (no request
    storm), never taken for the last page; collection completes once the
    service behaves."""
    e = ctx.emu(h.scenario([h.tenant(h.T1, {CT: content(8, 5)})], page_size=2))
    fid = fault(e, match={"route": "content"}, action="nextpage_repeat")
    a = agent(ctx, e)
    a.start()
    log_has(a, "repeats a page")
    n0 = e.requests_matching("GET content")
    t0 = time.monotonic()
    wait_for(lambda: time.monotonic() - t0 >= 4, 10, "4 s with the loop on")
    n1 = e.requests_matching("GET content")
    expect(n1 - n0 <= 12, "%d listing requests in 4 s during the loop", n1 - n0)
    expect(a.output_lines() <= 2 * 5, "delivered beyond the first page during the loop")
    unfault(e, fid)
    ids = e.visible_ids(h.T1, CT)
    wait_for(lambda: set(a.read_output().ids()) >= ids, 60, "collection after the loop")
    a.terminate()
    return tally("nextpage-loop", e, a, note="%d listings in 4 s of loop" % (n1 - n0))


@scenario("nextpage-long", "issue 11 defect 8")
def nextpage_long(ctx):
    """NextPageUris of 6000 bytes are followed; one of 20000 bytes (beyond
    what a request carries) is reported and never taken for the last page."""
    e = ctx.emu(h.scenario([h.tenant(h.T1, {CT: content(8, 5)})], page_size=2))
    fid = fault(e, match={"route": "content"}, action="nextpage_long", length=6000)
    a = agent(ctx, e)
    once(a)
    row = tally("nextpage-long", e, a)
    expect(row.lost == 0, "lost %d records behind long NextPageUris", row.lost)
    unfault(e, fid)
    # a new blob, and a NextPageUri too long to follow: loud, no checkpoint
    # beyond the unlisted pages
    e.publish(h.T1, CT, count=3, records=4, created="-10s")
    fid = fault(e, match={"route": "content"}, action="nextpage_long", length=20000)
    once(a, rc=None, timeout=60, args=["--timeout", "8"])
    expect(b"NextPageUri of" in a.all_logs(), "the too-long NextPageUri is not reported")
    unfault(e, fid)
    once(a)
    return tally("nextpage-long", e, a, note="6000-byte pages followed; a 20000-byte one reported")


@scenario("slow-blob-progressing", "issue 11 defect 8")
def slow_blob(ctx):
    """Every blob trickles out over several times request_timeout (2 s) but
    keeps progressing: no abort, each blob fetched once."""
    e = one_tenant(ctx, blobs=2, records=30)
    fault(e, match={"route": "blob"}, action="drip", chunk=1500, interval="300ms")
    a = agent(ctx, e, collect={"request_timeout": "2s"})
    t0 = time.monotonic()
    once(a, timeout=120, args=["--timeout", "90"])
    aborted = e.requests_matching("blob io-error") + e.requests_matching("blob reset")
    row = tally("slow-blob-progressing", e, a)
    row.note = "done in %.0fs, %d aborted downloads" % (time.monotonic() - t0, aborted)
    expect(aborted == 0, "%d downloads aborted although progressing", aborted)
    return row


@scenario("stalled-blob", "issue 11 defect 8")
def stalled_blob(ctx):
    """A blob whose body stops half-way: abandoned after request_timeout (2 s)
    of no progress, fetched again; a blob dripped out forever is cut by
    transfer_timeout (6 s) and fetched again."""
    e = one_tenant(ctx, blobs=3, records=20)
    blobs = e.content(h.T1, CT)
    fault(e, match={"route": "blob", "contentId": blobs[0]["contentId"]}, action="drip",
          chunk=100, interval="10ms", stall_after=300, stall_max="300s", count=1)
    fault(e, match={"route": "blob", "contentId": blobs[1]["contentId"]}, action="drip",
          chunk=10, interval="200ms", count=1)
    a = agent(ctx, e, collect={"request_timeout": "2s", "transfer_timeout": "6s"})
    t0 = time.monotonic()
    once(a, timeout=120, args=["--timeout", "60"])
    took = time.monotonic() - t0
    row = tally("stalled-blob", e, a)
    expect(took < 40, "took %.0fs", took)
    row.note = "stall cut by request_timeout, drip by transfer_timeout (%.0fs)" % took
    return row


# ---------------------------------------------------------------------------
# defect 9: smaller ones

@scenario("blob-404-then-ok", "issue 11 defect 9")
def blob_404(ctx):
    """A listed blob answers 404 (AF20050) twice before it can be fetched:
    retried, delivered, no gap."""
    e = one_tenant(ctx)
    victim = e.content(h.T1, CT)[0]["contentId"]
    fault(e, match={"route": "blob", "contentId": victim}, action="not_found", count=2)
    a = agent(ctx, e)
    once(a)
    row = tally("blob-404-then-ok", e, a)
    expect(not row.gaps, "a gap was reported for a blob that came back: %s",
           json.dumps(row.gaps)[:300])
    row.note = "two 404 answers, then delivered"
    return row


@scenario("blob-404-for-good", "issue 11 defect 9")
def blob_404_for_good(ctx):
    """A blob that keeps answering 404: retried across at least a poll
    interval, then a gap naming it; the rest is delivered."""
    e = one_tenant(ctx)
    victim = e.content(h.T1, CT)[2]["contentId"]
    fault(e, match={"route": "blob", "contentId": victim}, action="not_found")
    a = agent(ctx, e, collect={"poll_interval": "3s"})
    once(a)
    n404 = e.requests_matching("blob 404")
    expect(n404 >= 5, "only %d attempts before the gap", n404)
    row = tally("blob-404-for-good", e, a, reported_blobs=[victim], verdict="reported",
                note="%d attempts, then a gap naming the blob" % n404)
    expect(gap_names(row.gaps, victim), "no gap names %s", victim)
    return row


@scenario("quarantine-exit-status", "issue 11 defect 9")
def quarantine(ctx):
    """A blob that stays unreadable: its readable records delivered, the
    blob kept in state_dir/quarantine, a gap event, --once exits 1; the
    documented replay (`m365fwd import`) reads the quarantined file."""
    e = one_tenant(ctx, blobs=3)
    victim = e.content(h.T1, CT)[1]["contentId"]
    fault(e, match={"route": "blob", "contentId": victim}, action="malformed")
    a = agent(ctx, e)
    once(a, rc=1)
    log = a.all_logs()
    expect(b"quarantined" in log, "--once does not say records were quarantined")
    qdir = os.path.join(a.state_dir, "quarantine")
    files = os.listdir(qdir) if os.path.isdir(qdir) else []
    expect(len(files) == 1, "quarantine holds %s", files)
    row = tally("quarantine-exit-status", e, a, reported_blobs=[victim], verdict="reported",
                note="1 blob quarantined (9 of 10 records readable), exit 1; import "
                "replays 9")
    expect(gap_names(row.gaps, victim), "no gap event names %s", victim)
    # the documented replay: import sends the readable records again and
    # names the unreadable one (exit 1)
    before = a.output_lines()
    r = subprocess.run([ctx.binary, "import", "-c", a.cfg, "--tenant", "t1",
                        os.path.join(qdir, files[0])], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    replayed = a.output_lines() - before
    expect(r.returncode == 1 and replayed == 9,
           "import of the quarantined blob: exit %d, %d records: %s", r.returncode,
           replayed, r.stderr[-300:])
    return row


@scenario("inflight-db-damaged", "issue 11 defect 9")
def inflight_damaged(ctx):
    """inflight.db overwritten with garbage: reported under its own name,
    set aside, collection goes on; status shows it."""
    e = one_tenant(ctx)
    a = agent(ctx, e)
    once(a)
    with open(os.path.join(a.state_dir, "inflight.db"), "wb") as f:
        f.write(b"this is not a database" * 200)
    for suffix in ("-wal", "-shm"):
        p = os.path.join(a.state_dir, "inflight.db" + suffix)
        if os.path.exists(p):
            os.unlink(p)
    e.publish(h.T1, CT, count=2, records=6, created="-10s")
    once(a)
    expect(b"inflight.db was damaged" in a.all_logs(), "the damage is not named in the log")
    st = a.status()
    expect("inflight.db" in json.dumps(st.get("state", {})),
           "status does not show the damaged inflight.db: %s", json.dumps(st)[:400])
    return tally("inflight-db-damaged", e, a, note="set aside, started empty")


@scenario("state-reset", "issue 11 defect 9")
def state_reset(ctx):
    """A state.db deleted between two runs: the reset is logged and shown
    by status (records of the lookback come again: counted duplicates)."""
    e = one_tenant(ctx)
    a = agent(ctx, e)
    once(a)
    expect(b"new state" in a.all_logs(), "a new state is not logged")
    for n in ("state.db", "state.db-wal", "state.db-shm"):
        p = os.path.join(a.state_dir, n)
        if os.path.exists(p):
            os.unlink(p)
    once(a)
    expect(b"the state was reset" in a.all_logs(), "the reset is not logged")
    st = a.status()
    expect((st.get("state") or {}).get("reset_at"), "status does not show the reset: %s",
           json.dumps(st)[:400])
    return tally("state-reset", e, a, verdict="reported",
                 note="reset logged and in status; lookback delivered again")


@scenario("metrics-idle-connections", "issue 11 defect 9")
def metrics_idle(ctx):
    """40 idle connections to the metrics listener: /healthz still answers;
    a listener beyond loopback is warned about."""
    e = one_tenant(ctx)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    a = agent(ctx, e, extra_top=["metrics:", "  enabled: true",
                                 "  listen: \"0.0.0.0:%d\"" % port])
    a.start()
    log_has(a, "metrics: serving")
    idle = []
    try:
        for _ in range(40):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(c)
        t0 = time.monotonic()
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=10) as r:
            code = r.status
        took = time.monotonic() - t0
    finally:
        for c in idle:
            c.close()
    expect(code == 200, "/healthz answered %d", code)
    expect(took < 5, "/healthz took %.1fs behind idle connections", took)
    expect(b"beyond loopback" in a.all_logs(), "no warning for a listener on 0.0.0.0")
    ids = e.visible_ids(h.T1, CT)
    wait_for(lambda: set(a.read_output().ids()) >= ids, 60, "delivery")
    a.terminate()
    return tally("metrics-idle-connections", e, a, note="/healthz in %.2fs with 40 idle connections" % took)


@scenario("url-credentials-hidden", "issue 11 defect 9")
def url_credentials(ctx):
    """Credentials in a URL (configuration, proxy environment) never appear
    in an error or a log line."""
    e = one_tenant(ctx)
    a = agent(ctx, e, tenant_overrides={})
    with open(a.cfg) as f:
        text = f.read()
    bad = text.replace('api_endpoint: "https://', 'api_endpoint: "https://apiuser:ApiPw-7q@')
    bad_cfg = os.path.join(a.dir, "bad.yaml")
    with open(bad_cfg, "w") as f:
        f.write(bad)
    r = subprocess.run([ctx.binary, "run", "-c", bad_cfg, "--once"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    expect(r.returncode != 0, "a URL with credentials was accepted")
    expect(b"ApiPw-7q" not in r.stdout + r.stderr, "the URL password is in the error: %s",
           r.stderr[-300:])
    env = dict(os.environ, HTTPS_PROXY="http://proxyuser:ProxyPw-3z@127.0.0.1:9",
               https_proxy="http://proxyuser:ProxyPw-3z@127.0.0.1:9")
    a.env = env
    once(a, rc=None, timeout=60, args=["--timeout", "5"])
    logs = a.all_logs()
    expect(b"ProxyPw-3z" not in logs, "the proxy password is in the log")
    a.env = None
    once(a)
    return tally("url-credentials-hidden", e, a, note="no password in errors or logs")


@scenario("not-dumpable", "issue 11 defect 9")
def not_dumpable(ctx):
    """The running agent is not dumpable (no token in a core file): its
    /proc entries belong to root even when it runs as another user."""
    import shutil
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv to run the agent as another user")
    e = one_tenant(ctx)
    a = agent(ctx, e)
    os.chmod(ctx.dir, 0o755)
    for root, dirs, files in os.walk(ctx.dir):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o777)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    h._write_secret(os.path.join(a.dir, "client.secret"), h.SECRET + "\n")
    os.chown(os.path.join(a.dir, "client.secret"), 65534, 65534)
    os.chown(os.path.join(a.dir, "client.key"), 65534, 65534)
    a.prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    os.chmod(os.path.dirname(h.Certs.get()["ca"]), 0o755)
    a.start()
    log_has(a, "collecting from")
    st = os.stat("/proc/%d/status" % a.proc.pid)
    a.terminate()
    expect(st.st_uid == 0, "/proc/PID/status of the agent (uid 65534) is owned by %d: "
           "the process is dumpable", st.st_uid)
    row = Row("not-dumpable", verdict="healed", note="/proc entries owned by root")
    return row
