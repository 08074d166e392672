#!/usr/bin/env python3
"""Elastic's prebuilt KQL rules for Microsoft 365 on m365fwd's ECS output.

    elastic_rules.py M365FWD [--table FILE] [--verbose]

Reads the rule table (tests/peer/elastic_rules.yaml: each rule's KQL
condition with records it must catch and near misses it must not),
normalizes every record with `m365fwd normalize --schema ecs` - as a user
feeding Elastic would - and evaluates each query on the events the way
Elasticsearch matches documents: a dotted path reaches into objects and
into arrays of objects (Elastic's rules query
o365.audit.OperationProperties.Name/.Value that way), a field with several
values matches when any value does, `field:*` means present, bare words may
hold * wildcards, quoted strings are exact, true/false match booleans (and
their text in any case), numbers match numbers or their text.

Prints, per rule, whether it fired on each record, then the totals. Exit 0
when every rule fires on all its records and on none of its near misses,
1 otherwise.
"""
import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- KQL subset ---------------------------------------------------------

TOKEN = re.compile(r'''\s*(?:
    (?P<lp>\() | (?P<rp>\)) | (?P<colon>:) | (?P<cmp>>=|<=|>|<) |
    (?P<str>"(?:[^"\\]|\\.)*") |
    (?P<word>[^\s():"<>]+)
)''', re.X)


def tokenize(q):
    pos, out = 0, []
    q = q.strip()
    while pos < len(q):
        m = TOKEN.match(q, pos)
        if not m or m.end() == pos:
            raise ValueError("KQL: cannot read %r" % q[pos:pos + 30])
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "str":
            text = json.loads(text)
        elif kind == "word" and text.lower() in ("and", "or", "not"):
            kind = text.lower()
        out.append((kind, text))
    return out


class Parser:
    """expr := or; or := and ('or' and)*; and := not ('and' not)*;
    not := 'not' not | '(' expr ')' | field ':' values | field cmp number;
    values := value | '(' value (('or'|'and') value)* ')'."""

    def __init__(self, q):
        self.t = tokenize(q)
        self.i = 0

    def peek(self):
        return self.t[self.i][0] if self.i < len(self.t) else None

    def take(self, kind=None):
        if self.i >= len(self.t) or (kind and self.t[self.i][0] != kind):
            raise ValueError("KQL: expected %s at token %d" % (kind, self.i))
        self.i += 1
        return self.t[self.i - 1]

    def parse(self):
        e = self.or_()
        if self.i != len(self.t):
            raise ValueError("KQL: trailing tokens from %d" % self.i)
        return e

    def or_(self):
        parts = [self.and_()]
        while self.peek() == "or":
            self.take()
            parts.append(self.and_())
        return ("or", parts) if len(parts) > 1 else parts[0]

    def and_(self):
        parts = [self.not_()]
        while self.peek() == "and":
            self.take()
            parts.append(self.not_())
        return ("and", parts) if len(parts) > 1 else parts[0]

    def not_(self):
        if self.peek() == "not":
            self.take()
            return ("not", self.not_())
        if self.peek() == "lp":
            self.take()
            e = self.or_()
            self.take("rp")
            return e
        field = self.take("word")[1]
        if self.peek() == "cmp":
            op = self.take()[1]
            return ("cmp", field, op, float(self.take("word")[1]))
        self.take("colon")
        if self.peek() == "lp":
            self.take()
            vals, joins = [self.value()], set()
            while self.peek() in ("or", "and"):
                joins.add(self.take()[0])
                vals.append(self.value())
            self.take("rp")
            return ("match", field, vals, "and" if joins == {"and"} else "or")
        return ("match", field, [self.value()], "or")

    def value(self):
        kind, text = self.take()
        if kind not in ("str", "word"):
            raise ValueError("KQL: value expected, got %s" % kind)
        return (kind, text)


def values_at(doc, path):
    """Every scalar at a dotted path, through objects and arrays of objects;
    keys may themselves hold dots (longest key first)."""
    out = []

    def walk(node, rest):
        if isinstance(node, list):
            for x in node:
                walk(x, rest)
            return
        if not rest:
            if node is not None and not isinstance(node, dict):
                out.append(node)
            return
        if not isinstance(node, dict):
            return
        parts = rest.split(".")
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in node:
                walk(node[key], ".".join(parts[n:]))
    walk(doc, path)
    return out


