#!/usr/bin/env bash
# The README's first command: install what is needed, build, and normalize the
# bundled sample of audit records (a week at "Contoso" with attack traces mixed
# into ordinary activity). Prints the OCSF events, then a summary of risk tags
# per area on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

bash scripts/install-deps.sh
if [ -d build ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build >/dev/null
fi
ninja -C build >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== normalizing samples/ with m365fwd normalize --schema ocsf --summary" >&2
./build/agent/m365fwd normalize --schema ocsf --summary samples/*.json samples/*.csv \
    > "$out/events.ndjson"
n=$(wc -l < "$out/events.ndjson")
echo "== first 3 of $n normalized events (OCSF 1.8.0), full output in build/demo-events.ndjson:" >&2
head -n 3 "$out/events.ndjson"
cp "$out/events.ndjson" build/demo-events.ndjson
