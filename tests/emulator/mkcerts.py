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


def _leaf(d, name, subj, san, ca_key, ca_crt, eku, prefix=()):
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=%s\n" % eku)
        if san:
            f.write("subjectAltName=%s\n" % san)
    _run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
          "-out", name + ".csr", "-subj", subj], d, prefix)
    _run(["x509", "-req", "-in", name + ".csr", "-CA", ca_crt, "-CAkey", ca_key,
          "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext,
          "-out", name + ".crt"], d, prefix)
    return os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")


def make_certs(d, prefix=()):
    """Write ca.crt, server.{crt,key}, wronghost.{crt,key}, client.{crt,key},
    client2.{crt,key} into d; return their absolute paths. prefix: a command
    openssl runs under, e.g. ["faketime", "-f", "-1d"] for certificates
    valid from yesterday (for a client whose clock is hours behind)."""
    if not have_openssl():
        raise CertError("openssl command not found")
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    _run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
          "-out", "ca.crt", "-days", "2", "-sha256",
          "-subj", "/CN=m365emu test CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d, prefix)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    out = {"dir": d, "ca": ca_crt}
    out["server_cert"], out["server_key"] = _leaf(
        d, "server", "/CN=localhost", "IP:127.0.0.1,DNS:localhost,IP:::1",
        ca_key, ca_crt, "serverAuth", prefix)
    out["wronghost_cert"], out["wronghost_key"] = _leaf(
        d, "wronghost", "/CN=wrong.example", "DNS:wrong.example",
        ca_key, ca_crt, "serverAuth", prefix)
    out["client_cert"], out["client_key"] = _leaf(
        d, "client", "/CN=m365fwd test app", None, ca_key, ca_crt, "clientAuth",
        prefix)
    out["client2_cert"], out["client2_key"] = _leaf(
        d, "client2", "/CN=m365fwd other app", None, ca_key, ca_crt,
        "clientAuth", prefix)
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
