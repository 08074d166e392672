#!/usr/bin/env python3
"""Throughput of the emulator itself: blob GETs of 1000-record blobs with
injected latency, N concurrent keep-alive HTTPS clients.  Prints figures;
not a pass/fail test.

Usage: bench_emulator.py [--clients 16] [--blobs 200] [--records 1000]
                         [--latency 100ms] [--pregenerate]
"""

import argparse
import http.client
import json
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True     # keep the source tree clean
sys.path.insert(0, HERE)
import mkcerts  # noqa: E402
import test_emulator as te  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--blobs", type=int, default=200)
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--latency", default="100ms")
    ap.add_argument("--pregenerate", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="m365emu-bench-")
    te.TMP = tmp
    te.CERTS = mkcerts.make_certs(os.path.join(tmp, "certs"))
    sc = te.base_scenario(latency=args.latency, page_size=1000, tenants=[
        {"id": te.T1, "quota_per_minute": 0, "content": {"Audit.Exchange": {
            "blobs": args.blobs, "records_per_blob": args.records,
            "span": "20h"}}}])
    emu = te.Emu(sc, ["--pregenerate"] if args.pregenerate else [])
    try:
        tok = emu.token(te.T1)
        st, _, body = emu.api("GET", te.T1, "subscriptions/content",
                              {"contentType": "Audit.Exchange"}, tok)
        uris = [x["contentUri"] for x in json.loads(body)]
        lock = threading.Lock()
        res = {"n": 0, "bytes": 0, "err": 0}

        def worker(mine):
            ctx = ssl.create_default_context(cafile=te.CERTS["ca"])
            conn = http.client.HTTPSConnection("127.0.0.1", emu.port,
                                               context=ctx, timeout=60)
            for uri in mine:
                u = urllib.parse.urlsplit(uri)
                conn.request("GET", u.path + "?PublisherIdentifier=" + te.T1,
                             headers={"Authorization": "Bearer " + tok})
                r = conn.getresponse()
                data = r.read()
                with lock:
                    res["n"] += 1
                    res["bytes"] += len(data)
                    res["err"] += r.status != 200
            conn.close()

        parts = [uris[i::args.clients] for i in range(args.clients)]
        t0 = time.monotonic()
        ths = [threading.Thread(target=worker, args=(p,)) for p in parts]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        dt = time.monotonic() - t0
        print("clients=%d blobs=%d records/blob=%d latency=%s pregenerate=%s"
              % (args.clients, len(uris), args.records, args.latency,
                 args.pregenerate))
        print("  %.1f requests/s, %.0f records/s, %.1f MB/s, errors=%d, "
              "avg body %.0f KB, %.2f s"
              % (res["n"] / dt, res["n"] * args.records / dt,
                 res["bytes"] / dt / 2**20, res["err"],
                 res["bytes"] / max(res["n"], 1) / 1024, dt))
    finally:
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
