#!/usr/bin/env bash
# SDK batch ingest into the event bus: events/s of 1 024-event batches of
# 64 B from Go, Python and Node, each next to the same batches from C,
# measured in this run (target: every SDK at 0.50 of C or better), over the
# embedded adapter with memory files (the discard adapter is test-only). Each
# SDK's `bench-bus` target prints `bus_batch_events_per_sec <float>`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

measure() {
  "$@" 2>/dev/null | awk '/^bus_batch_events_per_sec /{v=$2} END{if (v=="") exit 1; print v}'
}

c=$(measure make --no-print-directory -s -C sdk-c bench-bus)
printf '\nSDK batch ingest into the bus: events/s (1 024 x 64 B batches, embedded adapter, best of 5)\n'
printf '%-8s %12s %8s\n' language events/s "x C"
printf '%-8s %12.0f %8s\n' c "$c" "1.00 (baseline: net_bus_ingest_raw_batch)"
for sdk in go python node; do
  if rate=$(measure make --no-print-directory -s -C "sdk-$sdk" bench-bus); then
    printf '%-8s %12.0f %8.2f\n' "$sdk" "$rate" "$(awk -v a="$rate" -v b="$c" 'BEGIN{print a/b}')"
  else
    echo "$sdk: bench-bus failed" >&2
    exit 1
  fi
done
