#!/usr/bin/env bash
# CI check of the Debian package: build it, install it with dpkg, run the
# installed program, verify the installed systemd unit, remove and purge it.
#
#   packaging/test-package.sh [-b BUILDDIR]     (default BUILDDIR: build-deb)
#
# Needs root (or sudo without a password) and dpkg; exits 77 (skip) with a
# message when it cannot install packages here, or when an m365fwd package
# is already installed (it is never replaced: set MF_PKG_FORCE=1 to allow).
# Exit 0 all checks passed, 1 a check failed. The systemd checks are skipped
# with a message when systemd-analyze is missing; `systemd-analyze security`
# fails the run when the unit's exposure rises above MF_PKG_MAX_EXPOSURE
# (default 2.0, on systemd's 0.0-10.0 scale).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$ROOT/build-deb"
max_exposure=${MF_PKG_MAX_EXPOSURE:-2.0}

while getopts "b:h" opt; do
    case "$opt" in
        b) build=$OPTARG ;;
        h) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [-b BUILDDIR]" >&2; exit 2 ;;
    esac
done

skip()
{
    echo "test-package: SKIP: $*"
    exit 77
}

n_ok=0
n_bad=0
ok()
{
    n_ok=$((n_ok + 1))
    echo "ok $n_ok - $*"
}
bad()
{
    n_bad=$((n_bad + 1))
    echo "not ok - $*"
}
# check DESCRIPTION COMMAND...: run COMMAND, ok when it exits 0.
check()
{
    local what=$1
    shift
    if "$@" >"$tmp/out" 2>&1; then
        ok "$what"
    else
        bad "$what (exit $?)"
        sed 's/^/    /' "$tmp/out" | tail -n 20
    fi
}

command -v dpkg >/dev/null 2>&1 || skip "dpkg not found (not a Debian system)"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    skip "installing a package needs root or password-less sudo"
fi
if dpkg-query -W -f='${Status}' m365fwd 2>/dev/null | grep -q 'installed' &&
    [ "${MF_PKG_FORCE:-0}" != 1 ]; then
    skip "an m365fwd package is installed on this machine; not touching it" \
        "(MF_PKG_FORCE=1 replaces and then removes it)"
