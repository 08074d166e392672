#!/usr/bin/env bash
# Run all the tests (the README's test command; CI runs this via .ci/run).
#
#   1. scripts/install-deps.sh (only touches apt when something is missing)
#   2. build/       normal build with -Dwerror=true, all meson tests
#   3. build-asan/  ASan+UBSan build, unit and script suites
#   4. build-fuzz/  clang-14 + libFuzzer build, short fuzz_normalize smoke run
#   5. build-deb/   Debian package: build, dpkg -i, run, systemd-analyze, remove
#                   (skipped with a message when clang-14/libFuzzer do not work
#                   or the target does not exist yet)
#
# Re-runnable: existing build dirs are reconfigured. Stops at the first
# failure with a non-zero exit. The last line is always
# "N passed, N failed[, N skipped]" summed over all meson test runs (a failed
# build or fuzz step counts as one failure).
#
# Options:
#   --no-deps        skip scripts/install-deps.sh     (env MF_SKIP_DEPS=1)
#   --no-asan        skip the sanitizer build         (env MF_SKIP_ASAN=1)
#   --no-fuzz        skip the fuzz smoke run          (env MF_SKIP_FUZZ=1)
#   --no-pkg         skip the Debian package check    (env MF_SKIP_PKG=1)
#   --fuzz-time N    seconds of fuzzing (default 30)  (env MF_FUZZ_TIME)
#   env MF_BUILD_DIR=x   use x/, x-asan/, x-fuzz/ instead of build*/
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

skip_deps=${MF_SKIP_DEPS:-0}
skip_asan=${MF_SKIP_ASAN:-0}
skip_fuzz=${MF_SKIP_FUZZ:-0}
skip_pkg=${MF_SKIP_PKG:-0}
fuzz_time=${MF_FUZZ_TIME:-30}
# Build dir names: build/, build-asan/, build-fuzz/ (prefix overridable).
B=${MF_BUILD_DIR:-build}

while [ $# -gt 0 ]; do
    case "$1" in
        --no-deps) skip_deps=1 ;;
        --no-asan) skip_asan=1 ;;
        --no-fuzz) skip_fuzz=1 ;;
        --no-pkg) skip_pkg=1 ;;
        --fuzz-time)
            shift
            fuzz_time=${1:-}
            ;;
        -h|--help)
            sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "test.sh: unknown option '$1' (try --help)" >&2
            exit 2
            ;;
    esac
    shift
done
case "$fuzz_time" in
    ''|*[!0-9]*|0)
        echo "test.sh: --fuzz-time needs a positive whole number of seconds" >&2
        exit 2
        ;;
esac

n_pass=0
n_fail=0
n_skip=0
done_steps=()
tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/m365fwd-test.XXXXXX")
trap 'rm -rf "$tmpdir"' EXIT

summary_line()
{
    local line="$n_pass passed, $n_fail failed"
    if [ "$n_skip" -gt 0 ]; then
        line="$line, $n_skip skipped"
    fi
    echo "$line"
}

