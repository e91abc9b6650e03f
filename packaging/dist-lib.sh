#!/usr/bin/env bash
# `make dist`, step 1: the C release artifacts of one platform, from the
# release build `make build` left in target/release:
#
#   dist/libnet-<version>-<os>-<arch>/          a relocatable prefix:
#       lib/libnet.so.<version>                 stripped; .gnu_debuglink -> the .debug file
#       lib/<soname> -> libnet.so.<version>     the name the loader looks for
#       lib/libnet.so -> <soname>               the name `-lnet` links
#       lib/libnet.a                            debug sections stripped, symbols kept
#       lib/pkgconfig/net.pc                    prefix=${pcfiledir}/../.. (relocatable)
#       lib/cmake/Net/NetConfig*.cmake          relocatable (relative to themselves)
#       include/net.h
#   dist/libnet-<version>-<os>-<arch>.tar.gz    that prefix
#   dist/libnet-<version>-<os>-<arch>.debug     the debug info split out of libnet.so
#
# Usage: dist-lib.sh <repo root> <release dir> <dist dir>
set -euo pipefail

root=$1 release=$2 dist=$3
# shellcheck source=packaging/platform.sh
. "$root/packaging/platform.sh"

name=libnet-$NET_VERSION-$NET_PLATFORM
prefix=$dist/$name
for f in "$release/libnet.so" "$release/libnet.a" "$root/include/net.h"; do
    [ -f "$f" ] || { echo "dist: $f is missing: run 'make build' first" >&2; exit 1; }
done

soname=$(readelf -d "$release/libnet.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] || { echo "dist: $release/libnet.so has no SONAME" >&2; exit 1; }

rm -rf "$prefix" "$prefix.tar.gz" "$prefix.debug"
install -d "$prefix/lib/pkgconfig" "$prefix/lib/cmake/Net" "$prefix/include"

real=libnet.so.$NET_VERSION
objcopy --only-keep-debug "$release/libnet.so" "$prefix.debug"
strip --strip-unneeded -o "$prefix/lib/$real" "$release/libnet.so"
# gdb and eu-unstrip find the debug file next to the library or under
# /usr/lib/debug by this name (its CRC is checked).
(cd "$dist" && objcopy --add-gnu-debuglink="$name.debug" "$prefix/lib/$real")
chmod 0755 "$prefix/lib/$real"
ln -s "$real" "$prefix/lib/$soname"
ln -s "$soname" "$prefix/lib/libnet.so"
strip --strip-debug -o "$prefix/lib/libnet.a" "$release/libnet.a"
chmod 0644 "$prefix/lib/libnet.a"
install -m 0644 "$root/include/net.h" "$prefix/include/net.h"

# shellcheck disable=SC2016 # ${pcfiledir} is pkg-config's, not the shell's
sed -e 's|@PREFIX@|${pcfiledir}/../..|' -e "s|@VERSION@|$NET_VERSION|" \
    "$root/sdk-c/net.pc.in" >"$prefix/lib/pkgconfig/net.pc"
sed -e "s|@VERSION@|$NET_VERSION|" -e "s|@SONAME@|$soname|" \
    "$root/sdk-c/cmake/NetConfig.cmake.in" >"$prefix/lib/cmake/Net/NetConfig.cmake"
sed -e "s|@VERSION@|$NET_VERSION|" \
    "$root/sdk-c/cmake/NetConfigVersion.cmake.in" >"$prefix/lib/cmake/Net/NetConfigVersion.cmake"

# Reproducible: fixed order, owner and times.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
    -C "$dist" -czf "$prefix.tar.gz" "$name"
echo "dist: $name.tar.gz ($(du -h "$prefix.tar.gz" | cut -f1); libnet.so $(du -h "$prefix/lib/$real" | cut -f1), soname $soname)"
