#!/usr/bin/env python3
"""Aggregate findings on real traces: ../shared/corpus/det-eng-samples and
../shared/peer-detect/cases.ndjson (read in place, never copied).

Usage: test_aggregates_corpus.py M365FWD_BINARY  (env MF_SOURCE_ROOT, MF_SHARED)

For every file: `m365fwd normalize --schema raw` yields exactly the findings
tests/corpus/aggregates.yaml lists (rule -> how many; none for a file not
listed), and the same set of (rule, uid) comes out when the file's records
are read newest first and in three shuffled orders (order independence on
event time). Exit 77 (skip) when ../shared is missing.
"""
import collections
import json
import os
import random
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_corpus import shared_dir  # noqa: E402

SKIP = 77


def records_of(path):
    """The audit records of a corpus file (what the agent's readers find),
    read here independently: CSV AuditData, JSON arrays, NDJSON."""
    import csv
    if path.endswith('.csv'):
        csv.field_size_limit(1 << 30)
        with open(path, encoding='utf-8-sig', newline='') as f:
            return [json.loads(row['AuditData']) for row in csv.DictReader(f)
                    if row.get('AuditData')]
    with open(path, encoding='utf-8-sig') as f:
        text = f.read()
    try:
        whole = json.loads(text)
        return whole if isinstance(whole, list) else [whole]
    except ValueError:
        pass
    out = []
    for line in text.splitlines():
        if line.strip():
            v = json.loads(line)
            out += v if isinstance(v, list) else [v]
    return out


def findings(exe, path):
    p = subprocess.run([exe, 'normalize', '--schema', 'raw', path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = []
    for ln in p.stdout.decode('utf-8', 'replace').splitlines():
        d = json.loads(ln)
        if 'finding' in d.get('m365fwd', {}):
            out.append((d['m365fwd']['finding']['rule'], d['m365fwd']['finding']['uid']))
    return p.returncode, out


def main(argv):
    exe = argv[1]
    shared = shared_dir()
    corpus = os.path.join(shared, 'corpus', 'det-eng-samples')
    peer = os.path.join(shared, 'peer-detect', 'cases.ndjson')
    if not os.path.isdir(corpus):
        print('SKIP: %s not found' % corpus)
        return SKIP
    with open(os.path.join(HERE, 'aggregates.yaml')) as f:
        want_all = yaml.safe_load(f)
    files = [(os.path.join(corpus, n), (want_all.get('corpus') or {}).get(n) or {})
             for n in sorted(os.listdir(corpus)) if n.endswith(('.json', '.csv'))]
    if os.path.exists(peer):
        files.append((peer, (want_all.get('peer-detect') or {}).get('cases.ndjson') or {}))
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path, want in files:
            name = os.path.basename(path)
            rc, got = findings(exe, path)
            counts = dict(collections.Counter(r for r, _ in got))
            problems = []
            if rc not in (0, 1):
                problems.append('exit %d' % rc)
            if counts != want:
                problems.append('findings %s, want %s' % (counts, want))
            recs = records_of(path)
            orders = [('newest first', sorted(
                recs, key=lambda r: str(r.get('CreationTime')), reverse=True))]
            for seed in (1, 2, 3):
                shuffled = list(recs)
                random.Random(seed).shuffle(shuffled)
                orders.append(('shuffle %d' % seed, shuffled))
            for label, rs in orders:
                alt = os.path.join(tmp, 'alt.ndjson')
                with open(alt, 'w') as f:
                    for r in rs:
                        f.write(json.dumps(r) + '\n')
                _, got2 = findings(exe, alt)
                if sorted(got2) != sorted(got):
                    problems.append('%s: %s differ from %s' % (label, sorted(got2), sorted(got)))
            status = 'ok    ' if not problems else 'not ok'
            print('%s  %-62s %s' % (status, name, ', '.join(
                '%s x%d' % (r, n) for r, n in sorted(counts.items())) or '-'))
            for pr in problems:
                print('        %s' % pr)
            failures += bool(problems)
    print('%d files, %d failed' % (len(files), failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
