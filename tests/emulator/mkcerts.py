#!/usr/bin/env python3
"""Make a throwaway test CA, a server certificate for 127.0.0.1/localhost and
client certificate/key pairs for certificate (client_assertion) auth.

Usage: mkcerts.py DIR        -> prints a JSON map of the files it wrote.
Library: make_certs(dir) -> same dict.  Needs the `openssl` command.
Nothing here is secret: keys are generated per test run into a temp dir and
never committed.
"""

import json
import os
import shutil
import subprocess
import sys


class CertError(Exception):
    pass


def have_openssl():
    return shutil.which("openssl") is not None


def _run(args, cwd, prefix=()):
    r = subprocess.run(list(prefix) + ["openssl"] + args, cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise CertError("openssl %s failed: %s" % (" ".join(args), r.stderr))


# -newkey arguments: RSA (what certificate auth to the API signs with) or a
# P-256 key, much quicker to make, for TLS-only uses
KEYS = {"rsa": ["-newkey", "rsa:2048"],
        "ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]}


def make_ca(d, cn="m365emu test CA", key="rsa", prefix=()):
    """Write a self-signed CA, ca.{crt,key}, into d; return (key, crt).
    prefix: a command openssl runs under, e.g. ["faketime", "-f", "-1d"] for
    certificates valid from yesterday (for a client whose clock is hours
    behind)."""
    if not have_openssl():
        raise CertError("openssl command not found")
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    _run(["req", "-x509"] + KEYS[key] + ["-nodes", "-keyout", "ca.key",
          "-out", "ca.crt", "-days", "2", "-sha256", "-subj", "/CN=" + cn,
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d, prefix)
    return os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")


def make_leaf(d, name, subj, san, ca_key, ca_crt, eku, key="rsa", prefix=()):
    """Write name.{crt,key} signed by the CA into d; return (crt, key)."""
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=%s\n" % eku)
        if san:
            f.write("subjectAltName=%s\n" % san)
    _run(["req"] + KEYS[key] + ["-nodes", "-keyout", name + ".key",
          "-out", name + ".csr", "-subj", subj], d, prefix)
    _run(["x509", "-req", "-in", name + ".csr", "-CA", ca_crt, "-CAkey", ca_key,
          "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext,
          "-out", name + ".crt"], d, prefix)
    return os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")


def make_certs(d, key="rsa", prefix=()):
    """Write ca.crt, server.{crt,key}, wronghost.{crt,key}, client.{crt,key},
    client2.{crt,key} into d (keys of the KEYS kind); return their absolute
    paths. prefix: as for make_ca."""
    d = os.path.abspath(d)
    ca_key, ca_crt = make_ca(d, key=key, prefix=prefix)
    out = {"dir": d, "ca": ca_crt}
    for name, subj, san, eku in (
            ("server", "/CN=localhost", "IP:127.0.0.1,DNS:localhost,IP:::1", "serverAuth"),
            ("wronghost", "/CN=wrong.example", "DNS:wrong.example", "serverAuth"),
            ("client", "/CN=m365fwd test app", None, "clientAuth"),
            ("client2", "/CN=m365fwd other app", None, "clientAuth")):
        out[name + "_cert"], out[name + "_key"] = make_leaf(
            d, name, subj, san, ca_key, ca_crt, eku, key=key, prefix=prefix)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: mkcerts.py DIR\n")
        sys.exit(2)
    try:
        print(json.dumps(make_certs(sys.argv[1]), indent=1))
    except CertError as e:
        sys.stderr.write("mkcerts: %s\n" % e)
        sys.exit(1)
