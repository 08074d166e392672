#!/usr/bin/env python3
"""The syslog output against a real rsyslogd (Debian packages rsyslog and
rsyslog-gnutls) started here on loopback ports: records go through
`m365fwd import -c CONFIG FILE`, rsyslog writes every raw message it
receives to a file, and the messages are parsed back and compared field by
field with what `m365fwd normalize` produces for the same records.

Covers TCP (octet counting and LF), TLS (test CA, client certificate, wrong
host name refused), UDP (best effort), RFC 5424 and RFC 3164 headers, json,
CEF and LEEF payloads with hostile content, the oversize policy, and the
receiver restarted in the middle of a stream over TCP and TLS (every Id
arrives at least once; duplicates are reported and bounded by the resend
window).

argv[1] = the m365fwd binary. Exits 77 (skip) when rsyslogd is missing.
No sleeps for synchronization: every wait is on a file or a port, with a
deadline.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))

import mkcerts  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from stallproxy import StallProxy  # noqa: E402

BIN = None
TMP = None
CERTS = None
RSYSLOGD = os.environ.get("MF_RSYSLOGD") or shutil.which("rsyslogd") or (
    "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
RS_MODDIR = "/usr/lib/x86_64-linux-gnu/rsyslog"

ORG = "8d4121ed-0008-406d-bff9-0d5bb312183c"
FACILITY_LOCAL0 = 16
# The documented tables (outputs/syslog_fmt.h), written out independently.
SYSLOG_SEV = {0: 6, 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1}
CEF_SEV = {0: 0, 1: 1, 2: 3, 3: 5, 4: 8, 5: 10, 6: 10}
HOSTILE_USER = 'e=v|il\\x]"y\nz\t\u00e9\u65e5^@contoso.com'
# Window of resent records per broken connection (outputs/syslog.c):
# min(max_in_flight, 4096); max_in_flight is 1000 in the configs below.
WINDOW = 1000
RESTART_WINDOW = 4096      # SL_WINDOW_RECORDS, the default window
RESTART_HOLD = 256 * 1024  # bytes through the proxy before the restart
DEADLINE = 30.0


# ---------------------------------------------------------------------------
# records

OPS = [
    ("UserLoggedIn", 15, "AzureActiveDirectory", None),
    ("FileAccessed", 6, "SharePoint", None),
    ("Add-MailboxPermission", 1, "Exchange",
     [{"Name": "Identity", "Value": "Henrietta@contoso.com"},
      {"Name": "AccessRights", "Value": "FullAccess"},
      {"Name": "User", "Value": "Lidia@contoso.com"}]),
    ("New-InboxRule", 1, "Exchange",
     [{"Name": "Name", "Value": "x"},
      {"Name": "DeleteMessage", "Value": "True"}]),
    ("AnonymousLinkCreated", 14, "SharePoint", None),
    ("Set|Odd=Op", 1, "Exchange", None),
]
IPS = ["203.0.113.7", "198.51.100.2:5050", "[2001:db8::1]:443",
       "::ffff:192.0.2.9", "", None]


def record(i, tag="r", extra=None):
    op, rt, wl, params = OPS[i % len(OPS)]
    r = {
        "CreationTime": "2024-03-%02dT%02d:%02d:%02d" % (
            1 + i % 28, i % 24, i % 60, (i * 7) % 60),
        "Id": "%s-%08d-0000-4000-8000-%012d" % (tag, i, i),
        "Operation": op,
        "OrganizationId": ORG,
        "RecordType": rt,
        "ResultStatus": "Succeeded" if i % 5 else "Failed",
        "UserKey": "1003%012d" % i,
        "UserType": 0,
        "Version": 1,
        "Workload": wl,
        "UserId": HOSTILE_USER if i % 7 == 3 else "user%d@contoso.com" % i,
        "ObjectId": "obj-%d \u00fc" % i,
    }
    if IPS[i % len(IPS)] is not None:
        r["ClientIP"] = IPS[i % len(IPS)]
    if params:
        r["Parameters"] = params
    if extra:
        r.update(extra)
    return r


def write_records(path, recs):
    with open(path, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def normalize(path, schema, keep_raw=False):
    args = [BIN, "normalize", "--schema", schema]
    if keep_raw:
        args.append("--keep-raw")
    p = subprocess.run(args + [path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError("normalize failed: %s" % p.stderr.decode())
    out = {}
    for line in p.stdout.decode("utf-8").splitlines():
        ev = json.loads(line)
        out[event_id(ev, schema)] = ev
    return out


def event_id(ev, schema):
    if schema == "ocsf":
        return ev["metadata"]["uid"]
    if schema == "ecs":
        return ev["event"]["id"]
    return ev["Id"]


# ---------------------------------------------------------------------------
# rsyslog

def listening(port, proto):
    """True when something listens on 127.0.0.1/::1 port (from /proc)."""
    files = ["/proc/net/tcp", "/proc/net/tcp6"] if proto == "tcp" else \
        ["/proc/net/udp", "/proc/net/udp6"]
    want = "%04X" % port
    for fn in files:
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].rsplit(":", 1)[1] != want:
                        continue
                    if proto == "udp" or parts[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def socket_buffer_max():
    """The largest send buffer the kernel gives a TCP socket (autotuning)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


