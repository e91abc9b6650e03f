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
  # The bus's JetStream and Redis suites run against real servers.
  [nats-server]=nats-server
  [redis-server]=redis-server
  # The NAT test bed (tests/nat_bed.rs): network namespaces and veth links,
  # NAT routers built with nftables, and a real port-mapping gateway
  # (miniupnpd serves NAT-PMP, PCP and UPnP IGD) in a router namespace.
  [ip]=iproute2
  # The partition suite (tests/mesh_partitions.rs) splits its nodes with
  # an nftables table of its own, too.
  [nft]=nftables
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
# miniupnpd lives in /usr/sbin (not always on a non-root PATH); the nftables
# backend matches the routers the test bed builds.
[ -x /usr/sbin/miniupnpd ] || missing+=(miniupnpd-nftables miniupnpd)

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
# Server packages must not start system services: the tests start their
# own servers on free loopback ports. A policy-rc.d answering 101 makes
# invoke-rc.d skip the start; ours is removed afterwards.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  guard=1
fi
cleanup() { if [ -n "$guard" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
