#!/usr/bin/env bash
# Events/s through a stateful counter daemon written in Go, Python and Node,
# each next to the same daemon written in C, measured in this run (target:
# every SDK at 0.30 of C or better; issue 15). Each daemon runs the way its
# SDK runs daemons (a pull loop in C, a Daemon interface in Go, a Daemon
# subclass in Python and Node) on one runtime in the benchmark's process;
# 20 000 events of 64 bytes are delivered in batches of 256 with the SDK's
# deliver_batch call (the row the target applies to), and one per deliver
# call, and awaited with wait_processed; best of 5 rounds each. Each SDK's
# `bench-compute` target prints `compute_daemon_batch_events_per_sec` and
# `compute_daemon_events_per_sec`.
exec "$(dirname "$0")/bench-sdk-vs-c.sh" bench-compute \
  compute_daemon_batch_events_per_sec,compute_daemon_events_per_sec \
  'SDK daemons: events/s through a counter daemon (20 000 x 64 B, net_compute_deliver_batch of 256, best of 5)|SDK daemons, one event per net_compute_deliver (best of 5)' \
  'a pull loop in C'