def free_port(proto):
    import socket
    s = socket.socket(socket.AF_INET,
                      socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.0fs waiting for %s" % (deadline, what))
        time.sleep(0.02)   # polling interval; the condition is what we wait on


class Rsyslog:
    def __init__(self, name, proto="tcp", tls=None, port=0):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proto = proto
        self.tls = tls            # None, "x509/certvalid" or "anon"
        self.port = port
        self.out = os.path.join(self.dir, "out.log")
        self.proc = None
        self.server_cert = CERTS["server_cert"] if CERTS else None
        self.server_key = CERTS["server_key"] if CERTS else None

    def conf(self):
        d = self.dir
        g = 'global(workDirectory="%s" maxMessageSize="1m"' % d
        if self.tls:
            g += (' defaultNetstreamDriverCAFile="%s" defaultNetstreamDriverCertFile="%s"'
                  ' defaultNetstreamDriverKeyFile="%s"' % (
                      CERTS["ca"], self.server_cert, self.server_key))
        g += ")\n"
        portfile = os.path.join(d, "port")
        if self.proto == "udp":
            mod = 'module(load="imudp")\n'
            inp = 'input(type="imudp" address="127.0.0.1" port="%d" ruleset="r")\n' % self.port
        else:
            mod = 'module(load="imtcp"'
            if self.tls:
                mod += (' streamDriver.name="gtls" streamDriver.mode="1"'
                        ' streamDriver.authMode="%s"' % self.tls)
            mod += ")\n"
            inp = ('input(type="imtcp" address="127.0.0.1" port="%d" '
                   'listenPortFileName="%s" ruleset="r")\n' % (self.port, portfile))
        return (g + mod +
                'template(name="raw" type="string" string="%rawmsg%\\n")\n' + inp +
                'ruleset(name="r") { action(type="omfile" file="%s" template="raw") }\n'
                % self.out)

    def start(self):
        if self.proto == "udp" and not self.port:
            self.port = free_port("udp")
        portfile = os.path.join(self.dir, "port")
        if os.path.exists(portfile):
            os.unlink(portfile)
        cf = os.path.join(self.dir, "rsyslog.conf")
        with open(cf, "w") as f:
            f.write(self.conf())
        self.log = open(os.path.join(self.dir, "rsyslogd.log"), "ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", cf, "-i", os.path.join(self.dir, "pid")],
            stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("rsyslogd exited %s: %s" % (
                    self.proc.returncode, self.logtext()))
            if self.proto == "tcp" and not self.port:
                try:
                    with open(portfile) as f:
                        txt = f.read().strip()
                    if txt:
                        self.port = int(txt)
                except OSError:
                    return False
            return self.port and listening(self.port, self.proto)
        wait_for(ready, "rsyslogd to listen")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=DEADLINE)
        if self.proc:
            self.log.close()
        self.proc = None

    def logtext(self):
        try:
            with open(os.path.join(self.dir, "rsyslogd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def lines(self):
        try:
            with open(self.out, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        # only complete lines
        return [ln.decode("utf-8") for ln in data.split(b"\n")[:-1]]


# ---------------------------------------------------------------------------
# parsers (independent of the C code)

def parse_sd(s, i):
    """Parse STRUCTURED-DATA at s[i:]; returns (dict, next index)."""
    sd = {}
    if s[i] == "-":
        return sd, i + 1
    while i < len(s) and s[i] == "[":
        j = i + 1
        while s[j] not in " ]":
            j += 1
        sdid = s[i + 1:j]
        params = {}
        i = j
        while s[i] == " ":
            j = s.index("=", i)
            name = s[i + 1:j]
            assert s[j + 1] == '"', s[i:]
            k = j + 2
            val = []
            while s[k] != '"':
                if s[k] == "\\" and s[k + 1] in '"\\]':
                    val.append(s[k + 1])
                    k += 2
                else:
                    assert s[k] != "]", "unescaped ] in SD value"
                    val.append(s[k])
                    k += 1
            params[name] = "".join(val)
            i = k + 1
        assert s[i] == "]", s[i:]
        sd[sdid] = params
        i += 1
    return sd, i


def parse_5424(line):
    assert line.startswith("<"), line[:80]
    pri, rest = line[1:].split(">", 1)
    ver, ts, host, app, procid, msgid, rest = rest.split(" ", 6)
    assert ver == "1", line[:80]
    sd, i = parse_sd(rest, 0)
    msg = rest[i + 1:] if i < len(rest) else ""
    return {"pri": int(pri), "ts": ts, "host": host, "app": app,
            "procid": procid, "msgid": msgid, "sd": sd, "msg": msg}


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]


def parse_3164(line):
    assert line.startswith("<"), line[:80]
    pri, rest = line[1:].split(">", 1)
    ts, rest = rest[:15], rest[16:]
    host, rest = rest.split(" ", 1)
    tag, msg = rest.split(": ", 1)
    return {"pri": int(pri), "ts": ts, "host": host, "tag": tag, "msg": msg}


def split_unescaped(s, sep, limit=None):
    parts, cur, i = [], [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if s[i] == sep and (limit is None or len(parts) < limit):
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(s[i])
        i += 1
    parts.append("".join(cur))
    return parts


def unescape(s, table):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in table:
            out.append(table[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


HDR_UNESC = {"|": "|", "\\": "\\"}
CEF_UNESC = {"=": "=", "\\": "\\", "n": "\n", "r": "\r"}
LEEF_UNESC = {"^": "^", "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def parse_cef(msg):
    assert msg.startswith("CEF:0|"), msg[:80]
    parts = split_unescaped(msg, "|", limit=7)
    assert len(parts) == 8, parts
    hdr = [unescape(p, HDR_UNESC) for p in parts[:7]]
    ext, ext_s = {}, parts[7]
    # keys start after a space (or at 0) and end at an unescaped '='
    starts = []
    i = 0
    while i < len(ext_s):
        if ext_s[i] == "\\":
            i += 2
            continue
        if ext_s[i] == "=":
            k = i
            while k > 0 and ext_s[k - 1].isalnum():
                k -= 1
            assert k == 0 or ext_s[k - 1] == " ", ext_s
            starts.append((k, i))
        i += 1
    for n, (k, eq) in enumerate(starts):
        end = starts[n + 1][0] - 1 if n + 1 < len(starts) else len(ext_s)
        ext[ext_s[k:eq]] = unescape(ext_s[eq + 1:end], CEF_UNESC)
    return hdr, ext


def parse_leef(msg):
    assert msg.startswith("LEEF:2.0|"), msg[:80]
    parts = split_unescaped(msg, "|", limit=6)
    assert len(parts) == 7, parts
    hdr = [unescape(p, HDR_UNESC) for p in parts[:6]]
    delim = hdr[5]
    assert delim == "^", delim
    attrs = {}
    for kv in split_unescaped(parts[6], delim):
        k, v = kv.split("=", 1)
        attrs[k] = unescape(v, LEEF_UNESC)
    return hdr, attrs


def iso_ms(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
        ".%03dZ" % (ms % 1000)


def iso_to_ms(s):
    import datetime
    s = s.replace("Z", "+00:00")
    if "+" not in s[10:] and "-" not in s[10:]:
        s += "+00:00"
    return int(datetime.datetime.fromisoformat(s).timestamp() * 1000)


# ---------------------------------------------------------------------------
# running m365fwd import

def config(name, rs, **kw):
    o = {"name": "sl", "type": "syslog", "address": "127.0.0.1:%d" % rs.port,
         "transport": "tcp", "max_in_flight": WINDOW}
    o.update(kw)
    lines = ["state_dir: %s" % os.path.join(TMP, name + "-state"),
             "log_level: info", "outputs:", "  - name: %s" % o.pop("name")]
    for k, v in o.items():
        lines.append("    %s: %s" % (k, json.dumps(v) if isinstance(v, bool) else v))
    path = os.path.join(TMP, name + ".yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run_import(cfg, inputs, stdin=None, timeout=120):
    return subprocess.Popen([BIN, "import", "-c", cfg] + inputs, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, err.decode("utf-8", "replace")


def ids_in(lines, parse, get_id):
    seen = {}
    for ln in lines:
        i = get_id(parse(ln))
        seen[i] = seen.get(i, 0) + 1
    return seen


def sd_id(m):
    return m["sd"]["m365fwd@32473"]["id"]


# ---------------------------------------------------------------------------

class SyslogTest(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.rs = []

    def tearDown(self):
        for r in self.rs:
            r.stop(signal.SIGKILL)

    def rsyslog(self, *a, **kw):
        r = Rsyslog(*a, **kw)
        self.rs.append(r)
        return r.start()

    def check_5424_common(self, m, ev, schema, keep_raw_truncated=False):
        sd = m["sd"]["m365fwd@32473"]
        sev = ev["severity_id"] if schema == "ocsf" else ev["m365fwd"]["risk"]["severity"] \
            if schema == "ecs" and "m365fwd" in ev else 1
        self.assertEqual(m["pri"], FACILITY_LOCAL0 * 8 + SYSLOG_SEV[max(sev, 1)])
        self.assertEqual(sd["severity"], str(max(sev, 1)))
        self.assertEqual(sd["tenant_id"], ORG)
        self.assertEqual(sd["tenant"], ORG)   # no tenant configured: the id
        self.assertIn(sd["content_type"], ("Audit.Exchange", "Audit.SharePoint",
                                           "Audit.AzureActiveDirectory", "Audit.General"))
        self.assertEqual(m["app"], "m365fwd")
        self.assertTrue(m["procid"].isdigit())
        if schema == "ocsf":
            self.assertEqual(sd["id"], ev["metadata"]["uid"])
            self.assertEqual(sd.get("tags", ""), ",".join(ev["metadata"].get("labels", [])))
            self.assertEqual(sd["class_uid"], str(ev["class_uid"]))
            self.assertEqual(m["ts"], iso_ms(ev["time"]))
            op = ev["metadata"]["event_code"]
            self.assertEqual(m["msgid"], op.replace(" ", "_")[:32])

    def test_tcp_octet_json_ocsf(self):
        """TCP, octet counting, RFC 5424, json payload: every message equals
        the normalized event; SD, PRI, TIMESTAMP, MSGID match it. A record
        too large for max_message_size arrives without raw_data/unmapped and
        marked; one whose core is too large is refused (exit 1), and the
        framing stays in step."""
        rs = self.rsyslog("tcp-json")
        recs = [record(i) for i in range(60)]
        recs.append(record(60, extra={"HugeField": "x" * 100000}))
        recs.append(record(61, extra={"UserId": "big" * 20000 + "@x"}))
        recs.append(record(62))
        inp = os.path.join(TMP, "tcp-json.ndjson")
        write_records(inp, recs)
        cfg = config("tcp-json", rs, framing="octet-counting", payload="json",
                     max_message_size="32KiB")
        rc, err = finish(run_import(cfg, [inp]))
        self.assertEqual(rc, 1, err)   # the refused record
        self.assertIn(recs[61]["Id"], err)
        norm = normalize(inp, "ocsf")
        lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 62 else None)(rs.lines()),
                         "62 messages")
        self.assertEqual(len(lines), 62)
        got = {}
        for ln in lines:
            self.assertLessEqual(len(ln.encode()), 32 * 1024)
            m = parse_5424(ln)
            got[sd_id(m)] = m
        self.assertNotIn(recs[61]["Id"], got)
        for r in recs[:61] + recs[62:]:
            m = got[r["Id"]]
            ev = norm[r["Id"]]
            self.check_5424_common(m, ev, "ocsf")
            body = json.loads(m["msg"])
            if r["Id"] == recs[60]["Id"]:
                self.assertEqual(m["sd"]["m365fwd@32473"]["truncated"], "unmapped")
                self.assertEqual(len(ev["unmapped"]["HugeField"]), 100000)
                want = dict(ev)
                want["unmapped"] = {"m365fwd": {"truncated": ["unmapped"]}}
                self.assertEqual(body, want)
            else:
                self.assertNotIn("truncated", m["sd"]["m365fwd@32473"])
                self.assertEqual(body, ev)
        hostile = [r for r in recs if r["UserId"] == HOSTILE_USER]
        self.assertTrue(hostile)
        for r in hostile:
            self.assertEqual(json.loads(got[r["Id"]]["msg"])["actor"]["user"]["name"],
                             HOSTILE_USER)

    def test_tcp_lf_cef_ocsf(self):
        """TCP, LF framing, RFC 5424, CEF: header and extension fields
        unescape to the normalized values ('=', '|', '\\', newline, tab,
        non-ASCII)."""
        rs = self.rsyslog("tcp-cef")
        recs = [record(i, "c") for i in range(42)]
        inp = os.path.join(TMP, "tcp-cef.ndjson")
        write_records(inp, recs)
        cfg = config("tcp-cef", rs, framing="lf", payload="cef")
        rc, err = finish(run_import(cfg, [inp]))
        self.assertEqual(rc, 0, err)
        norm = normalize(inp, "ocsf")
        lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 42 else None)(rs.lines()),
                         "42 messages")
        self.assertEqual(len(lines), 42)
        for ln in lines:
            m = parse_5424(ln)
            ev = norm[sd_id(m)]
            self.check_5424_common(m, ev, "ocsf")
            hdr, ext = parse_cef(m["msg"])
            op = ev["metadata"]["event_code"]
            self.assertEqual(hdr[:3], ["CEF:0", "Microsoft", "Microsoft 365"])
            self.assertEqual(hdr[4], op)
            self.assertEqual(hdr[6], str(CEF_SEV[ev["severity_id"]]))
            self.assertEqual(ext["externalId"], ev["metadata"]["uid"])
            self.assertEqual(ext["act"], op)
            self.assertEqual(ext["rt"], str(ev["time"]))
            # CEF defines only \n and \r: a TAB becomes a space
            user = ev.get("actor", {}).get("user", {}).get("name")
            self.assertEqual(ext.get("suser"), user.replace("\t", " ") if user else None)
            self.assertEqual(ext.get("src"), ev.get("src_endpoint", {}).get("ip"))
            self.assertEqual(ext.get("outcome"), ev.get("status"))
            self.assertEqual(ext["cs1"], ORG)
            self.assertEqual(ext.get("cs2", ""), ",".join(ev["metadata"].get("labels", [])))
            self.assertEqual(ext["cn1"], str(ev["class_uid"]))
        users = [parse_cef(parse_5424(ln)["msg"])[1].get("suser") for ln in lines]
        self.assertIn(HOSTILE_USER.replace("\t", " "), users)
        self.assertIn("Set|Odd=Op", [parse_cef(parse_5424(ln)["msg"])[0][4] for ln in lines])

    def test_tls_rfc3164_leef_ecs(self):
        """TLS with the test CA and a client certificate (rsyslog requires
        a valid one), RFC 3164, LEEF 2.0 over the ECS event."""
        if not CERTS:
            self.skipTest("openssl or rsyslog-gnutls missing")
        rs = self.rsyslog("tls-leef", tls="x509/certvalid")
        recs = [record(i, "l") for i in range(36)]
        inp = os.path.join(TMP, "tls-leef.ndjson")
        write_records(inp, recs)
        cfg = config("tls-leef", rs, transport="tls", format="rfc3164",
                     payload="leef", schema="ecs", ca_file=CERTS["ca"],
                     cert_file=CERTS["client_cert"], key_file=CERTS["client_key"],
                     app_name="m365fwd")
        rc, err = finish(run_import(cfg, [inp]))
        self.assertEqual(rc, 0, err)
        norm = normalize(inp, "ecs")
        lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 36 else None)(rs.lines()),
                         "36 messages")
        self.assertEqual(len(lines), 36)
        seen = set()
        for ln in lines:
            m = parse_3164(ln)
            self.assertRegex(m["tag"], r"^m365fwd\[\d+\]$")
            hdr, a = parse_leef(m["msg"])
            ev = norm[a["externalId"]]
            seen.add(a["externalId"])
            self.assertEqual(hdr[:3], ["LEEF:2.0", "Microsoft", "Microsoft 365"])
            self.assertEqual(hdr[4], ev["event"]["action"])
            ms = iso_to_ms(ev["@timestamp"])
            self.assertEqual(a["devTime"], iso_ms(ms))
            self.assertEqual(m["ts"], time.strftime("%b ", time.gmtime(ms // 1000)) +
                             "%2d" % time.gmtime(ms // 1000).tm_mday +
                             time.strftime(" %H:%M:%S", time.gmtime(ms // 1000)))
            self.assertEqual(a.get("usrName"), ev.get("user", {}).get("id"))
            self.assertEqual(a.get("src"), ev.get("source", {}).get("ip"))
            self.assertEqual(a.get("outcome"), ev["event"].get("outcome"))
            self.assertEqual(a.get("tags", ""), ",".join(ev.get("tags", [])))
            self.assertEqual(a["tenantId"], ORG)
            sev = ev.get("m365fwd", {}).get("risk", {}).get("severity", 1) or 1
            self.assertEqual(a["sev"], str(CEF_SEV[sev]))
            self.assertEqual(m["pri"], FACILITY_LOCAL0 * 8 + SYSLOG_SEV[sev])
        self.assertEqual(seen, {r["Id"] for r in recs})
        self.assertIn(HOSTILE_USER, [parse_leef(parse_3164(ln)["msg"])[1].get("usrName")
                                     for ln in lines])

    def test_tls_wrong_host_refused(self):
        """A receiver whose certificate does not name 127.0.0.1: nothing is
        sent, import exits 1 after flush_timeout."""
        if not CERTS:
            self.skipTest("openssl or rsyslog-gnutls missing")
        r = Rsyslog("tls-wrong", tls="anon")
        r.server_cert, r.server_key = CERTS["wronghost_cert"], CERTS["wronghost_key"]
        self.rs.append(r)
        r.start()
        inp = os.path.join(TMP, "tls-wrong.ndjson")
        write_records(inp, [record(i, "w") for i in range(3)])
        cfg = config("tls-wrong", r, transport="tls", ca_file=CERTS["ca"],
                     flush_timeout="2s")
        rc, err = finish(run_import(cfg, [inp]))
        self.assertEqual(rc, 1, err)
        self.assertIn("certificate", err)
        self.assertEqual(r.lines(), [])

    def test_no_receiver_backpressure(self):
        """Nobody listens: with max_in_flight 1 the second record is not
        accepted (backpressure) and the barrier fails; import exits 1 within
        the flush timeouts, nothing is reported delivered."""
        class Gone:
            port = free_port("tcp")
        inp = os.path.join(TMP, "gone.ndjson")
        write_records(inp, [record(i, "g") for i in range(2)])
        cfg = config("gone", Gone, flush_timeout="1s", max_in_flight=1)
        t0 = time.monotonic()
        rc, err = finish(run_import(cfg, [inp]))
        self.assertEqual(rc, 1, err)
        self.assertIn("not accepted", err)
        self.assertIn("not written", err)
        self.assertIn("0 delivered", err)
        self.assertLess(time.monotonic() - t0, 15)

    def test_udp_json_ecs(self):
        """UDP, RFC 5424, json ECS: best effort (each datagram that arrives is
        complete and equals the normalized event)."""
        rs = self.rsyslog("udp", proto="udp")
        recs = [record(i, "u") for i in range(30)]
        inp = os.path.join(TMP, "udp.ndjson")
        write_records(inp, recs)
        cfg = config("udp", rs, transport="udp", schema="ecs",
                     max_message_size="60000")
        rc, err = finish(run_import(cfg, [inp]))
        self.assertEqual(rc, 0, err)
        norm = normalize(inp, "ecs")
        lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 30 else None)(rs.lines()),
                         "30 datagrams", deadline=10)
        for ln in lines:
            m = parse_5424(ln)
            self.assertEqual(json.loads(m["msg"]), norm[sd_id(m)])

    def restart_mid_stream(self, name, sig=signal.SIGTERM, **tls):
        """import sends a stream through a proxy the test controls; once
        HOLD bytes went through, the proxy stops reading, so import is
        blocked mid-stream (what it still has to send does not fit in the
        socket buffers); then rsyslog is stopped (SIGTERM, or SIGKILL) and
        started again on the same port, and only then does the proxy read
        again. The fault is in place before import can finish, whatever
        the machine's load. Every Id must arrive at least once."""
        n = 20000
        rs = self.rsyslog(name, **({"tls": "anon"} if tls else {}))
        proxy = StallProxy(("127.0.0.1", rs.port)).start()
        self.addCleanup(proxy.stop)
        recs = [record(i, name[:4]) for i in range(n)]
        inp = os.path.join(TMP, name + ".ndjson")
        write_records(inp, recs)
        # bytes import cannot get rid of while the proxy holds: its socket
        # send buffer and the proxy's receive buffer; the records left
        # after the hold must be more than that
        unread_max = socket_buffer_max() + 2 * 16384
        self.assertGreater(os.path.getsize(inp) - RESTART_HOLD, 2 * unread_max,
                           "too few records to block import behind the proxy")
        extra = {"transport": "tls", "ca_file": CERTS["ca"]} if tls else {}
        # the resend window must cover what the kernel buffers and rsyslog
        # hold unread when it stops: at the default (4096 records, 8 MiB)
        # rather than a small one, which a slow receiver on a busy machine
        # outgrows (then records beyond the window are lost: the loss bound
        # of plain syslog, docs/outputs.md)
        cfg = config(name, rs, framing="octet-counting", flush_timeout="60s",
                     max_in_flight=RESTART_WINDOW, address="127.0.0.1:%d" % proxy.port,
                     **extra)
        proxy.hold_after(RESTART_HOLD)
        p = run_import(cfg, [inp])
        try:
            proxy.wait_held(DEADLINE)
            if p.poll() is not None:
                self.fail("import ended while the proxy held its stream: %s"
                          % p.stderr.read()[-800:].decode("utf-8", "replace"))
            # what went through reaches rsyslog's file (import stays blocked)
            wait_for(lambda: len(rs.lines()) >= 100, "100 messages before the restart")
            port = rs.port
            rs.stop(sig)
            before = len(rs.lines())
            rs2 = Rsyslog(name, **({"tls": "anon"} if tls else {}), port=port)
            self.rs.append(rs2)
            rs2.start()
            proxy.resume()
        finally:
            rc, err = finish(p)
        self.assertEqual(rc, 0, err)
        self.assertLess(before, n, "import was done before the restart: not a "
                        "mid-stream test")

        def all_there():
            seen = ids_in(rs2.lines(), parse_5424, sd_id)
            return seen if len(seen) >= n else None
        try:
            seen = wait_for(all_there, "%d distinct Ids" % n)
        except AssertionError:
            seen = ids_in(rs2.lines(), parse_5424, sd_id)
            missing = [r["Id"] for r in recs if r["Id"] not in seen]
            self.fail("%d Ids missing after the restart (first %s); stderr: %s"
                      % (len(missing), missing[:3], err[-1500:]))
        dups = sum(c - 1 for c in seen.values())
        # the bound: a window per broken connection, and never more than
        # import said it had to send again (the window plus the records not
        # yet written)
        resent = [int(x) for x in re.findall(r"\((\d+) records to resend\)", err)]
        # a barrier whose flush failed (a connection broke during it) makes
        # import send that output its whole batch again (docs/reliability.md,
        # "import"): those count too, each named in the log
        again = [int(x) for x in re.findall(r"output=\S+ did not take (\d+) records; "
                                            r"sending them again", err)]
        sys.stderr.write("%s: %d records, %d received before the restart, %d duplicates, "
                         "%s resent (window %d per broken connection), %s sent again by "
                         "import\n" % (name, n, before, dups, resent, RESTART_WINDOW, again))
        self.assertEqual(set(seen), {r["Id"] for r in recs})
        self.assertTrue(resent, "no reconnect reported: " + err[-500:])
        self.assertLessEqual(dups, RESTART_WINDOW * len(resent) + sum(again))
        self.assertLessEqual(dups, sum(resent) + sum(again))

    def test_restart_tcp(self):
        self.restart_mid_stream("restart-tcp")

    def test_crash_tcp(self):
        """rsyslog killed with SIGKILL: what it had read but not written is
        lost on its side; the resend window covers it."""
        self.restart_mid_stream("crash-tcp", sig=signal.SIGKILL)

    def test_restart_tls(self):
        if not CERTS:
            self.skipTest("openssl or rsyslog-gnutls missing")
        self.restart_mid_stream("restart-tls", tls=True)


def main():
    global BIN, TMP, CERTS
    if len(sys.argv) < 2:
        sys.stderr.write("usage: test_syslog.py M365FWD\n")
        return 2
    BIN = os.path.abspath(sys.argv[1])
    if not RSYSLOGD or not os.path.exists(RSYSLOGD) or \
            not os.path.exists(os.path.join(RS_MODDIR, "imtcp.so")):
        print("SKIP: rsyslogd (Debian package rsyslog) is not installed")
        return 77
    TMP = tempfile.mkdtemp(prefix="mf-syslog-")
    try:
        if mkcerts.have_openssl() and os.path.exists(os.path.join(RS_MODDIR,
                                                                  "lmnsd_gtls.so")):
            CERTS = mkcerts.make_certs(os.path.join(TMP, "certs"))
        else:
            sys.stderr.write("note: TLS cases skipped (openssl or rsyslog-gnutls missing)\n")
        prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False, verbosity=2)
        ok = prog.result.wasSuccessful()
    finally:
        if os.environ.get("MF_KEEP_TMP"):
            sys.stderr.write("kept %s\n" % TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
