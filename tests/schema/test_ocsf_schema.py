#!/usr/bin/env python3
"""Every OCSF event m365fwd writes must validate against OCSF 1.8.0.

Run by meson as: python3 test_ocsf_schema.py <m365fwd binary>
Inputs: tests/data/golden/*.in.json, the "record" of every line of
tests/data/tags/*.ndjson, samples/*.json, and the shared corpus
(../shared/corpus/det-eng-samples) when present. Each input set is run
with --schema ocsf, the golden inputs also with --keep-raw.
First a self-test proves the validator rejects known-bad events.
Exit 0 all valid, 1 any invalid, 77 skip (schema not found).
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ocsf_validate  # noqa: E402
import peer_inputs  # noqa: E402

SRC = os.environ.get('MF_SOURCE_ROOT') or os.path.normpath(
    os.path.join(HERE, '..', '..'))


def shared_dir():
    if os.environ.get('MF_SHARED'):
        return os.environ['MF_SHARED']
    return os.path.normpath(os.path.join(SRC, '..', 'shared'))


GOOD = {
    "class_uid": 6003, "category_uid": 6, "activity_id": 3, "type_uid": 600303,
    "time": 1768472430000, "severity_id": 1,
    "metadata": {"version": "1.8.0", "profiles": ["cloud"],
                 "product": {"name": "Microsoft 365 Unified Audit Log",
                             "vendor_name": "Microsoft"}},
    "cloud": {"provider": "Microsoft"},
    "actor": {"user": {"name": "a@example.org", "type_id": 1}},
    "api": {"operation": "Set-Mailbox", "request": {"uid": "x", "data": {"A": 1}}},
    "src_endpoint": {"ip": "192.0.2.1", "port": 443},
    "unmapped": {"Anything": [1, {"x": None}]},
}


def bad(mutate):
    ev = json.loads(json.dumps(GOOD))
    mutate(ev)
    return ev


# (name, event, substring the complaint must contain)
SELF_TESTS = [
    ('missing_required', bad(lambda e: e.pop('api')), 'api'),
    ('missing_nested_required',
     bad(lambda e: e['api'].pop('operation')), 'api.operation'),
    ('bad_enum', bad(lambda e: e.update(severity_id=7)), 'severity_id'),
    ('bad_activity', bad(lambda e: e.update(activity_id=9, type_uid=600309)),
     'activity_id'),
    ('wrong_type', bad(lambda e: e.update(time='2026-01-01')), 'time'),
    ('wrong_nested_type',
     bad(lambda e: e['src_endpoint'].update(port='443')), 'src_endpoint.port'),
    ('bad_ip', bad(lambda e: e['src_endpoint'].update(ip='1.2.3')),
     'src_endpoint.ip'),
    ('unknown_attribute', bad(lambda e: e.update(frobnicate=1)), 'frobnicate'),
    ('unknown_nested_attribute',
     bad(lambda e: e['actor']['user'].update(shoe_size=9)), 'actor.user.shoe_size'),
    ('type_uid', bad(lambda e: e.update(type_uid=600301)), 'type_uid'),
    ('category', bad(lambda e: e.update(category_uid=3)), 'category_uid'),
    ('unknown_class', bad(lambda e: e.update(class_uid=9999)), 'class_uid'),
    ('profile_not_listed',
     bad(lambda e: e['metadata'].update(profiles=[])), 'cloud'),
    ('not_array', bad(lambda e: e['metadata'].update(labels='x')),
     'metadata.labels'),
    ('constraint', bad(lambda e: e['actor'].update(user={})), 'actor.user'),
    ('bad_email',
     bad(lambda e: e['actor']['user'].update(email_addr='not an email')),
     'email_addr'),
]


def self_test(v):
    fails = 0
    errs = v.validate(GOOD)
    if errs:
        print('self-test: the good event is rejected: %s' % errs)
        fails += 1
    for name, ev, want in SELF_TESTS:
        errs = v.validate(ev)
        if not any(want in p or want in m for p, m in errs):
            print('self-test %s: expected a complaint about %s, got %s'
                  % (name, want, errs))
            fails += 1
    print('self-test: %d cases, %d failed' % (len(SELF_TESTS) + 1, fails))
    return fails


def collect_inputs(tmp):
    """List of (label, [files]) to feed the binary."""
    sets = []
    golden = sorted(glob.glob(os.path.join(SRC, 'tests', 'data', 'golden',
                                           '*.in.json')))
    if golden:
        sets.append(('golden', golden))
    tag_lines = []
    for f in sorted(glob.glob(os.path.join(SRC, 'tests', 'data', 'tags',
                                           '*.ndjson'))):
        with open(f, encoding='utf-8', errors='replace') as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    o = json.loads(line)
                except ValueError:
                    continue
                if isinstance(o, dict) and isinstance(o.get('record'), dict):
                    tag_lines.append(json.dumps(o['record']))
    if tag_lines:
        p = os.path.join(tmp, 'tag-records.ndjson')
        with open(p, 'w', encoding='utf-8') as fh:
            fh.write('\n'.join(tag_lines) + '\n')
        sets.append(('tags', [p]))
    samples = sorted(glob.glob(os.path.join(SRC, 'samples', '*.json')))
    if samples:
        sets.append(('samples', samples))
    corpus = os.path.join(shared_dir(), 'corpus', 'det-eng-samples')
    cfiles = sorted(glob.glob(os.path.join(corpus, '*.json')) +
                    glob.glob(os.path.join(corpus, '*.csv')))
    if cfiles:
        sets.append(('corpus', cfiles))
    else:
        print('note: shared corpus not found at %s, not used' % corpus)
    peers = peer_inputs.peer_files(shared_dir(), tmp)
    if peers:
        sets.append(('peers', peers))
    return sets


def run_set(binary, v, label, files, extra):
    bad_events = 0
    total = 0
    for f in files:
        cmd = [binary, 'normalize', '--schema', 'ocsf'] + extra + [f]
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=120)
        except subprocess.TimeoutExpired:
            print('%s: %s: timed out' % (label, f))
            bad_events += 1
            continue
        if p.returncode not in (0, 1):
            print('%s: %s: exit %d: %s' % (label, f, p.returncode,
                                           p.stderr.decode(errors='replace')[:500]))
            bad_events += 1
        lines = p.stdout.decode('utf-8', errors='replace').splitlines()
        n, b = ocsf_validate.validate_lines(
            v, '%s(%s)' % (os.path.basename(f), ' '.join(extra) or 'ocsf'),
            lines, out=sys.stdout)
        total += n
        bad_events += b
    print('%s%s: %d events, %d invalid' % (label, ' ' + ' '.join(extra)
                                           if extra else '', total, bad_events))
    return total, bad_events


def main(argv):
    if len(argv) < 2:
        print('usage: test_ocsf_schema.py M365FWD', file=sys.stderr)
        return 2
    binary = argv[1]
    sdir = os.path.join(shared_dir(), 'schemas', 'ocsf-1.8.0')
    if not os.path.isfile(os.path.join(sdir, 'dictionary.json')):
        print('SKIP: OCSF 1.8.0 schema not found at %s '
              '(set MF_SHARED or put ../shared next to the source)' % sdir)
        return 77
    v = ocsf_validate.Validator(ocsf_validate.Schema(sdir))
    fails = self_test(v)
    with tempfile.TemporaryDirectory() as tmp:
        sets = collect_inputs(tmp)
        total = 0
        for label, files in sets:
            n, b = run_set(binary, v, label, files, [])
            total += n
            fails += b
            if label == 'golden':
                n, b = run_set(binary, v, label, files, ['--keep-raw'])
                fails += b
    if total == 0:
        print('no events produced at all')
        return 1
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
