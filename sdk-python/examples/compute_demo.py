"""netmesh compute demo: a stateful counter daemon written in Python moves
from node A to node B while a producer keeps sending it events through
node A. The migration's phases are printed as the orchestrator passes
them; events that arrive during the move are buffered, then forwarded to
B; and the final count must equal the number of events sent: nothing
lost, nothing applied twice.

Run with `make -C sdk-python demo-compute` (it installs the wheel first);
`make demo` at the repository root runs it too.
"""

import os
import threading
import time

from netmesh import Compute, Daemon, DaemonEvent, Delivery, Mesh

EVENTS = 3_000
PRODUCER = 0xFEED_0000_0000_0001
PHASES = ["snapshot", "transfer", "restore", "replay", "cutover", "complete"]


class Counter(Daemon):
    """Counts events; refuses any that is not the producer's next one, so
    a lost, repeated or reordered event would stop the demo."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0

    def process(self, event: DaemonEvent):
        if event.sequence != self.last + 1:
            raise ValueError(f"event {event.sequence} after {self.last}")
        self.last = event.sequence
        self.count += 1
        return [self.count.to_bytes(8, "little")]

    def snapshot(self) -> bytes:
        return self.count.to_bytes(8, "little") + self.last.to_bytes(8, "little")

    def restore(self, state: bytes) -> None:
        self.count = int.from_bytes(state[:8], "little")
        self.last = int.from_bytes(state[8:], "little")


def migrate(orchestrator: Compute, origin: int, source: Mesh, target: Mesh, label: str) -> None:
    print(f"== migrating the counter {label}")
    start = time.perf_counter()
    orchestrator.start_migration(origin, source.node_id, target.node_id)
    printed = 0
    while True:
        status = orchestrator.migration_status(origin)
        # Phases are strictly ordered: one passed between two looks happened too.
        reached = PHASES.index(status.phase) + 1 if status.phase in PHASES else printed
        while printed < reached:
            print(f"  phase  {PHASES[printed]}")
            printed += 1
        if status.done:
            break
        orchestrator.wait_migration(origin, timeout=0.002)
    if status.state != "completed":
        raise SystemExit(f"  migration failed: {status.reason}")
    print(f"  done in {(time.perf_counter() - start) * 1000:.0f} ms")


def main() -> None:
    psk = os.urandom(32)
    fast = dict(psk=psk, heartbeat_interval=0.05, session_timeout=5.0)
    with Mesh(**fast) as mesh_a, Mesh(**fast) as mesh_b:
        mesh_a.connect(mesh_b.local_addr, mesh_b.public_key, mesh_b.node_id)
        with Compute(mesh_a, retry_interval=0.05) as a, Compute(mesh_b, retry_interval=0.05) as b:
            a.register("counter", Counter)
            b.register("counter", Counter)
            seed = os.urandom(32)
            origin = a.spawn("counter", seed)
            # B never sees the seed: the daemon's identity travels with the
            # migration, sealed to B's key.
            b.expect_origin("counter", origin)
            print(f"counter daemon {origin:#018x} runs on node A; a producer sends it {EVENTS} events")

            sent = 0
            outcomes = {d: 0 for d in Delivery}
            failure = []

            def produce() -> None:
                nonlocal sent
                try:
                    for seq in range(1, EVENTS + 1):
                        outcome = a.deliver(origin, PRODUCER, seq, seq.to_bytes(8, "little"))
                        outcomes[outcome] += 1
                        sent = seq
                except Exception as e:  # noqa: BLE001 - reported below
                    failure.append(e)

            producer = threading.Thread(target=produce)
            producer.start()
            while sent < EVENTS // 4 and producer.is_alive():
                time.sleep(0.001)
            migrate(a, origin, mesh_a, mesh_b, "A -> B (orchestrated by A) while events keep arriving at A")
            producer.join()
            if failure:
                raise SystemExit(f"the producer failed: {failure[0]}")

            deadline = time.monotonic() + 20
            while getattr(b.daemon(origin), "count", None) != sent and time.monotonic() < deadline:
                time.sleep(0.005)
            final = getattr(b.daemon(origin), "count", None)
            print("== producer done")
            print("  delivered at A: " + ", ".join(f"{d.name.lower()} {n}" for d, n in outcomes.items()))
            print(f"  daemon on A: {'yes' if a.daemon(origin) else 'no'}, on B: {'yes' if b.daemon(origin) else 'no'}")
            print(f"  sent {sent}, final count on node B {final}")
            if final != sent:
                raise SystemExit("  the count differs from the events sent")
            print("  every event applied exactly once")


if __name__ == "__main__":
    main()
