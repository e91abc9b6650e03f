#!/usr/bin/env bash
# Installs the Debian packages the build and the test suites need, when
# missing. Quiet and quick when everything is present.
set -euo pipefail

# command -> Debian package that provides it
declare -A NEEDED=(
  [gcc]=gcc
  [g++]=g++
  [make]=make
  [pkg-config]=pkg-config
  [cmake]=cmake
  [go]=golang-go
  [node]=nodejs
  [npm]=npm
)

missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
# ASan's runtime ships with gcc on Debian (libasan); check it links.
if command -v gcc >/dev/null 2>&1; then
  if ! echo 'int main(void){return 0;}' | gcc -fsanitize=address -x c - -o /dev/null 2>/dev/null; then
    missing+=(libasan8)
  fi
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing missing system packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
