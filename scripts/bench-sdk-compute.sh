#!/usr/bin/env bash
# Events/s through a stateful counter daemon written in Go, Python and Node,
# each next to the same daemon written in C, measured in this run (target:
# every SDK at 0.30 of C or better; issue 15). Each daemon runs the way its
# SDK runs daemons (a pull loop in C, a Daemon interface in Go, a Daemon
# subclass in Python and Node) on one runtime in the benchmark's process;
# 20 000 events of 64 bytes are delivered with the SDK's deliver call and
# awaited with wait_processed; best of 5 rounds. Each SDK's `bench-compute`
# target prints `compute_daemon_events_per_sec <float>`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

measure() {
  "$@" 2>/dev/null | awk '/^compute_daemon_events_per_sec /{v=$2} END{if (v=="") exit 1; print v}'
}

c=$(measure make --no-print-directory -s -C sdk-c bench-compute)
printf '\nSDK daemons: events/s through a counter daemon (20 000 x 64 B, net_compute_deliver, best of 5)\n'
printf '%-8s %12s %8s\n' language events/s "x C"
printf '%-8s %12.0f %8s\n' c "$c" "1.00 (baseline: a pull loop in C)"
for sdk in go python node; do
  if rate=$(measure make --no-print-directory -s -C "sdk-$sdk" bench-compute); then
    printf '%-8s %12.0f %8.2f\n' "$sdk" "$rate" "$(awk -v a="$rate" -v b="$c" 'BEGIN{print a/b}')"
  else
    echo "$sdk: bench-compute failed" >&2
    exit 1
  fi
done
