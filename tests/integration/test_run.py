#!/usr/bin/env python3
"""Integration tests of `m365fwd run` / `status` against the emulator.

Usage: test_run.py M365FWD_BINARY [unittest args]
Exit 77 (skip) when the emulator cannot run (no openssl) or the binary has
no `run` command yet. Every test starts its own emulator (ephemeral ports)
and its own agent state; every test compares the Ids the agent delivered
(file output, schema raw) with the Ids the emulator served.

Environment: MF_INTEG_SEED (seed of the kill -9 loop, default 20261128),
MF_INTEG_KEEP=1 keeps the temp dirs, MF_INTEG_KILLS (default 12).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import harness as h  # noqa: E402

BINARY = None
SEED = int(os.environ.get("MF_INTEG_SEED", "20261128"))
KILLS = int(os.environ.get("MF_INTEG_KILLS", "12"))
DAY = 86400


def ct_content(blobs, records, span="20h", **kw):
    c = {"blobs": blobs, "records_per_blob": records, "span": span}
    c.update(kw)
    return c


class RunTestCase(unittest.TestCase):
    """One temp dir, emulators and agents that are cleaned up."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="m365fwd-integ-%s-" %
                                    self._testMethodName)
        self.emus = []
        self.agents = []

    def tearDown(self):
        for a in self.agents:
            a.stop_if_running()
        for e in self.emus:
            e.stop()
        # secrets never reach a log (issue 3 §3, reliability.md §4.1)
        certs = h.Certs.get()
        with open(certs["client_key"], "rb") as f:
            key_body = f.read().split(b"\n")[1]
        for a in self.agents:
            logs = a.all_logs()
            self.assertNotIn(h.SECRET.encode(), logs,
                             "client secret found in agent log")
            self.assertNotIn(key_body, logs, "private key found in agent log")
        if os.environ.get("MF_INTEG_KEEP"):
            sys.stderr.write("  [kept %s]\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers
    def emu(self, sc, **kw):
        e = h.Emulator(sc, os.path.join(self.tmp, "emu%d" % len(self.emus)),
                       **kw)
        self.emus.append(e)
        return e

    def agent(self, emu, sub="agent", **kw):
        a = h.Agent(BINARY, os.path.join(self.tmp, sub), emu, **kw)
        self.agents.append(a)
        return a

    def once_ok(self, agent, timeout=120):
        rc = agent.run_once(timeout=timeout)
        self.assertEqual(rc, 0, "run --once exited %d; log tail:\n%s"
                         % (rc, agent.last_log()))

    def compare(self, emu, agent, tenant=None, ct=None, allow_dups=0,
                visible_tenants=None, label=""):
        """Served vs delivered; also: every visible blob was served."""
        out = agent.read_output()
        served = emu.served_ids(tenant, ct)
        cmp = h.Compare(served, out.ids())
        sys.stderr.write("  %s%s\n" % (label and label + ": ", cmp.summary()))
        self.assertEqual(out.bad, [], "output lines that are not objects")
        self.assertEqual(cmp.missing, [], "served but never delivered (%d): %s"
                         % (len(cmp.missing), cmp.missing[:5]))
        self.assertEqual(cmp.extra, [], "delivered but never served: %s"
                         % cmp.extra[:5])
        self.assertLessEqual(cmp.duplicates, allow_dups,
                             "duplicate deliveries: %s" % cmp.dup_ids[:5])
        for t in visible_tenants or []:
            vis = emu.visible_ids(t, ct)
            not_served = vis - served
            self.assertEqual(not_served, set(),
                             "%d visible records of %s never fetched"
                             % (len(not_served), t))
        return cmp, out

    def stream(self, st, tenant_id, name, ct):
        for s in h.status_streams(st):
            if s.get("tenant") in (tenant_id, name) and \
                    s.get("content_type") == ct:
                return s
        self.fail("status has no stream %s/%s: %s"
                  % (name, ct, json.dumps(st)[:800]))

    def wait_ids(self, agent, ids, timeout, what="ids delivered"):
        ids = set(ids)

        def done():
            if not agent.alive():
                raise AssertionError("agent exited (%s) while waiting for %s:"
                                     "\n%s" % (agent.proc.returncode, what,
                                               agent.last_log()))
            return ids <= set(agent.read_output().ids())
        h.wait_for(done, timeout, what, interval=0.1)


# --------------------------------------------------------------------------

class TestCollect(RunTestCase):

    def test_paging_five_pages(self):
        sc = h.scenario([h.tenant(h.T1, {"Audit.Exchange":
                                         ct_content(20, 5, "6h")})],
                        page_size=3)
        e = self.emu(sc)
        a = self.agent(e, content_types=["Audit.Exchange"])
        self.once_ok(a)
        cmp, _ = self.compare(e, a, h.T1, visible_tenants=[h.T1])
        self.assertEqual(len(cmp.served), 100)
        pages = e.requests_matching("GET content 200")
        self.assertGreaterEqual(pages, 7, "expected >= 7 listing pages")
        self.assertEqual(e.counter("missing_publisher:content"), 0,
                         "NextPageUri followed without PublisherIdentifier")
        s = self.stream(a.status(), h.T1, "t1", "Audit.Exchange")
        self.assertEqual(s.get("records_delivered"), 100, s)
        self.assertEqual(s.get("blobs_delivered"), 20, s)
        # a second --once finds nothing new and delivers nothing twice
        self.once_ok(a)
        self.compare(e, a, h.T1, label="second --once")

    def test_three_tenants_five_types(self):
        tenants = []
        for tid, quota in ((h.T1, 2000), (h.T2, 600), (h.T3, 120)):
            content = {ct: ct_content(6, 10) for ct in h.ALL_CT}
            content["Audit.Exchange"]["duplicates"] = 2
            tenants.append(h.tenant(tid, content, quota_per_minute=quota))
        e = self.emu(h.scenario(tenants, page_size=4, seed=3))
        a = self.agent(e, tenants=[h.T1, h.T2, h.T3])
        self.once_ok(a, timeout=180)
        self.compare(e, a, visible_tenants=[h.T1, h.T2, h.T3])
        st = a.status()
        for i, tid in enumerate((h.T1, h.T2, h.T3)):
            for ct in h.ALL_CT:
                s = self.stream(st, tid, "t%d" % (i + 1), ct)
                served = e.served(tid, ct)["unique_ids"]
                self.assertGreater(served, 0)
                self.assertEqual(s.get("records_delivered"), served,
                                 "%s %s: %s" % (tid, ct, s))
        self.assertEqual(e.counter("throttled_quota"), 0)

    def test_throttling_storm(self):
        sc = h.scenario([h.tenant(h.T1, {
            "Audit.Exchange": ct_content(10, 5),
            "Audit.SharePoint": ct_content(10, 5)})], page_size=4)
        e = self.emu(sc)
        # the agent pauses the tenant 1-10 s per AF429 without Retry-After:
        # keep the storm short enough for the suite
        e.add_faults([
            {"match": {"routes": ["content", "blob"]}, "action": "throttle403",
             "count": 3},
            {"match": {"routes": ["content", "blob", "list"]},
             "action": "throttle429", "count": 2},
            {"match": {"routes": ["content", "blob"]}, "action": "throttle429",
             "retry_after": 1, "count": 3},
            {"match": {"route": "blob"}, "action": "throttle403",
             "probability": 0.2, "count": 2}])
        a = self.agent(e, content_types=["Audit.Exchange", "Audit.SharePoint"])
        t0 = time.monotonic()
        self.once_ok(a, timeout=150)
        sys.stderr.write("  throttled run took %.1fs\n"
                         % (time.monotonic() - t0))
        self.compare(e, a, visible_tenants=[h.T1])
        for f in e.faults()[:3]:
            self.assertEqual(f.get("count"), 0, "fault not consumed: %s" % f)

    def test_5xx_bursts_resets_truncation(self):
        sc = h.scenario([h.tenant(h.T1, {
            "Audit.General": ct_content(12, 8),
            "DLP.All": ct_content(6, 3)})], page_size=5)
        e = self.emu(sc)
        e.add_faults([
            {"match": {"route": "token"}, "action": "status", "status": 500,
             "count": 1},
            {"match": {"route": "content"}, "action": "status", "status": 500,
             "code": "AF50000", "count": 3},
            {"match": {"route": "content"}, "action": "status", "status": 503,
             "count": 2, "after": 1},
            {"match": {"route": "blob"}, "action": "status", "status": 503,
             "count": 3},
            {"match": {"route": "any"}, "action": "status", "status": 408,
             "count": 2},
            {"match": {"route": "blob"}, "action": "status", "status": 500,
             "code": "AF50005", "count": 2},
            {"match": {"route": "blob"}, "action": "reset", "count": 2},
            {"match": {"route": "blob"}, "action": "reset_mid_body",
             "count": 2}])
        a = self.agent(e, content_types=["Audit.General", "DLP.All"])
        self.once_ok(a, timeout=150)
        # a truncated or reset blob must not leave records in the output that
        # the retry then delivers again
        self.compare(e, a, visible_tenants=[h.T1])
        left = [f for f in e.faults() if f.get("count")]
        self.assertEqual(left, [], "faults never hit")

    def test_truncated_blob_body(self):
        """200 with the JSON cut off: retried (or quarantined loudly), never
        half-delivered with exit 0."""
        ct = "DLP.All"
        sc = h.scenario([h.tenant(h.T1, {ct: ct_content(4, 3)})])
        e = self.emu(sc)
        e.add_faults([{"match": {"route": "blob"}, "action": "malformed",
                       "count": 1}])
        a = self.agent(e, content_types=[ct])
        rc = a.run_once()
        out = a.read_output()
        vis = e.visible_ids(h.T1, ct)
        cmp = h.Compare(vis, out.ids())
        sys.stderr.write("  exit %d; visible vs delivered: %s\n"
                         % (rc, cmp.summary()))
        if rc == 0:
            self.assertEqual(cmp.missing, [], "exit 0 but %d records of the "
                             "truncated blob never delivered (log: %s)"
                             % (len(cmp.missing), a.last_log()[-600:]))
            self.assertEqual(cmp.duplicates, 0)
        else:
            s = self.stream(a.status(), h.T1, "t1", ct)
            self.assertTrue(s.get("last_error"), s)

    def test_token_expiry_mid_run(self):
        sc = h.scenario([h.tenant(h.T1, {"Audit.Exchange":
                                         ct_content(5, 5)})])
        e = self.emu(sc)
        a = self.agent(e, content_types=["Audit.Exchange"])
        a.start()
        self.wait_ids(a, e.visible_ids(h.T1), 60, "initial content")
        issued = e.counter("tokens_issued")
        self.assertGreaterEqual(issued, 1)
        e.expire_tokens()
        e.add_faults([{"match": {"route": "blob"}, "action": "expire_token",
                       "count": 1}])
        new = []
        for b in e.publish(h.T1, "Audit.Exchange", count=3, records=4,
                           created="0s"):
            new += b["ids"]
        self.wait_ids(a, new, 60, "blobs published after token expiry")
        self.assertEqual(a.terminate(), 0)
        self.assertGreater(e.counter("tokens_issued"), issued,
                           "no new token after forced expiry")
        self.assertGreaterEqual(e.counter("rejected_tokens"), 1)
        self.compare(e, a, visible_tenants=[h.T1])

    def test_tenant_accepted_domains(self):
        """run: a tenant's `domains` decide whether forwarding leaves the
        organization (a partner admin forwarding to their own domain)."""
        sc = h.scenario([h.tenant(h.T1, {"Audit.Exchange": ct_content(1, 1, "1h")})])
        e = self.emu(sc)
        a = self.agent(e, content_types=["Audit.Exchange"],
                       tenant_overrides={"domains": "[contoso.com, contoso.onmicrosoft.com]"})
        rec = {"CreationTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(e.now() - 60)),
               "Id": "5e6f7a8b-0000-4000-8000-00000000d001", "Operation": "Set-Mailbox",
               "OrganizationId": h.T1, "RecordType": 1, "ResultStatus": "True",
               "UserType": 2, "Workload": "Exchange", "UserId": "tech@partner.example",
               "Parameters": [{"Name": "Identity", "Value": "ceo@contoso.com"},
                              {"Name": "ForwardingSmtpAddress",
                               "Value": "smtp:drop@partner.example"}]}
        e.publish(h.T1, "Audit.Exchange", record_list=[rec], created="-30s")
        self.once_ok(a)
        got = [r for r in a.read_output().records if r.get("Id") == rec["Id"]]
        self.assertEqual(len(got), 1, "the published record delivered once")
        self.assertEqual(got[0]["m365fwd"]["tags"], ["behavior.mailbox_smtp_forwarding"])
        self.assertEqual(got[0]["m365fwd"]["severity"], 5,
                         "partner.example is outside the tenant's domains")

    def test_late_and_duplicate_records(self):
        sc = h.scenario([h.tenant(h.T1, {"Audit.SharePoint": ct_content(
            8, 5, "6h", duplicates=3)})])
        e = self.emu(sc)
        a = self.agent(e, content_types=["Audit.SharePoint"],
                       collect={"overlap": "1h", "dedupe_horizon": "24h"})
        self.once_ok(a)
        self.compare(e, a, visible_tenants=[h.T1], label="first pass")
        first = e.content(h.T1, "Audit.SharePoint")[0]
        # late: created 30 min ago (inside the window already listed),
        # available only now; a blob re-serving 3 delivered records; a blob
        # whose records are hours older than the blob
        e.publish(h.T1, "Audit.SharePoint", records=5, created="-30m")
        e.publish(h.T1, "Audit.SharePoint", records=2, created="-20m",
                  duplicate_of=[{"contentId": first["contentId"],
                                 "indexes": [0, 1, 2]}])
        e.publish(h.T1, "Audit.SharePoint", records=4, created="-10m",
                  age="5h")
        self.once_ok(a)
        cmp, _ = self.compare(e, a, visible_tenants=[h.T1],
                              label="after late blobs")
        served = e.served(h.T1, "Audit.SharePoint")
        redundant = served["records_served"] - served["unique_ids"]
        self.assertGreaterEqual(redundant, 6,
                                "scenario should serve >= 6 duplicate records")
        s = self.stream(a.status(), h.T1, "t1", "Audit.SharePoint")
        self.assertGreaterEqual(s.get("duplicates", 0), 6,
                                "status should count dropped duplicates: %s"
                                % s)

    def test_aggregate_spray_split_by_restart(self):
        """A spray whose records come in two blobs, fetched by two runs (a
        restart between): one finding, after the second run; the windows
        are kept in state_dir; a third run adds nothing."""
        sc = h.scenario([h.tenant(h.T1, {"Audit.AzureActiveDirectory": ct_content(1, 2)})])
        e = self.emu(sc)
        a = self.agent(e, content_types=["Audit.AzureActiveDirectory"])
        self.once_ok(a)

        def failures(first, n):
            return [{"CreationTime": "2026-03-02T10:00:%02d" % i,
                     "Id": "5f000000-0000-4000-8000-0000000000%02d" % i,
                     "Operation": "UserLoginFailed", "OrganizationId": h.T1,
                     "RecordType": 15, "ResultStatus": "Failed", "UserType": 0,
                     "Workload": "AzureActiveDirectory", "ClientIP": "203.0.113.66",
                     "UserId": "u%d@contoso.com" % i, "ErrorNumber": "50126"}
                    for i in range(first, first + n)]

        e.publish(h.T1, "Audit.AzureActiveDirectory", record_list=failures(0, 3),
                  created="-20m")
        self.once_ok(a)
        self.assertEqual(a.read_output().findings, [])
        self.assertTrue(os.path.exists(os.path.join(a.state_dir, "aggregates.state")))
        e.publish(h.T1, "Audit.AzureActiveDirectory", record_list=failures(3, 3),
                  created="-10m")
        self.once_ok(a)
        found = [f["m365fwd"]["finding"] for f in a.read_output().findings]
        self.assertEqual([f["rule"] for f in found], ["identity.password_spray/one_source"],
                         found)
        self.assertEqual(found[0]["tenant"], h.T1)
        self.assertEqual(found[0]["count"], 5)
        self.once_ok(a)
        self.assertEqual(len(a.read_output().findings), 1)
        self.compare(e, a, label="records")

    def test_af20055_gap_event(self):
        ct = "Audit.General"
        sc = h.scenario([h.tenant(h.T1, {ct: ct_content(17, 4, "8d")})])
        e = self.emu(sc)
        a = self.agent(e, content_types=[ct],
                       collect={"initial_lookback": "1h"})
        self.once_ok(a)
        self.assertEqual(a.read_output().gaps, [])
        # the agent was "down" for 8 days: its checkpoint is 8 days old
        now_ms = int(time.time() * 1000)
        self.assertGreaterEqual(a.set_checkpoint(now_ms - 8 * DAY * 1000, ct),
                                1, "no stream row to rewrite in state.db")
        self.once_ok(a)
        out = a.read_output()
        sys.stderr.write("  gap events: %s\n" % json.dumps(out.gaps)[:600])
        self.assertGreaterEqual(len(out.gaps), 1, "no collection-gap event")
        for g in out.gaps:
            self.assertEqual(g.get("Workload"), "m365fwd", g)
            self.assertEqual(g.get("Operation"), "CollectionGap", g)
            self.assertIn(h.GAP_TAG, g["m365fwd"]["tags"], g)
        # everything still fetchable was fetched: blobs created after
        # now - 7d + 2h (safety margin) were all delivered
        cmp, _ = self.compare(e, a, label="after gap")
        recent = e.visible_ids(h.T1, ct, since=time.time() - 7 * DAY + 7200)
        self.assertEqual(recent - cmp.delivered, set(),
                         "records still inside the 7-day retention missed")
        s = self.stream(a.status(), h.T1, "t1", ct)
        self.assertTrue(s.get("gaps"), "status shows no gap: %s" % s)
        sys.stderr.write("  status gaps: %s; AF20055 answers seen: %d\n"
                         % (json.dumps(s.get("gaps"))[:300],
                            e.counter("time_errors")))

    def test_certificate_auth_rs256(self):
        sc = h.scenario([h.tenant(h.T1, {
            "Audit.AzureActiveDirectory": ct_content(4, 5),
            "Audit.Exchange": ct_content(4, 5)})])
        # only the certificate is registered: a secret cannot succeed
        sc["clients"] = [{"client_id": h.APP, "certificates": ["@client_cert"]}]
        e = self.emu(sc)
        a = self.agent(e, auth="certificate",
                       content_types=["Audit.AzureActiveDirectory",
                                      "Audit.Exchange"])
        self.once_ok(a)
        self.compare(e, a, visible_tenants=[h.T1])
        self.assertGreaterEqual(e.counter("assertion_ok:RS256"), 1,
                                e.stats()["counters"])
        self.assertEqual(e.counter("assertion_rejected"), 0)


class TestLifecycle(RunTestCase):

    def test_kill9_loop(self):
        rng = random.Random(SEED)
        sys.stderr.write("  seed %d, %d kills\n" % (SEED, KILLS))
        cts = ["Audit.Exchange", "Audit.SharePoint", "Audit.AzureActiveDirectory"]
        rpb, conc = 20, 4
        sc = h.scenario([h.tenant(h.T1, {ct: ct_content(30, rpb)
                                         for ct in cts})],
                        latency="15ms", page_size=10, seed=SEED % 1000)
        e = self.emu(sc)
        a = self.agent(e, content_types=cts,
                       collect={"max_concurrency": conc})
        moments = []
        for i in range(KILLS):
            # new content for this round, some of it while the agent runs
            for ct in rng.sample(cts, 2):
                e.publish(h.T1, ct, count=rng.randint(1, 3), records=rpb,
                          created="0s")
            base = a.output_lines()
            pending = len(set().union(*(e.visible_ids(h.T1, ct) for ct in cts))
                          - set(a.read_output().ids()))
            k = rng.choice([0, 0, rng.randint(1, max(1, pending // 4)),
                            rng.randint(1, max(1, pending - 1))])
            a.start()
            if rng.random() < 0.5:
                e.publish(h.T1, rng.choice(cts), count=2, records=rpb,
                          created="0s")
            if k == 0:
                # early: after the r-th API/token request of this start
                # (token, subscriptions, listing, first blobs)
                r = rng.randint(1, 8)
                r0 = sum(e.stats()["requests"].values())
                try:
                    h.wait_for(lambda: sum(e.stats()["requests"].values())
                               >= r0 + r or not a.alive(), 20,
                               "%d requests" % r, interval=0.01)
                except TimeoutError:
                    pass
                how = "after %d requests" % (
                    sum(e.stats()["requests"].values()) - r0)
            else:
                try:
                    h.wait_for(lambda: a.output_lines() >= base + k or
                               not a.alive(), 20, "%d new lines" % k,
                               interval=0.01)
                except TimeoutError:
                    pass    # collection finished early: still a kill
                how = "after %d lines" % (a.output_lines() - base)
            self.assertTrue(a.alive(), "agent exited early: %s"
                            % a.last_log())
            a.kill9()
            moments.append(how)
        sys.stderr.write("  kill moments: %s\n" % "; ".join(moments))
        # final: a clean run delivers everything that is visible, then stops
        a.start()
        vis = set()
        for ct in cts:
            vis |= e.visible_ids(h.T1, ct)
        self.wait_ids(a, vis, 120, "all visible records after the kills")
        self.assertEqual(a.terminate(), 0)
        out = a.read_output()
        allow = KILLS * (conc * rpb + rpb)     # dup <= B + W per kill
        cmp, out = self.compare(e, a, allow_dups=allow, visible_tenants=[h.T1],
                                label="after %d kill -9" % KILLS)
        st = a.status()
        counted = 0
        for ct in cts:
            row = self.stream(st, h.T1, "t1", ct)
            counted += sum(row.get(key, 0) for key in (
                "duplicates", "redelivered", "possible_duplicates"))
        sys.stderr.write("  duplicates in output: %d (ids %d, bound %d); "
                         "status duplicates: %d; torn lines %d, merged %d\n"
                         % (cmp.duplicates, len(cmp.dup_ids), allow, counted,
                            out.torn, out.merged))
        self.assertEqual(out.merged, 0,
                         "a torn line from a kill was glued to the next record"
                         " (the file output must end a partial line or "
                         "truncate it on restart)")
        self.assertGreaterEqual(counted, cmp.duplicates,
                                "records delivered twice after kill -9 are "
                                "not counted by `status`")

    def test_sigterm_drains(self):
        sc = h.scenario([h.tenant(h.T1, {"Audit.Exchange":
                                         ct_content(60, 20)})],
                        latency="50ms", page_size=20)
        e = self.emu(sc)
        a = self.agent(e, content_types=["Audit.Exchange"],
                       collect={"max_concurrency": 2})
        a.start()
        h.wait_for(lambda: a.output_lines() >= 100, 60, "100 lines")
        t0 = time.monotonic()
        self.assertEqual(a.terminate(timeout=30), 0, a.last_log())
        sys.stderr.write("  SIGTERM to exit: %.2fs\n" % (time.monotonic() - t0))
        out = a.read_output()
        self.assertEqual(out.torn + out.merged, 0, "partial line after SIGTERM")
        self.once_ok(a)
        # SIGTERM is not a crash: no duplicates at all
        self.compare(e, a, visible_tenants=[h.T1])
        # SIGINT too
        a.start()
        new = e.publish(h.T1, "Audit.Exchange", count=2, records=5,
                        created="0s")
        self.wait_ids(a, [i for b in new for i in b["ids"]], 60, "new blobs")
        self.assertEqual(a.terminate(sig=signal.SIGINT), 0, a.last_log())
        self.compare(e, a, label="after SIGINT")

    def test_idle_cpu_between_polls(self):
        """Caught up, next poll in 10 minutes: the agent must sleep."""
        sc = h.scenario([h.tenant(h.T1, {"Audit.Exchange":
                                         ct_content(2, 3, "1h")})])
        e = self.emu(sc)
        a = self.agent(e, content_types=["Audit.Exchange"],
                       collect={"poll_interval": "600s"})
        a.start()
        self.wait_ids(a, e.visible_ids(h.T1), 60, "initial content")
        h.wait_for(lambda: a.status_quiet(), 10, "first poll recorded")
        c0, w0 = proc_cpu(a.proc.pid), time.monotonic()
        time.sleep(3)       # the measurement window, not a synchronization
        c1, w1 = proc_cpu(a.proc.pid), time.monotonic()
        pct = 100.0 * (c1 - c0) / (w1 - w0)
        sys.stderr.write("  idle cpu %.1f%% of one core\n" % pct)
        self.assertEqual(a.terminate(), 0)
        self.assertLess(pct, 10.0, "agent busy while idle between polls")

    def test_once_exit_codes(self):
        sc = h.scenario([h.tenant(h.T1, {"Audit.Exchange":
                                         ct_content(3, 4)})])
        e = self.emu(sc)
        # usage error
        r = subprocess.run([BINARY, "run", "--no-such-option"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        # missing configuration file
        r = subprocess.run([BINARY, "run", "-c",
                            os.path.join(self.tmp, "nope.yaml"), "--once"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"nope.yaml", r.stderr)
        # output that cannot be written: non-zero, checkpoint not moved
        bad = self.agent(e, sub="shared", content_types=["Audit.Exchange"],
                         output_path="/dev/full")
        rc = bad.run_once(timeout=90, args=["--timeout", "15"])
        self.assertNotEqual(rc, 0, "undeliverable output but exit 0")
        good = self.agent(e, sub="shared", content_types=["Audit.Exchange"])
        self.assertEqual(good.state_dir, bad.state_dir)
        self.once_ok(good)
        self.compare(e, good, visible_tenants=[h.T1],
                     label="after the /dev/full run")
        # API unreachable: --once gives up with non-zero in bounded time
        dead = self.agent(None, sub="dead", content_types=["Audit.Exchange"],
                          collect={"max_backoff": "1s",
                                   "request_timeout": "2s"})
        t0 = time.monotonic()
        rc = dead.run_once(timeout=90, args=["--timeout", "10"])
        sys.stderr.write("  unreachable API: exit %d after %.1fs\n"
                         % (rc, time.monotonic() - t0))
        self.assertNotEqual(rc, 0)


def proc_cpu(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    global BINARY
    if len(sys.argv) < 2:
        sys.stderr.write("usage: test_run.py M365FWD_BINARY [unittest args]\n")
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    if not os.access(BINARY, os.X_OK):
        sys.stderr.write("SKIP: %s is not executable\n" % BINARY)
        return 77
    r = subprocess.run([BINARY, "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if b"\n  run " not in r.stdout:
        sys.stderr.write("SKIP: %s has no `run` command yet\n" % BINARY)
        return 77
    try:
        h.Certs.get()
    except h.SkipSuite as e:
        sys.stderr.write("SKIP: emulator cannot run: %s\n" % e)
        return 77
    except Exception as e:  # noqa: BLE001 - cert generation failure
        sys.stderr.write("SKIP: emulator cannot run: %s\n" % e)
        return 77
    try:
        prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False,
                             verbosity=2)
    finally:
        h.Certs.cleanup()
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
