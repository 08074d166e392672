"""Integration harness for `m365fwd run` against the m365emu emulator.

Used by tests/integration/test_run.py and bench/collect_bench.py.

- Emulator: a subprocess of tests/emulator/m365emu.py on ephemeral loopback
  ports; readiness is read from --ready-file with a deadline.
- Agent: configuration and secret files (mode 0600) written into a temp dir;
  `run --once`, `run` (daemon), `status --json`; kill -9 / SIGTERM.
- Accounting: the Ids the emulator served (GET /_control/served) against the
  Ids found in the agent's output file (schema raw: record + "m365fwd").

No sleeps for synchronization: every wait is a condition polled with a short
interval under an overall deadline (wait_for).
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
EMU_DIR = os.path.join(SRC, "tests", "emulator")
sys.dont_write_bytecode = True
sys.path.insert(0, EMU_DIR)
import mkcerts  # noqa: E402

APP = "11111111-2222-3333-4444-555555555555"
SECRET = "emu-S3cr3t-do-not-log-7f3a9c"
T1 = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
T2 = "1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1"
T3 = "2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2"
ALL_CT = ["Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint",
          "Audit.General", "DLP.All"]
GAP_TAG = "monitor.collection_gap"


class SkipSuite(Exception):
    """The environment cannot run the suite (exit 77)."""


def wait_for(cond, timeout, what, interval=0.05):
    """Poll cond() until it returns a truthy value; raise after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s"
                               % (timeout, what))
        time.sleep(interval)


def have_openssl():
    return shutil.which("openssl") is not None


class Certs:
    """Test CA and certificates, made once per process."""
    _certs = None
    _dir = None
    prefix = ()         # command prefix for openssl (mkcerts.make_certs)

    @classmethod
    def get(cls):
        if cls._certs is None:
            if not have_openssl():
                raise SkipSuite("openssl command not found")
            cls._dir = tempfile.mkdtemp(prefix="m365fwd-integ-certs-")
            cls._certs = mkcerts.make_certs(cls._dir, prefix=cls.prefix)
        return cls._certs

    @classmethod
    def cleanup(cls):
        if cls._dir:
            shutil.rmtree(cls._dir, ignore_errors=True)
            cls._dir = cls._certs = None


class Emulator:
    """m365emu.py subprocess plus its control API."""

    def __init__(self, scenario, workdir, extra_args=(), start_timeout=120):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        certs = Certs.get()
        path = os.path.join(workdir, "scenario.json")
        text = json.dumps(scenario).replace(
            '"@client_cert"', json.dumps(certs["client_cert"]))
        with open(path, "w") as f:
            f.write(text)
        self.ready_file = os.path.join(workdir, "emu.ready")
        self.log_path = os.path.join(workdir, "emu.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(EMU_DIR, "m365emu.py"), "-s", path,
             "--cert", certs["server_cert"], "--key", certs["server_key"],
             "--port", "0", "--control-port", "0",
             "--ready-file", self.ready_file] + list(extra_args),
            stdout=subprocess.DEVNULL, stderr=self.log)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited (%s): %s" % (
                    self.proc.returncode, self.tail_log()))
            return os.path.exists(self.ready_file)
        try:
            wait_for(ready, start_timeout, "emulator ready file")
        except Exception:
            self.stop()
            raise
        with open(self.ready_file) as f:
            self.ready = json.load(f)
        self.port = self.ready["api_port"]
        self.cport = self.ready["control_port"]
        self.url = "https://127.0.0.1:%d" % self.port
        self.ca = certs["ca"]

    def tail_log(self, n=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    # ---- control API
    def ctl(self, method, path, body=None, query=None):
        url = "http://127.0.0.1:%d%s" % (self.cport, path)
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type":
                                              "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError("control %s %s: %s %s" % (
                method, path, e.code, e.read()[:500]))
        return json.loads(raw) if raw else None

    def served(self, tenant=None, ct=None):
        q = {}
        if tenant:
            q["tenant"] = tenant
        if ct:
            q["contentType"] = ct
        return self.ctl("GET", "/_control/served", query=q)

    def served_ids(self, tenant=None, ct=None):
        return set(self.served(tenant, ct)["ids"])

    def content(self, tenant, ct=None):
        q = {"tenant": tenant}
        if ct:
            q["contentType"] = ct
        return self.ctl("GET", "/_control/content", query=q)["blobs"]

    def stats(self):
        return self.ctl("GET", "/_control/stats")

    def counter(self, name):
        return self.stats()["counters"].get(name, 0)

    def requests_matching(self, needle):
        return sum(v for k, v in self.stats()["requests"].items()
                   if needle in k)

    def now(self):
        return self.ctl("GET", "/_control/clock")["epoch"]

    def advance(self, seconds):
        return self.ctl("POST", "/_control/advance-clock",
                        {"seconds": seconds})

    def publish(self, tenant, ct, **kw):
        body = {"tenant": tenant, "contentType": ct}
        body.update(kw)
        return self.ctl("POST", "/_control/publish", body)["blobs"]

    def add_faults(self, faults, replace=False):
        return self.ctl("POST", "/_control/faults",
                        {"faults": faults, "replace": replace})

    def faults(self):
        return self.ctl("GET", "/_control/faults")["faults"]

    def expire_tokens(self, tenant=None):
        return self.ctl("POST", "/_control/expire-tokens",
                        {"tenant": tenant} if tenant else {})

    def config(self, **kw):
        return self.ctl("POST", "/_control/config", kw)

    def visible_ids(self, tenant, ct=None, since=None):
        """Ids of blobs already available (and created at/after `since`,
        epoch seconds) on the emulator's virtual clock."""
        now = self.now()
        ids = set()
        for b in self.content(tenant, ct):
            if parse_created(b["available"]) > now:
                continue
            if since is not None and parse_created(b["created"]) < since:
                continue
            ids.update(b["ids"])
        return ids


