#!/usr/bin/env python3
"""Regenerate the tables of docs/ocsf-mapping.md from normalizers/ocsf.yaml
(the table is the source of truth).

  ocsf_doc.py [--check] [SOURCE_ROOT]

Rewrites everything from "## Operation table" up to the line starting with
"Fallback:"; --check exits 1 when the file differs instead of writing."""
import os
import sys

import yaml


def activity_name(cls, act):
    if act == 99:
        return "Other"
    if act == 0:
        return "Unknown"
    return cls["activities"][act]


def generate(table):
    classes = {c["uid"]: c for c in table["classes"]}
    out = ["## Operation table", "", "| class | activity | operations |", "|---|---|---|"]
    for e in table["operations"]:
        c = classes[e["class"]]
        act = "%d %s" % (e["activity"], activity_name(c, e["activity"]))
        if e.get("entity_type"):
            act += " (entity.type %s)" % e["entity_type"]
        if e.get("folder"):
            act += " (folder)"
        out.append("| %d %s | %s | %s |" % (c["uid"], c["name"], act,
                                             ", ".join("`%s`" % o for o in e["ops"])))
    rts = table.get("record_types") or []
    if rts:
        out += ["", "## RecordTypes whose operations are not listed", "",
                "When the Operation is in no row above:", "",
                "| RecordType | class | activity |", "|---|---|---|"]
        for e in rts:
            c = classes[e["class"]]
            out.append("| %s | %d %s | %d %s |" % (
                ", ".join(str(r) for r in e["record_types"]), c["uid"], c["name"],
                e["activity"], activity_name(c, e["activity"])))
    cm = table["cmdlets"]
    c = classes[cm["class"]]
    out += ["", "## Cmdlet verbs (class %d %s)" % (c["uid"], c["name"]), "",
            "| activity | verbs |", "|---|---|"]
    by_act = {}
    for verb, act in cm["verbs"].items():
        by_act.setdefault(act, []).append(verb)
    for act in sorted(by_act):
        out.append("| %d %s | %s |" % (act, activity_name(c, act), ", ".join(by_act[act])))
    out.append("| 99 Other | any other verb |")
    out.append("")
    return "\n".join(out) + "\n"


def main(argv):
    check = "--check" in argv
    args = [a for a in argv[1:] if a != "--check"]
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with open(os.path.join(root, "normalizers", "ocsf.yaml"), encoding="utf-8") as f:
        table = yaml.safe_load(f)
    path = os.path.join(root, "docs", "ocsf-mapping.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, rest = text.split("## Operation table", 1)
    tail = rest[rest.index("\nFallback:") + 1:]
    new = head + generate(table) + tail
    if check:
        if new != text:
            print("docs/ocsf-mapping.md differs from normalizers/ocsf.yaml: run tools/ocsf_doc.py")
            return 1
        return 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
