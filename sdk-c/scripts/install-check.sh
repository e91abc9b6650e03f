#!/usr/bin/env bash
# Steps (b) and (c) of `make -C sdk-c test`: a real `make install` into a
# fresh prefix, then examples/identity_demo.c built against that prefix
#   - with `pkg-config --cflags --libs net` (libnet.so),
#   - with `pkg-config --static --libs net` against libnet.a (checked to carry
#     no libnet.so dependency, and run with no LD_LIBRARY_PATH),
#   - with CMake: find_package(Net 0.1) and Net::net / Net::net_static,
# and each binary run.
#
# Inputs (from sdk-c/Makefile): NET_ROOT, BUILD, CC, MAKE, PKG_CONFIG, CMAKE, WARN_C.
set -euo pipefail

: "${NET_ROOT:?}" "${BUILD:?}"
CC=${CC:-gcc}
MAKE=${MAKE:-make}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
CMAKE=${CMAKE:-cmake}
WARN_C=${WARN_C:--std=c99 -Wall -Wextra -Werror -pedantic}
sdk_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo_src=$sdk_dir/examples/identity_demo.c

out=$BUILD/install-check
rm -rf "$out"
mkdir -p "$out"
# Outside the repository on purpose: nothing may point back into it.
prefix=$(mktemp -d "${TMPDIR:-/tmp}/net-sdk-c-prefix.XXXXXX")
trap 'rm -rf "$prefix"' EXIT

fail() { echo "install-check: $*" >&2; exit 1; }

# NEEDED entries of an ELF file, one per line.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# Fails unless `$1` links libnet dynamically, by name (not by an absolute path
# baked into DT_NEEDED), and resolves it from $prefix/lib.
expect_dynamic_from_prefix() {
    local bin=$1 dep resolved
    dep=$(needed "$bin" | grep 'libnet' || true)
    [ -n "$dep" ] || fail "$bin has no libnet.so dependency"
    [[ $dep =~ ^libnet(mesh)?\.so(\.[0-9]+)*$ ]] ||
        fail "$bin records libnet as '$dep' in DT_NEEDED (expected a bare soname like libnetmesh.so.2)"
    resolved=$(LD_LIBRARY_PATH="$prefix/lib" ldd "$bin" | awk '$1 == "'"$dep"'" {print $3}')
    [ "$resolved" = "$prefix/lib/libnet.so" ] || [ "$resolved" = "$prefix/lib/$dep" ] ||
        fail "$bin resolves libnet to '$resolved', expected $prefix/lib/$dep"
}

# Fails if `$1` depends on libnet.so in any way.
expect_static() {
    local bin=$1
    if needed "$bin" | grep -q 'libnet'; then
        fail "$bin still needs $(needed "$bin" | grep libnet)"
    fi
    if env -u LD_LIBRARY_PATH ldd "$bin" | grep -q 'libnet'; then
        fail "ldd $bin lists libnet"
    fi
}

echo "-- make -C \$NET_ROOT install PREFIX=$prefix SKIP_BUILD=1"
if ! "$MAKE" --no-print-directory -C "$NET_ROOT" install PREFIX="$prefix" DESTDIR= SKIP_BUILD=1 \
    >"$out/install.log" 2>&1; then
    cat "$out/install.log" >&2
    fail "make install failed"
fi
for f in lib/libnet.so lib/libnet.a include/net.h lib/pkgconfig/net.pc \
         lib/cmake/Net/NetConfig.cmake lib/cmake/Net/NetConfigVersion.cmake; do
    [ -f "$prefix/$f" ] || fail "make install did not install $f"
done
if grep -rl -- "$NET_ROOT" "$prefix/lib/pkgconfig" "$prefix/lib/cmake" "$prefix/include"; then
    fail "installed files refer to the source tree $NET_ROOT"
fi

# Only the fresh prefix: neither the stage nor anything else on the path.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
unset LD_LIBRARY_PATH
[ "$("$PKG_CONFIG" --variable=prefix net)" = "$prefix" ] ||
    fail "pkg-config found $("$PKG_CONFIG" --variable=prefix net), not $prefix"

