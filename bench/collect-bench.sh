#!/usr/bin/env bash
# Collection benchmark of `m365fwd run` against the emulator (issue 3 §7).
# Printed figures, not a timed test. See bench/collect_bench.py.
#
#   bench/collect-bench.sh [options passed to collect_bench.py]
#     --quick                 smoke run (40 blobs, 50 tenants, 5 s idle)
#     --concurrency 1,4,16    max_concurrency values measured
#     --blobs N               1000-record blobs in the emulator (default 240)
#     --latency 100ms         latency injected per request
#     --tenants N             tenants of the idle measurement (default 1000)
#     --idle S                seconds of idle measurement (default 30)
#     --schema ocsf|ecs|raw   output schema (default ocsf)
#     --skip-throughput / --skip-tenants
#   env MF_BENCH_BUILD  release build dir (default build-release)
#   env MF_BENCH_KEEP=1 keep the temp dir (configs, logs)
#
# Exit 0 when the measurements ran, 2 on errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
case "${1:-}" in
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

BUILD=${MF_BENCH_BUILD:-$ROOT/build-release}
echo "==> release build ($BUILD)" >&2
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$BUILD" --buildtype=release -Dtests=disabled \
        >/dev/null || exit 2
else
    meson setup "$BUILD" --buildtype=release -Dtests=disabled >/dev/null ||
        exit 2
fi
ninja -C "$BUILD" agent/m365fwd >&2 || exit 2

echo "==> measuring (nproc $(nproc), $(uname -m))" >&2
exec python3 bench/collect_bench.py --binary "$BUILD/agent/m365fwd" "$@"
