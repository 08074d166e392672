#!/usr/bin/env bash
# Benchmark `m365fwd report` against `normalize` on the same export, the
# HTML size of a 1,000,000-record export, and the rollup's cost and
# footprint in `import`. See bench/README.md ("Report benchmark").
#
#   bench/report-bench.sh [options]
#     --records N   export size for the rates (default 200000)
#     --big N       records streamed for the HTML size (default 1000000)
#     --days N      days the export spans (default 365)
#     --runs N      runs per case, median reported (default 3)
#     --quick       20000 records, 100000 streamed, 1 run (a smoke test)
#     --no-import   skip the import with/without rollup measurement
#   env MF_BENCH_DIR    work files + results (default bench/work, git-ignored)
#   env MF_BENCH_BUILD  release build dir (default build-release)
#
# Exit 0 when every target is met, 1 when one is not, 2 on errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --records|--big|--days|--runs)
            [ $# -ge 2 ] || { echo "report-bench.sh: $1 needs a value" >&2; exit 2; }
            args+=("$1" "$2"); shift ;;
        --quick) args+=(--records 20000 --big 100000 --runs 1) ;;
        --no-import) args+=(--no-import) ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "report-bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

WORK=${MF_BENCH_DIR:-$ROOT/bench/work}
BUILD=${MF_BENCH_BUILD:-$ROOT/build-release}
mkdir -p "$WORK"

echo "==> release build ($BUILD)" >&2
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$BUILD" --buildtype=release -Dtests=disabled \
        >"$WORK/meson-setup.log" 2>&1 || { cat "$WORK/meson-setup.log" >&2; exit 2; }
else
    meson setup "$BUILD" --buildtype=release -Dtests=disabled \
        >"$WORK/meson-setup.log" 2>&1 || { cat "$WORK/meson-setup.log" >&2; exit 2; }
fi
ninja -C "$BUILD" agent/m365fwd >&2 || exit 2

echo "==> measuring" >&2
rc=0
python3 bench/report_bench.py --bin "$BUILD/agent/m365fwd" --work "$WORK" \
    --json "$WORK/report-results.json" "${args[@]}" | tee "$WORK/report-results.txt" || rc=$?
echo "(table saved in $WORK/report-results.txt, details in $WORK/report-results.json)" >&2
exit "$rc"