def parse_created(s):
    """'2026-11-28T21:40:00.123Z' -> epoch seconds (float)."""
    import datetime
    s = s.rstrip("Z")
    if "." in s:
        head, frac = s.split(".", 1)
    else:
        head, frac = s, "0"
    dt = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return dt.timestamp() + float("0." + frac)


def request_log(path):
    """The API requests of an emulator's --request-log (token requests and
    unattributed ones left out), as dicts: t0, t1, tenant, route, status,
    contentType, contentId, agent (the User-Agent)."""
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("tenant") and r.get("route") != "token":
                out.append(r)
    return out


def agent_of(ua):
    """The agent id in m365fwd's cluster-mode User-Agent
    ('m365fwd/1.0 (agent a1)' -> 'a1'); the whole string otherwise."""
    return ua.rsplit("(agent ", 1)[-1].rstrip(")") if "(agent " in ua else ua


def last_agent(reqs):
    """{tenant: the agent that asked for it last} of request_log() rows."""
    last = {}
    for r in sorted(reqs, key=lambda r: r["t0"]):
        last[r["tenant"]] = agent_of(r["agent"])
    return last


def first_requests_after(reqs, tenants, t, not_agent):
    """{tenant: when it was first asked for after t by an agent other than
    not_agent}, for the tenants given."""
    seen = {}
    for r in sorted(reqs, key=lambda r: r["t0"]):
        if r["tenant"] in tenants and r["t0"] > t and agent_of(r["agent"]) != not_agent:
            seen.setdefault(r["tenant"], r["t0"])
    return seen


def scenario(tenants, **kw):
    """A scenario dict with the test client (secret and certificate)."""
    sc = {"seed": kw.pop("seed", 7),
          "clients": [{"client_id": APP, "secret": SECRET,
                       "certificates": ["@client_cert"]}],
          "tenants": tenants}
    sc.update(kw)
    return sc


def tenant(tid, content, **kw):
    t = {"id": tid, "content": content}
    t.update(kw)
    return t


# --------------------------------------------------------------------------
# agent side

def _yq(s):
    """YAML double-quoted scalar."""
    return json.dumps(str(s))


