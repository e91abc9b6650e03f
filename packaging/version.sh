#!/usr/bin/env bash
# The version is set in one place, Cargo.toml's [package] version; the
# wheel (setup.py), the npm packages and the release tarballs read it from
# there when they are built, and the Go module's tag is sdk-go/v<version>.
# The places that must state it literally are rewritten by `set` and checked
# by `check` (make test): the header's NET_VERSION_* (src/ffi/version.rs,
# then `make header`), sdk-python/netmesh/_version.py, sdk-node/package.json
# and the README's recipe.
#
# Usage: version.sh check | version.sh set X.Y.Z
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

current() { sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1; }
const() { sed -n "s/^pub const $1: u32 = \([0-9]*\);/\1/p" src/ffi/version.rs; }

check() {
    local v=$1 major minor patch bad=0
    IFS=. read -r major minor patch <<<"$v"
    expect() { # expect <what> <found>
        if [ "$2" != "$3" ]; then echo "version-check: $1 says '$2', Cargo.toml says '$3'" >&2; bad=1; fi
    }
    expect "src/ffi/version.rs NET_VERSION_MAJOR" "$(const NET_VERSION_MAJOR)" "$major"
    expect "src/ffi/version.rs NET_VERSION_MINOR" "$(const NET_VERSION_MINOR)" "$minor"
    expect "src/ffi/version.rs NET_VERSION_PATCH" "$(const NET_VERSION_PATCH)" "$patch"
    expect "src/ffi/version.rs NET_VERSION" "$(const NET_VERSION)" "$((major * 1000000 + minor * 1000 + patch))"
    expect "include/net.h NET_VERSION" "$(sed -n 's/^#define NET_VERSION \([0-9]*\)$/\1/p' include/net.h)" \
        "$((major * 1000000 + minor * 1000 + patch))"
    expect "sdk-python/netmesh/_version.py" "$(sed -n 's/^__version__ = "\(.*\)"/\1/p' sdk-python/netmesh/_version.py)" "$v"
    expect "sdk-node/package.json" "$(sed -n 's/^  "version": "\(.*\)",/\1/p' sdk-node/package.json)" "$v"
    expect "README.md's C recipe" "$(sed -n 's/^tar -xzf libnet-\([0-9.]*\)-linux-.*/\1/p' README.md)" "$v"
    grep -q "^## \[$v\]" CHANGELOG.md || { echo "version-check: CHANGELOG.md has no '## [$v]' section" >&2; bad=1; }
    [ $bad = 0 ] || { echo "version-check: run 'make set-version NEW=$v'" >&2; exit 1; }
    echo "version-check: $v everywhere"
}

case "${1:-}" in
check) check "$(current)" ;;
set)
    v=${2:-}
    [[ $v =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || { echo "set-version: want X.Y.Z, got '$v'" >&2; exit 1; }
    major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} patch=${BASH_REMATCH[3]}
    old=$(current)
    sed -i "0,/^version = \".*\"/s//version = \"$v\"/" Cargo.toml
    sed -i -e "s/^pub const NET_VERSION_MAJOR: u32 = [0-9]*;/pub const NET_VERSION_MAJOR: u32 = $major;/" \
        -e "s/^pub const NET_VERSION_MINOR: u32 = [0-9]*;/pub const NET_VERSION_MINOR: u32 = $minor;/" \
        -e "s/^pub const NET_VERSION_PATCH: u32 = [0-9]*;/pub const NET_VERSION_PATCH: u32 = $patch;/" \
        -e "s/^pub const NET_VERSION: u32 = [0-9]*;/pub const NET_VERSION: u32 = $((major * 1000000 + minor * 1000 + patch));/" \
        -e "s/(\([0-9.]*\) is [0-9]*)/($v is $((major * 1000000 + minor * 1000 + patch)))/" \
        src/ffi/version.rs
    sed -i "s/^__version__ = \".*\"/__version__ = \"$v\"/" sdk-python/netmesh/_version.py
    sed -i "0,/^  \"version\": \".*\",/s//  \"version\": \"$v\",/" sdk-node/package.json
    sed -i "s/libnet-$old-linux-/libnet-$v-linux-/g" README.md
    grep -q "^## \[$v\]" CHANGELOG.md ||
        sed -i "0,/^## /s//## [$v] - unreleased\n\n(what changed)\n\n## /" CHANGELOG.md
    cargo update --workspace --offline --quiet 2>/dev/null || true
    make --no-print-directory header
    echo "set-version: $old -> $v (Cargo.lock, header and SDK bindings regenerated); review CHANGELOG.md"
    ;;
*) echo "usage: version.sh check | version.sh set X.Y.Z" >&2; exit 1 ;;
esac
