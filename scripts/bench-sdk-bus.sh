#!/usr/bin/env bash
# SDK batch ingest into the event bus: events/s of 1 024-event batches of
# 64 B from Go, Python and Node, each next to the same batches from C,
# measured in this run (target: every SDK at 0.50 of C or better), over the
# embedded adapter with memory files (the discard adapter is test-only). Each
# SDK's `bench-bus` target prints `bus_batch_events_per_sec <float>`.
exec "$(dirname "$0")/bench-sdk-vs-c.sh" bench-bus bus_batch_events_per_sec \
  'SDK batch ingest into the bus: events/s (1 024 x 64 B batches, embedded adapter, best of 5)' \
  net_bus_ingest_raw_batch