# fail STEP: report and stop. A step that is not a meson test run (build,
# configure, fuzz) counts as one failure so the final line never says 0.
fail()
{
    local step=$1 counted=${2:-0}
    if [ "$counted" -eq 0 ]; then
        n_fail=$((n_fail + 1))
    fi
    echo
    echo "test.sh: FAILED at step: $step"
    if [ ${#done_steps[@]} -gt 0 ]; then
        echo "test.sh: steps passed before it: ${done_steps[*]}"
    fi
    summary_line
    exit 1
}

banner()
{
    echo
    echo "==> $*"
}

# setup_dir DIR [meson options...]: configure DIR, or reconfigure it when it
# already holds a meson build (falls back to --wipe if that fails).
setup_dir()
{
    local dir=$1
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "$@" ||
            meson setup --wipe "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi
}

# count_of LABEL LOG: the number after "LABEL:" in meson's test summary.
count_of()
{
    sed -n "s/^$1:[[:space:]]*\([0-9][0-9]*\).*/\1/p" "$2" | tail -n 1
}

# meson_tests NAME DIR [meson test args...]: run meson test, show its output
# (which ends with meson's own Ok:/Fail: summary) and add its counts.
meson_tests()
{
    local name=$1 dir=$2 log rc ok xfail bad xpass skip tout failed
    shift 2
    log="$tmpdir/$name.log"
    meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    ok=$(count_of 'Ok' "$log")
    xfail=$(count_of 'Expected Fail' "$log")
    bad=$(count_of 'Fail' "$log")
    xpass=$(count_of 'Unexpected Pass' "$log")
    skip=$(count_of 'Skipped' "$log")
    tout=$(count_of 'Timeout' "$log")
    failed=$((${bad:-0} + ${xpass:-0} + ${tout:-0}))
    n_pass=$((n_pass + ${ok:-0} + ${xfail:-0}))
    n_fail=$((n_fail + failed))
    n_skip=$((n_skip + ${skip:-0}))
    if [ "$rc" -ne 0 ] || [ "$failed" -gt 0 ]; then
        if [ "$failed" -gt 0 ]; then
            fail "$name ($failed failed, meson test exited $rc)" 1
        fi
        fail "$name (meson test exited $rc)"
    fi
    if [ -z "$ok" ]; then
        echo "test.sh: $name: meson reported no test summary (no tests defined?)"
    fi
}

# fuzz_works: can clang-14 build and run a libFuzzer target here?
fuzz_works()
{
    command -v clang-14 >/dev/null 2>&1 || return 1
    cat > "$tmpdir/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data;
    (void)size;
    return 0;
}
EOF
    clang-14 -fsanitize=fuzzer,address,undefined -o "$tmpdir/probe" \
        "$tmpdir/probe.c" >"$tmpdir/probe.log" 2>&1 || return 1
    "$tmpdir/probe" -runs=1 >>"$tmpdir/probe.log" 2>&1 || return 1
    return 0
}

# ---------------------------------------------------------------- deps
if [ "$skip_deps" = 1 ]; then
    banner "dependencies: skipped (--no-deps)"
else
    banner "dependencies"
    bash scripts/install-deps.sh || fail "install-deps"
    done_steps+=(deps)
fi

# ---------------------------------------------------------------- normal
banner "normal build ($B/, -Dwerror=true)"
setup_dir "$B" -Dwerror=true || fail "configure $B/"
ninja -C "$B" || fail "build $B/"
banner "tests ($B/)"
meson_tests "tests" "$B"
done_steps+=(normal)

# ---------------------------------------------------------------- asan
if [ "$skip_asan" = 1 ]; then
    banner "ASan+UBSan: skipped (--no-asan)"
else
    banner "ASan+UBSan build ($B-asan/)"
    setup_dir "$B-asan" -Db_sanitize=address,undefined -Db_lundef=false ||
        fail "configure $B-asan/"
    ninja -C "$B-asan" || fail "build $B-asan/"
    banner "tests under ASan+UBSan ($B-asan/, suites unit and script)"
    export ASAN_OPTIONS=detect_leaks=1
    export LSAN_OPTIONS=suppressions=$ROOT/tests/support/lsan.supp
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    meson_tests "asan-tests" "$B-asan" --suite unit --suite script \
        --timeout-multiplier 3
    unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
    done_steps+=(asan)
fi

# ---------------------------------------------------------------- fuzz
fuzz_src=tests/fuzz/fuzz_normalize.c
if [ "$skip_fuzz" = 1 ]; then
    banner "fuzz smoke: skipped (--no-fuzz)"
elif [ ! -f "$fuzz_src" ]; then
    banner "fuzz smoke: skipped ($fuzz_src does not exist)"
elif ! fuzz_works; then
    banner "fuzz smoke: skipped (clang-14 with libFuzzer does not work here;" \
        "install clang-14 libclang-rt-14-dev)"
    sed 's/^/    /' "$tmpdir/probe.log" | tail -n 5
else
    banner "fuzz build ($B-fuzz/, clang-14, -Dfuzz=true)"
    # -Dfuzz=true gives the whole program coverage instrumentation
    # (fuzzer-no-link, see meson.build) and the sanitizers come with it, so
    # libFuzzer is guided by the normalizer's code, not only by the target.
    # A fuzz dir configured with another compiler cannot be switched by a
    # reconfigure: start it afresh.
    if [ -f "$B-fuzz/build.ninja" ] &&
        ! grep -q 'clang-14' "$B-fuzz/build.ninja"; then
        rm -rf "$B-fuzz"
    fi
    CC=clang-14 setup_dir "$B-fuzz" -Dfuzz=true \
        -Db_sanitize=address,undefined -Db_lundef=false ||
        fail "configure $B-fuzz/"
    ninja -C "$B-fuzz" tests/fuzz_normalize || fail "build fuzz_normalize"
    banner "fuzz smoke run (${fuzz_time}s)"
    mkdir -p "$tmpdir/corpus"
    seeds=()
    if [ -d tests/fuzz/corpus ]; then
        seeds+=(tests/fuzz/corpus)
    fi
    # New inputs go to a temp dir (never into the repo); crash artifacts to
    # the fuzz build dir.
    ASAN_OPTIONS=detect_leaks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$B-fuzz/tests/fuzz_normalize" -max_total_time="$fuzz_time" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$ROOT/$B-fuzz/" \
        "$tmpdir/corpus" "${seeds[@]}" >"$tmpdir/fuzz.log" 2>&1
    rc=$?
    cp "$tmpdir/fuzz.log" "$B-fuzz/fuzz-smoke.log"
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$tmpdir/fuzz.log"
        fail "fuzz smoke (exit $rc, full log: $B-fuzz/fuzz-smoke.log)"
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' \
        "$tmpdir/fuzz.log" | sed 's/^/    /'
    echo "fuzz smoke: no crash in ${fuzz_time}s (log: $B-fuzz/fuzz-smoke.log)"
    done_steps+=(fuzz)
fi

# ---------------------------------------------------------------- package
if [ "$skip_pkg" = 1 ]; then
    banner "Debian package: skipped (--no-pkg)"
else
    banner "Debian package (packaging/test-package.sh: build, dpkg -i, run, verify, remove)"
    bash packaging/test-package.sh -b "$B-deb"
    case $? in
        0)  n_pass=$((n_pass + 1)); done_steps+=(package) ;;
        77) n_skip=$((n_skip + 1)) ;;
        *)  fail "package (packaging/test-package.sh)" ;;
    esac
fi

echo
echo "test.sh: all steps passed: ${done_steps[*]}"
summary_line
if [ "$n_fail" -gt 0 ]; then
    exit 1
fi
exit 0
