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

echo "== m365fwd normalize --schema ocsf --summary samples/*.json samples/*.csv" >&2
echo "== (events on stdout, also saved to build/demo-events.ndjson; summary on stderr)" >&2
./build/agent/m365fwd normalize --schema ocsf --summary samples/*.json samples/*.csv \
    | tee build/demo-events.ndjson
