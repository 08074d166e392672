#!/usr/bin/env bash
# Pipeline benchmark (issue 10): import to Kafka, and to a file + Kafka +
# syslog at once, against `normalize --schema ocsf`, in one run. See
# bench/README.md ("Pipeline benchmark").
#
#   bench/pipeline-bench.sh [--records N] [--runs N] [--quick] [--no-shared]
#   env MF_BENCH_DIR    work dir (default bench/work; this uses its pipeline/)
#   env MF_BENCH_BUILD  release build dir (default build-release)
# Exit 0 when every target is met, 1 when one is missed, 2 on errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
records=100000
runs=3
gen_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --records) shift; records=${1:-} ;;
        --runs) shift; runs=${1:-} ;;
        --quick) records=20000; runs=1 ;;
        --no-shared) gen_args+=(--no-shared) ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "pipeline-bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
WORK=${MF_BENCH_DIR:-$ROOT/bench/work}/pipeline
BUILD=${MF_BENCH_BUILD:-$ROOT/build-release}
mkdir -p "$WORK"
echo "==> release build ($BUILD)" >&2
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$BUILD" --buildtype=release -Dtests=disabled >"$WORK/setup.log" 2>&1
else
    meson setup "$BUILD" --buildtype=release -Dtests=disabled >"$WORK/setup.log" 2>&1
fi || { cat "$WORK/setup.log" >&2; exit 2; }
ninja -C "$BUILD" agent/m365fwd bench/forward-bench-hwm bench/forward-bench-tcp >&2 || exit 2
echo "==> corpus ($WORK)" >&2
python3 bench/gen_corpus.py --out "$WORK" --records "$records" --array-mb 1 \
    "${gen_args[@]}" >/dev/null || exit 2
echo "==> measuring (median of $runs)" >&2
rc=0
python3 bench/pipeline_bench.py --bin "$BUILD/agent/m365fwd" \
    --hwm "$BUILD/bench/forward-bench-hwm" --tcp "$BUILD/bench/forward-bench-tcp" \
    --corpus "$WORK/corpus.ndjson" --conf "$ROOT/bench/conf" --work "$WORK/runs" \
    --runs "$runs" --json "$WORK/results.json" | tee "$WORK/results.txt" || rc=$?
exit "$rc"
