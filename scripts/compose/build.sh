#!/usr/bin/env bash
# Builds compose-check, the compose specification's own loader that the test
# of examples/healthcheck/compose.yaml runs, from this directory's module,
# into ${PORTPATROL_COMPOSE_BIN:-${XDG_CACHE_HOME:-~/.cache}/portpatrol-compose},
# where the test looks for it. It is skipped while the binary there was
# built by this script from this module's files.
set -euo pipefail
cd "$(dirname "$0")"

out="${PORTPATROL_COMPOSE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/portpatrol-compose}"
stamp="$(cat build.sh go.mod go.sum main.go | sha256sum | cut -d' ' -f1)"
if [ -x "$out/compose-check" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "compose-check in $out is up to date"
	exit 0
fi
mkdir -p "$out"
rm -f "$out/stamp"
CGO_ENABLED=0 go build -trimpath -o "$out/compose-check.new" .
mv -f "$out/compose-check.new" "$out/compose-check"
echo "$stamp" >"$out/stamp"
echo "built compose-check into $out"
