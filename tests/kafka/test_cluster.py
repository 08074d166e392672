#!/usr/bin/env python3
"""Cluster mode (issue 14) against Apache Kafka itself (3 brokers, KRaft) and
the Management Activity API emulator with many tenants: agents share the
tenants through a consumer group, take over a killed agent's tenants, keep
their state in Kafka and deliver exactly once into a Kafka output on the
cluster (read with isolation.level=read_committed).

Every test shares one 3-broker cluster (its own topics, group and output
topic) and starts its own emulator, with --request-log: the log of every API
request (received, answered, tenant, agent) shows whether two agents ever
worked on one tenant at the same time.

  test_kill_takeover_restart  3 agents, 60 tenants: kill -9 one agent
      mid-collection; its tenants are collected again within 2 x
      session.timeout.ms + one poll interval; every record exactly once; no
      tenant collected by two agents at once. Then all stop (SIGTERM), new
      content is published and two restart (one of them the killed one):
      no blob is downloaded twice, every record still exactly once.
  test_broker_down_mid_transaction  kill -9 a broker (a leader of the output)
      while transactions are open, restart it later: exactly once.
  test_paused_agent_is_fenced  SIGSTOP an agent past the session and
      transaction timeouts: its tenants move; resumed, it learns it was
      dropped before any request or commit, and commits nothing of what it
      held; exactly once; no tenant collected by two agents at once. This
      one reaches Kafka over TLS with a client certificate whose key is
      encrypted (its password in cluster.rdkafka_secret_files and the
      output's), never logged.

Waits are conditions with deadlines; the only fixed interval is the pause
of the last test, which must outlast the timeouts it exercises.

Run as: test_cluster.py M365FWD_BINARY (exit 77 when Java 17+, Maven or
openssl are missing; MF_BUILD_ROOT must hold tests/kafka_client).
"""
import collections
import json
import os
import signal
import subprocess
import sys
import shutil
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import broker  # noqa: E402
import harness as h  # noqa: E402

BIN = None
SESSION_S = 6            # cluster.rdkafka session.timeout.ms
POLL_S = 1               # collect.poll_interval of the harness
TXN_TIMEOUT_S = 10       # cluster.rdkafka transaction.timeout.ms
SHARDS = 24
KEY_PASSWORD = "cluster-test-key-password"


def consumed_ids(kc, topic):
    recs = kc.consume(topic, props={"isolation.level": "read_committed"}, eof=True,
                      idle=3, timeout=180)
    return collections.Counter(json.loads(r["value"])["Id"] for r in recs)


def overlaps(reqs):
    """Per tenant, requests in order of receipt grouped in runs of one agent:
    a run that starts before the previous agent's last answer is a tenant
    collected by two agents at the same time."""
    by = collections.defaultdict(list)
    for r in reqs:
        by[r["tenant"]].append(r)
    bad = []
    for tenant, rs in by.items():
        rs.sort(key=lambda r: r["t0"])
        runs = []
        for r in rs:
            a = h.agent_of(r["agent"])
            if runs and runs[-1]["agent"] == a:
                runs[-1]["t1"] = max(runs[-1]["t1"], r["t1"])
            else:
                runs.append({"agent": a, "t0": r["t0"], "t1": r["t1"]})
        for x, y in zip(runs, runs[1:]):
            if y["t0"] < x["t1"]:
                bad.append((tenant, x, y))
    return bad


