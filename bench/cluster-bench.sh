#!/usr/bin/env bash
# Cluster mode benchmark (issue 14): the cost of exactly-once (one agent with
# and without `cluster`, same emulated corpus, a real Kafka broker) and the
# takeover time after kill -9. Printed figures, not a timed test. See
# bench/cluster_bench.py and bench/README.md.
#
#   bench/cluster-bench.sh [options passed to cluster_bench.py]
#     --quick                 smoke run (20 blobs, 1 run, 20 tenants, one session timeout)
#     --blobs N               1000-record blobs of the exactly-once runs (default 100)
#     --runs N                runs per mode, median reported (default 3)
#     --tenants N             tenants of the takeover measurement (default 40)
#     --sessions 6000,10000   session.timeout.ms values of the takeover measurement
#     --schema ocsf|ecs|raw   output schema (default ocsf)
#     --skip-eos / --skip-takeover
#   env MF_BENCH_BUILD  release build dir (default build-release-kafka: the
#                       agent and tests/kafka_client, which the broker harness needs)
#   env MF_BENCH_KEEP=1 keep the temp dir (configs, logs)
#
# Exit 0 when the target (cluster >= 0.8 x single) is met, 1 when missed, 2 on errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
case "${1:-}" in
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

BUILD=${MF_BENCH_BUILD:-$ROOT/build-release-kafka}
echo "==> release build ($BUILD)" >&2
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$BUILD" --buildtype=release >/dev/null || exit 2
else
    meson setup "$BUILD" --buildtype=release >/dev/null || exit 2
fi
ninja -C "$BUILD" agent/m365fwd tests/kafka_client >&2 || exit 2

echo "==> measuring (nproc $(nproc), $(uname -m))" >&2
MF_BUILD_ROOT=$BUILD exec python3 bench/cluster_bench.py --binary "$BUILD/agent/m365fwd" "$@"
