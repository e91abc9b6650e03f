#!/usr/bin/env bash
# Warns (never fails) when the filesystem holding target/ has less room than
# a clean `make test` writes there (~8 GB with line-tables-only debug info),
# so that a linker or compiler failing later for want of space is explained.
set -euo pipefail
dir=${1:-target}
mkdir -p "$dir"
need_gb=${NET_DISK_NEED_GB:-10}
free_kb=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
if [ -n "$free_kb" ] && [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
  echo "warning: $(df -Ph "$dir" | awk 'NR == 2 {print $4}') free under $dir;" \
       "a clean make test writes about ${need_gb} GB there and may fail for want of space" >&2
fi
