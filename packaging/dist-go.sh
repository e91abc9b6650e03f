#!/usr/bin/env bash
# `make dist`, step 4: the Go module as it is published, into
# dist/sdk-go/ (module github.com/netmesh/net/sdk-go, tag sdk-go/v<version>):
# the committed sources of sdk-go/ plus, for this platform,
#   netmesh/lib/<GOOS>_<GOARCH>/libnet.a   (debug-stripped, from step 1)
#   netmesh/include/net.h
# which netmesh/cgo_bundled.go links by default: `go get` needs no Rust, no
# pkg-config and no libnet.so. A release merges the lib/ directories built
# on each platform before tagging (docs/packaging.md).
#
# Usage: dist-go.sh <repo root> <dist dir>
set -euo pipefail

root=$1 dist=$2
# shellcheck source=packaging/platform.sh
. "$root/packaging/platform.sh"
prefix=$dist/libnet-$NET_VERSION-$NET_PLATFORM
[ -f "$prefix/lib/libnet.a" ] || { echo "dist: $prefix/lib/libnet.a missing (packaging/dist-lib.sh first)" >&2; exit 1; }

out=$dist/sdk-go
rm -rf "$out"
mkdir -p "$out"
(cd "$root/sdk-go" && git ls-files -co --exclude-standard) | while read -r f; do
    [ -f "$root/sdk-go/$f" ] || continue
    case "$f" in netmesh/lib/* | netmesh/include/*) continue ;; esac
    mkdir -p "$out/$(dirname "$f")"
    cp "$root/sdk-go/$f" "$out/$f"
done
install -d "$out/netmesh/lib/$NET_GO_PLATFORM" "$out/netmesh/include"
cp "$prefix/lib/libnet.a" "$out/netmesh/lib/$NET_GO_PLATFORM/libnet.a"
cp "$prefix/include/net.h" "$out/netmesh/include/net.h"
echo "$NET_VERSION" >"$out/VERSION"
echo "dist: sdk-go (module $(sed -n 's/^module //p' "$out/go.mod"), tag sdk-go/v$NET_VERSION, netmesh/lib/$NET_GO_PLATFORM/libnet.a)"
