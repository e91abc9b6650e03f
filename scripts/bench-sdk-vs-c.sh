#!/usr/bin/env bash
# Each SDK's figure next to C's, measured in this run: the table that
# bench-sdk-bus.sh and bench-sdk-compute.sh print.
#
#   scripts/bench-sdk-vs-c.sh TARGET METRIC[,METRIC...] TITLE[|TITLE...] BASELINE
#
# runs `make -C sdk-<lang> TARGET` once for each of c, go, python and node;
# each prints a line `METRIC <float>` (a rate: higher is better) per metric.
# One table per metric, headed by the TITLE in the same position; BASELINE
# says what C's row measures.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 TARGET METRIC TITLE BASELINE" >&2; exit 2; }
target=$1 metric=$2 title=$3 baseline=$4
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

IFS=, read -r -a metrics <<<"$metric"
IFS='|' read -r -a titles <<<"$title"
declare -A out
for sdk in c go python node; do
  out[$sdk]=$(make --no-print-directory -s -C "sdk-$sdk" "$target" 2>/dev/null) ||
    { echo "$sdk: $target failed" >&2; exit 1; }
done

value() {
  awk -v m="$2" '$1 == m {v=$2} END{if (v=="") exit 1; print v}' <<<"${out[$1]}"
}

for i in "${!metrics[@]}"; do
  m=${metrics[$i]}
  c=$(value c "$m") || { echo "c: no $m" >&2; exit 1; }
  printf '\n%s\n' "${titles[$i]:-${titles[0]} ($m)}"
  printf '%-8s %12s %8s\n' language events/s "x C"
  printf '%-8s %12.0f %8s\n' c "$c" "1.00 (baseline: $baseline)"
  for sdk in go python node; do
    rate=$(value "$sdk" "$m") || { echo "$sdk: no $m" >&2; exit 1; }
    printf '%-8s %12.0f %8.2f\n' "$sdk" "$rate" "$(awk -v a="$rate" -v b="$c" 'BEGIN{print a/b}')"
  done
done
