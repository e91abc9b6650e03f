#!/usr/bin/env bash
# Installs what `make dist` and its checks need, when missing: strip/objcopy
# (binutils), readelf, and a venv with auditwheel (packaging/requirements-dist.txt).
# Quiet and quick when everything is present.
# Usage: ensure-dist-tools.sh <venv dir>
set -euo pipefail
venv=$1
root=$(cd "$(dirname "$0")/.." && pwd)
reqs=$root/packaging/requirements-dist.txt
stamp=$venv/.requirements.sha256

missing=()
for cmd in strip objcopy readelf; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=(binutils)
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "dist: installing binutils"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends binutils
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "dist: creating the packaging venv at $venv"
    python3 -m venv "$venv"
fi
want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "dist: installing packaging/requirements-dist.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
    echo "$want" >"$stamp"
fi
