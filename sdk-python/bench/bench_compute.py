"""Events/s through a stateful counter daemon written in Python (a
``Daemon`` subclass run by the Compute's work thread), compared with the same
daemon written in C (sdk-c/bench/bench_compute.c): 20 000 events of 64 bytes
delivered in batches of 256 with ``Compute.deliver_batch`` (one work item per
batch, ``process`` per event) and one per ``Compute.deliver``, timed from the
first delivery until ``Compute.wait_processed`` sees them all; one 8-byte
output per event. Best of 5 rounds each, a fresh daemon per round. Prints
exactly two lines: ``compute_daemon_batch_events_per_sec <float>`` and
``compute_daemon_events_per_sec <float>``.
"""

import time
from typing import List

from netmesh import Compute, Daemon, DaemonEvent, Delivery, Mesh

EVENT, EVENTS, ROUNDS, BATCH = 64, 20_000, 5, 256
PRODUCER = 0xFEED_0000_0000_0001


class Counter(Daemon):
    """Counts events, refusing any that is not its producer's next one."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0

    def process(self, event: DaemonEvent) -> List[bytes]:
        if event.sequence != self.last + 1:
            raise ValueError(f"sequence {event.sequence} after {self.last}")
        self.last = event.sequence
        self.count += 1
        return [self.count.to_bytes(8, "little")]


def round_rate(rt: Compute, r: int, batched: bool) -> float:
    """One round with a fresh daemon: events/s."""
    payload = b"e" * EVENT
    counter = Counter()
    origin = rt.spawn("counter", bytes([0x40 + r]) * 32, counter)
    t0 = time.perf_counter()
    if batched:
        batch = [payload] * BATCH
        for first in range(1, EVENTS + 1, BATCH):
            n = min(BATCH, EVENTS + 1 - first)
            done = rt.deliver_batch(origin, PRODUCER, first, batch[:n])
            if done is None or len(done) != n:
                raise SystemExit(f"batch at {first} was not delivered")
    else:
        deliver = rt.deliver
        for seq in range(1, EVENTS + 1):
            if deliver(origin, PRODUCER, seq, payload) != Delivery.PROCESSED:
                raise SystemExit(f"event {seq} was not processed here")
    if rt.wait_processed(origin, EVENTS, timeout=10) is None:
        raise SystemExit("the daemon did not process every event in time")
    rate = EVENTS / (time.perf_counter() - t0)
    if counter.count != EVENTS:
        raise SystemExit(f"the counter is at {counter.count}, not {EVENTS}")
    rt.stop(origin)
    return rate


def main() -> None:
    best = {True: 0.0, False: 0.0}
    with Mesh(psk=bytes(32)) as mesh, Compute(mesh, work_timeout=10) as rt:
        rt.register("counter", Counter)
        for r in range(2 * ROUNDS):
            batched = r % 2 == 0
            best[batched] = max(best[batched], round_rate(rt, r, batched))
    print(f"compute_daemon_batch_events_per_sec {best[True]:.0f}")
    print(f"compute_daemon_events_per_sec {best[False]:.0f}")


if __name__ == "__main__":
    main()
