#!/usr/bin/env bash
# Install what the build, the tests and the benchmark need on Debian 12.
# Fast on a warm machine: apt is only touched when a package is missing.
# Java 17 and Maven are for the tests only: they run Apache Kafka itself
# (tests/kafka/), whose jars Maven takes from Maven Central into ~/.m2 on the
# first run.
# Runs as root, or through sudo when available.
#
#   scripts/install-deps.sh           install what is missing
#   scripts/install-deps.sh --check   only report; exit 1 when something is missing
set -euo pipefail

PACKAGES=(
    build-essential pkg-config meson ninja-build
    libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev librdkafka-dev
    librelp-dev
    check libsqlite3-dev libmicrohttpd-dev libmaxminddb-dev
    python3 python3-yaml
    clang-14 libclang-rt-14-dev
    jq time
    rsyslog rsyslog-gnutls rsyslog-relp
    openjdk-17-jre-headless maven
    chromium nodejs
    faketime stress-ng
)

# The report's browser test drives Debian's chromium with playwright-core
# from npm (tests/report/browser/package-lock.json; no browser download).
browser_test_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/report/browser
npm_deps() {
    if [ ! -f "$browser_test_dir/package-lock.json" ] ||
       [ -d "$browser_test_dir/node_modules/playwright-core" ]; then
        return 0
    fi
    if [ "$check_only" -eq 1 ]; then
        echo "install-deps.sh: missing: npm packages of $browser_test_dir"
        return 1
    fi
    echo "install-deps.sh: npm ci in $browser_test_dir"
    (cd "$browser_test_dir" &&
     PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
}

check_only=0
case "${1:-}" in
    --check) check_only=1 ;;
    "") ;;
    -h|--help)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    *)
        echo "install-deps.sh: unknown option '$1' (try --help)" >&2
        exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

# nodejs from another source (NodeSource) brings its own npm; Debian's
# nodejs needs the npm package
if ! command -v npm >/dev/null 2>&1 && [ "$(dpkg-query -W -f='${Status}' npm 2>/dev/null)" != "install ok installed" ]; then
    missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps.sh: all ${#PACKAGES[@]} packages present"
    npm_deps
    exit $?
fi

echo "install-deps.sh: missing: ${missing[*]}"
if [ "$check_only" -eq 1 ]; then
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps.sh: apt-get not found (Debian 12 expected); install the packages above by hand" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-deps.sh: not root and sudo is not available; run as root" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
echo "install-deps.sh: installed ${#missing[@]} package(s)"
npm_deps
