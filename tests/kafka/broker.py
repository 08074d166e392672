#!/usr/bin/env python3
"""Apache Kafka itself (KRaft mode) on loopback, for the tests that need a
real broker: transactions, fencing, read_committed, SASL_SSL and TLS client
certificates, broker failures. See tests/kafka/README.md.

    from broker import KafkaCluster, unavailable
    why = unavailable()               # None, or why Java/Maven/openssl are missing
    with KafkaCluster(brokers=3) as kc:
        kc.create_topic("out", partitions=3, replication=3)
        kc.create_topic("state", configs={"cleanup.policy": "compact"})
        kc.bootstrap("SASL_SSL"); kc.client_props("SASL_SSL")
        kc.kill(2); kc.restart(2); kc.pause(3); kc.resume(3)
        kc.consume("out", props={"isolation.level": "read_committed"}, eof=True)

Each node is a combined controller+broker JVM (`kafka.Kafka`), class path
resolved by Maven from tests/kafka/pom.xml (once; jars in ~/.m2, the class
path cached in ~/.cache/m365fwd-tests). Listeners on 127.0.0.1, ports picked free:
  PLAINTEXT  no authentication (also the inter-broker listener)
  SASL_SSL   SCRAM-SHA-512 over TLS; users made at format time
  SSL        TLS with a required client certificate (the test CA's)
  CONTROLLER KRaft quorum (PLAINTEXT)
Certificates (a test CA, a server certificate for 127.0.0.1, client
certificates, and a second CA whose client certificate the brokers do not
trust) are made with openssl in the cluster's temp directory; the brokers read
PEM key stores directly, so no keytool run is needed.

Every JVM runs in its own session with PR_SET_PDEATHSIG: stop() (also called
on exit, on SIGTERM/SIGINT, and by the context manager) ends them all, and
they die with the Python process that started them even if it is killed.

Run by hand: broker.py [--brokers N] [--version V] [--dir DIR]
[--topic NAME[:PARTITIONS[:compact]]]... prints the bootstrap addresses and
client properties as JSON, then serves until Ctrl-C.
"""
import atexit
import base64
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))

POM = os.path.join(HERE, "pom.xml")
VERSION = "4.4.0"
# librdkafka before 2.6.1 (Debian 12 has 2.0.2) sends a SCRAM client-final
# nonce that Kafka 4 rejects (strict RFC 5802 check since the fix for
# CVE-2024-56128; 3.8.1 to 3.9.x accept it). SCRAM tests of such a client run
# on this version.
SCRAM_COMPAT_VERSION = "3.9.2"
LISTENERS = ("PLAINTEXT", "SASL_SSL", "SSL", "CONTROLLER")
SCRAM = "SCRAM-SHA-512"
DEFAULT_USERS = {"m365fwd": "kafka-test-secret-1", "reader": "kafka-test-secret-2"}
DIR_PREFIX = "m365fwd-kafka-"
START_DEADLINE = 120     # s for a node to serve after its JVM starts
STOP_DEADLINE = 30       # s for a node to stop after SIGTERM before SIGKILL

# Broker settings for tests: small, quick to elect and to fence. Any of
# them can be overridden with KafkaCluster(server_props={...}).
SERVER_DEFAULTS = {
    "num.partitions": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.num.partitions": "4",
    "share.coordinator.state.topic.num.partitions": "4",
    "group.initial.rebalance.delay.ms": "0",
    "broker.heartbeat.interval.ms": "1000",
    "broker.session.timeout.ms": "6000",
    "log.segment.bytes": str(16 * 1024 * 1024),
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.dedupe.buffer.size": str(4 * 1024 * 1024),
    "log.cleaner.threads": "1",
}

JVM_OPTS = ["-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData", "-Xss512k", "-Djava.awt.headless=true"]

LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.config.name = org.apache.kafka.common.config
logger.config.level = WARN
"""


class KafkaError(Exception):
    pass


# ----------------------------------------------------------------- discovery

def _java_major(java):
    try:
        p = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    for tok in p.stderr.split():
        tok = tok.strip('"')
        if tok[:1].isdigit():
            major = tok.split(".")[0]
            return int(major) if major.isdigit() else 0
    return 0


def java_bin():
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


def unavailable():
    """None when Java 17+, Maven and openssl are here; else why not (for a
    skip message)."""
    java = java_bin()
    if not java:
        return "no java (install openjdk-17-jre-headless: scripts/install-deps.sh)"
    major = _java_major(java)
    if major < 17:
        return "%s is Java %s; Kafka 4 needs 17 or later" % (java, major or "?")
    if not shutil.which("mvn"):
        return "no mvn (install maven: scripts/install-deps.sh)"
    if not shutil.which("openssl"):
        return "no openssl"
    return None


def exit_unless_runnable():
    """For a test script's main: exit 77 (skip) with the reason when Kafka
    cannot run here, 1 when kafka_client is not built."""
    why = unavailable()
    if why:
        print("SKIP: Apache Kafka cannot run here: %s" % why)
        sys.exit(77)
    if not os.access(tool_path(), os.X_OK):
        print("kafka_client not found at %s (set MF_BUILD_ROOT)" % tool_path(),
              file=sys.stderr)
        sys.exit(1)


def classpath(version=VERSION, cache_dir=None):
    """The class path of Kafka `version`: Maven resolves tests/kafka/pom.xml
    with -Dkafka.version (from the local repository ~/.m2, or Maven Central
    the first time). Cached in cache_dir (default $MF_KAFKA_CACHE, else
    ~/.cache/m365fwd-tests: shared by build directories and clones) keyed by
    the pom's hash and the version; a cached path whose jars are gone is
    resolved again. One resolution at a time (a lock file)."""
    import fcntl
    if cache_dir is None:
        cache_dir = os.environ.get("MF_KAFKA_CACHE") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
            "m365fwd-tests")
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError:     # a read-only home: the cache lives as long as /tmp
        cache_dir = os.path.join(tempfile.gettempdir(), "m365fwd-tests")
        os.makedirs(cache_dir, exist_ok=True)
    with open(POM, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    out = os.path.join(cache_dir, "kafka-classpath-%s-%s.txt" % (version, key))

    def cached():
        try:
            with open(out) as f:
                cp = f.read().strip()
        except OSError:
            return None
        return cp if cp and all(os.path.exists(j) for j in cp.split(os.pathsep)) else None

    cp = cached()
    if cp:
        return cp
    with open(os.path.join(cache_dir, "kafka-classpath.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cp = cached()       # another test may have resolved it meanwhile
        if cp:
            return cp
        tmp = out + ".%d.tmp" % os.getpid()
        p = subprocess.run(["mvn", "-B", "-q", "-Dstyle.color=never", "-f", POM,
                            "-Dkafka.version=" + version,
                            "dependency:build-classpath", "-Dmdep.outputFile=" + tmp],
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0 or not os.path.exists(tmp):
            raise KafkaError("Maven could not resolve Kafka %s (%s): exit %d\n%s%s" % (
                version, POM, p.returncode, p.stdout[-3000:], p.stderr[-2000:]))
        os.replace(tmp, out)
    cp = cached()
    if not cp:
        raise KafkaError("Maven wrote no usable class path for Kafka %s (%s)" % (version, out))
    return cp


# ----------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1
_libc = None


def _die_with_parent():
    """preexec_fn: own session, and SIGKILL when the parent goes away."""
    os.setsid()
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None

_live = set()


def _cleanup_all():
    for kc in list(_live):
        kc.stop()


def _on_signal(signum, frame):
    _cleanup_all()
    raise SystemExit(128 + signum)


atexit.register(_cleanup_all)


def _sweep_orphans():
    """Remove the temp directories of clusters whose test process died by
    SIGKILL (their JVMs died with it: PR_SET_PDEATHSIG), not kept ones."""
    import glob
    for d in glob.glob(os.path.join(tempfile.gettempdir(), DIR_PREFIX + "*")):
        try:
            with open(os.path.join(d, "owner.pid")) as f:
                os.kill(int(f.read()), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError):
            pass        # no owner file (kept), or not ours to judge


def free_ports(n):
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def cluster_id():
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def tool_path():
    build = os.environ.get("MF_BUILD_ROOT", "")
    return os.path.join(build, "tests", "kafka_client")


# ------------------------------------------------------------------- cluster

class Node:
    def __init__(self, node_id, ports, d):
        self.id = node_id
        self.ports = dict(zip(LISTENERS, ports))
        self.dir = d
        self.proc = None
        self.log = os.path.join(d, "server.log")
        self.props = os.path.join(d, "server.properties")
        self.start_seconds = None    # wall time of the last start until serving

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class KafkaCluster:
    def __init__(self, brokers=1, workdir=None, users=None, server_props=None,
                 tool=None, heap=None, keep=None, version=VERSION):
        self.n = brokers
        self.version = version
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.server_props = dict(SERVER_DEFAULTS)
        self.server_props.update(server_props or {})
        self.tool = tool or tool_path()
        self.heap = heap
        self.keep = os.environ.get("MF_KAFKA_KEEP") == "1" if keep is None else keep
        self._own_dir = workdir is None
        if self._own_dir:
            _sweep_orphans()
        self.dir = os.path.abspath(workdir or tempfile.mkdtemp(prefix=DIR_PREFIX))
        if self._own_dir and not self.keep:
            with open(os.path.join(self.dir, "owner.pid"), "w") as f:
                f.write(str(os.getpid()))
        self.nodes = []
        self.certs = None
        self.cp = None
        self.java = java_bin()
        self.start_seconds = None

    # -- context manager
    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    # -- set-up
    def _make_certs(self):
        import mkcerts
        # P-256 keys: TLS only, and RSA key generation is seconds on a busy
        # machine
        self.certs = mkcerts.make_certs(os.path.join(self.dir, "certs"), key="ec")
        # a client certificate from a CA the brokers do not trust
        other = os.path.join(self.dir, "certs-untrusted")
        ca_key, self.certs["untrusted_ca"] = mkcerts.make_ca(other, "untrusted CA", key="ec")
        (self.certs["untrusted_client_cert"],
         self.certs["untrusted_client_key"]) = mkcerts.make_leaf(
            other, "client", "/CN=m365fwd test app", None, ca_key,
            self.certs["untrusted_ca"], "clientAuth", key="ec")
        # the brokers' PEM key store: private key (PKCS#8) and certificate
        pem = os.path.join(self.certs["dir"], "server-keystore.pem")
        with open(pem, "w") as out:
            for part in (self.certs["server_key"], self.certs["server_cert"]):
                with open(part) as f:
                    out.write(f.read())
        self.certs["server_keystore"] = pem
        for name, pw in self.users.items():
            path = os.path.join(self.certs["dir"], "%s.password" % name)
            with open(path, "w") as f:
                f.write(pw)
            os.chmod(path, 0o600)
            self.certs["password_file_" + name] = path

    def _write_config(self, node, voters):
        p = node.ports
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listeners": ",".join("%s://127.0.0.1:%d" % (l, p[l]) for l in LISTENERS),
            "advertised.listeners": ",".join("%s://127.0.0.1:%d" % (l, p[l])
                                             for l in LISTENERS if l != "CONTROLLER"),
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
            "log.dirs": os.path.join(node.dir, "data"),
            "sasl.enabled.mechanisms": SCRAM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": self.certs["server_keystore"],
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": self.certs["ca"],
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.sasl_ssl.ssl.client.auth": "none",
            "offsets.topic.replication.factor": str(min(3, self.n)),
            "transaction.state.log.replication.factor": str(min(3, self.n)),
            "transaction.state.log.min.isr": str(min(2, self.n)),
            "share.coordinator.state.topic.replication.factor": str(min(3, self.n)),
            "share.coordinator.state.topic.min.isr": str(min(2, self.n)),
            "default.replication.factor": str(min(3, self.n)),
            "min.insync.replicas": str(min(2, self.n)),
        }
        props.update(self.server_props)
        with open(node.props, "w") as f:
            for k in sorted(props):
                f.write("%s=%s\n" % (k, props[k]))

    def _java_cmd(self, main, args):
        heap = ["-Xmx" + self.heap] if self.heap else []
        return [self.java] + JVM_OPTS + heap + [
            "-Dlog4j2.configurationFile=" + os.path.join(self.dir, "log4j2.properties"),
            "-cp", self.cp, main] + args

    def _format(self, cid):
        scram = []
        for name, pw in self.users.items():
            scram += ["--add-scram", "%s=[name=\"%s\",password=\"%s\"]" % (SCRAM, name, pw)]
        procs = []
        for node in self.nodes:
            log = open(os.path.join(node.dir, "format.log"), "wb")
            procs.append((node, log, subprocess.Popen(
                self._java_cmd("kafka.tools.StorageTool",
                               ["format", "-t", cid, "-c", node.props] + scram),
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)))
        for node, log, p in procs:
            try:
                rc = p.wait(START_DEADLINE)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = "timeout"
            log.close()
            if rc != 0:
                with open(os.path.join(node.dir, "format.log"), errors="replace") as f:
                    raise KafkaError("formatting node %d failed (%s):\n%s"
                                     % (node.id, rc, f.read()[-3000:]))

    def start(self):
        """Make certificates and configuration, format the storage, start
        every node and wait until all serve. Returns self."""
        why = unavailable()
        if why:
            raise KafkaError(why)
        if not os.access(self.tool, os.X_OK):
            raise KafkaError("kafka_client not built: %s" % self.tool)
        _live.add(self)
        for s in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(s) in (signal.SIG_DFL, signal.default_int_handler):
                try:
                    signal.signal(s, _on_signal)
                except ValueError:
                    pass    # not the main thread: PR_SET_PDEATHSIG still holds
        t0 = time.monotonic()
        self.timings = {}
        self.cp = classpath(self.version)
        self.timings["classpath"] = time.monotonic() - t0
        with open(os.path.join(self.dir, "log4j2.properties"), "w") as f:
            f.write(LOG4J2)
        self._make_certs()
        self.timings["certs"] = time.monotonic() - t0 - sum(self.timings.values())
        ports = free_ports(len(LISTENERS) * self.n)
        for i in range(self.n):
            d = os.path.join(self.dir, "node-%d" % (i + 1))
            os.makedirs(d, exist_ok=True)
            self.nodes.append(Node(i + 1, ports[i * len(LISTENERS):(i + 1) * len(LISTENERS)], d))
        voters = ",".join("%d@127.0.0.1:%d" % (n.id, n.ports["CONTROLLER"]) for n in self.nodes)
        for node in self.nodes:
            self._write_config(node, voters)
        self._format(cluster_id())
        self.timings["format"] = time.monotonic() - t0 - sum(self.timings.values())
        for node in self.nodes:
            self._spawn(node)
        self.wait_ready()
        self.timings["serve"] = time.monotonic() - t0 - sum(self.timings.values())
        self.start_seconds = time.monotonic() - t0
        return self

    def _spawn(self, node):
        if node.alive():
            raise KafkaError("node %d is already running" % node.id)
        node.t_start = time.monotonic()
        with open(node.log, "ab") as log:
            node.proc = subprocess.Popen(self._java_cmd("kafka.Kafka", [node.props]),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)

    def wait_ready(self, node_ids=None, deadline=START_DEADLINE):
        """Wait until the cluster's metadata (asked on PLAINTEXT) lists every
        node in node_ids (default: every running node) as a live broker."""
        ids = [n.id for n in self.nodes if n.alive()] if node_ids is None else list(node_ids)
        end = time.monotonic() + deadline
        args = []
        for i in ids:
            args += ["--broker-id", str(i)]
        last = ""
        while True:
            for n in self.nodes:
                if n.id in ids and not n.alive():
                    raise KafkaError("node %d exited (%s) while starting:\n%s"
                                     % (n.id, n.proc.returncode, self.log_tail(n.id)))
            left = end - time.monotonic()
            if left <= 0:
                raise KafkaError("nodes %s not serving after %ds (%s):\n%s" % (
                    ids, deadline, last, "\n".join(self.log_tail(i) for i in ids)))
            # short tries so that a node that died is noticed
            p = subprocess.run([self.tool, "metadata", "-b", self.bootstrap(only=ids),
                                "--timeout", str(min(5, max(1, int(left))))] + args,
                               capture_output=True, text=True, timeout=left + 30)
            if p.returncode == 0:
                now = time.monotonic()
                for n in self.nodes:
                    if n.id in ids:
                        n.start_seconds = now - n.t_start
                return json.loads(p.stdout)
            last = p.stderr.strip()[-300:]

    # -- addresses and client settings
    def node(self, node_id):
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KafkaError("no node %s" % node_id)

    def bootstrap(self, listener="PLAINTEXT", only=None):
        """host:port,... of every node (or of the node ids in only)."""
        return ",".join("127.0.0.1:%d" % n.ports[listener] for n in self.nodes
                        if only is None or n.id in only)

    def client_props(self, listener="PLAINTEXT", user=None, cert="client"):
        """librdkafka properties to reach listener: for SASL_SSL the user's
        SCRAM-SHA-512 login (the password is in the dict: tests that pass it
        to m365fwd use password_file(user) instead); for SSL the client
        certificate 'client' (trusted) or 'untrusted_client'."""
        if listener == "PLAINTEXT":
            return {}
        props = {"security.protocol": listener, "ssl.ca.location": self.certs["ca"]}
        if listener == "SASL_SSL":
            user = user or next(iter(self.users))
            props.update({"sasl.mechanisms": SCRAM, "sasl.username": user,
                          "sasl.password": self.users[user]})
        elif listener == "SSL":
            props.update({"ssl.certificate.location": self.certs[cert + "_cert"],
                          "ssl.key.location": self.certs[cert + "_key"]})
        else:
            raise KafkaError("no client listener %s" % listener)
        return props

    def password_file(self, user):
        return self.certs["password_file_" + user]

    # -- failures
    def kill(self, node_id, sig=signal.SIGKILL):
        """Send sig to a node (default kill -9) and, unless it is SIGSTOP or
        SIGCONT, wait for it to exit."""
        n = self.node(node_id)
        if not n.alive():
            return
        os.killpg(n.proc.pid, sig)
        if sig not in (signal.SIGSTOP, signal.SIGCONT):
            n.proc.wait(STOP_DEADLINE)

    def stop_node(self, node_id, deadline=STOP_DEADLINE):
        """Controlled shutdown (SIGTERM), kill -9 past the deadline."""
        n = self.node(node_id)
        if not n.alive():
            return
        try:
            os.killpg(n.proc.pid, signal.SIGCONT)
            os.killpg(n.proc.pid, signal.SIGTERM)
            n.proc.wait(deadline)
        except subprocess.TimeoutExpired:
            os.killpg(n.proc.pid, signal.SIGKILL)
            n.proc.wait(STOP_DEADLINE)
        except ProcessLookupError:
            n.proc.wait(STOP_DEADLINE)

    def pause(self, node_id):
        self.kill(node_id, signal.SIGSTOP)

    def resume(self, node_id):
        self.kill(node_id, signal.SIGCONT)

    def restart(self, node_id, wait=True):
        """Start a stopped or killed node again (same ports, same data)."""
        n = self.node(node_id)
        if n.alive():
            self.stop_node(node_id)
        self._spawn(n)
        if wait:
            self.wait_ready([node_id])

    def stop(self):
        """Stop every node (SIGTERM, then SIGKILL past the deadline; all at
        once) and remove the directory unless keep. Safe to call twice."""
        for n in self.nodes:
            if n.alive():
                try:
                    os.killpg(n.proc.pid, signal.SIGCONT)
                    os.killpg(n.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + STOP_DEADLINE
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                n.proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(n.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                n.proc.wait()
        _live.discard(self)
        if self._own_dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, node_id, chars=3000):
        try:
            with open(self.node(node_id).log, errors="replace") as f:
                return "--- node %d log ---\n%s" % (node_id, f.read()[-chars:])
        except OSError:
            return "--- node %d: no log ---" % node_id

    def wait_fenced(self, node_id, deadline=60):
        """Wait until the live nodes no longer list node_id as a broker (the
        controller fenced it: killed, stopped, or paused past
        broker.session.timeout.ms)."""
        others = [n.id for n in self.nodes if n.id != node_id and n.alive()]
        p = subprocess.run(self.client_cmd(["metadata", "--absent-id", str(node_id),
                                            "--timeout", str(deadline)], only=others),
                           capture_output=True, text=True, timeout=deadline + 30)
        if p.returncode != 0:
            raise KafkaError("node %d still listed after %ds: %s"
                             % (node_id, deadline, p.stderr.strip()[-500:]))
        return json.loads(p.stdout)

    # -- topics and records, through tests/tools/kafka_client
    def client_cmd(self, args, props=None, listener="PLAINTEXT", only=None):
        """The kafka_client command line for args against listener (with
        its client_props, then props) - for a test that runs it itself, e.g.
        a producer kept open with Popen."""
        cmd = [self.tool] + args + ["-b", self.bootstrap(listener, only)]
        merged = self.client_props(listener)
        merged.update(props or {})
        for k, v in merged.items():
            cmd += ["-X", "%s=%s" % (k, v)]
        return cmd

    def _tool(self, args, props, listener, timeout, stdin=None):
        return subprocess.run(self.client_cmd(args, props, listener), input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def create_topic(self, name, partitions=1, replication=None, configs=None,
                     timeout=60):
        """Create a topic (configs e.g. {"cleanup.policy": "compact"}) and wait
        until every partition has a leader. Already there is fine."""
        args = ["create-topic", "-t", name, "--partitions", str(partitions),
                "--replication", str(replication or min(3, self.n)),
                "--timeout", str(timeout)]
        for k, v in (configs or {}).items():
            args += ["-c", "%s=%s" % (k, v)]
        p = self._tool(args, None, "PLAINTEXT", timeout + 30)
        if p.returncode != 0:
            raise KafkaError("create topic %s: %s" % (name, p.stderr.strip()))
        return p.stdout.strip()

    def consume(self, topics, props=None, listener="PLAINTEXT", count=None,
                eof=True, idle=10, timeout=120, check=True):
        """Records of topics from the beginning, as dicts (see kafka_client
        consume). eof=True stops at the end of every partition (the last
        stable offset under read_committed); count stops after N. With
        check, raise when fewer than count arrived or the tool failed."""
        if isinstance(topics, str):
            topics = [topics]
        args = ["consume", "--idle", str(idle), "--timeout", str(timeout)]
        for t in topics:
            args += ["-t", t]
        if count is not None:
            args += ["--count", str(count)]
        if eof:
            args.append("--eof")
        p = self._tool(args, props, listener, timeout + 60)
        if check and p.returncode != 0:
            raise KafkaError("consume %s: exit %d: %s" % (topics, p.returncode,
                                                          p.stderr.strip()[-2000:]))
        self.last_consume_summary = p.stderr.strip()
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def produce(self, topic, records, props=None, listener="PLAINTEXT",
                txn_id=None, txn_end="commit", timeout=60):
        """Produce records (dicts with "value", optional "key", "headers",
        "partition"), in one transaction when txn_id is given."""
        args = ["produce", "-t", topic, "--timeout", str(timeout)]
        if txn_id:
            args += ["--txn-id", txn_id, "--txn-end", txn_end]
        data = "".join(json.dumps(r) + "\n" for r in records)
        p = self._tool(args, props, listener, timeout + 60, stdin=data)
        if p.returncode != 0:
            raise KafkaError("produce to %s: %s" % (topic, p.stderr.strip()[-2000:]))
        return p.stderr.strip()


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="Run a KRaft Kafka cluster on loopback.")
    ap.add_argument("--brokers", type=int, default=1)
    ap.add_argument("--version", default=VERSION, help="Kafka version (default %(default)s)")
    ap.add_argument("--dir", help="work directory (kept); default a temp dir (removed)")
    ap.add_argument("--topic", action="append", default=[],
                    help="NAME[:PARTITIONS[:compact]] to create")
    a = ap.parse_args(argv)
    why = unavailable()
    if why:
        print("broker.py: %s" % why, file=sys.stderr)
        return 77
    with KafkaCluster(brokers=a.brokers, workdir=a.dir, keep=bool(a.dir),
                      version=a.version) as kc:
        for t in a.topic:
            parts = t.split(":")
            kc.create_topic(parts[0], partitions=int(parts[1]) if len(parts) > 1 else 1,
                            configs={"cleanup.policy": "compact"} if "compact" in parts[2:] else None)
        print(json.dumps({
            "dir": kc.dir, "version": kc.version, "start_seconds": round(kc.start_seconds, 1),
            "bootstrap": {l: kc.bootstrap(l) for l in LISTENERS if l != "CONTROLLER"},
            "props": {l: kc.client_props(l) for l in ("SASL_SSL", "SSL")},
            "pids": {n.id: n.proc.pid for n in kc.nodes}}, indent=1), flush=True)
        try:
            signal.pause()
        except (KeyboardInterrupt, SystemExit):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
