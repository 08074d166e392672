#!/usr/bin/env bash
# Benchmark `m365fwd normalize` against a plain jansson parse+dump floor.
# See bench/README.md.
#
#   bench/normalize-bench.sh [options]
#     --records N     NDJSON corpus size (default 200000)
#     --array-mb N    size of the single-array corpus in MB (default 300)
#     --runs N        runs per case, median reported (default 3)
#     --quick         20000 records, 30 MB array, 1 run (a smoke test)
#     --no-array      skip the single-array RSS case
#     --no-shared     do not use ../shared/corpus/det-eng-samples
#     --force         regenerate the corpora
#   env MF_BENCH_DIR    corpora + results (default bench/work, git-ignored)
#   env MF_BENCH_BUILD  release build dir (default build-release)
#
# Exit 0 when every target is met, 1 when one is not, 2 on errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

records=200000
array_mb=300
runs=3
gen_args=()
run_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --records) shift; records=${1:-} ;;
        --array-mb) shift; array_mb=${1:-} ;;
        --runs) shift; runs=${1:-} ;;
        --quick) records=20000; array_mb=30; runs=1 ;;
        --no-array) run_args+=(--no-array) ;;
        --no-shared) gen_args+=(--no-shared) ;;
        --force) gen_args+=(--force) ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "normalize-bench.sh: unknown option '$1' (try --help)" >&2
           exit 2 ;;
    esac
    shift
done
for v in "$records" "$array_mb" "$runs"; do
    case "$v" in
        ''|*[!0-9]*|0)
            echo "normalize-bench.sh: sizes and runs must be positive integers" >&2
            exit 2 ;;
    esac
done

WORK=${MF_BENCH_DIR:-$ROOT/bench/work}
BUILD=${MF_BENCH_BUILD:-$ROOT/build-release}
mkdir -p "$WORK"

echo "==> release build ($BUILD)" >&2
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$BUILD" --buildtype=release -Dtests=disabled \
        >"$WORK/meson-setup.log" 2>&1 ||
        { cat "$WORK/meson-setup.log" >&2; exit 2; }
else
    meson setup "$BUILD" --buildtype=release -Dtests=disabled \
        >"$WORK/meson-setup.log" 2>&1 ||
        { cat "$WORK/meson-setup.log" >&2; exit 2; }
fi
ninja -C "$BUILD" agent/m365fwd bench/normalize-floor >&2 || exit 2

echo "==> corpora ($WORK)" >&2
python3 bench/gen_corpus.py --out "$WORK" --records "$records" \
    --array-mb "$array_mb" "${gen_args[@]}" >/dev/null || exit 2

echo "==> measuring" >&2
rc=0
python3 bench/run_bench.py --bin "$BUILD/agent/m365fwd" \
    --floor "$BUILD/bench/normalize-floor" --work "$WORK" --runs "$runs" \
    --json "$WORK/results.json" "${run_args[@]}" | tee "$WORK/results.txt" ||
    rc=$?
echo "==> OCSF class census" >&2
echo >>"$WORK/results.txt"
python3 bench/ocsf-census.py "$BUILD/agent/m365fwd" | tee -a "$WORK/results.txt" ||
    { [ "$rc" -eq 0 ] && rc=1; }
echo "(table saved in $WORK/results.txt, details in $WORK/results.json)" >&2
exit "$rc"
