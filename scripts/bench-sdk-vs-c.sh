#!/usr/bin/env bash
# Each SDK's figure next to C's, measured in this run: the table that
# bench-sdk-bus.sh and bench-sdk-compute.sh print.
#
#   scripts/bench-sdk-vs-c.sh TARGET METRIC TITLE BASELINE
#
# runs `make -C sdk-<lang> TARGET` for c, go, python and node; each prints a
# line `METRIC <float>` (a rate: higher is better). TITLE heads the table;
# BASELINE says what C's row measures.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 TARGET METRIC TITLE BASELINE" >&2; exit 2; }
target=$1 metric=$2 title=$3 baseline=$4
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

measure() {
  make --no-print-directory -s -C "sdk-$1" "$target" 2>/dev/null |
    awk -v m="$metric" '$1 == m {v=$2} END{if (v=="") exit 1; print v}'
}

c=$(measure c) || { echo "c: $target failed" >&2; exit 1; }
printf '\n%s\n' "$title"
printf '%-8s %12s %8s\n' language events/s "x C"
printf '%-8s %12.0f %8s\n' c "$c" "1.00 (baseline: $baseline)"
for sdk in go python node; do
  if rate=$(measure "$sdk"); then
    printf '%-8s %12.0f %8.2f\n' "$sdk" "$rate" "$(awk -v a="$rate" -v b="$c" 'BEGIN{print a/b}')"
  else
    echo "$sdk: $target failed" >&2
    exit 1
  fi
done
