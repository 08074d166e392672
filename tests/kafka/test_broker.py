#!/usr/bin/env python3
"""The real-broker harness itself (tests/kafka/broker.py, kafka_client) on a
3-node KRaft cluster: what librdkafka's mock cannot do and the cluster-mode
tests will rely on. Transactions write commit and abort markers (a
read_committed reader skips aborted records); a second producer with the same
transactional.id fences the first; a broker killed with -9, stopped, or
paused past the session timeout is fenced and comes back, and an idempotent
producer loses and doubles nothing meanwhile; topic configurations reach the
broker (compacted topic; a bad value refused); broker JVMs die with the
process that started them.

Run as: test_broker.py [M365FWD_BINARY] (the binary is not used; exit 77 when
Java 17+, Maven or openssl are missing; MF_BUILD_ROOT must hold
tests/kafka_client)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "syslog"))
import broker  # noqa: E402
from test_syslog import wait_for  # noqa: E402

IDEMPOTENT = {"enable.idempotence": "true"}


def records(prefix, n):
    return [{"key": "%s%d" % (prefix, i), "value": "%s%d" % (prefix, i)} for i in range(n)]


def values(recs):
    return sorted(r["value"] for r in recs)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class Harness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kc = broker.KafkaCluster(brokers=3)
        cls.addClassCleanup(cls.kc.stop)
        cls.kc.start()
        print("\nKafka %s: 3 brokers serving in %.1f s (%s)" % (
            cls.kc.version, cls.kc.start_seconds,
            ", ".join("%s %.1f s" % kv for kv in cls.kc.timings.items())), flush=True)

    @classmethod
    def tearDownClass(cls):
        pids = [n.proc.pid for n in cls.kc.nodes]
        t = time.monotonic()
        cls.kc.stop()
        print("3 brokers stopped in %.1f s" % (time.monotonic() - t))
        for pid in pids:
            try:
                os.kill(pid, 0)
                raise AssertionError("broker JVM %d outlived stop()" % pid)
            except ProcessLookupError:
                pass
        assert not os.path.exists(cls.kc.dir), "the cluster's directory is left"

    def consume(self, topic, committed=True, **kw):
        level = "read_committed" if committed else "read_uncommitted"
        return self.kc.consume(topic, props={"isolation.level": level}, **kw)

    def test_1_transaction_markers(self):
        kc = self.kc
        kc.create_topic("tx", partitions=3, replication=3)
        kc.produce("tx", records("c", 10), txn_id="t1", txn_end="commit")
        kc.produce("tx", records("a", 10), txn_id="t1", txn_end="abort")
        kc.produce("tx", records("p", 5), props=IDEMPOTENT)
        committed = values(records("c", 10) + records("p", 5))
        self.assertEqual(values(self.consume("tx")), committed)
        self.assertEqual(values(self.consume("tx", committed=False)),
                         sorted(committed + values(records("a", 10))))

    def test_2_second_producer_fences_the_first(self):
        kc = self.kc
        kc.create_topic("fence", partitions=1, replication=3)
        d = tempfile.mkdtemp(dir=kc.dir)
        err_path = os.path.join(d, "p1.err")
        with open(err_path, "w") as err:
            p1 = subprocess.Popen(kc.client_cmd(["produce", "-t", "fence", "--timeout", "30",
                                                 "--txn-id", "zombie", "--txn-end", "commit"]),
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=err, text=True)
        try:
            def begun():
                if p1.poll() is not None:
                    raise AssertionError("first producer exited: %s" % read(err_path))
                return "transaction begun" in read(err_path)
            wait_for(begun, "the first producer's transaction", deadline=60)
            for r in records("z", 5):
                p1.stdin.write(json.dumps(r) + "\n")
            p1.stdin.flush()
            # the same transactional.id again: the coordinator bumps the epoch
            kc.produce("fence", records("n", 3), txn_id="zombie", txn_end="commit")
            p1.stdin.close()
            rc = p1.wait(60)
        finally:
            if p1.poll() is None:
                p1.kill()
                p1.wait()
        err = read(err_path)
        print("fenced producer: exit %d, %s" % (rc, err.strip().splitlines()[-1]))
        self.assertNotEqual(rc, 0, "the fenced producer committed: " + err)
        self.assertRegex(err.lower(), "fenc|epoch")
        self.assertEqual(values(self.consume("fence")), values(records("n", 3)))

    def test_3_broker_kill9_stop_restart(self):
        kc = self.kc
        kc.create_topic("rf3", partitions=3, replication=3)
        kc.produce("rf3", records("b", 200), props=IDEMPOTENT)
        t = time.monotonic()
        kc.kill(2)
        kc.wait_fenced(2)
        fenced = time.monotonic() - t
        kc.produce("rf3", records("k", 200), props=IDEMPOTENT)
        t = time.monotonic()
        kc.restart(2)
        back = time.monotonic() - t
        kc.stop_node(3)
        kc.produce("rf3", records("s", 200), props=IDEMPOTENT)
        kc.restart(3)
        got = self.consume("rf3", count=600)
        self.assertEqual(values(got), values(records("b", 200) + records("k", 200)
                                             + records("s", 200)))
        print("kill -9: broker fenced after %.1f s; restarted and serving in %.1f s"
              % (fenced, back))

    def test_4_pause_past_session_timeout(self):
        kc = self.kc
        t = time.monotonic()
        kc.pause(1)
        try:
            kc.wait_fenced(1)
            fenced = time.monotonic() - t
        finally:
            kc.resume(1)
        kc.wait_ready([1])
        print("SIGSTOP: broker fenced after %.1f s (broker.session.timeout.ms %s); "
              "back %.1f s after SIGCONT" % (fenced, kc.server_props["broker.session.timeout.ms"],
                                            time.monotonic() - t - fenced))
        self.assertTrue(kc.node(1).alive())

    def test_5_topic_configs_reach_the_broker(self):
        kc = self.kc
        self.assertEqual(kc.create_topic("state", configs={"cleanup.policy": "compact"}),
                         "created")
        self.assertEqual(kc.create_topic("state", configs={"cleanup.policy": "compact"}),
                         "exists")
        with self.assertRaises(broker.KafkaError) as e:
            kc.create_topic("bad", configs={"cleanup.policy": "bogus"})
        self.assertIn("cleanup.policy", str(e.exception))

    def test_6_jvms_die_with_their_parent(self):
        # the mechanism every broker JVM is started with, on a stand-in child
        code = ("import subprocess, sys, time; sys.path.insert(0, %r); import broker; "
                "p = subprocess.Popen(['sleep', '300'], preexec_fn=broker._die_with_parent); "
                "print(p.pid, flush=True); time.sleep(300)" % HERE)
        parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        pid = int(parent.stdout.readline())
        os.kill(pid, 0)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        parent.stdout.close()

        def gone():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().split(") ")[1].startswith("Z")   # a zombie is dead
            except FileNotFoundError:
                return True
        wait_for(gone, "the orphan to die", deadline=10)


if __name__ == "__main__":
    if len(sys.argv) > 1 and os.path.isfile(sys.argv[1]):
        sys.argv.pop(1)     # the m365fwd binary meson passes: not needed here
    broker.exit_unless_runnable()
    unittest.main(verbosity=2)
