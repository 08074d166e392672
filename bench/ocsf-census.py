#!/usr/bin/env python3
"""Census of the records that fall back to OCSF API Activity 6003 / 99 Other
(no class in ocsf.yaml for their Operation), over every corpus at hand.

    ocsf-census.py M365FWD [--max-peer-fallbacks N] [--quiet]

Corpora: the project's samples/, its test data (golden inputs, risk-tag
cases, reader fixtures), ../shared/corpus, and the peers' test records in
../shared/peer-ecs (Elastic's golden inputs) and ../shared/peer-detect
(Panther/Wazuh cases) - read in place; the ../shared ones are skipped when
absent. Prints per corpus the records, those with an Operation, and the
fallbacks by Operation / RecordType / Workload. Issue 12's target: of the
peer records that carry an Operation, at most --max-peer-fallbacks (default
3) fall back; exit 1 when more do (the normalize benchmark and the
`ocsf-census` test run this).
"""
import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))


def ndjson_of(records, tmpdir, name):
    path = os.path.join(tmpdir, name)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def corpora(tmpdir):
    """[(name, is_peer, [files])]"""
    out = []
    samples = sorted(glob.glob(os.path.join(ROOT, "samples", "*")))
    out.append(("samples", False, samples))
    tests = sorted(glob.glob(os.path.join(ROOT, "tests", "data", "golden", "*.in.json")))
    tests += sorted(glob.glob(os.path.join(ROOT, "tests", "data", "input", "*")))
    cases = []
    for f in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "tags", "*.ndjson"))):
        with open(f, encoding="utf-8") as fh:
            cases += [json.loads(l)["record"] for l in fh if l.strip()]
    tests.append(ndjson_of(cases, tmpdir, "tag-cases.ndjson"))
    out.append(("tests-data", False, tests))
    shared = sorted(glob.glob(os.path.join(SHARED, "corpus", "*", "*.json")) +
                    glob.glob(os.path.join(SHARED, "corpus", "*", "*.csv")))
    if shared:
        out.append(("shared-corpus", False, shared))
    beats = sorted(glob.glob(os.path.join(SHARED, "peer-ecs", "beats", "*.log")))
    originals = []
    for f in sorted(glob.glob(os.path.join(SHARED, "peer-ecs", "integrations", "*-expected.json"))):
        with open(f, encoding="utf-8") as fh:
            originals += [json.loads(d["event"]["original"]) for d in json.load(fh)["expected"]]
    if beats or originals:
        out.append(("peer-ecs", True, beats + [ndjson_of(originals, tmpdir, "integrations.ndjson")]))
    detect = glob.glob(os.path.join(SHARED, "peer-detect", "cases.ndjson"))
    if detect:
        out.append(("peer-detect", True, detect))
    return out


def census(binary, files):
    n = with_op = 0
    fb = collections.Counter()
    for f in files:
        p = subprocess.run([binary, "normalize", "--schema", "ocsf", f],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=600)
        for line in p.stdout.decode("utf-8", "replace").splitlines():
            e = json.loads(line)
            n += 1
            op = e.get("metadata", {}).get("event_code")
            with_op += bool(op)
            if e.get("class_uid") == 6003 and e.get("activity_id") == 99:
                um = e.get("unmapped", {})
                wl = e.get("metadata", {}).get("product", {}).get("feature", {}).get("name")
                fb[(op or "(no Operation)", str(um.get("RecordType", "")), wl or "")] += 1
    return n, with_op, fb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--max-peer-fallbacks", type=int, default=3)
    ap.add_argument("--quiet", action="store_true", help="totals only")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    peer_with_op = peer_fb = 0
    have_peers = False
    print("OCSF fallback census (API Activity 6003 / 99 Other)")
    print("%-14s %8s %8s %9s" % ("corpus", "records", "with op", "fallback"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, is_peer, files in corpora(tmp):
            n, with_op, fb = census(binary, files)
            total_fb = sum(fb.values())
            print("%-14s %8d %8d %9d" % (name, n, with_op, total_fb))
            if not a.quiet:
                for (op, rt, wl), c in fb.most_common():
                    print("    %5d  %s (RecordType %s, %s)" % (c, op, rt or "-", wl or "-"))
            if is_peer:
                have_peers = True
                peer_with_op += with_op
                peer_fb += sum(c for (op, _, _), c in fb.items() if op != "(no Operation)")
    if not have_peers:
        print("peer records: ../shared/peer-* not found, target not evaluated")
        return 0
    ok = peer_fb <= a.max_peer_fallbacks
    print("target: peer records with an Operation falling back %d of %d <= %d  %s"
          % (peer_fb, peer_with_op, a.max_peer_fallbacks, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
