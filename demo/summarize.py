#!/usr/bin/env python3
"""The SOC view of the demo, from m365fwd's OCSF file output.

    python3 demo/summarize.py --events EVENTS.ndjson [--served SERVED.json]
        [--expected EXPECTED.json] [--kafka-messages MESSAGES.tsv]
        [--json OUT]

Prints:
  - events per tenant and content type;
  - records by area and by risk tag (severity, ATT&CK techniques);
  - password sprays found again from the events (one source address,
    failures against many accounts, then a success);
  - the aggregate findings m365fwd itself emitted (Detection Findings of
    product m365fwd, docs/aggregates.md): they are not counted as records;
  - the riskiest actors (highest severity first, then number of tags);
  - the attack traces of demo/make_records.py and whether each raised its
    tags (--expected);
  - where each record went: served by the emulator (--served, the
    emulator's /_control/served plus its counters), written to the file
    output, read back per Kafka topic (--kafka-messages: the output of
    `mock_kafka --consume`, "topic<TAB>partition<TAB>offset<TAB>id" lines).
--json writes the same figures as one JSON document (for tests).
Exit status 0, or 1 when an attack trace missed a tag, or a served record
is not in the file output (or, with --kafka-messages, not in Kafka).
"""

import argparse
import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)

SEVERITY = {0: "unknown", 1: "info", 2: "low", 3: "medium", 4: "high",
            5: "critical", 6: "fatal"}
AREAS = ["identity_access", "data_protection", "collaboration_sharing",
         "device_posture", "monitoring_response"]
SPRAY_MIN_USERS = 5


