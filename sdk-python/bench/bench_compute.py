"""Events/s through a stateful counter daemon written in Python (a
``Daemon`` subclass run by the Compute's work thread), compared with the same
daemon written in C (sdk-c/bench/bench_compute.c): 20 000 events of 64 bytes
delivered with ``Compute.deliver``, timed from the first delivery until
``Compute.wait_processed`` sees them all; one 8-byte output per event. Best
of 5 rounds, a fresh daemon per round. Prints exactly one line:
``compute_daemon_events_per_sec <float>``.
"""

import time
from typing import List

from netmesh import Compute, Daemon, DaemonEvent, Delivery, Mesh

EVENT, EVENTS, ROUNDS = 64, 20_000, 5
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


def main() -> None:
    payload = b"e" * EVENT
    best = 0.0
    with Mesh(psk=bytes(32)) as mesh, Compute(mesh, work_timeout=10) as rt:
        rt.register("counter", Counter)
        for r in range(ROUNDS):
            counter = Counter()
            origin = rt.spawn("counter", bytes([0x40 + r]) * 32, counter)
            deliver = rt.deliver
            t0 = time.perf_counter()
            for seq in range(1, EVENTS + 1):
                if deliver(origin, PRODUCER, seq, payload) != Delivery.PROCESSED:
                    raise SystemExit(f"event {seq} was not processed here")
            if rt.wait_processed(origin, EVENTS, timeout=10) is None:
                raise SystemExit("the daemon did not process every event in time")
            best = max(best, EVENTS / (time.perf_counter() - t0))
            if counter.count != EVENTS:
                raise SystemExit(f"the counter is at {counter.count}, not {EVENTS}")
            rt.stop(origin)
    print(f"compute_daemon_events_per_sec {best:.0f}")


if __name__ == "__main__":
    main()
