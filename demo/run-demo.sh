#!/usr/bin/env bash
# The demo a newcomer runs first:
#
#   bash demo/run-demo.sh
#
# Installs what is missing (scripts/install-deps.sh), builds with meson in
# build/, starts the bundled Management Activity API emulator with three
# tenants of ordinary activity and attack traces (demo/scenario.json,
# records from demo/make_records.py), starts a mock Kafka cluster when the
# build has one (build/tests/mock_kafka), runs `m365fwd run --once` with a
# file output (OCSF) and a Kafka output (topic m365.{tenant}.{area}), prints
# what a SOC would want to see (demo/summarize.py), then `m365fwd status`,
# and stops everything it started. Kafka messages are read back with the
# mock's own consumer (mock_kafka --consume).
#
# Environment (for tests and the curious):
#   MF_DEMO_NO_BUILD=1   do not install or build; use MF_BIN
#   MF_BIN=PATH          the m365fwd binary (default BUILD/agent/m365fwd)
#   MF_BUILD_DIR=DIR     build directory (default build)
#   MF_MOCK_KAFKA=PATH   mock Kafka cluster binary (default
#                        BUILD/tests/mock_kafka); MF_MOCK_KAFKA=none: file only
#   MF_DEMO_DIR=DIR      work directory (default: a new temporary one)
#   MF_DEMO_KEEP=1       keep the work directory (config, events, logs)
#   MF_DEMO_NOW=ISO      reference time of the records (default: now)
#   MF_DEMO_REPORT=FILE  where the review is written (default
#                        ${TMPDIR:-/tmp}/m365fwd-demo-report.html)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

build=${MF_BUILD_DIR:-build}
say() { printf '\n== [%3ss] %s\n' "$SECONDS" "$*"; }
die() { printf 'run-demo.sh: %s\n' "$*" >&2; exit 1; }

if [ "${MF_DEMO_NO_BUILD:-0}" != 1 ]; then
    say "installing dependencies and building in $build/"
    bash scripts/install-deps.sh
    if [ -d "$build" ]; then
        meson setup --reconfigure "$build" >/dev/null
    else
        meson setup "$build" >/dev/null
    fi
    ninja -C "$build" >/dev/null
fi
bin=${MF_BIN:-$build/agent/m365fwd}
[ -x "$bin" ] || die "no m365fwd binary at $bin (build first, or set MF_BIN)"
command -v python3 >/dev/null || die "python3 is needed"
command -v openssl >/dev/null || die "openssl is needed (test certificates)"

mock=${MF_MOCK_KAFKA:-$build/tests/mock_kafka}
[ "$mock" = none ] && mock=

# ---------------------------------------------------------------- cleanup
work=${MF_DEMO_DIR:-}
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/m365fwd-demo.XXXXXX")
    made_work=1
else
    mkdir -p "$work"
    made_work=0
fi
work=$(cd "$work" && pwd)
emu_pid=
kafka_pid=

# The review outlives the work directory (it is the demo's last word).
report=${MF_DEMO_REPORT:-${TMPDIR:-/tmp}/m365fwd-demo-report.html}

