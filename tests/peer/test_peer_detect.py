#!/usr/bin/env python3
"""Peers' labelled detection tests (Panther's and Wazuh's Microsoft 365
rules, ../shared/peer-detect, read in place) against m365fwd's risk tags.

    test_peer_detect.py M365FWD [--peer DIR]

cases.ndjson holds the records, cases.expect.json one entry per record:
{id, rule, tag, expect, score, name, ...}. expect true: the tag must be
raised; false: it must not. Entries with score false rest on something the
tag does not claim (see the peer's SOURCES.md): they are reported, not
counted. For the external-forwarding rule the peer's label is also compared
with the severity: forwarding outside the organization is raised to 5,
forwarding inside it stays at 4.

Exit 0 when every scored case agrees, 1 otherwise, 77 (skip) when the
peer files are missing.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PEER = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "peer-detect"))
FORWARDING_RULE = "Microsoft365.Exchange.External.Forwarding"
FORWARDING_TAGS = ("behavior.mailbox_smtp_forwarding", "behavior.inbox_rule_forwarding")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--peer", default=DEFAULT_PEER)
    a = ap.parse_args()
    cases_path = os.path.join(a.peer, "cases.ndjson")
    expect_path = os.path.join(a.peer, "cases.expect.json")
    if not (os.path.exists(cases_path) and os.path.exists(expect_path)):
        print("SKIP: peers' labelled cases not found at %s (../shared/peer-detect)" % a.peer)
        return 77
    with open(expect_path) as f:
        expect = {e["id"]: e for e in json.load(f)}
    p = subprocess.run([os.path.abspath(a.binary), "normalize", "--schema", "raw",
                        "--no-aggregates", "--input", "ndjson", cases_path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    events = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    if p.returncode != 0 or len(events) != len(expect):
        print("normalize failed (exit %d, %d events for %d cases): %s"
              % (p.returncode, len(events), len(expect), p.stderr.decode()[:2000]))
        return 1
    scored = agree = unscored = unscored_agree = 0
    sev_cases = sev_agree = 0
    seen = set()
    for ev in events:
        e = expect.get(ev.get("Id"))
        if e is None:
            print("FAIL: event %s has no expectation" % ev.get("Id"))
            return 1
        seen.add(e["id"])
        tags = ev["m365fwd"]["tags"]
        got = e["tag"] in tags
        ok = got == e["expect"]
        if e["score"]:
            scored += 1
            agree += ok
        else:
            unscored += 1
            unscored_agree += ok
        note = ""
        if e["rule"] == FORWARDING_RULE and any(t in tags for t in FORWARDING_TAGS):
            # severity of the forwarding hit: 5 outside, 4 inside
            sev = ev["m365fwd"]["severity"]
            sev_cases += 1
            sev_ok = (sev == 5) == e["expect"]
            sev_agree += sev_ok
            note = " severity %d%s" % (sev, "" if sev_ok else " (peer says %s)"
                                       % ("external" if e["expect"] else "internal"))
        print("%-5s %-8s %-5s %-36s %s%s" % (
            "ok" if ok else ("FAIL" if e["score"] else "diff"),
            "scored" if e["score"] else "unscored", str(e["expect"]).lower(),
            e["tag"], e["name"], note))
    missing = set(expect) - seen
    print("scored cases: %d, agree: %d; unscored: %d, agree: %d; "
          "forwarding severity (5 outside, 4 inside) agrees with the peer's "
          "external label: %d of %d"
          % (scored, agree, unscored, unscored_agree, sev_agree, sev_cases))
    if missing:
        print("FAIL: no event for %d cases" % len(missing))
        return 1
    return 0 if agree == scored and sev_agree == sev_cases else 1


if __name__ == "__main__":
    sys.exit(main())