def value_matches(v, kind, text):
    if kind == "word" and text == "*":
        return True
    if kind == "word" and text.lower() in ("true", "false"):
        if isinstance(v, bool):
            return v == (text.lower() == "true")
        return isinstance(v, str) and v.lower() == text.lower()
    if isinstance(v, bool):
        v = "true" if v else "false"
    if isinstance(v, (int, float)):
        try:
            return float(text) == float(v)
        except ValueError:
            v = str(v)
    if kind == "word" and "*" in text:
        return fnmatch.fnmatchcase(str(v), text)
    return str(v) == text


def evaluate(e, doc):
    op = e[0]
    if op == "and":
        return all(evaluate(x, doc) for x in e[1])
    if op == "or":
        return any(evaluate(x, doc) for x in e[1])
    if op == "not":
        return not evaluate(e[1], doc)
    if op == "cmp":
        _, field, cmp, num = e
        for v in values_at(doc, field):
            try:
                x = float(v)
            except (TypeError, ValueError):
                continue
            if {">=": x >= num, "<=": x <= num, ">": x > num, "<": x < num}[cmp]:
                return True
        return False
    _, field, vals, join = e
    have = values_at(doc, field)
    hits = [any(value_matches(v, k, t) for v in have) for k, t in vals]
    return all(hits) if join == "and" else any(hits)


# ---- run ------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--table", default=os.path.join(HERE, "elastic_rules.yaml"))
    ap.add_argument("--verbose", action="store_true", help="print the events that differ")
    a = ap.parse_args()
    with open(a.table) as f:
        table = yaml.safe_load(f)
    defaults = table.get("defaults", {})
    rules = table["rules"]
    records, where = [], []
    for ri, r in enumerate(rules):
        r["_q"] = Parser(r["query"]).parse()
        for want in ("fire", "quiet"):
            for ci, rec in enumerate(r.get(want, [])):
                full = dict(defaults)
                full.update(rec)
                full["Id"] = "00000000-0000-4000-8000-%012d" % len(records)
                records.append(full)
                where.append((ri, want, ci))
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as tf:
        for rec in records:
            tf.write(json.dumps(rec) + "\n")
        path = tf.name
    try:
        p = subprocess.run([os.path.abspath(a.binary), "normalize", "--schema", "ecs",
                            "--no-aggregates", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    finally:
        os.unlink(path)
    events = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    if p.returncode != 0 or len(events) != len(records):
        print("normalize failed (exit %d): %s" % (p.returncode, p.stderr.decode()[:2000]))
        return 1
    result = {}
    for (ri, want, ci), ev in zip(where, events):
        result.setdefault(ri, []).append((want, ci, evaluate(rules[ri]["_q"], ev), ev))
    fired_all = quiet_all = 0
    n_fire = n_fire_ok = n_quiet = n_quiet_ok = 0
    for ri, r in enumerate(rules):
        res = result.get(ri, [])
        fire_ok = all(hit for want, _, hit, _ in res if want == "fire")
        quiet_ok = not any(hit for want, _, hit, _ in res if want == "quiet")
        fired_all += fire_ok
        quiet_all += quiet_ok
        for want, ci, hit, ev in res:
            if want == "fire":
                n_fire += 1
                n_fire_ok += hit
            else:
                n_quiet += 1
                n_quiet_ok += not hit
            if a.verbose and hit != (want == "fire"):
                print("    %s record %d %s: %s" % (want, ci, "fired" if hit else "did not fire",
                                                   json.dumps(ev)[:600]))
        print("%-4s %-4s %s" % ("ok" if fire_ok else "MISS", "ok" if quiet_ok else "FP", r["name"]))
    print("rules: %d; fire on all their records: %d; quiet on all near misses: %d"
          % (len(rules), fired_all, quiet_all))
    print("records meant to fire: %d, fired: %d; near misses: %d, quiet: %d"
          % (n_fire, n_fire_ok, n_quiet, n_quiet_ok))
    return 0 if fired_all == len(rules) and quiet_all == len(rules) else 1


if __name__ == "__main__":
    sys.exit(main())
