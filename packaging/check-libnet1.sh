#!/usr/bin/env bash
# Debian's libnet1 (an unrelated packet-construction library, soname
# libnet.so.1, in the loader's default path) installed beside our libnet: a
# program built against ours must record a soname libnet1 does not provide,
# and the loader must resolve it to ours, never to Debian's file.
# Installs libnet1 from Debian's packages when missing (root, or sudo).
#
# Usage: check-libnet1.sh <our prefix (dist/libnet-…)> <program.c> <work dir>
set -euo pipefail
prefix=$1 program=$2 work=$3
fail() { echo "check-libnet1: $*" >&2; exit 1; }

if ! dpkg-query -W -f='${Status}' libnet1 2>/dev/null | grep -q 'install ok installed'; then
    echo "check-libnet1: installing Debian's libnet1"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends libnet1 >/dev/null 2>&1 ||
        { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends libnet1 >/dev/null; }
fi
theirs=$(dpkg-query -L libnet1 | grep -E '/libnet\.so\.[0-9.]+$' | head -n1)
[ -n "$theirs" ] && [ -e "$theirs" ] || fail "libnet1 is installed but ships no libnet.so.*"
their_soname=$(readelf -d "$(readlink -f "$theirs")" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$their_soname" ] || fail "no SONAME in $theirs"

mkdir -p "$work"
our_lib=$(readlink -f "$prefix/lib/libnet.so")
our_soname=$(readelf -d "$our_lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$our_soname" != "$their_soname" ] || fail "our soname $our_soname is Debian libnet1's"

# Built as a user would against ours (pkg-config, no rpath), run with the
# loader told only where ours is: Debian's stays on the default path.
# shellcheck disable=SC2046
cc "$program" $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs net) -o "$work/prog"
needed=$(readelf -d "$work/prog" | sed -n 's/.*(NEEDED).*\[\(libnet[^]]*\)\]/\1/p')
[ "$needed" = "$our_soname" ] || fail "the program needs '$needed', expected $our_soname"
loader=$(readelf -l "$work/prog" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
resolved=$(env -i "$loader" --library-path "$prefix/lib" --list "$work/prog" |
    awk -v n="$needed" '$1 == n {print $3}')
[ "$(readlink -f "$resolved")" = "$our_lib" ] || fail "$needed resolves to '$resolved', not $our_lib"
out=$(env -i "$loader" --library-path "$prefix/lib" "$work/prog")
case "$out" in "libnet "*", origin "*) ;; *) fail "the program printed: $out" ;; esac
echo "dist-check: libnet1: Debian's $their_soname ($theirs) beside ours ($our_soname): ours loads"
