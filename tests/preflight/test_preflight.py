#!/usr/bin/env python3
"""`m365fwd preflight` against the emulator: exit codes and the plain-words
diagnosis for each broken setup. argv[1] = the m365fwd binary. Exits 77
(skip) when openssl is missing."""

import base64
import os
import select
import shutil
import socket
import socketserver
import threading
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))

import mkcerts  # noqa: E402
import test_emulator  # noqa: E402

BIN = None
TMP = None
CERTS = None

TID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
TID_OFF = "1b1c2d3e-4f50-6172-8394-a5b6c7d8e9f1"
TID_NR = "2b1c2d3e-4f50-6172-8394-a5b6c7d8e9f2"
TID_UNSUB = "3b1c2d3e-4f50-6172-8394-a5b6c7d8e9f3"
CID = "11111111-2222-3333-4444-555555555555"
CID_EXP = "33333333-2222-3333-4444-555555555555"
SECRET = "pf-s3cr3t&=+%"
CONTENT = {"Audit.Exchange": {"blobs": 3, "records_per_blob": 2,
                              "span": "30m", "end": "-5m"}}


def scenario(**extra):
    s = {
        "seed": 5,
        "clients": [
            {"client_id": CID, "secret": SECRET,
             "certificates": ["@client_cert"]},
            {"client_id": CID_EXP, "secret": "old", "secret_expired": True},
        ],
        "tenants": [
            {"id": TID, "domain": "contoso.onmicrosoft.com",
             "content": CONTENT},
            {"id": TID_OFF, "audit_enabled": False},
            {"id": TID_NR, "clients": [{"client_id": CID, "secret": SECRET,
                                        "roles": []}]},
            {"id": TID_UNSUB, "subscribed": "none"},
        ],
    }
    s.update(extra)
    return s


