#!/usr/bin/env bash
# Compiles ./kvstore with `deno compile`.
#
# deno compile joins the program to a runtime called denort, which it downloads from
# dl.deno.land unless DENORT_BIN names a local copy (it must be denort 2.9.3). Where
# neither works, this fails with one line that says so and points to `make bundle`.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DENORT_BIN:-}" ] && [ ! -x "$DENORT_BIN" ]; then
  echo "make build: DENORT_BIN=$DENORT_BIN is not an executable file; point it at denort 2.9.3 or unset it" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if RUST_BACKTRACE=0 NO_COLOR=1 tools/deno.sh task compile >"$log" 2>&1; then
  echo "Built ./kvstore ($(du -h kvstore | cut -f1)): run ./kvstore --help"
  exit 0
fi

if grep -q "dl.deno.land\|denort" "$log"; then
  echo "make build: deno compile could not get its denort runtime (no download from dl.deno.land here); set DENORT_BIN to a denort 2.9.3 binary, or run 'make bundle' for dist/kvstore.js" >&2
else
  echo "make build: deno compile failed: $(grep -m1 -i 'error' "$log" || tail -n1 "$log")" >&2
fi
exit 1
