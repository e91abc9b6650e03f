#!/usr/bin/env bash
# Installs scripts/parity/requirements.txt (coverage.py) into the project's
# Python venv, once: the parity check measures the Python SDK's suite with it.
# The venv itself (and sdk-python's own packages) come from
# scripts/ensure-python-venv.sh, run first.
set -euo pipefail
venv="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
reqs="$root/scripts/parity/requirements.txt"
stamp="$venv/.parity-requirements.sha256"

"$root/scripts/ensure-python-venv.sh" "$venv" >&2
want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "parity: installing scripts/parity/requirements.txt into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2
  echo "$want" > "$stamp"
fi