class Agent:
    """One agent configuration (state dir, output file, secrets) in a
    temp dir, and the processes run with it."""

    def __init__(self, binary, workdir, emu, tenants=None, content_types=None,
                 schema="raw", collect=None, auth="secret", output_path=None,
                 extra_top=None, tenant_overrides=None, state_dir=None):
        self.binary = binary
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.emu = emu
        self.state_dir = state_dir or os.path.join(workdir, "state")
        self.output = output_path or os.path.join(workdir, "out.ndjson")
        self.cfg = os.path.join(workdir, "m365fwd.yaml")
        self.logs = []
        self.runs = 0
        certs = Certs.get()
        secret_file = os.path.join(workdir, "client.secret")
        _write_secret(secret_file, SECRET + "\n")
        key_file = os.path.join(workdir, "client.key")
        with open(certs["client_key"], "rb") as f:
            _write_secret(key_file, f.read().decode())
        coll = {"poll_interval": "1s", "initial_lookback": "24h",
                "max_concurrency": 4, "requests_per_minute": 100000,
                "max_backoff": "2s", "request_timeout": "10s"}
        coll.update(collect or {})
        lines = ["# written by tests/integration/harness.py",
                 "state_dir: %s" % _yq(self.state_dir),
                 "log_level: debug",
                 "collect:"]
        for k, v in coll.items():
            lines.append("  %s: %s" % (k, v))
        lines.append("tenants:")
        cts = content_types or ALL_CT
        for i, tid in enumerate(tenants or [T1]):
            lines += ["  - id: %s" % _yq(tid),
                      "    name: %s" % _yq("t%d" % (i + 1)),
                      "    client_id: %s" % _yq(APP)]
            if auth == "certificate":
                lines += ["    certificate_file: %s" % _yq(certs["client_cert"]),
                          "    private_key_file: %s" % _yq(key_file)]
            else:
                lines.append("    client_secret_file: %s" % _yq(secret_file))
            lines += ["    login_endpoint: %s" % _yq(emu.url if emu else
                                                     "https://127.0.0.1:9"),
                      "    api_endpoint: %s" % _yq(emu.url if emu else
                                                   "https://127.0.0.1:9"),
                      "    ca_file: %s" % _yq(certs["ca"]),
                      "    content_types: [%s]" % ", ".join(cts)]
            for k, v in (tenant_overrides or {}).items():
                lines.append("    %s: %s" % (k, v))
        lines += ["outputs:",
                  "  - name: out",
                  "    type: file",
                  "    path: %s" % _yq(self.output),
                  "    schema: %s" % schema]
        for line in extra_top or []:
            lines.append(line)
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.prefix = []        # e.g. ["faketime", "-f", "+2h"]
        self.env = None         # environment of the agent (None: inherited)

    def _log_file(self, tag):
        while True:     # several Agent objects may share one directory
            self.runs += 1
            path = os.path.join(self.dir, "agent-%02d-%s.log" % (self.runs,
                                                                 tag))
            if not os.path.exists(path):
                break
        self.logs.append(path)
        return path

    def run_once(self, timeout=120, args=()):
        log = self._log_file("once")
        with open(log, "wb") as lf:
            p = subprocess.Popen(self.prefix + [self.binary, "run", "-c", self.cfg,
                                                "--once"] + list(args),
                                 stdout=lf, stderr=lf, env=self.env)
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise TimeoutError("run --once did not finish within %ss; "
                                   "log tail:\n%s" % (timeout, tail(log)))
        return rc

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        log = self._log_file("run")
        self._lf = open(log, "wb")
        self.proc = subprocess.Popen(self.prefix + [self.binary, "run", "-c", self.cfg],
                                     stdout=self._lf, stderr=self._lf, env=self.env)
        return self.proc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._lf.close()
        return self.proc.returncode

    def terminate(self, timeout=60, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._lf.close()
            raise TimeoutError("agent did not exit within %ss of signal %d"
                               % (timeout, sig))
        self._lf.close()
        return rc

    def stop_if_running(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
            self._lf.close()

    def status(self, timeout=30):
        r = subprocess.run(self.prefix + [self.binary, "status", "-c", self.cfg, "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=self.env)
        if r.returncode != 0:
            raise RuntimeError("status --json exited %d: %s" % (
                r.returncode, r.stderr.decode("utf-8", "replace")[-1000:]))
        return json.loads(r.stdout)

    def status_quiet(self):
        """status --json, or None when it fails (for waits)."""
        try:
            return self.status()
        except Exception:  # noqa: BLE001
            return None

    def last_log(self):
        return tail(self.logs[-1]) if self.logs else ""

    def all_logs(self):
        out = b""
        for p in self.logs:
            with open(p, "rb") as f:
                out += f.read()
        return out

    def output_lines(self):
        """Count of complete lines in the output (cheap, for waits)."""
        try:
            with open(self.output, "rb") as f:
                return f.read().count(b"\n")
        except FileNotFoundError:
            return 0

    def read_output(self):
        return read_output(self.output)

    def set_checkpoint(self, ms, content_type=None):
        """Rewrite the stored checkpoint(s) (agent stopped). Coupled to the
        streams table of agent/state.c."""
        db = sqlite3.connect(os.path.join(self.state_dir, "state.db"))
        try:
            if content_type:
                n = db.execute("UPDATE streams SET checkpoint_ms = ? WHERE "
                               "content_type = ?", (ms, content_type)).rowcount
            else:
                n = db.execute("UPDATE streams SET checkpoint_ms = ?",
                               (ms,)).rowcount
            db.commit()
        finally:
            db.close()
        return n


def _write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------
# output accounting

class Output:
    """Parsed output file: records, collection-gap events, torn lines."""

    def __init__(self):
        self.records = []       # parsed record objects (not gap events)
        self.gaps = []          # collection-gap events
        self.findings = []      # aggregate findings (raw schema)
        self.torn = 0           # partial line left by a kill (no record glued)
        self.merged = 0         # partial line with a complete record glued on
        self.bad = []           # lines that are neither

    def ids(self):
        return [r.get("Id") for r in self.records]


def is_gap_event(obj):
    tags = (obj.get("m365fwd") or {}).get("tags") or []
    return (obj.get("Operation") == "CollectionGap"
            or obj.get("Workload") == "m365fwd" or GAP_TAG in tags)


def is_finding(obj):
    """An aggregate finding (docs/aggregates.md) in the raw schema."""
    return "finding" in ((obj.get("m365fwd") or {}))


def _recover(line):
    """A line that is not JSON: a torn prefix, possibly followed by a
    complete record. Returns the trailing record or None."""
    dec = json.JSONDecoder()
    i = line.find("{", 1)
    while i != -1:
        try:
            obj, end = dec.raw_decode(line, i)
            if end == len(line) and isinstance(obj, dict):
                return obj
        except ValueError:
            pass
        i = line.find("{", i + 1)
    return None


def read_output(path):
    out = Output()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return out
    lines = data.split(b"\n")
    last_partial = lines[-1] != b""
    for n, raw in enumerate(lines):
        if raw == b"":
            continue
        text = raw.decode("utf-8", "replace")
        try:
            obj = json.loads(text)
        except ValueError:
            obj = _recover(text)
            if obj is not None:
                out.merged += 1
            elif n == len(lines) - 1 and last_partial:
                out.torn += 1
                continue
            else:
                out.torn += 1
                continue
        if not isinstance(obj, dict):
            out.bad.append(text[:200])
            continue
        (out.gaps if is_gap_event(obj) else
         out.findings if is_finding(obj) else out.records).append(obj)
    return out


class Compare:
    """Delivered Ids against served Ids."""

    def __init__(self, served, delivered_ids):
        self.served = set(served)
        counts = {}
        for i in delivered_ids:
            counts[i] = counts.get(i, 0) + 1
        self.delivered = set(counts)
        self.missing = sorted(self.served - self.delivered)
        self.extra = sorted(self.delivered - self.served)
        self.dup_ids = sorted(i for i, c in counts.items() if c > 1)
        self.duplicates = sum(c - 1 for c in counts.values())
        self.total = len(delivered_ids)

    def summary(self):
        return ("served %d unique, delivered %d lines (%d unique), missing %d,"
                " extra %d, duplicates %d (%d ids)" % (
                    len(self.served), self.total, len(self.delivered),
                    len(self.missing), len(self.extra), self.duplicates,
                    len(self.dup_ids)))


def status_streams(st):
    """The per-stream list of `status --json`, whatever its top-level key."""
    if isinstance(st, list):
        return st
    for k in ("tenants", "streams"):
        if isinstance(st.get(k), list):
            rows = st[k]
            # nested form: [{tenant, content_types|streams: [...]}]
            flat = []
            for r in rows:
                sub = r.get("content_types") or r.get("streams")
                if isinstance(sub, list):
                    for s in sub:
                        s = dict(s)
                        s.setdefault("tenant", r.get("tenant") or
                                     r.get("id") or r.get("name"))
                        flat.append(s)
                else:
                    flat.append(r)
            return flat
    raise KeyError("status --json: no tenants/streams list in %r"
                   % list(st)[:10])
