#!/usr/bin/env python3
"""promtext_check.py - check a Prometheus text exposition (format 0.0.4).

Usage: promtext_check.py FILE|-      check a scrape body; exit 0 ok, 1 errors
       promtext_check.py --self-test  run the checker on built-in cases

Rules checked (https://prometheus.io/docs/instrumenting/exposition_formats/):
- the body is UTF-8 and ends with a line feed;
- `# HELP name text` and `# TYPE name type`: valid metric name, known type,
  HELP text escapes only \\\\ and \\n, at most one HELP and one TYPE per family,
  both before the family's first sample (this project requires both);
- samples `name{label="value",...} value [timestamp]`: metric and label name
  syntax, no reserved `__` label names, no label twice, label values escape
  only \\\\, \\" and \\n, value is a float (NaN, +Inf, -Inf allowed),
  timestamp an integer;
- a family's lines form one group; counters end in _total (house rule) and
  are never negative; no duplicate series.
"""
import re
import sys

METRIC_RE = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')
LABEL_RE = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
FLOAT_RE = re.compile(r'^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?'
                      r'|[+-]?Inf|NaN)$')
INT_RE = re.compile(r'^-?\d+$')
TYPES = ('counter', 'gauge', 'histogram', 'summary', 'untyped')
SUFFIXES = {'histogram': ('_bucket', '_sum', '_count'),
            'summary': ('_sum', '_count', '')}


class Checker:
    def __init__(self):
        self.errors = []
        self.help = {}
        self.type = {}
        self.done = set()       # families whose group has ended
        self.current = None
        self.series = set()
        self.samples = 0

    def err(self, lineno, msg):
        self.errors.append('line %d: %s' % (lineno, msg))

    def family_of(self, name):
        for fam, typ in self.type.items():
            if name == fam:
                return fam
            for suf in SUFFIXES.get(typ, ()):
                if suf and name == fam + suf:
                    return fam
        return name

    def enter(self, lineno, fam):
        if fam == self.current:
            return
        if fam in self.done:
            self.err(lineno, 'lines of family %s are not one group' % fam)
        if self.current is not None:
            self.done.add(self.current)
        self.current = fam

    def check_help_text(self, lineno, text):
        i = 0
        while i < len(text):
            if text[i] == '\\':
                if i + 1 >= len(text) or text[i + 1] not in '\\n':
                    self.err(lineno, 'bad escape in HELP text')
                i += 2
                continue
            i += 1

    def comment(self, lineno, line):
        parts = line[1:].lstrip(' \t').split(None, 1)
        if not parts or parts[0] not in ('HELP', 'TYPE'):
            return              # plain comment
        kw = parts[0]
        rest = parts[1] if len(parts) > 1 else ''
        m = METRIC_RE.match(rest)
        if not m:
            self.err(lineno, '%s without a valid metric name' % kw)
            return
        name = rest[:m.end()]
        tail = rest[m.end():]
        if tail and tail[0] not in ' \t':
            self.err(lineno, 'invalid metric name in %s' % kw)
            return
        tail = tail[1:] if tail else ''
        self.enter(lineno, name)
        if kw == 'HELP':
            if name in self.help:
                self.err(lineno, 'second HELP for %s' % name)
            self.help[name] = tail
            self.check_help_text(lineno, tail)
        else:
            typ = tail.strip()
            if typ not in TYPES:
                self.err(lineno, 'unknown TYPE %r for %s' % (typ, name))
            if name in self.type:
                self.err(lineno, 'second TYPE for %s' % name)
            if self.seen_samples_of(name):
                self.err(lineno, 'TYPE for %s after its samples' % name)
            self.type[name] = typ
            if typ == 'counter' and not name.endswith('_total'):
                self.err(lineno, 'counter %s does not end in _total' % name)

    def seen_samples_of(self, fam):
        return any(s[0] == fam or s[0].startswith(fam + '_')
                   and self.family_of(s[0]) == fam for s in self.series)

    def parse_labels(self, lineno, s, i):
        """s[i] == '{'; returns (labels dict, index after '}') or None."""
        labels = {}
        i += 1
        while True:
            while i < len(s) and s[i] in ' \t':
                i += 1
            if i < len(s) and s[i] == '}':
                return labels, i + 1
            m = LABEL_RE.match(s, i)
            if not m:
                self.err(lineno, 'invalid label name at column %d' % (i + 1))
                return None
            lname = m.group(0)
            i = m.end()
            if lname.startswith('__'):
                self.err(lineno, 'reserved label name %s' % lname)
            if lname in labels:
                self.err(lineno, 'label %s twice' % lname)
            while i < len(s) and s[i] in ' \t':
                i += 1
            if s[i:i + 2] != '="':
                self.err(lineno, 'label %s: expected ="' % lname)
                return None
            i += 2
            val = []
            while True:
                if i >= len(s):
                    self.err(lineno, 'label %s: unterminated value' % lname)
                    return None
                c = s[i]
                if c == '"':
                    i += 1
                    break
                if c == '\\':
                    nxt = s[i + 1] if i + 1 < len(s) else ''
                    if nxt == 'n':
                        val.append('\n')
                    elif nxt in ('\\', '"'):
                        val.append(nxt)
                    else:
                        self.err(lineno, 'label %s: bad escape \\%s'
                                 % (lname, nxt))
                        return None
                    i += 2
                    continue
                val.append(c)
                i += 1
            labels[lname] = ''.join(val)
            while i < len(s) and s[i] in ' \t':
                i += 1
            if i < len(s) and s[i] == ',':
                i += 1
                continue
            if i < len(s) and s[i] == '}':
                return labels, i + 1
            self.err(lineno, 'label list: expected , or }')
            return None

    def sample(self, lineno, line):
        m = METRIC_RE.match(line)
        if not m:
            self.err(lineno, 'invalid metric name')
            return
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == '{':
            r = self.parse_labels(lineno, line, i)
            if r is None:
                return
            labels, i = r
        rest = line[i:]
        if not rest or rest[0] not in ' \t':
            self.err(lineno, 'expected a space before the value')
            return
        fields = rest.split()
        if len(fields) not in (1, 2):
            self.err(lineno, 'expected a value and an optional timestamp')
            return
        if not FLOAT_RE.match(fields[0]):
            self.err(lineno, 'value %r is not a float' % fields[0])
            return
        if len(fields) == 2 and not INT_RE.match(fields[1]):
            self.err(lineno, 'timestamp %r is not an integer' % fields[1])
        value = float(fields[0].replace('Inf', 'inf'))
        fam = self.family_of(name)
        self.enter(lineno, fam)
        if fam not in self.type:
            self.err(lineno, 'sample of %s without a TYPE before it' % name)
        if fam not in self.help:
            self.err(lineno, 'sample of %s without a HELP before it' % name)
        if self.type.get(fam) == 'counter' and value < 0:
            self.err(lineno, 'counter %s is negative' % name)
        key = (name, tuple(sorted(labels.items())))
        if key in self.series:
            self.err(lineno, 'duplicate series %s%s' % (name, labels))
        self.series.add(key)
        self.samples += 1

    def run(self, data):
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError as e:
            self.err(text_line(data, e.start), 'invalid UTF-8')
            text = data.decode('utf-8', 'replace')
        if text and not text.endswith('\n'):
            self.err(text.count('\n') + 1, 'no line feed at the end')
        for n, line in enumerate(text.split('\n'), 1):
            if not line.strip():
                continue
            if line.startswith('#'):
                self.comment(n, line)
            else:
                self.sample(n, line)
        return not self.errors


