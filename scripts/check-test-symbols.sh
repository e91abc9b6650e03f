#!/usr/bin/env bash
# The shipped libnet carries no test-only code (DESIGN.md "Testing and
# measuring"; issue 12, item 6): fault-injecting storage, the mesh packet
# filter and node hooks, fixed-ephemeral handshakes and the memory/discard
# bus adapters exist only in `test-util` builds.
#
#   scripts/check-test-symbols.sh [LIBDIR]     (default: target/stage/lib)
#
# Checks the dynamic exports of libnet.so (nm -D) and every symbol name of
# libnet.a (readelf, demangled: the Rust paths of the code it contains; GNU
# nm cannot read the archive's LTO members). Each scan first proves it sees
# the real library (a known export, a known Rust path), so a scan that
# silently read nothing cannot pass.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
libdir="${1:-$root/target/stage/lib}"
so="$libdir/libnet.so"
archive="$libdir/libnet.a"
fail=0

for f in "$so" "$archive"; do
  [ -f "$f" ] || { echo "check-test-symbols: $f is missing (run 'make stage')" >&2; exit 1; }
done

# C names a test-only export would have.
c_pattern='fault|filter|for_test|fixed_ephemeral|loopback_echo|test_?hook|test_?util|memory_adapter|discard'
# Rust paths and names of the test-only code.
rust_pattern='net::redex::fault::|FaultyStorage|net::mesh::filter::|NetemFilter|PacketFilter'
rust_pattern+='|net::mesh::node::testing::|::set_filter|::set_loopback_echo|_for_test'
rust_pattern+='|::accepts_in_flight|::indexed_node|fixed_ephemeral|testing_only'
rust_pattern+='|net::bus::adapter::memory::|net::bus::adapter::discard::|MemoryAdapter|DiscardAdapter|FaultKind'

exports="$(nm -D --defined-only "$so" | awk '{print $NF}')"
if ! grep -qx 'net_bus_new' <<<"$exports"; then
  echo "check-test-symbols: nm -D sees no net_bus_new in $so: the scan would prove nothing" >&2
  exit 1
fi
if leaked="$(grep -Ei "$c_pattern" <<<"$exports")"; then
  echo "check-test-symbols: $so exports test-only symbols:" >&2
  sed 's/^/  /' <<<"$leaked" >&2
  fail=1
fi

# Symbol names (column 8 of readelf -sW; not the section names, which
# repeat them mangled), demangled, hashes dropped. Meant for the release
# (LTO) archive: a debug one keeps dead code of dependencies, such as
# snow's fixed_ephemeral_key_for_testing_only, which LTO drops unless our
# code can reach it.
rust_names="$(readelf -sW "$archive" 2>/dev/null | awk 'NF >= 8 && $8 !~ /^\./ {print $8}' | c++filt |
  sed 's/::h[0-9a-f]\{16\}$//' | sort -u)"
if ! grep -q 'net::bus::event_bus::' <<<"$rust_names"; then
  echo "check-test-symbols: no net::bus::event_bus symbol in $archive: the scan would prove nothing" >&2
  exit 1
fi
if leaked="$(grep -E "$rust_pattern" <<<"$rust_names")"; then
  echo "check-test-symbols: $archive contains test-only code:" >&2
  head -n 20 <<<"$leaked" | sed 's/^/  /' >&2
  fail=1
fi

if [ "$fail" -ne 0 ]; then
  echo "check-test-symbols: build libnet without the test-util feature (make build does)" >&2
  exit 1
fi
echo "check-test-symbols: $(wc -l <<<"$exports") exports and $(wc -l <<<"$rust_names") symbol names, none test-only"
