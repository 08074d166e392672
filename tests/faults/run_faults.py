#!/usr/bin/env python3
"""The fault suite (issue 11): every scenario drives the real m365fwd
binary against the bundled emulator (and, per scenario, a stalling TCP
proxy, faketime, a small file system...) and prints one table row:
scenario, sent, received, lost, duplicates, verdict. The whole table is
printed at the end (it is the table of docs/reliability.md).

Usage: run_faults.py M365FWD [-k SUBSTRING]... [--list|--markdown] [--keep]
Exit 0 when every scenario healed or reported, 1 when one failed, 77 when
none could run here (no openssl for the emulator's certificates).

Scenarios live in tests/faults/scenarios_*.py (see faultlib.py).
"""

import glob
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import faultlib as fl  # noqa: E402


def load_scenarios():
    for path in sorted(glob.glob(os.path.join(HERE, "scenarios_*.py"))):
        importlib.import_module(os.path.basename(path)[:-3])
    return fl.REGISTRY


def main(argv):
    args = argv[1:]
    if not args or args[0].startswith("-"):
        sys.stderr.write("usage: run_faults.py M365FWD [-k SUBSTRING]... [--list] [--keep]\n")
        return 2
    binary = os.path.abspath(args.pop(0))
    picks, keep, listing = [], False, False
    while args:
        a = args.pop(0)
        if a == "-k" and args:
            picks.append(args.pop(0))
        elif a == "--keep":
            keep = True
        elif a == "--list":
            listing = True
        elif a == "--markdown":
            listing = "markdown"
        else:
            sys.stderr.write("run_faults.py: unknown argument %r\n" % a)
            return 2
    scenarios = [s for s in load_scenarios()
                 if not picks or any(p in s["name"] for p in picks)]
    if listing == "markdown":
        # the scenario table of docs/reliability.md
        for s in scenarios:
            print("| `%s` | %s | %s |" % (s["name"], s["defect"],
                                         " ".join(s["doc"].split())))
        return 0
    if listing:
        for s in scenarios:
            print("%-28s %s" % (s["name"], s["defect"]))
        return 0
    if not os.access(binary, os.X_OK):
        print("SKIP: %s is not executable" % binary)
        return 77
    try:
        fl.h.Certs.get()
    except Exception as e:  # noqa: BLE001 - no openssl, cert failure
        print("SKIP: the emulator cannot run here: %s" % e)
        return 77
    rows = []
    try:
        for s in scenarios:
            rows.append(run_one(binary, s, keep))
            sys.stderr.write("  %s\n" % fl.format_row(rows[-1]))
    finally:
        fl.h.Certs.cleanup()
    print()
    print(fl.format_table(rows))
    failed = [r for r in rows if not r.ok]
    skipped = [r for r in rows if r.verdict.startswith("skip")]
    print("\n%d scenarios: %d passed, %d failed, %d skipped"
          % (len(rows), len(rows) - len(failed) - len(skipped), len(failed), len(skipped)))
    if rows and len(skipped) == len(rows):
        return 77
    return 1 if failed else 0


def run_one(binary, s, keep):
    import shutil
    t0 = time.monotonic()
    for cmd in s["needs"]:
        if not shutil.which(cmd):
            row = fl.Row(s["name"], verdict="skip: %s not installed" % cmd)
            return row
    ctx = fl.Ctx(binary, s["name"], keep=keep)
    try:
        row = s["fn"](ctx)
        row.name = s["name"]
        if row.lost and not row.verdict.startswith("FAIL"):
            row.verdict = "FAIL"
            row.note = "%d records lost without a report: %s" % (
                row.lost, getattr(row, "lost_ids", [])[:3])
    except fl.Skip as e:
        row = fl.Row(s["name"], verdict="skip: %s" % e)
    except Exception as e:  # noqa: BLE001 - a failed scenario is a row
        row = fl.Row(s["name"], verdict="FAIL")
        row.note = "%s: %s" % (type(e).__name__, str(e)[:1500])
        if not isinstance(e, (fl.Fail, TimeoutError)):
            row.note += "\n" + traceback.format_exc()[-1500:]
        for a in ctx.agents:
            row.note += "\n    agent log tail (%s):\n%s" % (
                a.dir, a.last_log()[-1500:])
        ctx.keep = True
    finally:
        try:
            ctx.cleanup()
        except Exception as e:  # noqa: BLE001
            row = fl.Row(s["name"], verdict="FAIL")
            row.note = "cleanup: %s" % e
    row.seconds = time.monotonic() - t0
    return row


if __name__ == "__main__":
    sys.exit(main(sys.argv))
