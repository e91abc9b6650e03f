#!/usr/bin/env bash
# Installs sdk-node's npm dependencies (from package-lock.json) when missing
# or out of date.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../sdk-node" && pwd)"
stamp="$dir/node_modules/.package-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Node packages for sdk-node"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
