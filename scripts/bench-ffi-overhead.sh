#!/usr/bin/env bash
# FFI call overhead per language: ns per net_channel_hash call from C, Go,
# Python and Node, next to the same work done natively in Rust, measured in
# this run. Each SDK's `bench-ffi` target prints `channel_hash_ns_per_call <ns>`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

measure() {
  "$@" 2>/dev/null | awk '/^channel_hash_ns_per_call /{v=$2} END{if (v=="") exit 1; print v}'
}

rust=$(measure cargo bench --quiet --bench identity -- --channel-hash-only)
printf '\nFFI call overhead: ns per net_channel_hash("sensors/lidar") call\n'
printf '%-8s %10s %10s\n' language ns/call "x native"
printf '%-8s %10.1f %10s\n' rust "$rust" "1.00 (baseline: validate + xxh3, no FFI)"
for sdk in c go python node; do
  if ns=$(measure make --no-print-directory -s -C "sdk-$sdk" bench-ffi); then
    printf '%-8s %10.1f %10.2f\n' "$sdk" "$ns" "$(awk -v a="$ns" -v b="$rust" 'BEGIN{print a/b}')"
  else
    echo "$sdk: bench-ffi failed" >&2
    exit 1
  fi
done