def text_line(data, pos):
    return data[:pos].count(b'\n') + 1


GOOD = [
    b'# HELP a_total A \\\\ help\\n.\n# TYPE a_total counter\n'
    b'a_total{x="q\\"\\\\\\n",y="2"} 3\na_total{x="r"} 1e3\n'
    b'# TYPE g gauge\n# HELP g G.\ng NaN\ng{k="v"} -Inf 1700000000000\n',
    b'# HELP h H.\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 2\n'
    b'h_count 1\n',
    b'',
]
BAD = [
    (b'# HELP a_total A.\n# TYPE a_total counter\na_total 1', 'line feed'),
    (b'# HELP a A.\n# TYPE a counter\na 1\n', '_total'),
    (b'# HELP a_total A.\n# TYPE a_total counter\na_total -1\n', 'negative'),
    (b'# HELP g G.\n# TYPE g gauge\ng{x="1"} 1\ng{x="1"} 2\n', 'duplicate'),
    (b'# HELP g G.\n# TYPE g gauge\ng{x="a\\tb"} 1\n', 'bad escape'),
    (b'# HELP g G.\n# TYPE g gauge\ng{x="a} 1\n', 'unterminated'),
    (b'# HELP g G.\n# TYPE g gauge\ng 1_0\n', 'not a float'),
    (b'# HELP g G.\n# TYPE g gauge\ng nan\n', 'not a float'),
    (b'# HELP g G.\n# TYPE g gauge\n# TYPE g gauge\ng 1\n', 'second TYPE'),
    (b'# HELP g G.\ng 1\n# TYPE g gauge\n', 'TYPE'),
    (b'# HELP g G.\n# TYPE g gauge\ng 1\n# HELP h H.\n# TYPE h gauge\n'
     b'h 1\ng{a="b"} 1\n', 'one group'),
    (b'# HELP g G.\n# TYPE g gauge\ng{__x="1"} 1\n', 'reserved'),
    (b'# HELP g G.\n# TYPE g gauge\ng{x="1",x="2"} 1\n', 'twice'),
    (b'# HELP g G.\n# TYPE g gauge\ng{1x="1"} 1\n', 'invalid label name'),
    (b'# HELP g G.\n# TYPE g gauge\n9g 1\n', 'invalid metric name'),
    (b'# HELP g G.\n# TYPE g gauge\ng{x="\xff"} 1\n', 'UTF-8'),
    (b'# HELP g G \\t.\n# TYPE g gauge\ng 1\n', 'HELP'),
    (b'# TYPE g gauge\ng 1\n', 'without a HELP'),
    (b'# HELP g G.\n# TYPE g gauges\ng 1\n', 'unknown TYPE'),
]


def self_test():
    fails = 0
    for body in GOOD:
        c = Checker()
        if not c.run(body):
            print('good case rejected: %r: %s' % (body, c.errors))
            fails += 1
    for body, want in BAD:
        c = Checker()
        if c.run(body) or not any(want in e for e in c.errors):
            print('bad case not caught (%s): %r: %s' % (want, body, c.errors))
            fails += 1
    print('self-test: %d good, %d bad, %d failures'
          % (len(GOOD), len(BAD), fails))
    return 1 if fails else 0


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == '--self-test':
        return self_test()
    if argv[1] == '-':
        data = sys.stdin.buffer.read()
    else:
        with open(argv[1], 'rb') as f:
            data = f.read()
    c = Checker()
    if not c.run(data):
        for e in c.errors:
            print(e, file=sys.stderr)
        return 1
    print('ok: %d families, %d samples' % (len(c.type), c.samples))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