echo "-- pkg-config, dynamic: $CC ... \$(pkg-config --cflags --libs net)"
# shellcheck disable=SC2046,SC2086
"$CC" $WARN_C -O2 "$demo_src" $("$PKG_CONFIG" --cflags --libs net) -o "$out/identity_demo_dynamic"
expect_dynamic_from_prefix "$out/identity_demo_dynamic"
LD_LIBRARY_PATH="$prefix/lib" "$out/identity_demo_dynamic" >"$out/dynamic.out"
grep -q '^identity_demo: ok$' "$out/dynamic.out" || fail "dynamic demo did not finish"
echo "   ok: $(needed "$out/identity_demo_dynamic" | tr '\n' ' ')"

echo "-- pkg-config, static: $CC ... \$(pkg-config --static --libs net) against libnet.a"
# net.pc's Libs say -lnet, which the linker resolves to libnet.so when both
# are installed; ask for the archive by name and keep the rest (Libs.private).
static_libs=$("$PKG_CONFIG" --static --libs net | sed -E 's/(^| )-lnet( |$)/\1-l:libnet.a\2/')
case " $static_libs " in *" -l:libnet.a "*) ;; *) fail "no -lnet in: $static_libs" ;; esac
# shellcheck disable=SC2046,SC2086
"$CC" $WARN_C -O2 "$demo_src" $("$PKG_CONFIG" --cflags net) $static_libs \
    -o "$out/identity_demo_static"
expect_static "$out/identity_demo_static"
"$out/identity_demo_static" >"$out/static.out"
grep -q '^identity_demo: ok$' "$out/static.out" || fail "static demo did not finish"
echo "   ok: $(needed "$out/identity_demo_static" | tr '\n' ' ')(libs: $static_libs)"

echo "-- CMake: find_package(Net 0.1 REQUIRED), Net::net and Net::net_static"
if ! "$CMAKE" -S "$sdk_dir/examples/cmake" -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Release >"$out/cmake-configure.log" 2>&1; then
    cat "$out/cmake-configure.log" >&2
    fail "cmake configure failed"
fi
grep -q "Found Net 0\.1" "$out/cmake-configure.log" || fail "find_package(Net) reported no version"
if ! "$CMAKE" --build "$out/cmake" >"$out/cmake-build.log" 2>&1; then
    cat "$out/cmake-build.log" >&2
    fail "cmake build failed"
fi
expect_dynamic_from_prefix "$out/cmake/identity_demo"
LD_LIBRARY_PATH="$prefix/lib" "$out/cmake/identity_demo" >"$out/cmake.out"
grep -q '^identity_demo: ok$' "$out/cmake.out" || fail "CMake demo (Net::net) did not finish"
echo "   ok (Net::net): $(needed "$out/cmake/identity_demo" | tr '\n' ' ')"
expect_static "$out/cmake/identity_demo_static"
"$out/cmake/identity_demo_static" >"$out/cmake-static.out"
grep -q '^identity_demo: ok$' "$out/cmake-static.out" ||
    fail "CMake demo (Net::net_static) did not finish"
echo "   ok (Net::net_static): $(needed "$out/cmake/identity_demo_static" | tr '\n' ' ')"

# A newer minor version than the installed one must be refused.
version=$("$PKG_CONFIG" --modversion net)
too_new=$(echo "$version" | awk -F. '{print $1 "." $2 + 1}')
mkdir -p "$out/cmake-too-new"
cat >"$out/cmake-too-new/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(net_version_probe LANGUAGES C)
find_package(Net $too_new REQUIRED)
CMAKE
if "$CMAKE" -S "$out/cmake-too-new" -B "$out/cmake-too-new/build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$CC" >"$out/cmake-too-new.log" 2>&1; then
    fail "find_package(Net $too_new) accepted libnet $version"
fi
echo "   ok: find_package(Net $too_new) is refused (installed: $version)"
