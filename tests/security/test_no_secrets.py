#!/usr/bin/env python3
"""No secret ever leaves its file: a client secret, a private key and the
bearer tokens the API issued must not appear in m365fwd's logs (debug level,
kv and JSON), in `status` (table and JSON), in the state database, or in
metrics when they are enabled. Also: a configuration error near a secret
does not print it. Run as: test_no_secrets.py M365FWD_BINARY (exit 77 when
the emulator cannot run)."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
EMU_DIR = os.path.join(HERE, "..", "emulator")
sys.path.insert(0, EMU_DIR)

BIN = None
T1 = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
T2 = "1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1"
APP = "11111111-2222-3333-4444-555555555555"
SECRET = "Zq8~unmistakable-client-secret-7f3e91"
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")


def key_lines(path):
    """The base64 body lines of a PEM private key (each would betray it)."""
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("-----")]


class NoSecrets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import mkcerts
        import test_emulator as te
        if not mkcerts.have_openssl():
            raise unittest.SkipTest("openssl missing")
        cls.tmp = tempfile.mkdtemp()
        te.TMP = cls.tmp
        te.CERTS = mkcerts.make_certs(os.path.join(cls.tmp, "certs"))
        cls.certs = te.CERTS
        content = {"Audit.Exchange": {"blobs": 3, "records_per_blob": 5, "span": "2h"},
                   "Audit.AzureActiveDirectory": {"blobs": 2, "records_per_blob": 5,
                                                  "span": "2h"}}
        cls.emu = te.Emu({"seed": 3, "page_size": 2,
                          "clients": [{"client_id": APP, "secret": SECRET,
                                       "certificates": ["@client_cert"]}],
                          "tenants": [{"id": T1, "domain": "contoso.onmicrosoft.com",
                                       "content": content},
                                      {"id": T2, "domain": "fabrikam.onmicrosoft.com",
                                       "content": content}]})

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.d = tempfile.mkdtemp(dir=self.tmp)
        self.secret_file = os.path.join(self.d, "secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(self.secret_file, 0o600)
        self.key = os.path.join(self.d, "client.key")
        shutil.copy(self.certs["client_key"], self.key)
        os.chmod(self.key, 0o600)
        self.secrets = [SECRET.encode()] + [l.encode() for l in key_lines(self.key)]

    def config(self, log_format):
        root = "https://127.0.0.1:%d" % self.emu.port
        path = os.path.join(self.d, "m365fwd.yaml")
        with open(path, "w") as f:
            f.write("""state_dir: %(d)s/state
log_level: debug
log_format: %(fmt)s
tenants:
  - {id: %(t1)s, name: contoso, client_id: %(app)s, client_secret_file: %(sf)s,
     login_endpoint: "%(root)s", api_endpoint: "%(root)s", ca_file: %(ca)s,
     content_types: [Audit.Exchange, Audit.AzureActiveDirectory]}
  - {id: %(t2)s, name: fabrikam, client_id: %(app)s, certificate_file: %(cert)s,
     private_key_file: %(key)s, login_endpoint: "%(root)s", api_endpoint: "%(root)s",
     ca_file: %(ca)s, content_types: [Audit.Exchange, Audit.AzureActiveDirectory]}
outputs:
  - {name: out, type: file, path: %(d)s/out.ndjson, schema: raw}
""" % {"d": self.d, "fmt": log_format, "t1": T1, "t2": T2, "app": APP,
                   "sf": self.secret_file, "root": root, "ca": self.certs["ca"],
                   "cert": self.certs["client_cert"], "key": self.key})
        return path

    def assert_clean(self, what, data):
        for s in self.secrets:
            self.assertNotIn(s, data, "%s contains a secret" % what)
        m = JWT.search(data)
        self.assertIsNone(m, "%s contains a bearer token: %r" % (what, m and m.group(0)[:40]))

    def run_collect(self, log_format):
        cfg = self.config(log_format)
        p = subprocess.run([BIN, "run", "-c", cfg, "--once"], capture_output=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
        self.assertGreater(len(p.stderr), 0)
        self.assert_clean("the log (%s)" % log_format, p.stderr + p.stdout)
        with open(os.path.join(self.d, "out.ndjson"), "rb") as f:
            delivered = sum(1 for _ in f)
        self.assertEqual(delivered, 2 * 25)
        for args in (["status", "-c", cfg], ["status", "-c", cfg, "--json"]):
            s = subprocess.run([BIN] + args, capture_output=True, timeout=60)
            self.assertEqual(s.returncode, 0)
            self.assert_clean("`m365fwd %s`" % " ".join(args[:1] + args[3:]),
                              s.stdout + s.stderr)
        for path in glob.glob(os.path.join(self.d, "state", "*")):
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assert_clean("state file %s" % os.path.basename(path), f.read())

    def test_kv_logs_status_state(self):
        self.run_collect("kv")

    def test_json_logs_status_state(self):
        self.run_collect("json")

    def test_config_errors_do_not_print_secrets(self):
        cfg = self.config("kv")
        with open(cfg) as f:
            text = f.read()
        # an inline secret is refused without being repeated
        with open(cfg, "w") as f:
            f.write(text.replace("client_secret_file: %s" % self.secret_file,
                                 "client_secret: %s" % SECRET))
        p = subprocess.run([BIN, "run", "-c", cfg, "--once"], capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assert_clean("a configuration error", p.stderr + p.stdout)
        # a wrong secret: the token endpoint refuses it, the secret stays hidden
        with open(self.secret_file, "w") as f:
            f.write("wrong-" + SECRET)
        self.secrets.append(("wrong-" + SECRET).encode())
        with open(cfg, "w") as f:
            f.write(text)
        p = subprocess.run([BIN, "run", "-c", cfg, "--once", "--tenant", "contoso",
                            "--timeout", "20"], capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"7000215", p.stderr)     # the AADSTS code is reported
        self.assert_clean("an authentication error", p.stderr + p.stdout)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: test_no_secrets.py M365FWD_BINARY", file=sys.stderr)
        sys.exit(2)
    BIN = os.path.abspath(sys.argv.pop(1))
    if shutil.which("openssl") is None:
        print("SKIP: openssl is not installed")
        sys.exit(77)
    unittest.main(verbosity=2)