# shellcheck disable=SC2317  # functions run from the EXIT trap
stop_pid() {
    local pid=$1 _
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    stop_pid "$kafka_pid"
    stop_pid "$emu_pid"
    # a temporary work directory goes, unless asked to keep it or the
    # demo failed (its logs tell why)
    if [ "$made_work" = 1 ] && [ "${MF_DEMO_KEEP:-0}" != 1 ] && [ "$rc" -eq 0 ]; then
        rm -rf "$work"
    elif [ "$made_work" = 1 ]; then
        echo "run-demo.sh: work directory kept: $work" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Wait for a file to exist and be non-empty, or for a process to die.
wait_file() {
    local file=$1 pid=$2 what=$3 deadline=$((SECONDS + ${4:-60}))
    while [ ! -s "$file" ]; do
        kill -0 "$pid" 2>/dev/null || die "$what exited early; see $work"
        [ "$SECONDS" -lt "$deadline" ] || die "$what not ready after ${4:-60}s"
        sleep 0.1
    done
}

# ------------------------------------------------------------ the emulator
say "starting the Management Activity API emulator (3 tenants)"
python3 tests/emulator/mkcerts.py "$work/certs" >/dev/null
records=$work/records
python3 demo/make_records.py --out "$records" ${MF_DEMO_NOW:+--now "$MF_DEMO_NOW"}
M365EMU_CERTS=$work/certs M365FWD_DEMO_RECORDS=$records \
    python3 tests/emulator/m365emu.py -s demo/scenario.json \
    --cert "$work/certs/server.crt" --key "$work/certs/server.key" \
    --port 0 --control-port 0 --ready-file "$work/emu.ready" \
    >"$work/emu.out" 2>"$work/emu.log" &
emu_pid=$!
echo "$emu_pid" >"$work/emu.pid"
wait_file "$work/emu.ready" "$emu_pid" "the emulator" 60
read -r api_port ctl_port < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["api_port"], r["control_port"])' "$work/emu.ready")
echo "emulator: https://127.0.0.1:$api_port (control http://127.0.0.1:$ctl_port)"

# ------------------------------------------------------------ mock Kafka
brokers=
if [ -n "$mock" ] && [ -x "$mock" ]; then
    say "starting a mock Kafka cluster (librdkafka)"
    "$mock" >"$work/kafka.out" 2>"$work/kafka.log" &
    kafka_pid=$!
    echo "$kafka_pid" >"$work/kafka.pid"
    deadline=$((SECONDS + 30))
    while :; do
        brokers=$(grep -oE '[A-Za-z0-9.-]+:[0-9]+(,[A-Za-z0-9.-]+:[0-9]+)*' \
                  "$work/kafka.out" 2>/dev/null | head -n 1 || true)
        [ -n "$brokers" ] && break
        kill -0 "$kafka_pid" 2>/dev/null || die "mock_kafka exited early; see $work/kafka.log"
        [ "$SECONDS" -lt "$deadline" ] || die "mock_kafka printed no bootstrap servers within 30s"
        sleep 0.1
    done
    echo "mock Kafka: $brokers"
else
    say "no mock Kafka cluster (${mock:-disabled}): file output only"
    echo "note: build tests/tools/mock_kafka.c (ninja -C $build) to also see the Kafka output"
fi

# ------------------------------------------------------------ configuration
cfg=$work/m365fwd.yaml
umask 077
printf '%s\n' "demo-only-Secret-4f2a9c" >"$work/client.secret"
cp "$work/certs/client.key" "$work/client.key"
chmod 600 "$work/client.secret" "$work/client.key"
umask 022
events=$work/events.ocsf.ndjson
write_config() {
    echo "# written by demo/run-demo.sh"
    echo "state_dir: \"$work/state\""
    echo "log_level: info"
    echo "collect:"
    echo "  initial_lookback: 24h"
    echo "  poll_interval: 5s"
    echo "  max_concurrency: 8"
    echo "  requests_per_minute: 100000"
    echo "  request_timeout: 20s"
    echo "  max_backoff: 2s"
    echo "tenants:"
    for t in contoso:6b2f3a10-1c4d-4e5f-8a9b-0c1d2e3f4a51:secret \
             fabrikam:7c3a4b21-2d5e-4f60-9b0c-1d2e3f4a5b62:secret \
             northwind:8d4b5c32-3e6f-4071-8c1d-2e3f4a5b6c73:certificate; do
        IFS=: read -r name id cred <<<"$t"
        echo "  - name: $name"
        echo "    id: \"$id\""
        echo "    client_id: \"5e1f0a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b\""
        if [ "$cred" = secret ]; then
            echo "    client_secret_file: \"$work/client.secret\""
        else
            echo "    certificate_file: \"$work/certs/client.crt\""
            echo "    private_key_file: \"$work/client.key\""
        fi
        echo "    login_endpoint: \"https://127.0.0.1:$api_port\""
        echo "    api_endpoint: \"https://127.0.0.1:$api_port\""
        echo "    ca_file: \"$work/certs/ca.crt\""
    done
    echo "outputs:"
    echo "  - name: soc-file"
    echo "    type: file"
    echo "    schema: ocsf"
    echo "    path: \"$events\""
    if [ -n "$brokers" ]; then
        echo "  - name: soc-kafka"
        echo "    type: kafka"
        echo "    schema: ocsf"
        echo "    brokers: \"$brokers\""
        echo "    topic: \"m365.{tenant}.{area}\""
        echo "    flush_timeout: 20s"
    fi
}
write_config >"$cfg"

