#!/usr/bin/env bash
# Runs the pinned Deno with the given arguments, installing it first when needed.
#
# Deno comes from the npm registry's `deno` package (its platform binary ships in an
# optional dependency such as @deno/linux-x64-glibc, so no install script has to run).
# It is installed into a cache folder outside the source tree because `deno compile`
# sweeps a node_modules beside or above the project into the executable it writes.
#
# Why 2.9.3 exactly: 2.9.4-2.9.6 abort a grpc-js server when a busy client closes its
# connection (denoland/deno#36788), and 2.7.4 and older cannot serve grpc-js at all.
# tests/regression_connection_close_test.ts guards this; upgrade only when it passes.
set -euo pipefail

DENO_VERSION="2.9.3"
if [ -z "${KVSTORE_DENO_CACHE:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ] && [ -z "${HOME:-}" ]; then
  echo "tools/deno.sh: Cannot choose where to install Deno $DENO_VERSION: set HOME, XDG_CACHE_HOME or KVSTORE_DENO_CACHE" >&2
  exit 1
fi
cache_dir="${KVSTORE_DENO_CACHE:-${XDG_CACHE_HOME:-${HOME:-}/.cache}/kvstore/deno-$DENO_VERSION}"

deno_version_of() {
  "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }'
}

find_cached_deno() {
  local candidate
  for candidate in "$cache_dir"/node_modules/@deno/*/deno "$cache_dir"/node_modules/@deno/*/deno.exe; do
    if [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

resolve_deno() {
  if command -v deno >/dev/null 2>&1 && [ "$(deno_version_of deno)" = "$DENO_VERSION" ]; then
    command -v deno
    return 0
  fi
  local cached
  if cached="$(find_cached_deno)" && [ "$(deno_version_of "$cached")" = "$DENO_VERSION" ]; then
    echo "$cached"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "tools/deno.sh: Cannot install Deno $DENO_VERSION: npm is not on PATH (install Node.js and npm, or put deno $DENO_VERSION on PATH)" >&2
    return 1
  fi
  echo "tools/deno.sh: installing Deno $DENO_VERSION from the npm registry into $cache_dir" >&2
  mkdir -p "$cache_dir"
  # --ignore-scripts: the binary arrives in the platform package; the wrapper's postinstall
  # only re-links it, and npm 11 asks before running scripts anyway.
  if ! npm install --prefix "$cache_dir" --no-save --no-audit --no-fund --ignore-scripts \
    --loglevel=error "deno@$DENO_VERSION" >&2; then
    echo "tools/deno.sh: Cannot install Deno $DENO_VERSION: npm install failed (see above)" >&2
    return 1
  fi
  if ! cached="$(find_cached_deno)"; then
    echo "tools/deno.sh: Cannot install Deno $DENO_VERSION: npm installed no binary for $(uname -sm)" >&2
    return 1
  fi
  echo "$cached"
}

deno_bin="$(resolve_deno)"
if [ "${1:-}" = "--print-path" ]; then
  echo "$deno_bin"
  exit 0
fi
exec "$deno_bin" "$@"
