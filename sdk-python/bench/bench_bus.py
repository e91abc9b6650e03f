"""Batch ingest into the event bus from Python, compared with the same
batches from C (sdk-c/bench/bench_bus.c): 2 000 batches of 1 024 events of
64 bytes (a list of bytes objects, built once) through Bus.ingest_batch
into a bus over the embedded adapter with memory files (the discard adapter
is test-only; the ingest path measured does not depend on the adapter); best
of 5 rounds, a fresh bus per round. Prints exactly one line: ``bus_batch_events_per_sec <float>``.
"""

import time

from netmesh import Bus

EVENT, BATCH, BATCHES, ROUNDS = 64, 1024, 2000, 5
CONFIG = {"num_shards": 2, "shard_capacity": 4_194_304, "adapter": {"type": "redex"}}


def main() -> None:
    batch = [bytes([97 + i % 26]) * EVENT for i in range(BATCH)]
    best = 0.0
    for _ in range(ROUNDS):
        with Bus(CONFIG) as bus:
            ingest = bus.ingest_batch
            t0 = time.perf_counter()
            for _ in range(BATCHES):
                if ingest(batch).taken != BATCH:
                    raise SystemExit("backpressure in the benchmark")
            best = max(best, BATCH * BATCHES / (time.perf_counter() - t0))
    print(f"bus_batch_events_per_sec {best:.0f}")


if __name__ == "__main__":
    main()
