#!/usr/bin/env python3
"""The README's configuration reference and docs/configuration.md are what
the option tables generate, and every command has --help.
Run as: test_docs.py M365FWD_BINARY."""
import os
import subprocess
import sys

binary = os.path.abspath(sys.argv[1])
src = os.environ.get("MF_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
failed = 0

rc = subprocess.run([sys.executable, os.path.join(src, "tools", "readme_config.py"),
                     binary, os.path.join(src, "README.md"), "--check"]).returncode
failed += rc != 0

gen = subprocess.run([binary, "help", "config"], capture_output=True, check=True).stdout
with open(os.path.join(src, "docs", "configuration.md"), "rb") as f:
    if f.read() != gen:
        print("docs/configuration.md differs from `m365fwd help config`: run "
              "`ninja -C build config-doc`")
        failed += 1
alias = subprocess.run([binary, "help-config"], capture_output=True, check=True).stdout
if alias != gen:
    print("`m365fwd help-config` differs from `m365fwd help config`")
    failed += 1

rc = subprocess.run([sys.executable, os.path.join(src, "tools", "ocsf_doc.py"),
                     "--check", src]).returncode
failed += rc != 0

top = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
cmds = [l.split()[0] for l in top.split("Commands:")[1].splitlines()
        if l.startswith("  ") and l.split()]
for cmd in cmds:
    p = subprocess.run([binary, cmd, "--help"], capture_output=True, text=True)
    if p.returncode != 0 or "Usage: m365fwd " + cmd not in p.stdout:
        print("`m365fwd %s --help` does not print its usage (exit %d)" % (cmd, p.returncode))
        failed += 1
print("%d passed, %d failed" % (3 + len(cmds) - failed, failed))
sys.exit(1 if failed else 0)
