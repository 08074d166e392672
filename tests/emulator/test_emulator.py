#!/usr/bin/env python3
"""Tests of the Management Activity API emulator (m365emu.py).

Run: python3 tests/emulator/test_emulator.py [-v]
Exit 77 (skip) when the `openssl` command is missing.  Every emulator runs as
a subprocess on ephemeral loopback ports and is stopped at the end; waits are
on conditions with deadlines, the virtual clock replaces waiting for time.
"""

import base64
import http.client
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, HERE)
import m365emu  # noqa: E402
import mkcerts  # noqa: E402

T1 = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
T2 = "1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1"
T3 = "2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2"
APP = "11111111-2222-3333-4444-555555555555"
APP_NOROLE = "99999999-2222-3333-4444-555555555555"
SECRET = "s3cr3t+/=&x"
RES = "https://manage.office.com"
CERTS = None
TMP = None


def setUpModule():
    global CERTS, TMP
    TMP = tempfile.mkdtemp(prefix="m365emu-test-")
    CERTS = mkcerts.make_certs(os.path.join(TMP, "certs"))


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


# --------------------------------------------------------------------------
# helpers

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def openssl_sign(key, data, pss=False):
    args = ["openssl", "dgst", "-sha256", "-sign", key]
    if pss:
        args += ["-sigopt", "rsa_padding_mode:pss",
                 "-sigopt", "rsa_pss_saltlen:32"]
    r = subprocess.run(args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True)
    return r.stdout


def make_assertion(aud, alg="RS256", thumb="x5t", key=None, cert=None,
                   claims=None, now=None):
    cert = cert or CERTS["client_cert"]
    key = key or CERTS["client_key"]
    c = m365emu.ClientCert(cert)
    header = {"alg": alg, "typ": "JWT"}
    header[thumb] = c.x5t if thumb == "x5t" else c.x5t256
    now = int(now if now is not None else time.time())
    body = {"aud": aud, "iss": APP, "sub": APP, "jti": str(uuid.uuid4()),
            "nbf": now, "exp": now + 600, "iat": now}
    body.update(claims or {})
    for k in [k for k, v in body.items() if v is None]:
        del body[k]
    si = b64url(json.dumps(header).encode()) + "." + \
        b64url(json.dumps(body).encode())
    sig = openssl_sign(key, si.encode(), pss=(alg == "PS256"))
    return si + "." + b64url(sig)