# ------------------------------------------------------------ collection
run_once() {
    say "m365fwd run -c $cfg --once"
    set +e
    "$bin" run -c "$cfg" --once --timeout 120 2>"$work/agent.log"
    run_rc=$?
    set -e
}
run_once
if [ "$run_rc" -eq 2 ] && [ -n "$brokers" ] &&
   grep -q "not available in this build" "$work/agent.log"; then
    sed 's/^/  /' "$work/agent.log"
    echo "note: this m365fwd has no Kafka output; running with the file output only"
    stop_pid "$kafka_pid"
    kafka_pid=
    brokers=
    write_config >"$cfg"
    run_once
fi
echo "exit status $run_rc; the agent's log (last lines of $work/agent.log):"
tail -n 15 "$work/agent.log" | sed 's/^/  /'

say "reading back what the emulator served and what each output received"

# What the emulator served (the truth to compare the outputs with).
python3 - "$ctl_port" "$work/served.json" <<'EOF'
import json, sys, urllib.request
url = "http://127.0.0.1:%s/_control/served" % sys.argv[1]
with urllib.request.urlopen(url, timeout=30) as r:
    served = json.load(r)
stats_url = "http://127.0.0.1:%s/_control/stats" % sys.argv[1]
with urllib.request.urlopen(stats_url, timeout=30) as r:
    served["stats"] = json.load(r).get("counters", {})
with open(sys.argv[2], "w") as f:
    json.dump(served, f)
EOF

# What reached Kafka, read back from the beginning of every m365.* topic
# (one line per message: topic, partition, offset, m365fwd-id header).
kafka_args=()
if [ -n "$brokers" ]; then
    n_file=$(grep -c . "$events" 2>/dev/null || true)
    "$mock" --consume "$brokers" '^m365\..*' --count "${n_file:-0}" \
        --timeout 20 >"$work/kafka-messages.tsv" 2>"$work/kafka-consume.log" || true
    kafka_args=(--kafka-messages "$work/kafka-messages.tsv")
fi

# ------------------------------------------------------------ the SOC view
summary_rc=0
if [ -s "$events" ]; then
    say "what a SOC would want to see"
    python3 demo/summarize.py --events "$events" --served "$work/served.json" \
        --expected "$records/expected.json" ${kafka_args[@]+"${kafka_args[@]}"} \
        --json "$work/summary.json" || summary_rc=$?
else
    echo "run-demo.sh: nothing arrived in $events; see $work/agent.log" >&2
    summary_rc=1
fi

say "m365fwd status -c $cfg"
"$bin" status -c "$cfg" || true

# ------------------------------------------------------------ the review
# From the rollup `run` kept in the state directory as it delivered: the
# two days around the records' reference time.
if [ -n "${MF_DEMO_NOW:-}" ]; then
    to_day=$(date -u -d "$MF_DEMO_NOW" +%F)
else
    to_day=$(date -u +%F)
fi
from_day=$(date -u -d "$to_day - 1 day" +%F)
say "m365fwd report -c $cfg --from $from_day --to $to_day -o $report"
report_rc=0
"$bin" report -c "$cfg" --from "$from_day" --to "$to_day" -o "$report" || report_rc=$?

echo
echo "events (OCSF): $events"
[ "${MF_DEMO_KEEP:-0}" = 1 ] || [ "$made_work" = 0 ] || \
    echo "(removed at exit; MF_DEMO_KEEP=1 keeps them)"
echo "the security and governance review of the three tenants: $report"
[ "$run_rc" -ne 0 ] && exit "$run_rc"
[ "$report_rc" -ne 0 ] && exit "$report_rc"
exit "$summary_rc"
