#!/usr/bin/env bash
# Creates the project's Python virtualenv (for building the wheel and running
# pytest) and installs sdk-python/requirements-dev.txt into it when needed.
set -euo pipefail
venv="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
reqs="$root/sdk-python/requirements-dev.txt"
stamp="$venv/.requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating Python venv at $venv"
  python3 -m venv "$venv"
fi
want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages from sdk-python/requirements-dev.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  echo "$want" > "$stamp"
fi
