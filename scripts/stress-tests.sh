#!/usr/bin/env bash
# Run the tests that used to be flaky (issue 11 defect 10) again and again
# beside a CPU hog, to show they control their own timing.
#
#   scripts/stress-tests.sh [-n RUNS] [BUILD_DIR]     (default 10 runs, build/)
#
# Each run: tests/syslog/test_syslog.py (restart and crash cases),
# tests/service/test_service.py and the output fault scenarios that put a
# fault in place at a moment they choose (tests/faults: syslog stall then
# reset, RELP with rsyslog killed, Kafka outage, SIGTERM with a stuck
# output, file rotated), with `stress-ng -c 2` (Debian package stress-ng,
# in scripts/install-deps.sh) loading the CPUs the whole time.
# Prints one line per run and "N runs, N failed"; exits 1 when one failed.
set -uo pipefail

runs=10
while [ $# -gt 0 ]; do
    case "$1" in
        -n) shift; runs=${1:-} ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
    shift
done
case "$runs" in ''|*[!0-9]*|0) echo "stress-tests.sh: -n needs a positive number" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${1:-$ROOT/build}
BIN=$B/agent/m365fwd
if [ ! -x "$BIN" ]; then
    echo "stress-tests.sh: $BIN not built (ninja -C $B)" >&2
    exit 2
fi
if ! command -v stress-ng >/dev/null 2>&1; then
    echo "stress-tests.sh: stress-ng missing (scripts/install-deps.sh)" >&2
    exit 2
fi
log=$(mktemp -d "${TMPDIR:-/tmp}/m365fwd-stress.XXXXXX")
stress-ng -c 2 --timeout 0 >/dev/null 2>&1 &
hog=$!
trap 'kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null' EXIT
failed=0
for i in $(seq 1 "$runs"); do
    ok=1
    python3 "$ROOT/tests/syslog/test_syslog.py" "$BIN" -k restart -k crash \
        >"$log/syslog-$i.log" 2>&1 || ok=0
    python3 "$ROOT/tests/service/test_service.py" "$BIN" \
        >"$log/service-$i.log" 2>&1 || ok=0
    MF_BUILD_ROOT=$B python3 "$ROOT/tests/faults/run_faults.py" "$BIN" -k syslog-stall \
        -k relp -k kafka-outage -k sigterm-stuck -k file-rotated \
        >"$log/faults-$i.log" 2>&1 || ok=0
    if [ "$ok" = 1 ]; then
        echo "run $i: ok"
    else
        failed=$((failed + 1))
        echo "run $i: FAILED (logs in $log)"
    fi
done
echo "$runs runs, $failed failed"
[ "$failed" -eq 0 ] && rm -rf "$log"
[ "$failed" -eq 0 ]
