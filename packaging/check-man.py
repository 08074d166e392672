#!/usr/bin/env python3
"""Check the man pages against the program and the configuration reference.

  check-man.py --binary M365FWD --config-doc docs/configuration.md \
               --man1 m365fwd.1[.gz] --man5 m365fwd.yaml.5[.gz]

m365fwd(1) must have a section for every command of `m365fwd --help` and
mention every option of `m365fwd help <command>`; m365fwd.yaml(5) must have
an entry for every key of docs/configuration.md (which is generated from the
option tables). Both must format without groff warnings and carry no
unsubstituted @VARIABLE@. Prints every problem; exit 1 when there is one.
"""
import argparse
import gzip
import re
import shutil
import subprocess
import sys

OPTION_RE = re.compile(r'(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])')


def read_man(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rt', encoding='utf-8') as f:
        return f.read()


def plain(roff):
    """Roff source with escapes for '-' and fonts removed."""
    text = roff.replace('\\-', '-').replace('\\(em', '-')
    return re.sub(r'\\f[BIRP]', '', text)


def run_help(binary, *args):
    res = subprocess.run([binary, *args], capture_output=True, text=True,
                         timeout=30)
    if res.returncode != 0:
        raise RuntimeError('%s %s exited %d: %s' % (
            binary, ' '.join(args), res.returncode, res.stderr.strip()))
    return res.stdout


def commands(main_help):
    cmds = []
    in_cmds = False
    for line in main_help.splitlines():
        if line.startswith('Commands:'):
            in_cmds = True
            continue
        if in_cmds:
            m = re.match(r'^  ([a-z][a-z-]*)\s', line)
            if not m:
                break
            cmds.append(m.group(1))
    return cmds


def options(cmd_help):
    """Options named in the usage line and the option list of a help text."""
    opts = set()
    for line in cmd_help.splitlines():
        if line.startswith('Usage:') or re.match(r'^\s+-', line):
            opts.update(m.group(1) for m in OPTION_RE.finditer(line))
    return opts


def config_keys(markdown):
    """(section, key) for the first key of every row of every key table."""
    keys = []
    section = 'top level'
    in_table = False
    for line in markdown.splitlines():
        h = re.match(r'^#+\s+(.*)', line)
        if h:
            section = h.group(1).strip()
            in_table = False
            continue
        if line.startswith('| Key |'):
            in_table = True
            continue
        if in_table and line.startswith('|'):
            cell = line.split('|')[1]
            names = re.findall(r'`([^`]+)`', cell)
            if names:
                keys.append((section, names[0]))
            continue
        in_table = False
    return keys


def groff_warnings(path, roff):
    if not shutil.which('groff'):
        return []
    res = subprocess.run(['groff', '-man', '-ww', '-z'], input=roff,
                         capture_output=True, text=True, timeout=60)
    return ['%s: groff: %s' % (path, l) for l in res.stderr.splitlines()
            if l.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--binary', required=True)
    ap.add_argument('--config-doc', required=True)
    ap.add_argument('--man1', required=True)
    ap.add_argument('--man5', required=True)
    a = ap.parse_args()

    problems = []
    man1 = read_man(a.man1)
    man5 = read_man(a.man5)
    for path, roff in ((a.man1, man1), (a.man5, man5)):
        if re.search(r'@[A-Z_]+@', roff):
            problems.append('%s: unsubstituted @VARIABLE@' % path)
        problems += groff_warnings(path, roff)

    text1 = plain(man1)
    main_help = run_help(a.binary, '--help')
    cmds = commands(main_help)
    if not cmds:
        problems.append('%s --help lists no commands' % a.binary)
    n_opts = 0
    for cmd in cmds:
        if not re.search(r'^\.SS "?%s(\s|"|$)' % re.escape(cmd), text1, re.M):
            problems.append('%s: no section for command "%s"' % (a.man1, cmd))
        for opt in sorted(options(run_help(a.binary, 'help', cmd))):
            n_opts += 1
            if not re.search(r'(?<![\w-])%s(?![\w-])' % re.escape(opt),
                             text1):
                problems.append('%s: command "%s": option %s is not '
                                'documented' % (a.man1, cmd, opt))
    for opt in sorted(options(main_help)):
        if not re.search(r'(?<![\w-])%s(?![\w-])' % re.escape(opt), text1):
            problems.append('%s: option %s of m365fwd --help is not '
                            'documented' % (a.man1, opt))

    text5 = plain(man5)
    with open(a.config_doc, encoding='utf-8') as f:
        keys = config_keys(f.read())
    if not keys:
        problems.append('%s: no configuration keys found' % a.config_doc)
    for section, key in keys:
        if not re.search(r'^\.BR? %s(\s|$)' % re.escape(key), text5, re.M):
            problems.append('%s: key "%s" (%s) has no entry' % (
                a.man5, key, section))

    for p in problems:
        print(p)
    print('check-man: %d commands, %d options, %d configuration keys, '
          '%d problems' % (len(cmds), n_opts, len(keys), len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
