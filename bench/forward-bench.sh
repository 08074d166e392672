#!/usr/bin/env bash
# Forwarding benchmark: `m365fwd import` to Kafka and to syslog/TCP against
# rsyslog, syslog-ng, kcat and a plain socket writer. See bench/README.md.
#
#   bench/forward-bench.sh [options]
#     --records N     corpus size (default 200000)
#     --runs N        runs per subject, median reported (default 3)
#     --quick         20000 records, 1 run (a smoke test)
#     --pin           taskset: mock broker on CPU 0, subjects on CPU 1
#     --skip SUBJECT  leave out kcat|m365fwd|rsyslog|syslog-ng|
#                     m365fwd-syslog|writer-line|writer-buffered (repeatable)
#     --no-install    never apt-get (subjects whose tools are missing are skipped)
#     --no-shared     do not use ../shared/corpus/det-eng-samples
#     --force         regenerate the corpus
#   env MF_BENCH_DIR    work dir (default bench/work; this uses its forward/)
#   env MF_BENCH_BUILD  release build dir (default build-release)
#
# Benchmark-only tools are installed here when missing (root, apt-get:
# rsyslog rsyslog-kafka kcat, never removing a package), so CI does not pay
# for them. syslog-ng conflicts with rsyslog in Debian: it is fetched with
# `apt-get download` and unpacked with `dpkg-deb -x` under the work dir.
# Exit 0 when every target is met, 1 when one is missed, 2 on errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

records=200000
runs=3
install=1
gen_args=()
run_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --records) shift; records=${1:-} ;;
        --runs) shift; runs=${1:-} ;;
        --quick) records=20000; runs=1 ;;
        --pin) run_args+=(--pin) ;;
        --skip) shift; run_args+=(--skip "${1:-}") ;;
        --no-install) install=0 ;;
        --no-shared) gen_args+=(--no-shared) ;;
        --force) gen_args+=(--force) ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "forward-bench.sh: unknown option '$1' (try --help)" >&2
           exit 2 ;;
    esac
    shift
done
for v in "$records" "$runs"; do
    case "$v" in
        ''|*[!0-9]*|0)
            echo "forward-bench.sh: --records and --runs must be positive integers" >&2
            exit 2 ;;
    esac
done

WORK=${MF_BENCH_DIR:-$ROOT/bench/work}/forward
BUILD=${MF_BENCH_BUILD:-$ROOT/build-release}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
note() { echo "==> $*" >&2; }

# --- tools -----------------------------------------------------------------
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

missing=()
have_pkg rsyslog-kafka || missing+=(rsyslog-kafka)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$install" = 1 ] && [ "$(id -u)" = 0 ]; then
        note "installing benchmark-only packages: ${missing[*]}"
        # --no-remove: never replace the system logger (syslog-ng-core
        # conflicts with rsyslog); the subject is skipped instead.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-remove \
            --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1 ||
            note "apt-get install failed (see $WORK/apt.log): the subjects needing ${missing[*]} are skipped"
    else
        note "missing ${missing[*]} (apt-get install ${missing[*]} as root): those subjects are skipped"
    fi
fi
if ! have_pkg rsyslog-kafka; then run_args+=(--skip rsyslog); fi
if ! command -v kcat >/dev/null 2>&1; then
    note "kcat is missing: the kcat subject and the output check are skipped"
    run_args+=(--skip kcat --no-check-output)
fi

# syslog-ng from an unpacked tree (it conflicts with rsyslog in Debian).
SNG=$WORK/syslog-ng
sng_ok=0
sng_bin=$SNG/root/usr/sbin/syslog-ng
sng_libs=$SNG/root/usr/lib/syslog-ng:$SNG/root/usr/lib/x86_64-linux-gnu
sng_check() {
    [ -x "$sng_bin" ] && [ -n "$(ls "$SNG"/root/usr/lib/syslog-ng/3.*/libkafka.so 2>/dev/null)" ] &&
        ! LD_LIBRARY_PATH=$sng_libs ldd "$sng_bin" \
            "$SNG"/root/usr/lib/syslog-ng/3.*/libkafka.so \
            "$SNG"/root/usr/lib/syslog-ng/3.*/libjson-plugin.so \
            "$SNG"/root/usr/lib/syslog-ng/3.*/libaffile.so 2>/dev/null |
            grep -q 'not found'
}
if sng_check; then
    sng_ok=1
elif command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    note "fetching syslog-ng (apt-get download + dpkg-deb -x into $SNG)"
    rm -rf "$SNG" && mkdir -p "$SNG/debs" "$SNG/root"
    pkgs=(syslog-ng-core syslog-ng-mod-rdkafka)
    # runtime libraries they need that are not installed (first alternative)
    for dep in $(apt-cache depends "${pkgs[@]}" 2>/dev/null |
                 awk '$1 == "Depends:" && $2 !~ /^</ { print $2 }' | sort -u); do
        case "$dep" in syslog-ng-*) continue ;; esac
        have_pkg "$dep" || pkgs+=("$dep")
    done
    if (cd "$SNG/debs" && apt-get download "${pkgs[@]}") >"$SNG/download.log" 2>&1; then
        for deb in "$SNG"/debs/*.deb; do dpkg-deb -x "$deb" "$SNG/root"; done
        if sng_check; then sng_ok=1; else
            note "the unpacked syslog-ng misses libraries (ldd): syslog-ng skipped"
        fi
    else
        note "apt-get download failed (see $SNG/download.log): syslog-ng skipped"
    fi
fi
if [ "$sng_ok" = 1 ]; then
    run_args+=(--syslog-ng-root "$SNG/root")
else
    run_args+=(--skip syslog-ng)
fi

# --- build and corpus --------------------------------------------------------
note "release build ($BUILD)"
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$BUILD" --buildtype=release -Dtests=disabled \
        >"$WORK/meson-setup.log" 2>&1 ||
        { cat "$WORK/meson-setup.log" >&2; exit 2; }
else
    meson setup "$BUILD" --buildtype=release -Dtests=disabled \
        >"$WORK/meson-setup.log" 2>&1 ||
        { cat "$WORK/meson-setup.log" >&2; exit 2; }
fi
ninja -C "$BUILD" agent/m365fwd bench/forward-bench-hwm bench/forward-bench-tcp >&2 ||
    exit 2

note "corpus ($WORK)"
python3 bench/gen_corpus.py --out "$WORK" --records "$records" --array-mb 1 \
    "${gen_args[@]}" >/dev/null || exit 2

note "measuring (median of $runs)"
rc=0
python3 bench/forward_bench.py --bin "$BUILD/agent/m365fwd" \
    --hwm "$BUILD/bench/forward-bench-hwm" --tcp "$BUILD/bench/forward-bench-tcp" \
    --corpus "$WORK/corpus.ndjson" --work "$WORK" --conf "$ROOT/bench/conf" \
    --runs "$runs" --json "$WORK/results.json" "${run_args[@]}" |
    tee "$WORK/results.txt" || rc=$?
echo "(table saved in $WORK/results.txt, every run in $WORK/results.json)" >&2
exit "$rc"
