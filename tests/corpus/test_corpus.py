#!/usr/bin/env python3
"""Corpus test: normalize every det-eng-samples file and check the tags.

Usage: test_corpus.py M365FWD_BINARY   (env MF_SOURCE_ROOT, optional MF_SHARED)

For each *.json / *.csv file of <shared>/corpus/det-eng-samples:
  - `m365fwd normalize --schema ocsf FILE` exits 0,
  - prints one valid JSON object per record of the file (records counted
    here: JSON lines holding a record or an array of records, a file that is
    one pretty-printed JSON value, CSV rows' AuditData), and after them the
    aggregate findings (product m365fwd; test_aggregates_corpus.py checks
    those),
  - every tag expected.yaml lists for the file appears in metadata.labels of
    at least one record's line.
Exit 77 (skip) when the shared corpus is not there.
"""
import csv
import json
import os
import subprocess
import sys

import yaml

SKIP = 77


def shared_dir():
    env = os.environ.get('MF_SHARED')
    if env:
        return env
    root = os.environ.get('MF_SOURCE_ROOT',
                          os.path.join(os.path.dirname(__file__), '..', '..'))
    return os.path.join(root, '..', 'shared')


def count_records(path):
    """Number of audit records in a corpus file, counted independently of
    the agent's readers."""
    if path.endswith('.csv'):
        csv.field_size_limit(1 << 30)
        with open(path, encoding='utf-8-sig', newline='') as f:
            return sum(1 for row in csv.DictReader(f) if row.get('AuditData'))
    with open(path, encoding='utf-8-sig') as f:
        text = f.read()
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if whole is not None:
        return len(whole) if isinstance(whole, list) else 1
    n = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        v = json.loads(line)
        n += len(v) if isinstance(v, list) else 1
    return n


def main():
    if len(sys.argv) != 2:
        print('usage: test_corpus.py M365FWD', file=sys.stderr)
        return 2
    exe = sys.argv[1]
    corpus = os.path.join(shared_dir(), 'corpus', 'det-eng-samples')
    if not os.path.isdir(corpus):
        print('SKIP: shared corpus not found at %s (set MF_SHARED)' % corpus)
        return SKIP
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, 'expected.yaml'), encoding='utf-8') as f:
        expected = yaml.safe_load(f) or {}

    files = sorted(n for n in os.listdir(corpus)
                   if n.endswith('.json') or n.endswith('.csv'))
    failures = []
    for name in files:
        path = os.path.join(corpus, name)
        problems = []
        try:
            want_n = count_records(path)
        except (ValueError, OSError) as e:
            problems.append('cannot count records: %s' % e)
            want_n = None
        try:
            p = subprocess.run([exe, 'normalize', '--schema', 'ocsf', path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=120)
        except subprocess.TimeoutExpired:
            failures.append('%s: timeout' % name)
            print('not ok  %-62s timeout' % name)
            continue
        if p.returncode != 0:
            problems.append('exit %d: %s' % (
                p.returncode, p.stderr.decode('utf-8', 'replace').strip()[:300]))
        lines = [ln for ln in p.stdout.decode('utf-8', 'replace').split('\n') if ln]
        labels = set()
        findings = 0
        for i, ln in enumerate(lines, 1):
            try:
                ev = json.loads(ln)
            except ValueError as e:
                problems.append('output line %d is not JSON: %s' % (i, e))
                continue
            if not isinstance(ev, dict):
                problems.append('output line %d is not an object' % i)
                continue
            md = ev.get('metadata') or {}
            if (md.get('product') or {}).get('name') == 'm365fwd':
                findings += 1
                continue
            for t in md.get('labels') or []:
                labels.add(t)
        lines = lines[:len(lines) - findings]
        if want_n is not None and len(lines) != want_n:
            problems.append('%d output lines for %d records' % (len(lines), want_n))
        if name not in expected:
            problems.append('not listed in expected.yaml')
        want_tags = expected.get(name) or []
        missing = [t for t in want_tags if t not in labels]
        if missing:
            problems.append('missing tags %s (got %s)' % (
                ', '.join(missing), ', '.join(sorted(labels)) or 'none'))
        status = 'ok    ' if not problems else 'not ok'
        print('%s  %-62s records=%s lines=%d tags=%s' % (
            status, name, want_n, len(lines), ','.join(sorted(labels)) or '-'))
        for pr in problems:
            print('        %s' % pr)
            failures.append('%s: %s' % (name, pr))
    for name in sorted(expected):
        if name not in files:
            failures.append('%s: listed in expected.yaml but not in the corpus' % name)
            print('not ok  %s: listed in expected.yaml but missing' % name)
    print('%d files, %d problems' % (len(files), len(failures)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