def load_titles():
    """Tag titles from normalizers/tags.yaml, when PyYAML is there."""
    try:
        import yaml
        with open(os.path.join(SRC, "normalizers", "tags.yaml"),
                  encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        return {t["id"]: t.get("title", "") for t in doc.get("tags", [])}
    except Exception:       # the summary works without titles
        return {}


def dig(obj, path, default=None):
    for k in path.split("."):
        if not isinstance(obj, dict) or k not in obj:
            return default
        obj = obj[k]
    return obj


class Event:
    """The few fields of one OCSF event the summary uses."""

    def __init__(self, ev, tenants):
        self.id = dig(ev, "metadata.uid")
        tid = dig(ev, "metadata.tenant_uid") or dig(ev, "cloud.account.uid")
        self.tenant = tenants.get(str(tid).lower(), tid or "?")
        self.content_type = dig(ev, "metadata.log_name") or "?"
        self.operation = dig(ev, "metadata.event_code") or "?"
        self.time = ev.get("time") or 0
        self.class_uid = ev.get("class_uid")
        self.status_id = ev.get("status_id")
        self.ip = dig(ev, "src_endpoint.ip")
        # who did it; an alert is about the user it names (Data.f3u);
        # a record the mapping gave no actor keeps UserId under unmapped
        self.actor = (dig(ev, "actor.user.email_addr")
                      or dig(ev, "actor.user.name")
                      or dig(ev, "user.email_addr") or dig(ev, "user.name")
                      or dig(ev, "unmapped.Data.f3u")
                      or dig(ev, "unmapped.UserId")
                      or "(no actor)")
        self.severity = ev.get("severity_id") or 1
        self.tags = {}
        for e in ev.get("enrichments") or []:
            if e.get("name") == "risk_tag":
                data = e.get("data") or {}
                self.tags[e.get("value")] = data
        for t in dig(ev, "metadata.labels", []) or []:
            self.tags.setdefault(t, {})


def is_finding(ev):
    """An aggregate finding of m365fwd (not a record)."""
    return ev.get("class_uid") == 2004 and \
        dig(ev, "metadata.product.name") == "m365fwd"


def read_events(path, tenants, findings=None):
    events, bad = [], 0
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(ev, dict) and is_finding(ev):
                if findings is not None:
                    findings.append(ev)
            elif isinstance(ev, dict):
                events.append(Event(ev, tenants))
            else:
                bad += 1
    return events, bad


def table(rows, header, out):
    rows = [[str(c) for c in r] for r in rows]
    w = [len(h) for h in header]
    for r in rows:
        for i, c in enumerate(r):
            w[i] = max(w[i], len(c))
    fmt = "  ".join("%%-%ds" % n for n in w)
    out.append(fmt % tuple(header))
    out.append(fmt % tuple("-" * n for n in w))
    for r in rows:
        out.append(fmt % tuple(r))


def find_sprays(events):
    """Failures from one address against >= SPRAY_MIN_USERS accounts of a
    tenant; the first success from that address afterwards."""
    fails = collections.defaultdict(list)
    for e in events:
        if e.class_uid == 3002 and e.status_id == 2 and e.ip:
            fails[(e.tenant, e.ip)].append(e)
    sprays = []
    for (tenant, ip), evs in sorted(fails.items()):
        users = {e.actor for e in evs}
        if len(users) < SPRAY_MIN_USERS:
            continue
        first = min(e.time for e in evs)
        last = max(e.time for e in evs)
        wins = sorted((e for e in events
                       if e.tenant == tenant and e.ip == ip
                       and e.class_uid == 3002 and e.status_id == 1
                       and e.time >= first), key=lambda e: e.time)
        sprays.append({"tenant": tenant, "ip": ip, "failures": len(evs),
                       "users": len(users),
                       "minutes": round((last - first) / 60000.0, 1),
                       "success_user": wins[0].actor if wins else None})
    return sprays


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--served")
    ap.add_argument("--expected")
    ap.add_argument("--kafka-messages")
    ap.add_argument("--json")
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)

    expected = None
    tenants = {}
    if args.expected:
        with open(args.expected, encoding="utf-8") as f:
            expected = json.load(f)
        tenants = {t["id"].lower(): t["name"] for t in expected["tenants"]}
    titles = load_titles()
    findings = []
    events, bad = read_events(args.events, tenants, findings)
    out = []
    summary = {"events": len(events), "unparsable_lines": bad}
    problems = []

    # ---- per tenant and content type
    per = collections.Counter((e.tenant, e.content_type) for e in events)
    cts = sorted({ct for _, ct in per})
    tnames = sorted({t for t, _ in per})
    out.append("Events per tenant and content type (%d events%s)" % (
        len(events), ", %d unparsable lines" % bad if bad else ""))
    rows = []
    for t in tnames:
        rows.append([t] + [per.get((t, ct), 0) for ct in cts]
                    + [sum(per.get((t, ct), 0) for ct in cts)])
    table(rows, ["tenant"] + [c.replace("Audit.", "") for c in cts]
          + ["total"], out)
    summary["per_tenant"] = {t: {ct: per.get((t, ct), 0) for ct in cts}
                             for t in tnames}

    # ---- by area and tag
    tagged = [e for e in events if e.tags]
    area_records = collections.Counter()
    tag_records = collections.Counter()
    tag_info = {}
    for e in tagged:
        for a in {d.get("area") for d in e.tags.values() if d.get("area")}:
            area_records[a] += 1
        for t, d in e.tags.items():
            tag_records[t] += 1
            info = tag_info.setdefault(t, {"area": d.get("area"),
                                           "severity": 0, "attack": set()})
            info["severity"] = max(info["severity"], d.get("severity_id") or 0)
            info["attack"].update(d.get("attack") or [])
    out.append("")
    out.append("Records by area (%d of %d events carry at least one risk tag)"
               % (len(tagged), len(events)))
    table([[a, area_records.get(a, 0)] for a in AREAS
           if a in area_records] or [["(none)", 0]], ["area", "records"], out)
    out.append("")
    out.append("Records by risk tag")
    rows = []
    for t, n in sorted(tag_records.items(),
                       key=lambda kv: (-tag_info[kv[0]]["severity"], kv[0])):
        info = tag_info[t]
        rows.append([t, n, SEVERITY.get(info["severity"], "?"),
                     ",".join(sorted(info["attack"])) or "-",
                     titles.get(t, "")])
    table(rows, ["tag", "records", "max severity", "ATT&CK", "title"], out)
    summary["areas"] = dict(area_records)
    summary["tags"] = dict(tag_records)

    # ---- sprays
    sprays = find_sprays(events)
    out.append("")
    out.append("Password sprays (one address, failed sign-ins to >= %d "
               "accounts)" % SPRAY_MIN_USERS)
    if sprays:
        table([[s["tenant"], s["ip"], s["failures"], s["users"],
                s["minutes"], s["success_user"] or "no success"]
               for s in sprays],
              ["tenant", "source", "failures", "accounts", "minutes",
               "then signed in as"], out)
    else:
        out.append("  none")
    summary["sprays"] = sprays

    # ---- the agent's own aggregate findings
    out.append("")
    out.append("Aggregate findings emitted by m365fwd (%d)" % len(findings))
    rows = []
    for f in sorted(findings, key=lambda f: (-(f.get("severity_id") or 0),
                                             dig(f, "finding_info.analytic.uid") or "")):
        tid = dig(f, "metadata.tenant_uid") or "?"
        rows.append([tenants.get(str(tid).lower(), tid),
                     dig(f, "finding_info.analytic.uid") or "?",
                     SEVERITY.get(f.get("severity_id"), "?"), f.get("count"),
                     dig(f, "unmapped.m365fwd.key") or "-"])
    if rows:
        table(rows, ["tenant", "rule", "severity", "records", "key"], out)
    else:
        out.append("  none")
    summary["findings"] = [{"rule": r[1], "tenant": r[0], "severity": r[2],
                            "records": r[3], "key": r[4]} for r in rows]

    # ---- riskiest actors
    actors = {}
    for e in tagged:
        a = actors.setdefault((e.tenant, e.actor), {
            "tenant": e.tenant, "actor": e.actor, "max_severity": 0,
            "events": 0, "tags": collections.Counter()})
        a["max_severity"] = max(a["max_severity"], e.severity)
        a["events"] += 1
        a["tags"].update(e.tags.keys())
    ranked = sorted(actors.values(), key=lambda a: (
        -a["max_severity"], -sum(a["tags"].values()), -len(a["tags"]),
        a["tenant"], a["actor"]))
    out.append("")
    out.append("Riskiest actors (highest severity, then number of tags)")
    rows = []
    for a in ranked[:args.top]:
        tags = sorted(a["tags"], key=lambda t: (
            -tag_info[t]["severity"], -a["tags"][t], t))
        rows.append([a["tenant"], a["actor"],
                     SEVERITY.get(a["max_severity"], "?"), a["events"],
                     ", ".join(tags[:3])
                     + (" +%d more" % (len(tags) - 3) if len(tags) > 3
                        else "")])
    table(rows, ["tenant", "actor", "max severity", "tagged events",
                 "tags"], out)
    summary["actors"] = [{"tenant": a["tenant"], "actor": a["actor"],
                          "max_severity": a["max_severity"],
                          "events": a["events"],
                          "tags": dict(a["tags"])} for a in ranked]

    # ---- attack traces
    by_id = {e.id: e for e in events}
    if expected is not None:
        missed = []
        for tr in expected["traces"]:
            e = by_id.get(tr["id"])
            got = set(e.tags) if e else set()
            lack = [t for t in tr["tags"] if t not in got]
            if e is None or lack:
                missed.append({"trace": tr, "delivered": e is not None,
                               "missing_tags": lack})
        for sp in expected.get("sprays", []):
            if not any(s["tenant"] == sp["tenant"] and s["ip"] == sp["ip"]
                       and s["success_user"] == sp["success_user"]
                       for s in sprays):
                missed.append({"spray": sp})
        n = len(expected["traces"]) + len(expected.get("sprays", []))
        out.append("")
        out.append("Attack traces written into the scenario: %d of %d "
                   "raised what they should" % (n - len(missed), n))
        stories = collections.OrderedDict()
        for tr in expected["traces"]:
            stories.setdefault((tr["tenant"], tr["story"]), set()).update(
                tr["tags"])
        for (tenant, story), tags in stories.items():
            bad_story = any(m.get("trace", {}).get("tenant") == tenant
                            and m.get("trace", {}).get("story") == story
                            for m in missed)
            out.append("  %s %-10s %-42s %s" % ("FAIL" if bad_story else "ok  ",
                                                 tenant, story,
                                                 ", ".join(sorted(tags))))
        for m in missed:
            if "spray" in m:
                out.append("  FAIL spray from %s in %s not found"
                           % (m["spray"]["ip"], m["spray"]["tenant"]))
            else:
                tr = m["trace"]
                out.append("  FAIL %s %s %s: %s" % (
                    tr["tenant"], tr["operation"], tr["id"],
                    "not delivered" if not m["delivered"]
                    else "missing " + ", ".join(m["missing_tags"])))
        summary["traces"] = n
        summary["traces_missed"] = missed
        if missed:
            problems.append("%d attack trace(s) missed" % len(missed))

    # ---- where each record went
    out.append("")
    out.append("Where each record went")
    file_ids = collections.Counter(e.id for e in events)
    rows = []
    if args.served:
        with open(args.served, encoding="utf-8") as f:
            served = json.load(f)
        sids = set(served.get("ids", []))
        missing = sorted(sids - set(file_ids))
        extra = sorted(set(file_ids) - sids)
        rows.append(["emulator", "served", len(sids),
                     "%d records in %d blobs (%d duplicates)" % (
                         served.get("records_served", 0),
                         len(served.get("blobs", [])),
                         served.get("records_served", 0) - len(sids))])
        summary["served"] = len(sids)
        summary["missing_in_file"] = missing
        summary["extra_in_file"] = extra
        if missing:
            problems.append("%d served record(s) not in the file output"
                            % len(missing))
    rows.append(["soc-file", "file (OCSF)", len(file_ids),
                 "%d lines, %d duplicate Ids" % (
                     sum(file_ids.values()),
                     sum(c - 1 for c in file_ids.values()))])
    summary["file"] = {"lines": sum(file_ids.values()),
                       "unique": len(file_ids)}
    kafka_ids = None
    if args.kafka_messages:
        per_topic = collections.defaultdict(collections.Counter)
        with open(args.kafka_messages, encoding="utf-8",
                  errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 4:
                    per_topic[parts[0]][parts[3]] += 1
        kafka_ids = collections.Counter()
        for c in per_topic.values():
            kafka_ids.update(c)
        rows.append(["soc-kafka", "kafka (OCSF)", len(kafka_ids),
                     "%d messages in %d topics" % (
                         sum(kafka_ids.values()), len(per_topic))])
        for t in sorted(per_topic):
            n = sum(per_topic[t].values())
            rows.append(["", "  " + t, len(per_topic[t]),
                         "" if n == len(per_topic[t]) else
                         "%d messages (%d again)" % (n, n - len(
                             per_topic[t]))])
        summary["kafka"] = {t: sum(c.values()) for t, c in per_topic.items()}
        summary["missing_in_kafka"] = sorted(set(file_ids) - set(kafka_ids))
        if summary["missing_in_kafka"]:
            problems.append("%d record(s) of the file output not in Kafka"
                            % len(summary["missing_in_kafka"]))
    table(rows, ["output", "kind", "records", "detail"], out)
    if args.served:
        if summary["missing_in_file"]:
            out.append("  NOT in the file output: %s" % ", ".join(
                summary["missing_in_file"][:10]))
        else:
            out.append("  every record the emulator served is in the file "
                       "output")
    if kafka_ids is not None:
        if summary["missing_in_kafka"]:
            out.append("  NOT in Kafka: %s" % ", ".join(
                summary["missing_in_kafka"][:10]))
        else:
            out.append("  every record of the file output is in Kafka, on "
                       "the topic of its tenant and most severe area")

    print("\n".join(out))
    if problems:
        print("\nPROBLEMS: " + "; ".join(problems))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1, default=list)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
