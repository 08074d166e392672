"""faultlib: the fault suite's scenario registry, context and table.

A scenario is a function decorated with @scenario(name, defect=..., needs=...)
in a module tests/faults/scenarios_*.py. It gets a Ctx (its own temp dir,
the m365fwd binary, helpers that start the emulator, an agent, a stalling
proxy, faketime, a small file system) and returns a Row: what the source
made available (sent), what reached the sink (received, unique), what was
lost without being reported, duplicates, and a verdict:

  healed    every record arrived (duplicates within the documented bound)
  reported  what did not arrive was reported loudly (gap event naming it,
            exit status, log, `status`) and nothing was lost in silence
  FAIL ...  anything else (an assertion of the scenario failed)
  skip ...  the environment cannot run it (the reason is printed)

New scenarios slot in by adding a function (or a scenarios_<area>.py file);
the runner (run_faults.py) imports every scenarios_*.py next to it.

No sleeps for synchronization: waits are conditions with deadlines
(harness.wait_for); timing faults are put in place by the test (proxy
hold/reset, emulator faults switched on and off by id).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, os.path.join(SRC, "tests", "tools"))
import harness as h  # noqa: E402
from stallproxy import StallProxy  # noqa: E402

REGISTRY = []

# Certificates valid from yesterday: an agent under faketime hours behind
# still trusts them.
if shutil.which("faketime"):
    h.Certs.prefix = ("faketime", "-f", "-1d")


class Skip(Exception):
    """The environment cannot run this scenario."""


class Fail(AssertionError):
    pass


def scenario(name, defect, needs=()):
    """Register a scenario. defect: where it comes from (issue 11 defect N,
    reliability.md §6 row N). needs: external commands it requires."""
    def wrap(fn):
        REGISTRY.append({"name": name, "defect": defect, "needs": tuple(needs),
                         "fn": fn, "doc": (fn.__doc__ or "").strip()})
        return fn
    return wrap


class Row:
    def __init__(self, name, sent=0, received=0, lost=0, duplicates=0,
                 verdict="healed", note=""):
        self.name = name
        self.sent = sent
        self.received = received
        self.lost = lost
        self.duplicates = duplicates
        self.verdict = verdict
        self.note = note
        self.seconds = 0.0

    @property
    def ok(self):
        if self.verdict.startswith("skip"):
            return True
        return self.verdict in ("healed", "reported") and self.lost == 0


def expect(cond, msg, *args):
    if not cond:
        raise Fail(msg % args if args else msg)


class Ctx:
    """Everything one scenario uses; cleanup() stops what it started."""

    def __init__(self, binary, name, keep=False):
        self.binary = binary
        self.name = name
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="m365fwd-fault-%s-" % name)
        self.emus = []
        self.agents = []
        self.proxies = []
        self.mounts = []
        self.sinks = []
        self.procs = []

    # ---- pieces ----------------------------------------------------------
    def emu(self, scenario_dict, **kw):
        e = h.Emulator(scenario_dict, os.path.join(self.dir, "emu%d" % len(self.emus)),
                       **kw)
        self.emus.append(e)
        return e

    def agent(self, emu, sub="agent", **kw):
        a = h.Agent(self.binary, os.path.join(self.dir, sub), emu, **kw)
        self.agents.append(a)
        return a

    def proxy(self, upstream_port, **kw):
        p = StallProxy(("127.0.0.1", upstream_port), **kw).start()
        self.proxies.append(p)
        return p

    @staticmethod
    def faketime(offset):
        """Command prefix running a program with its clock moved by offset
        ("+2h", "-2h"). Skip when faketime is missing."""
        if not shutil.which("faketime"):
            raise Skip("faketime not installed (Debian package faketime)")
        return ["faketime", "-f", offset]

    @staticmethod
    def faketime_env(binary):
        """Environment for a faketime'd agent: the monotonic clock stays
        real (timers), and a sanitizer build accepts the preloaded library."""
        env = dict(os.environ)
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        env["FAKETIME_DONT_RESET"] = "1"
        asan = env.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        return env

    def small_fs(self, size_kib):
        """A fresh tmpfs of size_kib mounted in the scenario dir (root only;
        Skip otherwise). Returns its path; unmounted at cleanup."""
        if os.geteuid() != 0 or not shutil.which("mount"):
            raise Skip("a small file system needs root (mount -t tmpfs)")
        d = os.path.join(self.dir, "smallfs%d" % len(self.mounts))
        os.makedirs(d)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk,mode=0700" % size_kib,
                            "tmpfs", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise Skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip()[:200])
        self.mounts.append(d)
        return d

    def syslog_sink(self, **kw):
        s = SyslogSink(**kw).start()
        self.sinks.append(s)
        return s

    def imports(self, cfg, inputs, args=(), env=None):
        """Start `m365fwd import -c cfg [args] inputs`; an Import."""
        p = Import(self.binary, cfg, inputs, args, env)
        self.procs.append(p)
        return p

    def rsyslog_relp(self):
        r = RsyslogRelp(os.path.join(self.dir, "rsyslog")).start()
        self.procs.append(r)
        return r

    def mock_kafka(self, topics=("t:1",)):
        """A mock Kafka cluster (tests/mock_kafka of the build); Skip when
        the build has none."""
        k = MockKafka(self.binary, topics, os.path.join(self.dir, "kafka.log"))
        self.procs.append(k)
        return k

    def cleanup(self):
        for p in self.procs:
            p.kill()
        for s in self.sinks:
            s.stop()
        for a in self.agents:
            a.stop_if_running()
        for p in self.proxies:
            p.stop()
        for e in self.emus:
            e.stop()
        for d in reversed(self.mounts):
            subprocess.run(["umount", "-l", d], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        # no secret in any log of any agent (reliability.md §4.1)
        for a in self.agents:
            logs = a.all_logs()
            expect(h.SECRET.encode() not in logs, "the client secret is in an agent log")
        if self.keep:
            sys.stderr.write("  [kept %s]\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- import and syslog pieces ----------------------------------------------

ORG = "8d4121ed-0008-406d-bff9-0d5bb312183c"


def records(n, tag="r", pad=0):
    """n audit records with unique Ids (tag-XXXXXXXX-...), pad bytes of
    filler each."""
    out = []
    for i in range(n):
        out.append({"CreationTime": "2024-03-%02dT%02d:%02d:%02d" % (
                        1 + i % 28, i % 24, i % 60, (i * 7) % 60),
                    "Id": "%s-%08d-0000-4000-8000-%012d" % (tag, i, i),
                    "Operation": "FileAccessed", "OrganizationId": ORG,
                    "RecordType": 6, "ResultStatus": "Succeeded",
                    "UserKey": "1003%012d" % i, "UserType": 0, "Version": 1,
                    "Workload": "SharePoint", "UserId": "user%d@contoso.com" % i,
                    "ObjectId": "https://contoso.sharepoint.com/f/%d" % i,
                    "ClientIP": "203.0.113.%d" % (i % 250), "Filler": "x" * pad})
    return out


def write_ndjson(path, recs):
    with open(path, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    return path


def yaml_config(path, state_dir, outputs, extra=()):
    """A configuration of outputs only (import): outputs is a list of
    dicts (name, type and the type's keys)."""
    lines = ["state_dir: %s" % json.dumps(state_dir), "log_level: info", "outputs:"]
    for o in outputs:
        o = dict(o)
        lines.append("  - name: %s" % o.pop("name"))
        for k, v in o.items():
            lines.append("    %s: %s" % (k, json.dumps(v)))    # JSON is YAML
    lines += list(extra)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class Import:
    """A running `m365fwd import`; stderr collected by a thread."""

    def __init__(self, binary, cfg, inputs, args=(), env=None):
        self.p = subprocess.Popen([binary, "import", "-c", cfg] + list(args) + list(inputs),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env)
        self.err = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for chunk in iter(lambda: self.p.stderr.read1(65536), b""):
            with self.lock:
                self.err += chunk

    def stderr(self):
        with self.lock:
            return self.err.decode("utf-8", "replace")

    def done(self):
        return self.p.poll() is not None

    def wait(self, timeout):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError("import did not end within %ss; stderr tail:\n%s"
                               % (timeout, self.stderr()[-1500:]))
        self.t.join(5)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def mock_kafka_exe(binary):
    build = os.environ.get("MF_BUILD_ROOT") or os.path.dirname(os.path.dirname(binary))
    exe = os.path.join(build, "tests", "mock_kafka")
    if not os.access(exe, os.X_OK):
        raise Skip("no mock_kafka in this build (%s)" % exe)
    return exe


class MockKafka:
    """tests/tools/mock_kafka serving a librdkafka mock cluster; down()
    and up() take every broker down and back (SIGUSR1 / SIGUSR2)."""

    def __init__(self, binary, topics, log):
        self.exe = mock_kafka_exe(binary)
        args = [self.exe]
        for t in topics:
            args += ["-t", t]
        self.log = open(log, "wb")
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        self.bootstrap = self.p.stdout.readline().decode().strip()
        expect(self.bootstrap, "mock_kafka did not start")

    def _signal(self, sig, word):
        import signal as sg
        self.p.send_signal(getattr(sg, sig))
        line = self.p.stdout.readline().decode().strip()
        expect(line == word, "mock_kafka answered %r to %s", line, sig)

    def down(self):
        self._signal("SIGUSR1", "down")

    def up(self):
        self._signal("SIGUSR2", "up")

    def ids(self, topic, timeout=20):
        """Every record's Id in topic (duplicates included)."""
        hw = subprocess.run([self.exe, "--watermark", self.bootstrap, topic],
                            capture_output=True, text=True, timeout=60).stdout.strip()
        if not hw or hw == "0":
            return []
        p = subprocess.run([self.exe, "--consume", self.bootstrap, topic, "--count", hw,
                            "--timeout", str(timeout)],
                           capture_output=True, text=True, timeout=120)
        return [ln.split("\t")[-1] for ln in p.stdout.splitlines() if ln]

    def kill(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
RS_MODDIR = "/usr/lib/x86_64-linux-gnu/rsyslog"


class RsyslogRelp:
    """rsyslogd receiving RELP (imrelp, Debian package rsyslog-relp) on a
    fixed loopback port and writing each raw message as one line. Its
    ruleset queue is direct and omfile writes at the end of each batch, so
    what imrelp acknowledged is in the file (the page cache) even when
    rsyslogd is killed with -9 right after."""

    def __init__(self, workdir, port=0):
        if not os.path.exists(RSYSLOGD) or \
                not os.path.exists(os.path.join(RS_MODDIR, "imrelp.so")):
            raise Skip("rsyslogd with imrelp missing (Debian packages rsyslog, rsyslog-relp)")
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.out = os.path.join(workdir, "out.log")
        self.port = port or _free_port()
        self.proc = None
        self.starts = 0

    def start(self):
        cf = os.path.join(self.dir, "rsyslog.conf")
        with open(cf, "w") as f:
            f.write('global(workDirectory="%s" maxMessageSize="1m")\n'
                    'module(load="imrelp")\n'
                    'template(name="raw" type="string" string="%%rawmsg%%\\n")\n'
                    'input(type="imrelp" port="%d" address="127.0.0.1" ruleset="r")\n'
                    'ruleset(name="r" queue.type="Direct") {\n'
                    '  action(type="omfile" file="%s" template="raw" flushOnTXEnd="on"'
                    ' asyncWriting="off")\n}\n' % (self.dir, self.port, self.out))
        self.starts += 1
        self.log = open(os.path.join(self.dir, "rsyslogd-%d.log" % self.starts), "wb")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", cf, "-i",
                                      os.path.join(self.dir, "pid")],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise Fail("rsyslogd exited %s" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        wait_for(ready, 30, "rsyslogd listening on %d" % self.port)
        return self

    def kill9(self):
        import signal as sg
        self.proc.send_signal(sg.SIGKILL)
        self.proc.wait(30)
        self.log.close()

    def ids(self):
        try:
            with open(self.out, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        out = []
        for ln in data.split(b"\n")[:-1]:
            m = SD_ID.search(ln)
            out.append(m.group(1).decode() if m else None)
        return out

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SD_ID = re.compile(rb' id="([^"]*)"')


class SyslogSink:
    """A syslog receiver on loopback: octet-counted frames (RFC 6587) over
    TCP, one thread per connection; keeps the Id of every message (the
    m365fwd SD element's id). Reads everything it is sent and closes its
    side when the sender closes its own, as rsyslog does."""

    def __init__(self):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.ids_list = []
        self.conns = 0
        self.closing = False
        self.threads = []

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def _accept(self):
        self.ls.settimeout(0.05)
        while not self.closing:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns += 1
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c):
        buf = b""
        c.settimeout(0.2)
        while not self.closing:
            try:
                data = c.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            buf += data
            while True:
                sp = buf.find(b" ")
                if sp < 0:
                    break
                n = int(buf[:sp])
                if len(buf) < sp + 1 + n:
                    break
                msg = buf[sp + 1:sp + 1 + n]
                buf = buf[sp + 1 + n:]
                m = SD_ID.search(msg)
                with self.lock:
                    self.ids_list.append(m.group(1).decode() if m else None)
        c.close()

    def ids(self):
        with self.lock:
            return list(self.ids_list)

    def stop(self):
        self.closing = True
        try:
            self.ls.close()
        except OSError:
            pass
        for t in self.threads:
            t.join(5)


def count_row(name, sent_ids, got_ids, verdict="healed", note=""):
    """Row from Ids sent and Ids received (a list, duplicates included)."""
    sent = set(sent_ids)
    got = set(i for i in got_ids if i is not None)
    extra = got - sent
    expect(not extra, "%d records received that were never sent", len(extra))
    lost = sent - got
    row = Row(name, sent=len(sent), received=len(got), lost=len(lost),
              duplicates=len([i for i in got_ids if i is not None]) - len(got),
              verdict=verdict if not lost else "FAIL", note=note)
    row.lost_ids = sorted(lost)
    return row


# ---- accounting ------------------------------------------------------------

def tally(name, emu, agent, tenant=h.T1, ct=None, reported_blobs=(), note="",
          verdict="healed"):
    """Row for a collection scenario: sent = records of every blob visible
    on the emulator; received = unique Ids delivered; lost = sent - received
    - the records of blobs reported in a gap event (by contentId). The
    verdict given ("healed", "reported") holds only when nothing was lost."""
    blobs = emu.content(tenant, ct)
    now = emu.now()
    sent, by_blob = set(), {}
    for b in blobs:
        if h.parse_created(b["available"]) > now:
            continue
        sent.update(b["ids"])
        by_blob[b["contentId"]] = set(b["ids"])
    out = agent.read_output()
    ids = out.ids()
    got = set(ids)
    reported = set()
    for cid in reported_blobs:
        reported |= by_blob.get(cid, set())
    lost = sent - got - reported
    extra = got - sent
    expect(not out.bad, "output lines that are not objects: %s", out.bad[:2])
    expect(not extra, "%d records delivered that were never served", len(extra))
    row = Row(name, sent=len(sent), received=len(got & sent), lost=len(lost),
              duplicates=len(ids) - len(got), note=note,
              verdict=verdict if not lost else "FAIL")
    row.lost_ids = sorted(lost)
    row.gaps = out.gaps
    return row


def gap_names(gaps, content_id):
    """Does a collection-gap event name content_id?"""
    return any(content_id in json.dumps(g) for g in gaps)


def wait_for(cond, timeout, what):
    return h.wait_for(cond, timeout, what)


def log_has(agent, needle, timeout=30):
    """Wait until the agent's logs contain needle (bytes or str)."""
    if isinstance(needle, str):
        needle = needle.encode()
    return h.wait_for(lambda: needle in agent.all_logs(), timeout,
                      "%r in the agent log" % needle)


# ---- table -------------------------------------------------------------------

COLUMNS = ("scenario", "sent", "received", "lost", "duplicates", "verdict")


def format_table(rows):
    cells = [COLUMNS] + [(r.name, str(r.sent), str(r.received), str(r.lost),
                          str(r.duplicates), r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    out = []
    for k, c in enumerate(cells):
        out.append("| " + " | ".join(c[i].ljust(widths[i]) for i in range(len(COLUMNS)))
                   + " |")
        if k == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def format_row(r):
    return "%-28s sent %-6d received %-6d lost %-4d dup %-4d %s (%.1fs)%s" % (
        r.name, r.sent, r.received, r.lost, r.duplicates, r.verdict, r.seconds,
        ("\n      " + r.note) if r.note else "")
