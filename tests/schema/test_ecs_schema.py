#!/usr/bin/env python3
"""ECS schema test: python3 test_ecs_schema.py <m365fwd binary>

1. Self-test of ecs_validate.py: known-bad events must be reported with the
   right field, a known-good event must pass.
2. Runs `m365fwd normalize --schema ecs` (and once more with --keep-raw) over
   tests/data/golden/*.in.json, the "record" values of
   tests/data/tags/*.ndjson, samples/*.json and, when present, the shared
   corpus (../shared/corpus/det-eng-samples), and validates every output
   line against ECS 9.4.0.
Exit 0 when everything passes, 1 on any violation or crash, 77 (skip) when
the ECS schema is not available.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ecs_validate  # noqa: E402
import peer_inputs  # noqa: E402

SRC = os.environ.get('MF_SOURCE_ROOT') or os.path.normpath(os.path.join(HERE, '..', '..'))
TIMEOUT = 300

GOOD = {
    '@timestamp': '2026-03-02T09:15:22Z',
    'event': {'kind': 'event', 'category': ['web', 'iam'], 'type': ['info', 'change'],
              'risk_score': 80.0, 'severity': 4, 'outcome': 'success'},
    'client': {'ip': '2001:db8::1', 'port': 443, 'address': '[2001:db8::1]:443'},
    'user': {'id': 'a@b.example', 'target': {'email': 'c@b.example'}},
    'related': {'ip': ['192.0.2.1'], 'user': ['a']},
    'tags': ['identity.mfa_disabled'],
    'threat': {'technique': {'id': ['T1556.006']}},
    'o365': {'audit': {'Anything': {'goes': [1, 2]}}},
    'm365fwd': {'risk': {'severity': 4, 'areas': ['identity_access']}},
}

# (event, field that must be reported)
BAD = [
    ({'event': {'kind': 'event'}}, '@timestamp'),
    (dict(GOOD, **{'@timestamp': '2026-03-02 09:15:22'}), '@timestamp'),
    (dict(GOOD, client={'ip': '10.0.0.300'}), 'client.ip'),
    (dict(GOOD, client={'ip': '10.0.0.1:443'}), 'client.ip'),
    (dict(GOOD, client={'port': '443'}), 'client.port'),
    (dict(GOOD, client={'port': 44.5}), 'client.port'),
    (dict(GOOD, event={'kind': 'incident'}), 'event.kind'),
    (dict(GOOD, event={'category': ['web', 'identity']}), 'event.category'),
    (dict(GOOD, event={'type': 'begin'}), 'event.type'),
    (dict(GOOD, event={'outcome': 'ok'}), 'event.outcome'),
    (dict(GOOD, event={'risk_score': '80'}), 'event.risk_score'),
    (dict(GOOD, event={'severity': True}), 'event.severity'),
    (dict(GOOD, user={'id': 5}), 'user.id'),
    (dict(GOOD, user={'id': {'nested': 'x'}}), 'user.id'),
    (dict(GOOD, user={'nickname': 'x'}), 'user.nickname'),
    (dict(GOOD, Parameters={'ForwardTo': 'x'}), 'Parameters'),
    (dict(GOOD, risk={'areas': ['x']}), 'risk'),
    (dict(GOOD, custom_field='x'), 'custom_field'),
    (dict(GOOD, threat={'technique': {'id': [['T1']]}}), 'threat.technique.id'),
    (dict(GOOD, related={'ip': ['not-an-ip']}), 'related.ip'),
    (dict(GOOD, labels='x'), 'labels'),
]


def self_test(schema):
    failures = []
    got = schema.validate(GOOD)
    if got:
        failures.append('good event reported: %r' % (got,))
    for event, field in BAD:
        got = schema.validate(event)
        if not any(f == field for f, _ in got):
            failures.append('bad %s not reported (got %r)' % (field, got))
    lines = [json.dumps(GOOD), '{"x": 1}', 'not json']
    errs = ecs_validate.validate_lines(schema, lines, 'mem')
    if not any(e.startswith('mem:2: x:') for e in errs):
        failures.append('line number not reported: %r' % (errs,))
    if not any(e.startswith('mem:3: ') for e in errs):
        failures.append('invalid JSON line not reported: %r' % (errs,))
    return failures


def shared_dir():
    if os.environ.get('MF_SHARED'):
        return os.environ['MF_SHARED']
    return os.path.normpath(os.path.join(SRC, '..', 'shared'))


def input_sets(tmpdir):
    """[(label, [files])] to normalize."""
    sets = []
    golden = sorted(glob.glob(os.path.join(SRC, 'tests', 'data', 'golden', '*.in.json')))
    if golden:
        sets.append(('golden', golden))
    tag_records = []
    for path in sorted(glob.glob(os.path.join(SRC, 'tests', 'data', 'tags', '*.ndjson'))):
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and 'record' in obj:
                    tag_records.append(json.dumps(obj['record']))
    if tag_records:
        p = os.path.join(tmpdir, 'tag-records.ndjson')
        with open(p, 'w', encoding='utf-8') as f:
            f.write('\n'.join(tag_records) + '\n')
        sets.append(('tags', [p]))
    samples = sorted(glob.glob(os.path.join(SRC, 'samples', '*.json')))
    if samples:
        sets.append(('samples', samples))
    corpus = os.path.join(shared_dir(), 'corpus', 'det-eng-samples')
    if os.path.isdir(corpus):
        files = sorted(glob.glob(os.path.join(corpus, '*.json'))
                       + glob.glob(os.path.join(corpus, '*.csv')))
        if files:
            sets.append(('corpus', files))
    else:
        print('# shared corpus not found at %s: not validated' % corpus)
    peers = peer_inputs.peer_files(shared_dir(), tmpdir)
    if peers:
        sets.append(('peers', peers))
    return sets


def run_one(binary, schema, label, path, keep_raw):
    """Normalize one file; returns (lines validated, [problems])."""
    cmd = [binary, 'normalize', '--schema', 'ecs']
    if keep_raw:
        cmd.append('--keep-raw')
    cmd.append(path)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return 0, ['%s: %s: timed out (hang?)' % (label, path)]
    problems = []
    name = '%s%s:%s' % (label, '+raw' if keep_raw else '', os.path.basename(path))
    if p.returncode not in (0, 1):
        problems.append('%s: exit %d: %s' % (name, p.returncode,
                                             p.stderr.decode('utf-8', 'replace')[-500:]))
    out = p.stdout.decode('utf-8', 'replace').splitlines()
    if os.path.getsize(path) > 0 and not out:
        problems.append('%s: no output at all (stderr: %s)'
                        % (name, p.stderr.decode('utf-8', 'replace')[-300:]))
    problems += ecs_validate.validate_lines(schema, out, name)
    if keep_raw:
        for no, line in enumerate(out, 1):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get('event', {}).get('kind') == 'alert' and \
                    ev.get('event', {}).get('module') == 'm365fwd':
                continue   # an aggregate finding has no original record
            if not isinstance(ev.get('event', {}).get('original'), str):
                problems.append('%s:%d: event.original missing with --keep-raw'
                                % (name, no))
    return len(out), problems


def main(argv):
    if len(argv) < 2:
        print('usage: test_ecs_schema.py <m365fwd binary>')
        return 2
    binary = argv[1]
    schema = ecs_validate.load_schema_or_skip()
    ntest = 0
    failed = 0

    fails = self_test(schema)
    ntest += 1
    for f in fails:
        print('# ' + f)
    print('%s %d - validator self-test' % ('not ok' if fails else 'ok', ntest))
    failed += bool(fails)

    with tempfile.TemporaryDirectory() as tmp:
        for label, files in input_sets(tmp):
            for keep_raw in (False, True):
                total, problems = 0, []
                for path in files:
                    n, pr = run_one(binary, schema, label, path, keep_raw)
                    total += n
                    problems += pr
                ntest += 1
                for pr in problems[:200]:
                    print('# ' + pr)
                if len(problems) > 200:
                    print('# ... %d more' % (len(problems) - 200))
                print('%s %d - %s%s: %d events from %d files valid ECS'
                      % ('not ok' if problems else 'ok', ntest, label,
                         ' --keep-raw' if keep_raw else '', total, len(files)))
                failed += bool(problems)
    print('1..%d' % ntest)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