fi
had_user=0
getent passwd m365fwd >/dev/null && had_user=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/m365fwd-pkg.XXXXXX")
chmod 0755 "$tmp"
installed=0
cleanup()
{
    if [ "$installed" = 1 ]; then
        "${SUDO[@]}" dpkg --purge m365fwd >/dev/null 2>&1 || true
    fi
    if [ "$had_user" = 0 ] && getent passwd m365fwd >/dev/null; then
        "${SUDO[@]}" deluser --system --quiet m365fwd >/dev/null 2>&1 || true
        "${SUDO[@]}" delgroup --system --quiet m365fwd >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# ------------------------------------------------------------- build
echo "# building the package (packaging/build-deb.sh -b $build)"
if ! deb=$(bash "$ROOT/packaging/build-deb.sh" -b "$build" -o "$tmp" 2>"$tmp/build.log" | tail -n 1) ||
    [ ! -f "$deb" ]; then
    tail -n 40 "$tmp/build.log"
    bad "build the package"
    echo "test-package: $n_ok passed, $n_bad failed"
    exit 1
fi
ok "build $(basename "$deb")"
version=$(dpkg-deb -f "$deb" Version)
upstream=${version%-*}

dpkg-deb --contents "$deb" > "$tmp/contents"
for f in ./usr/bin/m365fwd ./lib/systemd/system/m365fwd.service \
         ./usr/share/man/man1/m365fwd.1.gz ./usr/share/man/man5/m365fwd.yaml.5.gz \
         ./usr/share/doc/m365fwd/m365fwd.yaml.example ./usr/share/doc/m365fwd/copyright \
         ./usr/share/m365fwd/tags.yaml ./usr/share/m365fwd/ocsf.yaml \
         ./usr/share/m365fwd/ecs.yaml ./usr/share/m365fwd/checks.yaml \
         ./usr/share/m365fwd/plan.yaml; do
    if grep -q " $f\$" "$tmp/contents"; then
        ok "package contains ${f#.}"
    else
        bad "package lacks ${f#.}"
    fi
done
if awk '{print $2}' "$tmp/contents" | grep -qv '^root/root$'; then
    bad "every file is owned by root/root"
else
    ok "every file is owned by root/root"
fi

# ------------------------------------------------------------- install
echo "# installing"
if "${SUDO[@]}" dpkg -i "$deb" >"$tmp/install.log" 2>&1; then
    installed=1
    ok "dpkg -i"
else
    installed=1
    bad "dpkg -i (missing dependencies? apt-get install the Depends of the package)"
    sed 's/^/    /' "$tmp/install.log"
    echo "test-package: $n_ok passed, $n_bad failed"
    exit 1
fi
bin=/usr/bin/m365fwd
unit=/lib/systemd/system/m365fwd.service

out=$("$bin" --version 2>&1)
if [ "$out" = "m365fwd $upstream" ]; then
    ok "m365fwd --version says '$out'"
else
    bad "m365fwd --version says '$out', expected 'm365fwd $upstream'"
fi
check "m365fwd --help" "$bin" --help
for cmd in $("$bin" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'); do
    check "m365fwd help $cmd" "$bin" help "$cmd"
done

# normalize the installed example records, as the service user: every
# record comes out, the attack traces carry their tags.
records=/usr/share/doc/m365fwd/examples/records.ndjson
n_in=$(grep -c . "$records")
for schema in ocsf ecs raw; do
    if "${SUDO[@]}" runuser -u m365fwd -- "$bin" normalize --schema "$schema" \
        "$records" >"$tmp/$schema.ndjson" 2>"$tmp/$schema.err"; then
        n_out=$(grep -c . "$tmp/$schema.ndjson")
        if [ "$n_out" = "$n_in" ]; then
            ok "normalize --schema $schema (as user m365fwd): $n_out of $n_in records"
        else
            bad "normalize --schema $schema: $n_out records out of $n_in"
        fi
    else
        bad "normalize --schema $schema exited non-zero"
        sed 's/^/    /' "$tmp/$schema.err"
    fi
done
if python3 - "$tmp/ocsf.ndjson" <<'PY'
import json, sys
want = {"identity.login_failed", "behavior.inbox_rule_forwarding",
        "collab.anonymous_link_created", "monitor.ual_disabled"}
seen = set()
for line in open(sys.argv[1]):
    ev = json.loads(line)
    assert ev["metadata"]["version"] == "1.8.0", ev["metadata"]
    assert ev["type_uid"] == ev["class_uid"] * 100 + ev["activity_id"], ev
    seen.update(ev["metadata"].get("labels") or [])
missing = want - seen
if missing:
    sys.exit("tags missing: %s" % sorted(missing))
PY
then
    ok "OCSF events are 1.8.0 with consistent type_uid and the expected risk tags"
else
    bad "OCSF output of the example records"
fi
check "normalize with the installed tables (--tags-file/--ocsf-file/--ecs-file)" \
    "$bin" normalize --tags-file /usr/share/m365fwd/tags.yaml \
    --ocsf-file /usr/share/m365fwd/ocsf.yaml --ecs-file /usr/share/m365fwd/ecs.yaml \
    -o "$tmp/tables.ndjson" "$records"
check "report with the installed tables (--checks-file/--plan-file)" \
    "$bin" report --checks-file /usr/share/m365fwd/checks.yaml \
    --plan-file /usr/share/m365fwd/plan.yaml -o "$tmp/review.html" "$records"
printf '{"Id":"x","CreationTime":"2026-01-01T00:00:00","Operation":"UserLoggedIn"}\nnot json\n' |
    "$bin" normalize >/dev/null 2>"$tmp/bad.err"
rc=$?
if [ "$rc" = 1 ] && grep -q ':2:' "$tmp/bad.err"; then
    ok "normalize reports a bad line with its location and exits 1"
else
    bad "normalize of a bad line: exit $rc, stderr: $(head -c 200 "$tmp/bad.err")"
fi

# import through a file output, when this build has the command.
if "$bin" help import >/dev/null 2>&1; then
    cat > "$tmp/import.yaml" <<YAML
state_dir: $tmp/state
outputs:
  - name: out
    type: file
    path: $tmp/import.ndjson
YAML
    if "$bin" import -c "$tmp/import.yaml" "$records" >"$tmp/import.log" 2>&1 &&
        [ "$(grep -c . "$tmp/import.ndjson" 2>/dev/null)" = "$n_in" ]; then
        ok "import through a file output: $n_in records"
    else
        bad "import through a file output"
        sed 's/^/    /' "$tmp/import.log" | tail -n 20
    fi
else
    echo "# import: skipped (this build has no import command)"
fi

# the service user and /etc/m365fwd
pw=$(getent passwd m365fwd)
uid=$(echo "$pw" | cut -d: -f3)
shell=$(echo "$pw" | cut -d: -f7)
if [ -n "$pw" ] && [ "$uid" -lt 1000 ] && [ "$shell" = /usr/sbin/nologin ]; then
    ok "system user m365fwd (uid $uid, shell $shell)"
else
    bad "system user m365fwd: '$pw'"
fi
perm=$(stat -c '%U:%G %a' /etc/m365fwd 2>/dev/null)
if [ "$perm" = "root:m365fwd 750" ]; then
    ok "/etc/m365fwd is root:m365fwd 0750"
else
    bad "/etc/m365fwd is '$perm', expected root:m365fwd 750"
fi

# man pages: found by man, no groff warnings, every option and key covered.
if command -v man >/dev/null 2>&1; then
    check "man -w m365fwd" man -w 1 m365fwd
    check "man -w m365fwd.yaml" man -w 5 m365fwd.yaml
fi
if command -v python3 >/dev/null 2>&1; then
    check "man pages cover every command, option and configuration key" \
        python3 "$ROOT/packaging/check-man.py" --binary "$bin" \
        --config-doc "$ROOT/docs/configuration.md" \
        --man1 /usr/share/man/man1/m365fwd.1.gz \
        --man5 /usr/share/man/man5/m365fwd.yaml.5.gz
fi

# ------------------------------------------------------------- systemd
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "# systemd checks: skipped (systemd-analyze not found; apt-get install systemd)"
else
    # verify: the unit parses, the binary and the man pages it names exist
    # (the man pages only when man-db is installed: verify runs man).
    systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1
    rc=$?
    if ! command -v man >/dev/null 2>&1; then
        echo "# systemd-analyze verify: Documentation= not checked (man not installed)"
        grep -v "Command 'man " "$tmp/verify.log" > "$tmp/verify.kept"
        mv "$tmp/verify.kept" "$tmp/verify.log"
        [ -s "$tmp/verify.log" ] || rc=0
    fi
    if [ "$rc" -eq 0 ] && ! grep -q 'm365fwd' "$tmp/verify.log"; then
        ok "systemd-analyze verify $unit"
    else
        bad "systemd-analyze verify $unit"
        sed 's/^/    /' "$tmp/verify.log"
    fi
    if systemd-analyze security --offline=yes "$unit" >"$tmp/security.log" 2>&1; then
        grep -v '✓' "$tmp/security.log" | sed 's/^/    /'
        exposure=$(sed -n 's/.*Overall exposure level for m365fwd.service: \([0-9.]*\).*/\1/p' \
            "$tmp/security.log")
        if [ -z "$exposure" ]; then
            bad "systemd-analyze security printed no exposure level"
        elif awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }'; then
            ok "systemd-analyze security: exposure $exposure (at most $max_exposure)"
        else
            bad "systemd-analyze security: exposure $exposure above $max_exposure"
        fi
    else
        echo "# systemd-analyze security --offline=yes not supported here:" \
            "$(head -n 1 "$tmp/security.log")"
    fi
fi

# ------------------------------------------------------------- remove
echo "# removing"
check "dpkg -r m365fwd" "${SUDO[@]}" dpkg -r m365fwd
if [ ! -e "$bin" ] && [ ! -e "$unit" ]; then
    ok "dpkg -r removed the binary and the unit"
else
    bad "dpkg -r left $bin or $unit"
fi
check "dpkg --purge m365fwd" "${SUDO[@]}" dpkg --purge m365fwd
installed=0
if dpkg-query -W -f='${Status}' m365fwd 2>/dev/null | grep -q 'installed'; then
    bad "m365fwd still installed after purge"
elif [ -e /var/lib/m365fwd ] || [ -e /etc/m365fwd ]; then
    bad "purge left /var/lib/m365fwd or /etc/m365fwd"
else
    ok "purge removed the package, its state and /etc/m365fwd"
fi

echo "test-package: $n_ok passed, $n_bad failed"
[ "$n_bad" -eq 0 ]