class Emu:
    """An emulator subprocess plus small HTTP helpers."""

    def __init__(self, scenario, extra_args=()):
        self.dir = tempfile.mkdtemp(dir=TMP)
        path = os.path.join(self.dir, "scenario.json")
        text = json.dumps(scenario).replace('"@client_cert"', json.dumps(
            CERTS["client_cert"]))
        with open(path, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "m365emu.py"), "-s", path,
             "--cert", CERTS["server_cert"], "--key", CERTS["server_key"]]
            + list(extra_args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = b""
        deadline = time.monotonic() + 60
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.poll() is not None \
                    else b""
                self.stop()
                raise RuntimeError("emulator did not start: %r %r" % (line, err))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 4096)
                if not ch:
                    continue
                line += ch
        self.ready = json.loads(line)
        self.port = self.ready["api_port"]
        self.cport = self.ready["control_port"]
        self.ctx = ssl.create_default_context(cafile=CERTS["ca"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    def https(self, method, path, body=None, headers=None, host="127.0.0.1",
              timeout=30):
        conn = http.client.HTTPSConnection(host, self.port, context=self.ctx,
                                           timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, r, data
        finally:
            conn.close()

    def ctl(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.cport, timeout=30)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None
                         else None)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                raise AssertionError("control %s %s -> %d %s" % (
                    method, path, r.status, data))
            return json.loads(data)
        finally:
            conn.close()

    def token_v2(self, tenant=T1, client_id=APP, secret=SECRET, extra=None):
        form = {"client_id": client_id, "scope": RES + "/.default",
                "client_secret": secret, "grant_type": "client_credentials"}
        form.update(extra or {})
        form = {k: v for k, v in form.items() if v is not None}
        return self.https("POST", "/%s/oauth2/v2.0/token" % tenant,
                          urllib.parse.urlencode(form),
                          {"Content-Type": "application/x-www-form-urlencoded"})

    def token(self, tenant=T1, client_id=APP):
        st, _, body = self.token_v2(tenant, client_id)
        assert st == 200, body
        return json.loads(body)["access_token"]

    def api(self, method, tenant, op, query=None, token=None, body=None,
            url_tenant=None, headers=None):
        q = dict(query or {})
        q.setdefault("PublisherIdentifier", tenant)
        path = "/api/v1.0/%s/activity/feed/%s?%s" % (
            url_tenant or tenant, op, urllib.parse.urlencode(q, safe=":$"))
        h = {"Authorization": "Bearer " + (token or self.token(tenant))}
        h.update(headers or {})
        return self.https(method, path, body, h)

    def get_url(self, url, token, publisher=None):
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        if publisher:
            path += ("&" if u.query else "?") + "PublisherIdentifier=" + publisher
        return self.https("GET", path, headers={"Authorization":
                                                "Bearer " + token})

    def now(self):
        return self.ctl("GET", "/_control/clock")["epoch"]


def err_code(data):
    return json.loads(data)["error"]["code"]


def fmt(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def base_scenario(**kw):
    sc = {"seed": 11, "page_size": 100,
          "clients": [{"client_id": APP, "secret": SECRET,
                       "certificates": ["@client_cert"]},
                      {"client_id": APP_NOROLE, "secret": SECRET,
                       "roles": ["ServiceHealth.Read"]}],
          "tenants": [{"id": T1, "domain": "contoso.onmicrosoft.com"}]}
    sc.update(kw)
    return sc


class EmuTestCase(unittest.TestCase):
    scenario = None

    @classmethod
    def setUpClass(cls):
        cls.emu = Emu(cls.scenario or base_scenario())

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()


# --------------------------------------------------------------------------
# crypto and parsers (in-process)

class TestCrypto(unittest.TestCase):

    def setUp(self):
        self.cert = m365emu.ClientCert(CERTS["client_cert"])
        self.msg = b"header.payload-" + os.urandom(8)

    def test_pubkey_matches_openssl(self):
        r = subprocess.run(["openssl", "x509", "-noout", "-modulus", "-in",
                            CERTS["client_cert"]], stdout=subprocess.PIPE,
                           check=True, text=True)
        self.assertEqual(int(r.stdout.strip().split("=", 1)[1], 16), self.cert.n)
        self.assertEqual(self.cert.e, 65537)

    def test_pkcs1_good_and_bad(self):
        sig = openssl_sign(CERTS["client_key"], self.msg)
        v = m365emu.rsa_verify_pkcs1v15_sha256
        self.assertTrue(v(self.cert.n, self.cert.e, self.msg, sig))
        self.assertFalse(v(self.cert.n, self.cert.e, self.msg + b"x", sig))
        bad = bytearray(sig)
        bad[10] ^= 1
        self.assertFalse(v(self.cert.n, self.cert.e, self.msg, bytes(bad)))
        other = m365emu.ClientCert(CERTS["client2_cert"])
        self.assertFalse(v(other.n, other.e, self.msg, sig))
        pss = openssl_sign(CERTS["client_key"], self.msg, pss=True)
        self.assertFalse(v(self.cert.n, self.cert.e, self.msg, pss))

    def test_pss_good_and_bad(self):
        sig = openssl_sign(CERTS["client_key"], self.msg, pss=True)
        v = m365emu.rsa_verify_pss_sha256
        self.assertTrue(v(self.cert.n, self.cert.e, self.msg, sig))
        self.assertTrue(v(self.cert.n, self.cert.e, self.msg, sig, None))
        self.assertFalse(v(self.cert.n, self.cert.e, self.msg, sig, 20))
        self.assertFalse(v(self.cert.n, self.cert.e, b"other", sig))
        bad = bytearray(sig)
        bad[-1] ^= 0x80
        self.assertFalse(v(self.cert.n, self.cert.e, self.msg, bytes(bad)))
        v15 = openssl_sign(CERTS["client_key"], self.msg)
        self.assertFalse(v(self.cert.n, self.cert.e, self.msg, v15))

    def test_der_garbage_rejected(self):
        for junk in (b"", b"\x30", b"\x30\x85\x00\x00\x00\x00\x01",
                     b"\x02\x01\x00", self.cert.der[:40]):
            with self.assertRaises(ValueError):
                m365emu.rsa_pubkey_from_cert(junk)

    def test_api_time_formats(self):
        p = m365emu.parse_api_time
        base = p("2026-03-02T00:00:00")
        self.assertEqual(p("2026-03-02"), base)
        self.assertEqual(p("2026-03-02T00:00"), base)
        self.assertEqual(p("2026-03-02T00:00:00Z"), base)
        self.assertEqual(p("2026-03-02T00:00:00.0000000Z"), base)
        self.assertAlmostEqual(p("2026-03-02T00:00:00.5Z") - base, 0.5)
        for bad in ("2026-3-2", "2026-13-01", "yesterday", "2026-03-02 00:00",
                    "2026-03-02T25:00:00", ""):
            self.assertIsNone(p(bad), bad)

    def test_durations(self):
        d = m365emu.parse_duration
        self.assertEqual(d("15m"), 900)
        self.assertEqual(d("-2h"), -7200)
        self.assertEqual(d("7d"), 7 * 86400)
        self.assertEqual(d(12), 12)
        with self.assertRaises(ValueError):
            d("soon")


# --------------------------------------------------------------------------
# token endpoints

class TestToken(EmuTestCase):

    def claims(self, token):
        return json.loads(base64.urlsafe_b64decode(
            token.split(".")[1] + "=" * (-len(token.split(".")[1]) % 4)))

    def post(self, path, form, headers=None):
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.emu.https("POST", path, urllib.parse.urlencode(form), h)

    def test_v2_secret(self):
        st, r, body = self.emu.token_v2()
        self.assertEqual(st, 200, body)
        d = json.loads(body)
        self.assertEqual(d["token_type"], "Bearer")
        self.assertIsInstance(d["expires_in"], int)
        c = self.claims(d["access_token"])
        self.assertEqual(c["tid"], T1)
        self.assertEqual(c["aud"], RES)
        self.assertEqual(c["appidacr"], "1")
        self.assertIn("ActivityFeed.Read", c["roles"])
        self.assertTrue(r.getheader("Content-Type").startswith("application/json"))

    def test_v1_secret_strings_and_domain(self):
        st, _, body = self.post("/contoso.onmicrosoft.com/oauth2/token", {
            "grant_type": "client_credentials", "client_id": APP,
            "client_secret": SECRET, "resource": RES})
        self.assertEqual(st, 200, body)
        d = json.loads(body)
        for k in ("expires_in", "expires_on", "not_before"):
            self.assertIsInstance(d[k], str)
        self.assertEqual(d["resource"], RES)

    def test_basic_auth(self):
        basic = base64.b64encode(("%s:%s" % (APP, urllib.parse.quote(
            SECRET, safe=""))).encode()).decode()
        st, _, body = self.post("/%s/oauth2/v2.0/token" % T1, {
            "grant_type": "client_credentials", "scope": RES + "/.default"},
            {"Authorization": "Basic " + basic})
        self.assertEqual(st, 200, body)

    def check_err(self, resp, status, code):
        st, _, body = resp
        self.assertEqual(st, status, body)
        d = json.loads(body)
        self.assertIn(code, d["error_codes"])
        self.assertIn("AADSTS%d" % code, d["error_description"])
        self.assertIn("trace_id", d)

    def test_secret_errors(self):
        self.check_err(self.emu.token_v2(secret="nope"), 401, 7000215)
        self.check_err(self.emu.token_v2(tenant=str(uuid.uuid4())), 400, 90002)
        self.check_err(self.emu.token_v2(client_id=str(uuid.uuid4())), 400,
                       700016)
        self.check_err(self.emu.token_v2(extra={"resource": RES}), 400, 901002)
        self.check_err(self.emu.token_v2(extra={"scope": "https://x/.default"}),
                       400, 70011)
        self.check_err(self.emu.token_v2(secret=None), 401, 7000218)
        self.check_err(self.emu.token_v2(extra={"client_id": None}), 400, 900144)
        st, _, body = self.emu.token_v2(extra={"grant_type": "password"})
        self.assertEqual(json.loads(body)["error"], "unsupported_grant_type")

    def assertion_token(self, assertion, v2=True, tenant=T1):
        path = "/%s/oauth2/%stoken" % (tenant, "v2.0/" if v2 else "")
        form = {"grant_type": "client_credentials", "client_id": APP,
                "client_assertion_type": m365emu.JWT_BEARER,
                "client_assertion": assertion}
        form["scope" if v2 else "resource"] = RES + ("/.default" if v2 else "")
        return self.post(path, form)

    def aud(self, v2=True, tenant=T1):
        return "https://127.0.0.1:%d/%s/oauth2/%stoken" % (
            self.emu.port, tenant, "v2.0/" if v2 else "")

    def test_assertion_rs256_x5t(self):
        st, _, body = self.assertion_token(make_assertion(self.aud()))
        self.assertEqual(st, 200, body)
        self.assertEqual(self.claims(json.loads(body)["access_token"])
                         ["appidacr"], "2")

    def test_assertion_ps256_x5t256(self):
        a = make_assertion(self.aud(), alg="PS256", thumb="x5t#S256")
        st, _, body = self.assertion_token(a)
        self.assertEqual(st, 200, body)

    def test_assertion_v1_real_audience(self):
        a = make_assertion("https://login.windows.net/%s/oauth2/token" % T1,
                           alg="PS256")
        st, _, body = self.assertion_token(a, v2=False)
        self.assertEqual(st, 200, body)

    def test_assertion_wrong_aud(self):
        a = make_assertion("https://login.microsoftonline.com/%s/oauth2/v2.0/"
                           "tokenX" % T1)
        self.check_err(self.assertion_token(a), 401, 700212)
        a = make_assertion(self.aud(tenant=T2))
        self.check_err(self.assertion_token(a), 401, 700212)

    def test_assertion_expired_and_not_yet_valid(self):
        now = self.emu.now()
        a = make_assertion(self.aud(), claims={"exp": int(now) - 3600,
                                               "nbf": int(now) - 4000})
        self.check_err(self.assertion_token(a), 401, 700024)
        a = make_assertion(self.aud(), claims={"nbf": int(now) + 3600,
                                               "exp": int(now) + 4000})
        self.check_err(self.assertion_token(a), 401, 700024)

    def test_assertion_jti_reuse(self):
        a = make_assertion(self.aud())
        self.assertEqual(self.assertion_token(a)[0], 200)
        self.check_err(self.assertion_token(a), 401, 50013)

    def test_assertion_bad_signature(self):
        # header names client.crt but client2.key signed it
        a = make_assertion(self.aud(), key=CERTS["client2_key"])
        self.check_err(self.assertion_token(a), 401, 700027)
        a = make_assertion(self.aud(), alg="PS256", key=CERTS["client2_key"])
        self.check_err(self.assertion_token(a), 401, 700027)
        # tampered payload
        a = make_assertion(self.aud()).split(".")
        payload = json.loads(base64.urlsafe_b64decode(a[1] + "=="))
        payload["jti"] = str(uuid.uuid4())
        a[1] = b64url(json.dumps(payload).encode())
        self.check_err(self.assertion_token(".".join(a)), 401, 700027)

    def test_assertion_unknown_key_and_iss(self):
        a = make_assertion(self.aud(), cert=CERTS["client2_cert"],
                           key=CERTS["client2_key"])
        self.check_err(self.assertion_token(a), 401, 700027)
        a = make_assertion(self.aud(), claims={"iss": str(uuid.uuid4())})
        self.check_err(self.assertion_token(a), 401, 700021)
        a = make_assertion(self.aud(), claims={"jti": None})
        self.check_err(self.assertion_token(a), 401, 50013)

    def test_counters(self):
        self.assertion_token(make_assertion(self.aud(), alg="PS256",
                                            thumb="x5t#S256"))
        c = self.emu.ctl("GET", "/_control/stats")["counters"]
        self.assertGreaterEqual(c.get("assertion_ok:PS256", 0), 1)
        self.assertGreaterEqual(c.get("assertion_ok:x5t#S256", 0), 1)


# --------------------------------------------------------------------------
# subscriptions, auth on the API

class TestSubscriptions(EmuTestCase):
    scenario = base_scenario(tenants=[
        {"id": T1, "subscribed": "none"},
        {"id": T2, "audit_enabled": False},
        {"id": T3}])

    def test_lifecycle_and_af20024(self):
        e = self.emu
        tok = e.token(T1)
        st, _, body = e.api("GET", T1, "subscriptions/list", token=tok)
        self.assertEqual((st, json.loads(body)), (200, []))
        st, _, body = e.api("GET", T1, "subscriptions/content",
                            {"contentType": "Audit.General"}, tok)
        self.assertEqual((st, err_code(body)), (400, "AF20022"))
        st, _, body = e.api("POST", T1, "subscriptions/start",
                            {"contentType": "audit.general"}, tok, body=b"")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), {"contentType": "Audit.General",
                                            "status": "enabled",
                                            "webhook": None})
        st, _, body = e.api("POST", T1, "subscriptions/start",
                            {"contentType": "Audit.General"}, tok, body=b"")
        self.assertEqual((st, err_code(body)), (400, "AF20024"))
        st, _, body = e.api("GET", T1, "subscriptions/list", token=tok)
        self.assertEqual(json.loads(body)[0]["status"], "enabled")
        st, r, body = e.api("POST", T1, "subscriptions/stop",
                            {"contentType": "Audit.General"}, tok, body=b"")
        self.assertEqual((st, body), (200, b""))
        st, _, body = e.api("GET", T1, "subscriptions/content",
                            {"contentType": "Audit.General"}, tok)
        self.assertEqual((st, err_code(body)), (400, "AF20023"))
        st, _, body = e.api("GET", T1, "subscriptions/list", token=tok)
        self.assertEqual(json.loads(body)[0]["status"], "disabled")
        # restart inside the 15-minute start throttle -> AF429
        st, _, body = e.api("POST", T1, "subscriptions/start",
                            {"contentType": "Audit.General"}, tok, body=b"")
        self.assertEqual((st, err_code(body)), (403, "AF429"))
        c = e.ctl("GET", "/_control/stats")["counters"]
        self.assertGreaterEqual(c["start_within_throttle"], 2)
        e.ctl("POST", "/_control/advance-clock", {"seconds": 901})
        tok = e.token(T1)
        st, _, body = e.api("POST", T1, "subscriptions/start",
                            {"contentType": "Audit.General"}, tok, body=b"")
        self.assertEqual(st, 200, body)

    def test_blobs_made_while_stopped_are_never_exposed(self):
        e = self.emu
        tok = e.token(T3)
        q = {"contentType": "Audit.Exchange"}
        st, _, _ = e.api("POST", T3, "subscriptions/stop", q, tok, b"")
        self.assertEqual(st, 200)
        hidden = e.ctl("POST", "/_control/publish", {
            "tenant": T3, "contentType": "Audit.Exchange", "records": 1,
            "created": "0s"})["blobs"][0]["contentId"]
        e.ctl("POST", "/_control/advance-clock", {"seconds": 1})
        st, _, body = e.api("POST", T3, "subscriptions/start", q, tok, b"")
        self.assertEqual(st, 200, body)
        shown = e.ctl("POST", "/_control/publish", {
            "tenant": T3, "contentType": "Audit.Exchange", "records": 1,
            "created": "0s"})["blobs"][0]["contentId"]
        st, _, body = e.api("GET", T3, "subscriptions/content", q, tok)
        ids = [x["contentId"] for x in json.loads(body)]
        self.assertIn(shown, ids)
        self.assertNotIn(hidden, ids)
        st, _, body = e.https("GET", "/api/v1.0/%s/activity/feed/audit/%s"
                              % (T3, hidden),
                              headers={"Authorization": "Bearer " + tok})
        self.assertEqual((st, err_code(body)), (404, "AF20050"))
        # an admin disables the stream -> AF20023 on listing and blobs
        e.ctl("POST", "/_control/subscription", {
            "tenant": T3, "contentType": "Audit.Exchange",
            "status": "disabled"})
        st, _, body = e.api("GET", T3, "subscriptions/content", q, tok)
        self.assertEqual((st, err_code(body)), (400, "AF20023"))
        st, _, body = e.https("GET", "/api/v1.0/%s/activity/feed/audit/%s"
                              % (T3, shown),
                              headers={"Authorization": "Bearer " + tok})
        self.assertEqual((st, err_code(body)), (400, "AF20023"))

    def test_content_type_errors(self):
        tok = self.emu.token(T3)
        st, _, body = self.emu.api("POST", T3, "subscriptions/start",
                                   {"contentType": "Audit.Nope"}, tok, b"")
        self.assertEqual((st, err_code(body)), (400, "AF20020"))
        st, _, body = self.emu.api("GET", T3, "subscriptions/content", {}, tok)
        self.assertEqual((st, err_code(body)), (400, "AF20001"))

    def test_webhook_must_be_https(self):
        tok = self.emu.token(T3)
        st, _, body = self.emu.api(
            "POST", T3, "subscriptions/start", {"contentType": "DLP.All"}, tok,
            json.dumps({"webhook": {"address": "http://127.0.0.1:1/x"}}))
        self.assertEqual((st, err_code(body)), (400, "AF20021"))

    def test_audit_disabled_tenant(self):
        tok = self.emu.token(T2)
        st, _, body = self.emu.api("POST", T2, "subscriptions/start",
                                   {"contentType": "Audit.General"}, tok, b"")
        self.assertEqual(st, 400)
        e = json.loads(body)["error"]
        self.assertTrue(e["code"].startswith("StartSubscription [CorrId="))
        self.assertIn("Tenant %s does not exist" % T2, e["message"])

    def test_401_shape(self):
        for auth in (None, "Bearer x.y.z", "Basic abc"):
            h = {"Authorization": auth} if auth else {}
            st, r, body = self.emu.https(
                "GET", "/api/v1.0/%s/activity/feed/subscriptions/list" % T3,
                headers=h)
            self.assertEqual(st, 401)
            self.assertEqual(r.getheader("WWW-Authenticate"), "Bearer")
            self.assertEqual(json.loads(body), {"Message": "Authorization has "
                                                "been denied for this request."})

    def test_missing_role(self):
        tok = self.emu.token(T3, client_id=APP_NOROLE)
        st, _, body = self.emu.api("GET", T3, "subscriptions/list", token=tok)
        self.assertEqual((st, err_code(body)), (403, "AF10001"))

    def test_tenant_in_url(self):
        tok = self.emu.token(T3)
        st, _, body = self.emu.api("GET", T3, "subscriptions/list", token=tok,
                                   url_tenant="contoso")
        self.assertEqual((st, err_code(body)), (400, "AF20013"))
        # lenient (default): the app id in the URL, like Wazuh, still works
        st, _, body = self.emu.api("GET", T3, "subscriptions/list", token=tok,
                                   url_tenant=APP)
        self.assertEqual(st, 200, body)
        self.emu.ctl("POST", "/_control/config", {"strict_tenant": True})
        try:
            st, _, body = self.emu.api("GET", T3, "subscriptions/list",
                                       token=tok, url_tenant=APP)
            self.assertEqual((st, err_code(body)), (403, "AF20010"))
        finally:
            self.emu.ctl("POST", "/_control/config", {"strict_tenant": False})

    def test_dlp_sensitive_types(self):
        tok = self.emu.token(T3)
        st, _, body = self.emu.api("GET", T3, "resources/dlpSensitiveTypes",
                                   token=tok)
        self.assertEqual(st, 200)
        self.assertIn("CreditCardNumber", [x["name"] for x in json.loads(body)])
        st, _, body = self.emu.api("GET", T3, "resources/dlpSensitiveTypes",
                                   token=tok, headers={"Accept-Language":
                                                       "en-US, fr-FR"})
        self.assertEqual(err_code(body), "AF20053")
        st, _, body = self.emu.api("GET", T3, "resources/dlpSensitiveTypes",
                                   token=tok, headers={"Accept-Language": "@@"})
        self.assertEqual(err_code(body), "AF20054")


# --------------------------------------------------------------------------
# content listing rules, paging, blobs

class TestListing(EmuTestCase):
    scenario = base_scenario(page_size=4, tenants=[
        {"id": T1, "content": {"Audit.Exchange": {
            "blobs": 23, "records_per_blob": 3, "span": "20h"}}},
        {"id": T2, "subscribed": "none", "first_data_delay": "1h"}])

    def content(self, q, tenant=T1, ct="Audit.Exchange"):
        q = dict(q)
        q.setdefault("contentType", ct)
        return self.emu.api("GET", tenant, "subscriptions/content", q,
                            self.tok if tenant == T1 else None)

    def setUp(self):
        self.tok = self.emu.token(T1)

    def test_time_rules(self):
        now = self.emu.now()
        cases = [({"startTime": fmt(now - 3600)}, "AF20055"),
                 ({"endTime": fmt(now)}, "AF20055"),
                 ({"startTime": fmt(now - 90000), "endTime": fmt(now)}, "AF20055"),
                 ({"startTime": fmt(now), "endTime": fmt(now)}, "AF20055"),
                 ({"startTime": fmt(now), "endTime": fmt(now - 60)}, "AF20055"),
                 ({"startTime": fmt(now - 8 * 86400),
                   "endTime": fmt(now - 8 * 86400 + 3600)}, "AF20055"),
                 ({"startTime": "yesterday", "endTime": fmt(now)}, "AF20002")]
        for q, code in cases:
            st, _, body = self.content(q)
            self.assertEqual((st, err_code(body)), (400, code), q)
        self.assertIn("StartTime:", json.loads(self.content(cases[2][0])[2])
                      ["error"]["message"])

    def test_time_formats_and_future_end(self):
        now = self.emu.now()
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        for st_, en in ((fmt(now - 3600), fmt(now + 7200)),
                        (fmt(now - 3600)[:16], fmt(now)[:16]),
                        (fmt(now - 3600) + "Z", fmt(now) + "Z"),
                        (fmt(now - 3600) + ".0000000Z", fmt(now) + ".1234567Z"),
                        # a date alone is midnight: end the same day, so the
                        # window stays under 24 h whatever the time of day
                        (day, day + "T23:00")):
            st, _, body = self.content({"startTime": st_, "endTime": en})
            self.assertEqual(st, 200, (st_, en, body))

    def test_window_semantics(self):
        blobs = self.emu.ctl("GET", "/_control/content?tenant=%s&contentType="
                             "Audit.Exchange" % T1)["blobs"]
        b = blobs[-1]
        t = m365emu.parse_api_time(b["created"].rstrip("Z"))
        q = {"startTime": m365emu.fmt_7(t), "endTime": m365emu.fmt_7(t + 0.001)}
        st, _, body = self.content(q)
        self.assertIn(b["contentId"], [x["contentId"] for x in json.loads(body)])
        q = {"startTime": m365emu.fmt_7(t - 60), "endTime": m365emu.fmt_7(t)}
        st, _, body = self.content(q)
        self.assertNotIn(b["contentId"],
                         [x["contentId"] for x in json.loads(body)])

    def collect_pages(self, first_query):
        st, r, body = self.content(first_query)
        self.assertEqual(st, 200, body)
        pages = [json.loads(body)]
        raw_headers = []
        while r.getheader("NextPageUri"):
            nxt = r.getheader("NextPageUri")
            raw_headers.append(nxt)
            st, r, body = self.emu.get_url(nxt, self.tok, publisher=T1)
            self.assertEqual(st, 200, body)
            pages.append(json.loads(body))
            self.assertLess(len(pages), 50)
        return pages, raw_headers

    def test_paging(self):
        pages, nexts = self.collect_pages({})
        self.assertEqual(len(pages), 6)
        self.assertEqual([len(p) for p in pages], [4, 4, 4, 4, 4, 3])
        ids = [x["contentId"] for p in pages for x in p]
        self.assertEqual(len(ids), len(set(ids)))
        all_ids = [b["contentId"] for b in self.emu.ctl(
            "GET", "/_control/content?tenant=%s" % T1)["blobs"]]
        self.assertEqual(sorted(ids), sorted(all_ids))
        for n in nexts:
            self.assertNotIn("PublisherIdentifier", n)
            self.assertIn("contenttype=Audit.Exchange", n)
            self.assertRegex(n, r"starttime=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z")
            self.assertRegex(n, r"nextpage=\d{23}\$\d{23}\$")
        first = pages[0][0]
        self.assertTrue(first["contentUri"].endswith("/audit/" + first["contentId"]))
        self.assertRegex(first["contentCreated"], r"\.\d{3}Z$")
        c = m365emu.parse_api_time(first["contentCreated"])
        x = m365emu.parse_api_time(first["contentExpiration"])
        self.assertAlmostEqual(x - c, 7 * 86400, delta=0.01)

    def test_nextpage_header_on_the_wire(self):
        # NextPageUri must be followed by another header (Wazuh #30921).
        s = socket.create_connection(("127.0.0.1", self.emu.port), timeout=10)
        tls = self.emu.ctx.wrap_socket(s, server_hostname="127.0.0.1")
        tls.sendall(("GET /api/v1.0/%s/activity/feed/subscriptions/content?"
                     "contentType=Audit.Exchange HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                     % (T1, self.tok)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
        tls.close()
        head = data.split(b"\r\n\r\n")[0].decode()
        self.assertRegex(head, r"\r\nNextPageUri: https://[^\r\n]+\r\nX-AspNet-Version:")

    def test_bad_nextpage_and_lower_case_header(self):
        st, _, body = self.content({"nextpage": "garbage"})
        self.assertEqual((st, err_code(body)), (400, "AF20031"))
        self.emu.ctl("POST", "/_control/config", {"nextpage_header": "nextpageuri"})
        try:
            st, r, body = self.content({})
            self.assertIn("nextpageuri", [k for k, _ in r.getheaders()])
        finally:
            self.emu.ctl("POST", "/_control/config",
                         {"nextpage_header": "NextPageUri"})

    def test_first_data_delay(self):
        e = self.emu
        tok = e.token(T2)
        st, _, body = e.api("POST", T2, "subscriptions/start",
                            {"contentType": "Audit.SharePoint"}, tok, b"")
        self.assertEqual(st, 200, body)
        e.ctl("POST", "/_control/publish", {"tenant": T2, "contentType":
                                            "Audit.SharePoint", "count": 2,
                                            "records": 2, "created": "+1s"})
        e.ctl("POST", "/_control/advance-clock", {"seconds": 120})
        tok = e.token(T2)
        st, _, body = e.api("GET", T2, "subscriptions/content",
                            {"contentType": "Audit.SharePoint"}, tok)
        self.assertEqual((st, json.loads(body)), (200, []))
        e.ctl("POST", "/_control/advance-clock", {"seconds": 3600})
        tok = e.token(T2)
        st, _, body = e.api("GET", T2, "subscriptions/content",
                            {"contentType": "Audit.SharePoint"}, tok)
        self.assertEqual(len(json.loads(body)), 2)


class TestBlobs(EmuTestCase):
    scenario = base_scenario(tenants=[
        {"id": T1, "content": {"Audit.General": {
            "blobs": 4, "records_per_blob": 7, "span": "4h"}}},
        {"id": T2, "content": {"DLP.All": {"blobs": 1, "records_per_blob": 2,
                                           "span": "1h"}}}])

    def list_all(self, tenant, ct, tok):
        st, _, body = self.emu.api("GET", tenant, "subscriptions/content",
                                   {"contentType": ct}, tok)
        self.assertEqual(st, 200, body)
        return json.loads(body)

    def test_blob_content_and_errors(self):
        e = self.emu
        tok = e.token(T1)
        items = self.list_all(T1, "Audit.General", tok)
        self.assertEqual(len(items), 4)
        st, _, body = e.get_url(items[0]["contentUri"], tok, T1)
        self.assertEqual(st, 200)
        recs = json.loads(body)
        self.assertEqual(len(recs), 7)
        for r in recs:
            for k in ("Id", "CreationTime", "Operation", "OrganizationId",
                      "RecordType", "UserType", "Workload", "UserId", "EmuSeq"):
                self.assertIn(k, r)
            self.assertEqual(r["OrganizationId"], T1)
            self.assertRegex(r["CreationTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
        root = "/api/v1.0/%s/activity/feed/audit/" % T1
        h = {"Authorization": "Bearer " + tok}
        missing = "20990101000000000000000$20990101000000000000000$" \
                  "audit_general$Audit_General$emea0000"
        st, _, body = e.https("GET", root + missing, headers=h)
        self.assertEqual((st, err_code(body)), (404, "AF20050"))
        st, _, body = e.https("GET", root + "not-an-id", headers=h)
        self.assertEqual((st, err_code(body)), (400, "AF20052"))
        # another tenant's blob is not visible
        tok2 = e.token(T2)
        other = self.list_all(T2, "DLP.All", tok2)[0]
        st, _, body = e.https("GET", root + other["contentId"], headers=h)
        self.assertEqual((st, err_code(body)), (404, "AF20050"))

    def test_blob_expiry(self):
        e = self.emu
        tok = e.token(T2)
        item = self.list_all(T2, "DLP.All", tok)[0]
        st, _, _ = e.get_url(item["contentUri"], tok, T2)
        self.assertEqual(st, 200)
        e.ctl("POST", "/_control/advance-clock", {"seconds": 8 * 86400})
        try:
            tok = e.token(T2)
            st, _, body = e.get_url(item["contentUri"], tok, T2)
            self.assertEqual((st, err_code(body)), (400, "AF20051"))
            e.ctl("POST", "/_control/config", {"blob_expired_status": 404})
            st, _, body = e.get_url(item["contentUri"], tok, T2)
            self.assertEqual((st, err_code(body)), (404, "AF20051"))
            self.assertEqual(self.list_all(T2, "DLP.All", tok), [])
        finally:
            e.ctl("POST", "/_control/config", {"blob_expired_status": 400})
            e.ctl("POST", "/_control/advance-clock", {"seconds": -8 * 86400})


class TestRealism(EmuTestCase):
    scenario = base_scenario(tenants=[
        {"id": T1, "content": {"Audit.SharePoint": {
            "blobs": 6, "records_per_blob": 4, "span": "6h", "late": 1,
            "late_delay": "8h", "duplicates": 2, "out_of_order": 1,
            "old_records_age": "5h", "end": "-1h"}}}])

    def test_late_dup_and_old(self):
        e = self.emu
        blobs = e.ctl("GET", "/_control/content?tenant=%s" % T1)["blobs"]
        late = [b for b in blobs if b["available"] != b["created"]]
        self.assertEqual(len(late), 1)
        tok = e.token(T1)
        q = {"contentType": "Audit.SharePoint"}
        st, _, body = e.api("GET", T1, "subscriptions/content", q, tok)
        first = [x["contentId"] for x in json.loads(body)]
        self.assertNotIn(late[0]["contentId"], first)
        e.ctl("POST", "/_control/advance-clock", {"seconds": 8 * 3600})
        tok = e.token(T1)
        now = e.now()
        q = {"contentType": "Audit.SharePoint", "startTime": fmt(now - 86400),
             "endTime": fmt(now)}
        st, _, body = e.api("GET", T1, "subscriptions/content", q, tok)
        items = json.loads(body)
        self.assertIn(late[0]["contentId"], [x["contentId"] for x in items])
        all_recs = []
        for it in items:
            st, _, data = e.get_url(it["contentUri"], tok, T1)
            recs = json.loads(data)
            created = m365emu.parse_api_time(it["contentCreated"])
            ages = [created - m365emu.parse_api_time(r["CreationTime"])
                    for r in recs]
            all_recs.append((it["contentId"], recs, max(ages)))
        ids = [r["Id"] for _, recs, _ in all_recs for r in recs]
        self.assertEqual(len(ids) - len(set(ids)), 2)
        self.assertTrue(any(age > 4 * 3600 for _, _, age in all_recs))
        served = e.ctl("GET", "/_control/served?tenant=%s&contentType="
                       "Audit.SharePoint" % T1)
        self.assertEqual(served["ids"], sorted(set(ids)))
        self.assertEqual(served["records_served"], len(ids))
        seqs = sorted({r["EmuSeq"] for _, recs, _ in all_recs for r in recs})
        self.assertEqual(seqs, list(range(1, 25)))

    def test_publish_and_files(self):
        e = self.emu
        path = os.path.join(e.dir, "recs.ndjson")
        recs = [{"Id": str(uuid.uuid4()), "CreationTime": "2026-03-02T10:00:00",
                 "Operation": "FileAccessed", "RecordType": 6,
                 "OrganizationId": T1, "UserType": 0, "UserKey": "k",
                 "Workload": "SharePoint", "UserId": "u@x", "ClientIP": ""}
                for _ in range(3)]
        with open(path, "w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
        out = e.ctl("POST", "/_control/publish", {
            "tenant": T1, "contentType": "Audit.SharePoint", "files": [path],
            "created": "-10s"})
        self.assertEqual(out["blobs"][0]["ids"], [r["Id"] for r in recs])
        tok = e.token(T1)
        st, _, body = e.api("GET", T1, "subscriptions/content",
                            {"contentType": "Audit.SharePoint"}, tok)
        uri = [x["contentUri"] for x in json.loads(body)
               if x["contentId"] == out["blobs"][0]["contentId"]][0]
        st, _, data = e.get_url(uri, tok, T1)
        self.assertEqual(json.loads(data), recs)


# --------------------------------------------------------------------------
# faults, throttling, quotas, token expiry

class TestFaults(EmuTestCase):
    scenario = base_scenario(tenants=[
        {"id": T1, "content": {"Audit.Exchange": {
            "blobs": 2, "records_per_blob": 50, "span": "2h"}}}])

    def setUp(self):
        self.emu.ctl("DELETE", "/_control/faults")
        self.tok = self.emu.token(T1)

    def listing(self):
        return self.emu.api("GET", T1, "subscriptions/content",
                            {"contentType": "Audit.Exchange"}, self.tok)

    def fault(self, **f):
        f.setdefault("count", 1)
        self.emu.ctl("POST", "/_control/faults", {"faults": [f]})

    def test_throttle_variants(self):
        self.fault(match={"route": "content"}, action="throttle403")
        st, r, body = self.listing()
        self.assertEqual((st, err_code(body)), (403, "AF429"))
        self.assertIn("Method=ListContent", body.decode())
        self.fault(match={"route": "content"}, action="throttle429")
        st, r, body = self.listing()
        self.assertEqual(st, 429)
        self.assertIsNone(r.getheader("Retry-After"))
        self.fault(match={"route": "content"}, action="throttle429",
                   retry_after=7)
        st, r, body = self.listing()
        self.assertEqual((st, r.getheader("Retry-After")), (429, "7"))
        self.assertEqual(self.listing()[0], 200)

    def test_status_faults(self):
        for status, code in ((500, "AF50000"), (503, "AF50000"),
                             (408, "AF50000"), (500, "AF50005")):
            self.fault(match={"route": "content"}, action="status",
                       status=status, code=code)
            st, _, body = self.listing()
            self.assertEqual((st, err_code(body)), (status, code))
        self.assertEqual(self.listing()[0], 200)

    def test_count_after_and_tenant_match(self):
        self.fault(match={"route": "content", "tenant": T2}, action="status",
                   status=500)
        self.assertEqual(self.listing()[0], 200)
        self.emu.ctl("DELETE", "/_control/faults")
        self.fault(match={"route": "content"}, action="status", status=503,
                   after=1, count=2)
        self.assertEqual([self.listing()[0] for _ in range(4)],
                         [200, 503, 503, 200])

    def test_reset_and_truncation(self):
        self.fault(match={"route": "content"}, action="reset")
        with self.assertRaises((ConnectionError, http.client.HTTPException,
                                ssl.SSLError, OSError)):
            self.listing()
        items = json.loads(self.listing()[2])

        def times_served():
            served = self.emu.ctl("GET", "/_control/served?tenant=%s" % T1)
            return sum(b["times"] for b in served["blobs"]
                       if b["contentId"] == items[0]["contentId"])
        before = times_served()
        self.fault(match={"route": "blob"}, action="reset_mid_body")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError,
                                ssl.SSLError, OSError)):
            self.emu.get_url(items[0]["contentUri"], self.tok, T1)
        self.assertEqual(times_served(), before)
        self.fault(match={"route": "blob"}, action="malformed")
        st, _, data = self.emu.get_url(items[0]["contentUri"], self.tok, T1)
        self.assertEqual(st, 200)
        with self.assertRaises(ValueError):
            json.loads(data)
        st, _, data = self.emu.get_url(items[0]["contentUri"], self.tok, T1)
        self.assertEqual(len(json.loads(data)), 50)

    def test_delay_stall_slow(self):
        self.fault(match={"route": "list"}, action="delay", delay="300ms")
        t = time.monotonic()
        st, _, _ = self.emu.api("GET", T1, "subscriptions/list", token=self.tok)
        self.assertEqual(st, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.29)
        self.fault(match={"route": "list"}, action="stall", stall_max="20s")
        conn = http.client.HTTPSConnection("127.0.0.1", self.emu.port,
                                           context=self.emu.ctx, timeout=0.5)
        conn.request("GET", "/api/v1.0/%s/activity/feed/subscriptions/list" % T1,
                     headers={"Authorization": "Bearer " + self.tok})
        with self.assertRaises(socket.timeout):
            conn.getresponse()
        conn.close()
        self.fault(match={"route": "list"}, action="slow", bytes_per_second=200)
        t = time.monotonic()
        st, _, body = self.emu.api("GET", T1, "subscriptions/list",
                                   token=self.tok)
        self.assertEqual(st, 200)
        self.assertGreaterEqual(time.monotonic() - t, len(body) / 200.0 * 0.8)

    def test_token_faults_and_expiry(self):
        self.fault(match={"route": "token"}, action="status", status=503,
                   body={"error": "temporarily_unavailable"})
        st, _, body = self.emu.token_v2()
        self.assertEqual((st, json.loads(body)["error"]),
                         (503, "temporarily_unavailable"))
        self.fault(match={"route": "list"}, action="expire_token")
        st, _, _ = self.emu.api("GET", T1, "subscriptions/list", token=self.tok)
        self.assertEqual(st, 401)
        self.emu.ctl("POST", "/_control/expire-tokens", {"tenant": T1})
        st, _, _ = self.emu.api("GET", T1, "subscriptions/list", token=self.tok)
        self.assertEqual(st, 401)
        self.emu.ctl("POST", "/_control/advance-clock", {"seconds": 2})
        tok = self.emu.token(T1)
        self.assertEqual(self.emu.api("GET", T1, "subscriptions/list",
                                      token=tok)[0], 200)
        self.emu.ctl("POST", "/_control/config", {"token_lifetime": 60})
        try:
            st, _, body = self.emu.token_v2()
            self.assertEqual(json.loads(body)["expires_in"], 60)
            tok = json.loads(body)["access_token"]
            self.emu.ctl("POST", "/_control/advance-clock", {"seconds": 61})
            self.assertEqual(self.emu.api("GET", T1, "subscriptions/list",
                                          token=tok)[0], 401)
        finally:
            self.emu.ctl("POST", "/_control/config", {"token_lifetime": 3599})

    def test_token_error_kinds_and_switch_off(self):
        want = {"temporarily_unavailable": (503, 90033),
                "server_error": (500, 50000), "bad_secret": (401, 7000215),
                "unknown_app": (400, 700016), "unknown_tenant": (400, 90002),
                "no_consent": (400, 65001)}
        for kind, (status, code) in want.items():
            self.fault(match={"route": "token"}, action="token_error", kind=kind)
            st, _, body = self.emu.token_v2()
            doc = json.loads(body)
            self.assertEqual((st, doc["error_codes"]), (status, [code]), kind)
            self.assertTrue(doc["error_description"].startswith("AADSTS%d:" % code))
        # a fault without count stays until it is deleted by its id
        ids = self.emu.ctl("POST", "/_control/faults", {"faults": [
            {"match": {"route": "token"}, "action": "token_error",
             "kind": "bad_secret"}]})["ids"]
        self.assertEqual([self.emu.token_v2()[0] for _ in range(3)], [401] * 3)
        self.emu.ctl("DELETE", "/_control/faults?id=%d" % ids[0])
        self.assertEqual(self.emu.token_v2()[0], 200)

    def test_not_found_for_one_blob(self):
        items = json.loads(self.listing()[2])
        cid = items[0]["contentId"]
        self.fault(match={"route": "blob", "contentId": cid},
                   action="not_found", count=2)
        for _ in range(2):
            st, _, body = self.emu.get_url(items[1]["contentUri"], self.tok, T1)
            self.assertEqual(st, 200)
            st, _, body = self.emu.get_url(items[0]["contentUri"], self.tok, T1)
            self.assertEqual((st, err_code(body)), (404, "AF20050"))
        self.assertEqual(self.emu.get_url(items[0]["contentUri"], self.tok,
                                          T1)[0], 200)

    def test_nextpage_repeat_and_long(self):
        self.emu.ctl("POST", "/_control/config", {"page_size": 1})
        try:
            st, r, _ = self.listing()
            first = r.getheader("NextPageUri")
            self.fault(match={"route": "content"}, action="nextpage_repeat")
            st, r, _ = self.emu.get_url(first, self.tok, T1)
            self.assertEqual((st, r.getheader("NextPageUri")), (200, first))
            # on the first page too: the loop points at that page
            self.fault(match={"route": "content"}, action="nextpage_repeat")
            st, r, _ = self.listing()
            self.assertNotIn("nextpage=", r.getheader("NextPageUri"))
            self.fault(match={"route": "content"}, action="nextpage_long",
                       length=6000)
            st, r, _ = self.listing()
            long_uri = r.getheader("NextPageUri")
            self.assertGreaterEqual(len(long_uri), 6000)
            st, r, body = self.emu.get_url(long_uri, self.tok, T1)
            self.assertEqual(st, 200)
            self.assertEqual(len(json.loads(body)), 1)
            self.assertIsNone(r.getheader("NextPageUri"))
        finally:
            self.emu.ctl("POST", "/_control/config", {"page_size": 100})

    def test_gzip_bomb_and_oversize(self):
        import zlib
        items = json.loads(self.listing()[2])
        uri = items[0]["contentUri"]
        self.fault(match={"route": "blob"}, action="gzip_bomb", size=8 << 20)
        st, r, body = self.emu.get_url(uri, self.tok, T1)
        self.assertEqual((st, r.getheader("Content-Encoding")), (200, "gzip"))
        self.assertLess(len(body), 256 << 10)
        plain = zlib.decompress(body, 31)
        self.assertEqual(len(plain), 8 << 20)
        self.assertEqual(len(json.loads(plain)), 50)
        self.fault(match={"route": "blob"}, action="oversize", size=3 << 20)
        st, r, body = self.emu.get_url(uri, self.tok, T1)
        self.assertEqual((st, len(body)), (200, 3 << 20))
        self.assertEqual(len(json.loads(body)), 50)
        served = self.emu.ctl("GET", "/_control/served?tenant=%s" % T1)
        self.assertNotIn(items[0]["contentId"],
                         [b["contentId"] for b in served["blobs"]])

    def test_drip_and_stall_after(self):
        items = json.loads(self.listing()[2])
        uri = urllib.parse.urlsplit(items[1]["contentUri"])
        path = uri.path + "?PublisherIdentifier=" + T1
        hdr = {"Authorization": "Bearer " + self.tok}
        # progress stops after 100 bytes: a reader with a 0.5 s read timeout
        # gives up (no progress), it does not wait for the whole body
        self.fault(match={"route": "blob"}, action="drip", chunk=50,
                   interval="10ms", stall_after=100, stall_max="20s")
        conn = http.client.HTTPSConnection("127.0.0.1", self.emu.port,
                                           context=self.emu.ctx, timeout=0.5)
        conn.request("GET", path, headers=hdr)
        r = conn.getresponse()
        self.assertEqual(r.read(100)[:1], b"[")
        with self.assertRaises(socket.timeout):
            r.read(1)
        conn.close()
        # a steady drip completes and the blob counts as served
        self.fault(match={"route": "blob"}, action="drip", chunk=4096,
                   interval="5ms")
        t = time.monotonic()
        st, _, body = self.emu.https("GET", path, headers=hdr)
        self.assertEqual((st, len(json.loads(body))), (200, 50))
        self.assertGreaterEqual(time.monotonic() - t,
                                0.005 * (len(body) // 4096) * 0.8)
        served = self.emu.ctl("GET", "/_control/served?tenant=%s" % T1)
        self.assertIn(items[1]["contentId"],
                      [b["contentId"] for b in served["blobs"]])

    def test_date_header_follows_the_virtual_clock(self):
        before = self.emu.now()
        self.emu.ctl("POST", "/_control/advance-clock", {"seconds": -7200})
        try:
            st, r, _ = self.listing()
            import email.utils
            date = email.utils.parsedate_to_datetime(r.getheader("Date"))
            self.assertLess(abs(date.timestamp() - (before - 7200)), 60)
        finally:
            self.emu.ctl("POST", "/_control/advance-clock", {"seconds": 7200})

    def test_probability_is_seeded(self):
        self.emu.ctl("POST", "/_control/faults", {"faults": [
            {"match": {"route": "list"}, "action": "status", "status": 500,
             "probability": 0.5}]})
        res = [self.emu.api("GET", T1, "subscriptions/list",
                            token=self.tok)[0] for _ in range(20)]
        self.assertIn(500, res)
        self.assertIn(200, res)


class TestQuota(EmuTestCase):
    scenario = base_scenario(tenants=[
        {"id": T1, "quota_per_minute": 5}, {"id": T2, "quota_per_minute": 100}])

    def test_per_tenant_quota(self):
        e = self.emu
        t1, t2 = e.token(T1), e.token(T2)
        res = [e.api("GET", T1, "subscriptions/list", token=t1)
               for _ in range(6)]
        self.assertEqual([r[0] for r in res], [200] * 5 + [403])
        self.assertEqual(err_code(res[-1][2]), "AF429")
        self.assertIn("PublisherId=%s" % T1, res[-1][2].decode())
        self.assertEqual([e.api("GET", T2, "subscriptions/list",
                                token=t2)[0] for _ in range(6)], [200] * 6)
        e.ctl("POST", "/_control/advance-clock", {"seconds": 61})
        self.assertEqual(e.api("GET", T1, "subscriptions/list",
                               token=e.token(T1))[0], 200)
        e.ctl("POST", "/_control/config", {"throttle_style": "429-retry-after",
                                           "retry_after": 3})
        for _ in range(5):
            st, r, _ = e.api("GET", T1, "subscriptions/list", token=t1)
        self.assertEqual((st, r.getheader("Retry-After")), (429, "3"))
        stats = e.ctl("GET", "/_control/stats")
        self.assertGreaterEqual(stats["counters"]["throttled_quota"], 2)
        self.assertGreaterEqual(stats["requests"]["GET list 200"], 12)


class WebhookReceiver:
    """HTTPS receiver on loopback recording every POST."""

    def __init__(self, status=200):
        import http.server
        import threading
        self.cond = threading.Condition()
        self.posts = []
        self.status = status
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n))
                with outer.cond:
                    outer.posts.append((dict(self.headers), body))
                    outer.cond.notify_all()
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(CERTS["server_cert"], CERTS["server_key"])
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/o365/" % self.srv.server_address[1]
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()

    def wait_for(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.posts):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class TestWebhooks(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.emu = Emu(base_scenario(webhook_ca_file=CERTS["ca"], tenants=[
            {"id": T1, "subscribed": "none"}]))
        cls.rx = WebhookReceiver()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        cls.rx.stop()

    def test_validation_and_notifications(self):
        e, rx = self.emu, self.rx
        tok = e.token(T1)
        st, _, body = e.api("POST", T1, "subscriptions/start",
                            {"contentType": "Audit.General"}, tok, json.dumps(
                                {"webhook": {"address": rx.url,
                                             "authId": "o365notify"}}))
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["webhook"]["status"], "enabled")
        hdrs, val = rx.posts[0]
        self.assertEqual(hdrs.get("Webhook-ValidationCode"), val["validationCode"])
        self.assertEqual(hdrs.get("Webhook-AuthID"), "o365notify")
        pub = e.ctl("POST", "/_control/publish", {
            "tenant": T1, "contentType": "Audit.General", "count": 2,
            "records": 1, "created": "1s"})
        e.ctl("POST", "/_control/advance-clock", {"seconds": 5})
        want = {b["contentId"] for b in pub["blobs"]}
        self.assertTrue(rx.wait_for(lambda posts: want <= {
            i["contentId"] for _, b in posts[1:] for i in b}))
        item = rx.posts[1][1][0]
        self.assertEqual(item["tenantId"], T1)
        self.assertEqual(item["clientId"], APP)
        self.assertTrue(item["contentUri"].endswith(item["contentId"]))
        now = e.now()
        st, _, body = e.api("GET", T1, "subscriptions/notifications", {
            "contentType": "Audit.General", "startTime": fmt(now - 3600),
            "endTime": fmt(now + 60)}, e.token(T1))
        hist = json.loads(body)
        self.assertEqual({h["contentId"] for h in hist}, want)
        self.assertEqual({h["notificationStatus"] for h in hist}, {"success"})

    def test_validation_failure(self):
        bad = WebhookReceiver(status=500)
        try:
            st, _, body = self.emu.api(
                "POST", T1, "subscriptions/start", {"contentType": "DLP.All"},
                self.emu.token(T1), json.dumps({"webhook": {"address": bad.url}}))
            self.assertEqual((st, err_code(body)), (400, "AF20021"))
        finally:
            bad.stop()


class TestScenarioFiles(unittest.TestCase):

    def test_examples_load(self):
        os.environ["M365EMU_CERTS"] = CERTS["dir"]
        sdir = os.path.join(HERE, "scenarios")
        names = sorted(n for n in os.listdir(sdir) if n.endswith(".json"))
        self.assertGreaterEqual(len(names), 4)
        for n in names:
            sc = m365emu.load_scenario(os.path.join(sdir, n))
            if n == "bench.json":       # big: check the keys only
                m365emu.check_scenario(sc)
                continue
            emu = m365emu.Emulator(sc, sdir)
            self.assertGreater(len(emu.tenants), 0, n)

    def test_unknown_keys_refused(self):
        for sc, where in (({"tenant": []}, "scenario"),
                          ({"tenants": [{"id": T1, "quota": 5}]}, "tenants[0]"),
                          ({"tenants": [{"id": T1, "content": {
                              "Audit.Exchange": {"blob": 1}}}]},
                           "tenants[0].content.Audit.Exchange"),
                          ({"tenants": [{"id": T1, "content": {
                              "Audit.Nope": {}}}]}, "unknown content type")):
            with self.assertRaises(ValueError) as cm:
                m365emu.Emulator(sc)
            self.assertIn(where, str(cm.exception))

    def test_deterministic(self):
        sc = {"seed": 4, "tenants": [{"id": T1, "content": {"Audit.General": {
            "blobs": 3, "records_per_blob": 5, "duplicates": 2}}}]}
        a, b = m365emu.Emulator(sc), m365emu.Emulator(sc)
        ba = sorted(a.blobs.values(), key=lambda x: x.seq)
        bb = sorted(b.blobs.values(), key=lambda x: x.seq)
        for x, y in zip(ba, bb):
            self.assertEqual(a.blob_ids(x), b.blob_ids(y))
            self.assertEqual(x.n, y.n)
        sc["seed"] = 5
        c = m365emu.Emulator(sc)
        self.assertNotEqual(a.blob_ids(ba[0]),
                            c.blob_ids(sorted(c.blobs.values(),
                                              key=lambda x: x.seq)[0]))


class TestManyTenants(unittest.TestCase):

    def test_thousand_tenants(self):
        sc = base_scenario(tenants=[], tenant_template={
            "count": 1000, "quota_per_minute": 2000,
            "content": {"Audit.General": {"blobs": 2, "records_per_blob": 3,
                                          "span": "2h"},
                        "Audit.Exchange": {"blobs": 1, "records_per_blob": 3,
                                           "span": "2h"}}})
        e = Emu(sc)
        try:
            self.assertEqual(e.ready["tenants"], 1000)
            self.assertEqual(e.ready["blobs"], 3000)
            last = e.ctl("GET", "/_control/tenants?offset=999&limit=1")[
                "tenants"][0]
            tok = e.token(last["id"])
            st, _, body = e.api("GET", last["id"], "subscriptions/content",
                                {"contentType": "Audit.General"}, tok)
            self.assertEqual(len(json.loads(body)), 2)
            st, _, data = e.get_url(json.loads(body)[0]["contentUri"], tok,
                                    last["id"])
            self.assertEqual(len(json.loads(data)), 3)
            with open("/proc/%d/status" % e.proc.pid) as f:
                rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS")][0]
            sys.stderr.write("\n[1000 tenants, 3000 blobs: emulator RSS %d MB] "
                             % (rss // 1024))
            self.assertLess(rss, 200 * 1024)
        finally:
            e.stop()


if __name__ == "__main__":
    if shutil.which("openssl") is None:
        print("1..0 # SKIP openssl command not found (needed for the test CA)")
        sys.exit(77)
    argv = sys.argv[:]
    # meson's script-test loop passes the m365fwd binary first: ignore it.
    if len(argv) > 1 and os.path.isfile(argv[1]) and os.access(argv[1], os.X_OK):
        del argv[1]
    unittest.main(argv=argv)