class ClusterMode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="m365fwd-cluster-test-")
        cls.kc = broker.KafkaCluster(brokers=3, server_props={
            # a timed-out transaction is aborted within a second of expiry
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"})
        cls.addClassCleanup(cls.kc.stop)
        cls.kc.start()
        print("\nKafka %s: 3 brokers serving in %.1f s" % (cls.kc.version,
                                                          cls.kc.start_seconds),
              flush=True)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop()
        h.Certs.cleanup()
        if os.environ.get("MF_KAFKA_KEEP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.agents = []
        self.emu = None

    def tearDown(self):
        for a in self.agents:
            if a.alive():
                a.proc.send_signal(signal.SIGCONT)
            a.stop_if_running()
        if self.emu:
            self.emu.stop()

    # -- helpers
    def start_emulator(self, name, tenants, blob_delay="1s"):
        """An emulator of `tenants` tenants (Audit.Exchange), no content yet
        (publish() adds it once the agents are up), whose blob downloads
        take blob_delay each: collection lasts long enough to hit an agent
        in the middle of it."""
        d = os.path.join(self.tmp, name)
        sc = h.scenario([], seed=sum(map(ord, name)), tenant_template={
            "count": tenants, "quota_per_minute": 0,
            "content": {"Audit.Exchange": {"blobs": 0}}},
            faults=[{"match": {"route": "blob"}, "action": "delay", "delay": blob_delay}])
        self.reqlog = os.path.join(d, "requests.ndjson")
        os.makedirs(d, exist_ok=True)
        self.emu = h.Emulator(sc, os.path.join(d, "emu"),
                              extra_args=["--request-log", self.reqlog])
        page = self.emu.ctl("GET", "/_control/tenants",
                            query={"offset": 0, "limit": 1000})
        rows = page.get("tenants", page) if isinstance(page, dict) else page
        self.tenants = [r["id"] if isinstance(r, dict) else r for r in rows]
        self.assertEqual(len(self.tenants), tenants)
        return self.emu

    def publish(self, blobs, records, tenants=None, created="-30m"):
        """blobs x records for each tenant: the Counter of their Ids."""
        ids = collections.Counter()
        for t in tenants or self.tenants:
            for b in self.emu.publish(t, "Audit.Exchange", count=blobs, records=records,
                                      created=created):
                ids.update(b["ids"])
        return ids

    def start_all(self, agents):
        """Start the agents and wait until each owns shards."""
        for a in agents:
            a.start()
        h.wait_for(lambda: all(self.cluster_json(a).get("n_shards_owned") for a in agents)
                   or None, 120, "every agent owning shards", interval=0.5)

    def tls_props(self):
        """The SSL listener's client settings, the key encrypted: its
        password comes from a secret file (rdkafka_secret_files)."""
        if not hasattr(self, "_tls"):
            key = os.path.join(self.tmp, "client-enc.key")
            pw = os.path.join(self.tmp, "client-key.pw")
            with open(pw, "w") as f:
                f.write(KEY_PASSWORD)
            os.chmod(pw, 0o600)
            subprocess.run(["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc",
                            "-in", self.kc.certs["client_key"], "-out", key,
                            "-passout", "file:" + pw], check=True, capture_output=True)
            props = self.kc.client_props("SSL")
            props["ssl.key.location"] = key
            type(self)._tls = (props, {"ssl.key.password": pw})
        return self._tls

    def make_agent(self, name, prefix, out_topic, listener="PLAINTEXT"):
        """An agent of group `prefix` (topics `prefix`.assign/.state) with a
        file output (out, at-least-once) and a Kafka output on the cluster
        (k, exactly once), both the output and the cluster reaching the
        brokers through `listener` (SSL: client certificate, encrypted key)."""
        kc = self.kc
        rd = {"session.timeout.ms": SESSION_S * 1000, "heartbeat.interval.ms": 1000,
              "transaction.timeout.ms": TXN_TIMEOUT_S * 1000}
        out_rd, secrets = {}, {}
        if listener == "SSL":
            out_rd, secrets = self.tls_props()
            rd.update(out_rd)

        def mapping(indent, key, kv):
            return ["%s%s:" % (indent, key)] + ["%s  %s: \"%s\"" % (indent, k, v)
                                                for k, v in kv.items()] if kv else []
        brokers = kc.bootstrap(listener)
        lines = ["  - name: k", "    type: kafka", "    brokers: \"%s\"" % brokers,
                 "    topic: %s" % out_topic, "    schema: raw"]
        lines += mapping("    ", "rdkafka", out_rd) + mapping("    ", "rdkafka_secret_files",
                                                               secrets)
        lines += ["cluster:", "  brokers: \"%s\"" % brokers, "  group: %s" % prefix,
                  "  topic_prefix: %s" % prefix, "  shards: %d" % SHARDS,
                  "  agent_id: %s" % name, "  timeout: 30s"]
        lines += mapping("  ", "rdkafka", rd) + mapping("  ", "rdkafka_secret_files", secrets)
        a = h.Agent(BIN, os.path.join(self.tmp, prefix, name), self.emu,
                    tenants=self.tenants, content_types=["Audit.Exchange"],
                    collect={"max_concurrency": 1}, extra_top=lines)
        a.name = name
        self.agents.append(a)
        return a

    def wait_count(self, topic, n, timeout, what):
        return h.wait_for(lambda: sum(consumed_ids(self.kc, topic).values()) >= n or None,
                          timeout, what, interval=1)

    def assert_exactly_once(self, topic, expected):
        got = consumed_ids(self.kc, topic)
        dups = {i: c for i, c in got.items() if c > 1}
        self.assertEqual(dups, {}, "%d records delivered more than once" % len(dups))
        missing = set(expected) - set(got)
        extra = set(got) - set(expected)
        self.assertEqual((len(missing), len(extra)), (0, 0),
                         "missing %d, unexpected %d records" % (len(missing), len(extra)))
        return got

    def assert_no_overlap(self):
        bad = overlaps(h.request_log(self.reqlog))
        self.assertEqual(bad[:5], [], "%d tenants collected by two agents at once" % len(bad))

    def served(self):
        """Records the emulator has served so far (re-downloads included):
        progress while the agents produce (reading the topic to its end
        waits for them to stop)."""
        return self.emu.ctl("GET", "/_control/served", query={"ids": "0"})["records_served"]

    def delivered_by(self, agent):
        return sum(1 for r in h.request_log(self.reqlog)
                   if r["route"] == "blob" and h.agent_of(r["agent"]) == agent.name)

    def preflight(self, agent):
        p = subprocess.run([BIN, "preflight", "-c", agent.cfg, "--tenant", "t1"],
                           capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout + p.stderr

    def cluster_json(self, agent):
        try:
            with open(os.path.join(agent.state_dir, "cluster.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def log_of(self, agent):
        with open(agent.logs[-1], errors="replace") as f:
            return f.read()

    # -- the tests
    def test_kill_takeover_restart(self):
        kc = self.kc
        kc.create_topic("out1", partitions=3, replication=3)
        self.start_emulator("kill", tenants=60)
        agents = [self.make_agent("a%d" % i, "kill", "out1") for i in range(3)]
        # preflight before any agent ran: what to create, each output's guarantee
        rc, out = self.preflight(agents[0])
        self.assertEqual(rc, 0, out)
        self.assertIn("WARN cluster: topics: kill.assign is missing", out)
        self.assertIn("--create --topic kill.state --partitions %d --config "
                      "cleanup.policy=compact" % SHARDS, out)
        self.assertIn("OK   cluster: outputs: k: exactly once", out)
        self.assertIn("WARN cluster: outputs: out: at-least-once (not a Kafka output)", out)
        self.start_all(agents)
        rc, out = self.preflight(agents[0])
        self.assertIn("OK   cluster: topics: kill.state: %d partitions, compacted" % SHARDS,
                      out)
        expected = self.publish(blobs=20, records=5)
        victim = agents[2]
        # mid-collection: the victim downloads its tenants' blobs
        h.wait_for(lambda: self.delivered_by(victim) >= 5, 60,
                   "the victim downloading blobs", interval=0.2)
        n_before = self.served()
        self.assertLess(n_before, sum(expected.values()) * 0.8, "collection nearly over")
        victim_tenants = {t for t, a in h.last_agent(h.request_log(self.reqlog)).items()
                          if a == victim.name}
        t_kill = time.time()
        victim.kill9()
        print("killed %s at %d of %d records served; it had %d tenants" % (
            victim.name, n_before, sum(expected.values()), len(victim_tenants)), flush=True)

        # takeover: each of its tenants asked for by a survivor
        def taken_over():
            seen = h.first_requests_after(h.request_log(self.reqlog), victim_tenants,
                                          t_kill, victim.name)
            return seen if len(seen) == len(victim_tenants) else None
        seen = h.wait_for(taken_over, 120, "the victim's tenants taken over", interval=0.5)
        takeover = max(seen.values()) - t_kill
        bound = 2 * SESSION_S + POLL_S
        print("takeover: every tenant of the killed agent collected again %.1f s after "
              "kill -9 (bound %d s)" % (takeover, bound), flush=True)
        self.assertLessEqual(takeover, bound)

        self.wait_count("out1", sum(expected.values()), 240, "every record")
        self.assert_exactly_once("out1", expected)
        self.assert_no_overlap()
        for a in agents[:2]:
            st = a.status()
            self.assertIsNotNone(st.get("cluster"), "status --json has no cluster section")
            self.assertGreaterEqual(st["cluster"]["rebalances"], 1)

        # stop all three (the third is dead), publish, restart two
        for a in agents[:2]:
            self.assertEqual(a.terminate(timeout=120), 0, self.log_of(a)[-3000:])
        served_before = {b["contentId"]: b["times"] for b in self.emu.served()["blobs"]}
        expected.update(self.publish(blobs=1, records=4, tenants=self.tenants[:20],
                                     created="0s"))
        t_restart = time.time()
        for a in (agents[1], agents[2]):
            a.start()
        self.wait_count("out1", sum(expected.values()), 180, "the new records")

        # every tenant listed twice since the restart: the blobs of its first
        # listing were all delivered (its window closed) before the second
        def listed_twice():
            n = collections.Counter(r["tenant"] for r in h.request_log(self.reqlog)
                                    if r["route"] == "content" and r["t0"] > t_restart)
            return all(n[t] >= 2 for t in self.tenants) or None
        h.wait_for(listed_twice, 120, "every tenant listed twice after the restart",
                   interval=1)
        self.assert_exactly_once("out1", expected)
        served_after = {b["contentId"]: b["times"] for b in self.emu.served()["blobs"]}
        again = {c: (served_before[c], n) for c, n in served_after.items()
                 if c in served_before and n != served_before[c]}
        self.assertEqual(again, {}, "blobs downloaded again after the restart")
        new_blobs = {c: n for c, n in served_after.items() if c not in served_before}
        self.assertEqual(len(new_blobs), 20)
        self.assertEqual(set(new_blobs.values()), {1})
        self.assert_no_overlap()
        for a in (agents[1], agents[2]):
            self.assertEqual(a.terminate(timeout=120), 0, self.log_of(a)[-3000:])

    def test_broker_down_mid_transaction(self):
        kc = self.kc
        kc.create_topic("out2", partitions=3, replication=3)
        self.start_emulator("broker", tenants=20, blob_delay="600ms")
        agents = [self.make_agent("b%d" % i, "broker", "out2") for i in range(2)]
        self.start_all(agents)
        expected = self.publish(blobs=12, records=8)
        total = sum(expected.values())
        h.wait_for(lambda: self.served() >= total // 5, 120, "a fifth of the records",
                   interval=0.5)
        kc.kill(2)
        n = self.served()
        print("broker 2 killed at %d of %d records served" % (n, total), flush=True)
        # collection goes on with two brokers (min.insync.replicas 2)
        h.wait_for(lambda: self.served() >= min(total, n + total // 5), 180,
                   "progress without broker 2", interval=0.5)
        kc.restart(2)
        self.wait_count("out2", total, 240, "every record")
        self.assert_exactly_once("out2", expected)
        self.assert_no_overlap()
        for a in agents:
            self.assertEqual(a.terminate(timeout=120), 0, self.log_of(a)[-3000:])

    def test_paused_agent_is_fenced(self):
        kc = self.kc
        kc.create_topic("out3", partitions=3, replication=3)
        self.start_emulator("pause", tenants=20, blob_delay="700ms")
        # this one over TLS with client certificates (an encrypted key whose
        # password is a secret file), for the cluster's clients and the output
        zombie, other = [self.make_agent(n, "pause", "out3", listener="SSL")
                         for n in ("z", "o")]
        self.start_all([zombie, other])
        expected = self.publish(blobs=14, records=8)
        h.wait_for(lambda: self.delivered_by(zombie) >= 10 and
                   self.delivered_by(other) >= 10, 120, "both agents collecting",
                   interval=0.5)
        zombie.proc.send_signal(signal.SIGSTOP)
        t_stop = time.time()
        zombie_tenants = {r["tenant"] for r in h.request_log(self.reqlog)
                          if h.agent_of(r["agent"]) == "z"}
        # the other agent takes the paused one's tenants over
        h.wait_for(lambda: {r["tenant"] for r in h.request_log(self.reqlog)
                            if r["t0"] > t_stop and h.agent_of(r["agent"]) == "o"}
                   >= zombie_tenants or None, 120, "the paused agent's tenants taken over",
                   interval=0.5)
        # past the transaction timeout: the coordinator aborted what it held
        time.sleep(max(0, t_stop + TXN_TIMEOUT_S + 2 - time.time()))
        with open(zombie.logs[-1], "rb") as f:
            resume_at = len(f.read())
        zombie.proc.send_signal(signal.SIGCONT)
        print("agent z paused %.1f s" % (time.time() - t_stop), flush=True)
        after = lambda: self.log_of(zombie).encode()[resume_at:].decode(errors="replace")
        h.wait_for(lambda: "the group dropped it" in after() or "lost" in after(), 60,
                   "the resumed agent learning it was dropped", interval=0.5)
        text = after()
        lost_at = min(i for i in (text.find("the group dropped it"), text.find("lost"))
                      if i >= 0)
        committed_at = text.find("transaction committed")
        self.assertTrue(committed_at < 0 or committed_at > lost_at,
                        "the paused agent committed before learning it was dropped:\n"
                        + text[:3000])
        self.wait_count("out3", sum(expected.values()), 240, "every record")
        self.assert_exactly_once("out3", expected)
        self.assert_no_overlap()
        for a in (zombie, other):
            self.assertEqual(a.terminate(timeout=120), 0, self.log_of(a)[-3000:])
            self.assertNotIn(KEY_PASSWORD, self.log_of(a))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: test_cluster.py M365FWD_BINARY", file=sys.stderr)
        sys.exit(2)
    BIN = os.path.abspath(sys.argv.pop(1))
    broker.exit_unless_runnable()
    unittest.main(verbosity=2)
