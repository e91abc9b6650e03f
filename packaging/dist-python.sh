#!/usr/bin/env bash
# `make dist`, step 2: the Python packages, into dist/:
#   netmesh-<version>.tar.gz                            the source distribution: the
#       package and libnet's Rust sources (libnet/), so pip builds libnet with
#       cargo where no wheel fits;
#   netmesh-<version>-py3-none-manylinux_2_<N>_<arch>.whl
#       the wheel, bundling the stripped libnet.so of step 1, retagged by
#       `auditwheel repair` (which checks every symbol version and library
#       libnet.so needs against the manylinux policies).
#
# Usage: dist-python.sh <repo root> <dist dir> <build venv> <dist venv> <work dir>
set -euo pipefail

root=$1 dist=$2 venv=$3 distvenv=$4 work=$5
# shellcheck source=packaging/platform.sh
. "$root/packaging/platform.sh"

lib=$dist/libnet-$NET_VERSION-$NET_PLATFORM/lib/libnet.so.$NET_VERSION
[ -f "$lib" ] || { echo "dist: $lib missing (packaging/dist-lib.sh first)" >&2; exit 1; }

rm -rf "$work"
src=$work/netmesh-$NET_VERSION
mkdir -p "$src/libnet"
# The package as committed (plus files not yet committed), never build
# leftovers: no _native/, caches or egg-info.
(cd "$root/sdk-python" && git ls-files -co --exclude-standard -- netmesh README.md pyproject.toml setup.py MANIFEST.in LICENSE) |
    while read -r f; do
        case "$f" in */__pycache__/* | *.pyc) continue ;; esac
        mkdir -p "$src/$(dirname "$f")"
        cp -L "$root/sdk-python/$f" "$src/$f"
    done
# libnet's crate: what `cargo build --release --lib` reads (cargo also
# loads the manifests of benches, tests, examples and the test-util
# dev-dependency, so they come too; all small).
(cd "$root" && git ls-files -co --exclude-standard -- Cargo.toml Cargo.lock build.rs rust-toolchain.toml \
    LICENSE README.md include src tests benches examples test-util) |
    while read -r f; do
        [ -f "$root/$f" ] || continue
        mkdir -p "$src/libnet/$(dirname "$f")"
        cp "$root/$f" "$src/libnet/$f"
    done

rm -f "$dist"/netmesh-*.tar.gz "$dist"/netmesh-*.whl
(cd "$src" && "$venv/bin/python" -m build --sdist --no-isolation --outdir "$dist" . >"$work/sdist.log" 2>&1) ||
    { cat "$work/sdist.log" >&2; exit 1; }

# The wheel, from the stripped library (no cargo: NET_LIBRARY_PATH wins).
(cd "$src" && NET_LIBRARY_PATH=$lib "$venv/bin/python" -m build --wheel --no-isolation \
    --outdir "$work/wheel" . >"$work/wheel.log" 2>&1) ||
    { cat "$work/wheel.log" >&2; exit 1; }
rm -rf "$src/build" "$src"/*.egg-info
PATH="$distvenv/bin:$PATH" "$distvenv/bin/auditwheel" repair --wheel-dir "$dist" "$work"/wheel/netmesh-*.whl >"$work/auditwheel.log" 2>&1 ||
    { cat "$work/auditwheel.log" >&2; exit 1; }
wheel=$(ls "$dist"/netmesh-"$NET_VERSION"-py3-none-manylinux*.whl)
"$distvenv/bin/auditwheel" show "$wheel" >"$work/show.log" 2>&1 || { cat "$work/show.log" >&2; exit 1; }
echo "dist: $(basename "$wheel") ($(du -h "$wheel" | cut -f1)), $(basename "$dist"/netmesh-*.tar.gz)"