class ConnectProxy(socketserver.ThreadingTCPServer):
    """A CONNECT-only HTTP proxy on loopback. With auth set, it wants
    Proxy-Authorization: Basic auth (else 407). Counts tunnels."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, auth=None):
        self.auth = auth
        self.tunnels = 0
        self.refused = 0
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


class ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        srv, c = self.server, self.request
        c.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data:
            ch = c.recv(4096)
            if not ch:
                return
            data += ch
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target = head[0].split(" ")[:2]
        hdrs = {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[1].strip()
                for h in head[1:] if ":" in h}
        want = srv.auth and "Basic " + base64.b64encode(
            srv.auth.encode()).decode()
        if method != "CONNECT" or (want and
                                   hdrs.get("proxy-authorization") != want):
            srv.refused += 1
            c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                      b"Proxy-Authenticate: Basic realm=\"t\"\r\n"
                      b"Connection: close\r\nContent-Length: 0\r\n\r\n")
            return
        host, port = target.rsplit(":", 1)
        up = socket.create_connection((host, int(port)), timeout=30)
        srv.tunnels += 1
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        socks = [c, up]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 30)
                if not r:
                    return
                for s_ in r:
                    d = s_.recv(65536)
                    if not d:
                        return
                    (up if s_ is c else c).sendall(d)
        finally:
            up.close()


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class Preflight(unittest.TestCase):
    emu_args = {}

    @classmethod
    def setUpClass(cls):
        cls.emu = test_emulator.Emu(scenario(**cls.emu_args))
        cls.dir = tempfile.mkdtemp(dir=TMP)
        cls.good = write(os.path.join(cls.dir, "good.secret"), SECRET + "\n")
        cls.wrong = write(os.path.join(cls.dir, "wrong.secret"),
                          "wrong-secret-Qx7\n")
        cls.old = write(os.path.join(cls.dir, "old.secret"), "old\n")
        base = "https://127.0.0.1:%d" % cls.emu.port
        os.chmod(CERTS["client_key"], 0o600)
        os.chmod(CERTS["client2_key"], 0o600)

        def tenant(name, tid, cred, cid=CID, ca=True, extra=""):
            return ("  - id: %s\n    name: %s\n    client_id: %s\n%s"
                    "    login_endpoint: %s\n    api_endpoint: %s\n%s%s"
                    % (tid, name, cid, cred, base, base,
                       ("    ca_file: %s\n" % CERTS["ca"]) if ca else "",
                       extra))
        sec = "    client_secret_file: %s\n"
        cert = ("    certificate_file: %s\n    private_key_file: %s\n"
                % (CERTS["client_cert"], CERTS["client_key"]))
        cert2 = ("    certificate_file: %s\n    private_key_file: %s\n"
                 % (CERTS["client2_cert"], CERTS["client2_key"]))
        cls.tenants = {
            "good": tenant("good", TID, sec % cls.good,
                           extra="    content_types: [Audit.Exchange, "
                                 "DLP.All]\n"),
            "cert": tenant("cert", TID, cert),
            "badsecret": tenant("badsecret", TID, sec % cls.wrong),
            "oldsecret": tenant("oldsecret", TID, sec % cls.old, cid=CID_EXP),
            "wrongtenant": tenant("wrongtenant", "nowhere.onmicrosoft.com",
                                  sec % cls.good),
            "badcert": tenant("badcert", TID, cert2),
            "auditoff": tenant("auditoff", TID_OFF, sec % cls.good),
            "norole": tenant("norole", TID_NR, sec % cls.good),
            "unsub": tenant("unsub", TID_UNSUB, sec % cls.good),
            "notls": tenant("notls", TID, sec % cls.good, ca=False),
        }
        cls.cfg = cls.config("all", ["good", "auditoff", "norole"])

    @classmethod
    def config(cls, fname, names, top=""):
        """A configuration file with these tenants (ids must differ)."""
        return write(os.path.join(cls.dir, fname + ".yaml"),
                     top + "state_dir: %s\n" % os.path.join(cls.dir, "state")
                     + "outputs:\n  - name: f\n    type: file\n"
                     "    path: %s\n" % os.path.join(cls.dir, "out.jsonl")
                     + "tenants:\n" + "".join(cls.tenants[n] for n in names),
                     0o644)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def run_pf(self, *args, env=None, cfg=None):
        e = dict(os.environ)
        for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            e.pop(k, None)
        e.update(env or {})
        p = subprocess.run([BIN, "preflight", "-c", cfg or self.cfg]
                           + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120, env=e)
        return p.returncode, p.stdout, p.stderr

    def check(self, tenant, code, *phrases):
        rc, out, err = self.run_pf("--tenant", tenant,
                                   cfg=self.config(tenant, [tenant]))
        self.assertEqual(rc, code, out + err)
        for ph in phrases:
            self.assertIn(ph, out, out)
        self.assertNotIn(SECRET, out + err)
        self.assertNotIn("wrong-secret-Qx7", out + err)
        for line in out.splitlines():
            self.assertRegex(line, r"^(OK  |WARN|FAIL|SKIP) |^preflight: ")
        return out


class TestPreflight(Preflight):

    def test_good_tenant(self):
        out = self.check("good", 0, "OK   good: token:", "OK   good: roles:",
                         "ActivityFeed.ReadDlp", "OK   good: subscriptions:",
                         "OK   good: listing:", "OK   good: clock:",
                         "OK   good: ready")
        self.assertNotIn("FAIL", out)

    def test_certificate(self):
        self.check("cert", 0, "OK   cert: token:", "certificate")

    def test_wrong_secret(self):
        self.check("badsecret", 1, "FAIL badsecret: token:", "bad client secret",
                   "AADSTS7000215", "Fix:")

    def test_expired_secret(self):
        self.check("oldsecret", 1, "FAIL oldsecret: token:", "expired",
                   "AADSTS7000222")

    def test_wrong_tenant(self):
        self.check("wrongtenant", 1, "wrong tenant", "AADSTS90002")

    def test_certificate_not_registered(self):
        self.check("badcert", 1, "certificate not registered", "AADSTS700027")

    def test_audit_disabled(self):
        self.check("auditoff", 1, "FAIL auditoff: subscriptions:",
                   "unified audit logging is off", "Start recording")

    def test_missing_role(self):
        self.check("norole", 1, "FAIL norole: roles:", "no ActivityFeed.Read",
                   "admin consent")

    def test_subscriptions_missing(self):
        out = self.check("unsub", 0, "WARN unsub: subscriptions:",
                         "`m365fwd run` starts")
        self.assertNotIn("FAIL", out)

    def test_tls_unknown_ca(self):
        self.check("notls", 1, "FAIL notls: token:", "TLS", "not trusted")

    def test_proxy_unreachable(self):
        rc, out, err = self.run_pf(
            "--tenant", "good", env={"HTTPS_PROXY": "http://127.0.0.1:1"},
            cfg=self.config("good", ["good"]))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAIL good: token:", out)
        self.assertIn("proxy", out)

    def test_proxy_key_with_auth(self):
        proxy = ConnectProxy(auth="pfuser:pf-pass")
        try:
            auth = write(os.path.join(self.dir, "proxy.auth"),
                         "pfuser:pf-pass\n")
            cfg = self.config("viaproxy", ["good"], top=(
                "proxy: http://127.0.0.1:%d\nproxy_auth_file: %s\n"
                % (proxy.port, auth)))
            rc, out, err = self.run_pf(cfg=cfg)
            self.assertEqual(rc, 0, out + err)
            self.assertIn("OK   good: ready", out)
            # one tunnel, reused for the token, list and content calls
            # (curl probes the proxy's auth scheme first: one 407)
            self.assertGreaterEqual(proxy.tunnels, 1)
            self.assertNotIn("pf-pass", out + err)
        finally:
            proxy.stop()

    def test_https_proxy_env_needs_auth(self):
        proxy = ConnectProxy(auth="pfuser:pf-pass")
        try:
            rc, out, err = self.run_pf(
                env={"HTTPS_PROXY": "http://127.0.0.1:%d" % proxy.port},
                cfg=self.config("good", ["good"]))
            self.assertEqual(rc, 1, out + err)
            self.assertIn("FAIL good: token:", out)
            self.assertIn("proxy wants authentication", out)
            self.assertIn("proxy_auth_file", out)
            self.assertGreaterEqual(proxy.refused, 1)
            self.assertEqual(proxy.tunnels, 0)
        finally:
            proxy.stop()

    def test_all_tenants_exit_1(self):
        rc, out, err = self.run_pf()
        self.assertEqual(rc, 1, out + err)
        self.assertIn("OK   good: ready", out)
        self.assertIn("FAIL auditoff", out)
        self.assertIn("FAIL norole", out)
        self.assertRegex(out, r"preflight: \d+ tenant\(s\) failing")

    def test_usage(self):
        p = subprocess.run([BIN, "preflight"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([BIN, "preflight", "-c", self.cfg, "--tenant",
                            "nosuch"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("nosuch", p.stderr)

    def test_bad_config(self):
        bad = write(os.path.join(self.dir, "bad.yaml"), "tenants: 3\n", 0o644)
        p = subprocess.run([BIN, "preflight", "-c", bad],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.yaml", p.stderr)


    def test_geoip(self):
        """Without normalizer.geoip_db preflight says what is off; with one
        it opens it; an unreadable one fails the run."""
        out = self.check("good", 0, "SKIP geoip: off (no normalizer.geoip_db)",
                         "identity.concurrent_sessions_multi_ip")
        mmdb = os.environ.get("MF_TEST_MMDB")
        p = subprocess.run([BIN, "normalize", "--geoip-db", mmdb or "/x", "/dev/null"],
                           capture_output=True, text=True, timeout=30)
        if not mmdb or "without libmaxminddb" in p.stderr:
            return
        cfg = self.config("geo", ["good"], top="normalizer:\n  geoip_db: %s\n" % mmdb)
        rc, out, err = self.run_pf("--tenant", "good", cfg=cfg)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("OK   geoip: %s (m365fwd-Test-City" % mmdb, out)
        # a file that is not a MaxMind DB (a missing one is refused by the
        # configuration loader already: the key is a readable path)
        bad = write(os.path.join(self.dir, "not.mmdb"), "not a database\n", 0o644)
        cfg = self.config("geo-bad", ["good"], top="normalizer:\n  geoip_db: %s\n" % bad)
        rc, out, err = self.run_pf("--tenant", "good", cfg=cfg)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAIL geoip:", out)
        self.assertIn("not.mmdb: not a MaxMind DB", out)


class TestClockSkew(Preflight):
    emu_args = {"clock_offset": "-10m"}

    def test_skew_warns(self):
        out = self.check("good", 0, "WARN good: clock:", "ahead of", "NTP")
        self.assertNotIn("FAIL", out)


def main():
    global BIN, TMP, CERTS
    if len(sys.argv) < 2:
        sys.stderr.write("usage: test_preflight.py M365FWD [unittest args]\n")
        return 2
    BIN = sys.argv.pop(1)
    if not mkcerts.have_openssl():
        print("skip: openssl not found")
        return 77
    TMP = tempfile.mkdtemp(prefix="mf-preflight-")
    try:
        CERTS = mkcerts.make_certs(os.path.join(TMP, "certs"))
        test_emulator.TMP = TMP
        test_emulator.CERTS = CERTS
        prog = unittest.main(exit=False, verbosity=2)
        return 0 if prog.result.wasSuccessful() else 1
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
