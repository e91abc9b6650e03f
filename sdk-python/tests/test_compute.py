"""Compute through the Python SDK: a counter daemon written in Python
migrates between nodes of a three-node mesh (encrypted UDP on 127.0.0.1)
while a producer keeps delivering, and applies every event exactly once;
daemon failures, unanswered work and bad arguments raise typed errors;
closing races in-flight calls."""

from __future__ import annotations

import gc
import struct
import threading
import time
from typing import List, Tuple

import pytest

from netmesh import (
    Cancel,
    CancelledError,
    ChannelUnknownError,
    Compute,
    ComputeAlreadyRegisteredError,
    ComputeBufferFullError,
    ComputeConfigError,
    ComputeDaemonError,
    ComputeIdentityTransportError,
    ComputeNoMigrationError,
    ComputeNoTargetError,
    ComputeNotFoundError,
    ComputeTransportError,
    ComputeUnknownKindError,
    Daemon,
    DaemonEvent,
    DaemonOutput,
    Delivery,
    Mesh,
    MigrationStatus,
    ShuttingDownError,
)

from conftest import FAST

SEED = b"\x07" * 32
PRODUCER = 0xFEED_0000_0000_0001
FAST_COMPUTE = dict(retry_interval=0.05, step_timeout=3, source_timeout=6, work_timeout=5)


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

    def snapshot(self) -> bytes:
        return self.count.to_bytes(8, "little") + self.last.to_bytes(8, "little")

    def restore(self, state: bytes) -> None:
        self.count = int.from_bytes(state[:8], "little")
        self.last = int.from_bytes(state[8:16], "little")


def wait_for(what: str, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.fixture
def three():
    meshes = [Mesh(**FAST) for _ in range(3)]
    try:
        for i, j in ((0, 1), (0, 2), (1, 2)):
            meshes[i].connect(meshes[j].local_addr, meshes[j].public_key, meshes[j].node_id)
        runtimes = [Compute(m, **FAST_COMPUTE) for m in meshes]
        for rt in runtimes:
            rt.register("counter", Counter)
        yield meshes, runtimes
        for rt in runtimes:
            rt.close()
    finally:
        for m in meshes:
            m.close()


def test_a_python_counter_migrates_under_load_exactly_once(three) -> None:
    meshes, (a, b, c) = three
    origin = a.spawn("counter", SEED)
    assert b.expect("counter", SEED) == origin
    assert a.daemons() == [{"origin": origin, "name": "counter"}]
    assert isinstance(a.daemon(origin), Counter)
    assert b.daemon(origin) is None

    stop = threading.Event()
    sent = [0]
    outcomes = {d: 0 for d in Delivery}

    def produce() -> None:
        seq = 0
        while not stop.is_set() or seq < 200:
            seq += 1
            while True:
                try:
                    outcome = a.deliver(origin, PRODUCER, seq, seq.to_bytes(8, "little"))
                    break
                except ComputeBufferFullError:
                    # Pushed back: the old node holds as many forwarded
                    # events as it may until B acknowledges some. Retry
                    # (the call releases the GIL while it runs).
                    continue
            assert outcome != Delivery.DUPLICATE
            outcomes[outcome] += 1
            sent[0] = seq

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert a.wait_processed(origin, 50, timeout=20) is not None, "events before the move"
        c.start_migration(origin, meshes[0].node_id, meshes[1].node_id)
        phases: List[str] = []
        while True:
            status = c.migration_status(origin)
            if not phases or phases[-1] != status.phase:
                phases.append(status.phase)
            done = c.wait_migration(origin, timeout=0.005)
            if done is not None:
                break
        assert done == MigrationStatus("completed", "complete")
        assert done.done
        order = ["snapshot", "transfer", "restore", "replay", "cutover", "complete"]
        assert phases and [order.index(p) for p in phases] == sorted(order.index(p) for p in phases)
    finally:
        stop.set()
        producer.join()
    total = sent[0]
    assert outcomes[Delivery.FORWARDED] > 0

    # B applies what A did not: the events buffered during the move and
    # those forwarded after it.
    arrived = b.wait_processed(origin, total - outcomes[Delivery.PROCESSED], timeout=20)
    assert arrived is not None, "every event applied on the target"
    assert b.daemon(origin).count == total
    assert b.stats(origin)["errors"] == 0
    assert a.daemon(origin) is None
    with pytest.raises(ComputeNotFoundError):
        a.stats(origin)

    last = None
    while True:
        out = b.next_output(timeout=0)
        if out is None:
            break
        assert isinstance(out, DaemonOutput) and out.daemon == origin
        last = out
    assert last is not None and int.from_bytes(last.payload, "little") == total

    # Back again, orchestrated by the source itself (B used up its entry
    # when the daemon arrived; A needs one now).
    assert a.expect("counter", SEED) == origin
    with pytest.raises(ComputeAlreadyRegisteredError):
        a.expect("counter", SEED)
    b.start_migration(origin, meshes[1].node_id, meshes[0].node_id)
    assert b.wait_migration(origin, timeout=20) == MigrationStatus("completed", "complete")
    assert a.deliver(origin, PRODUCER, total + 1, b"x") == Delivery.PROCESSED
    assert a.daemon(origin).count == total + 1


def test_the_identity_travels_to_a_node_that_does_not_know_the_seed(three) -> None:
    meshes, (a, b, _) = three
    origin = a.spawn("counter", SEED)
    for seq in range(1, 4):
        assert a.deliver(origin, PRODUCER, seq, b"x") == Delivery.PROCESSED
    b.expect_origin("counter", origin)
    with pytest.raises(ComputeAlreadyRegisteredError):
        b.expect_origin("counter", origin)
    # A node whose key is not known here cannot be sealed to: nothing starts.
    with pytest.raises(ComputeIdentityTransportError):
        a.start_migration(origin, meshes[0].node_id, 0x1234)
    with pytest.raises(ComputeNoMigrationError):
        a.migration_status(origin)
    # Without its identity B cannot run the daemon: the move fails and the
    # daemon stays on A.
    a.start_migration(origin, meshes[0].node_id, meshes[1].node_id, transport_identity=False)
    failed = a.wait_migration(origin, timeout=20)
    assert failed.state == "failed", failed
    assert failed.reason.startswith("identity-transport-failed"), failed
    assert a.deliver(origin, PRODUCER, 4, b"x") == Delivery.PROCESSED
    # Sealed (the default), it moves, state and all.
    a.start_migration(origin, meshes[0].node_id, meshes[1].node_id, transport_identity=True)
    assert a.wait_migration(origin, timeout=20) == MigrationStatus("completed", "complete")
    assert b.daemon(origin).count == 4
    assert b.deliver(origin, PRODUCER, 5, b"x") == Delivery.PROCESSED
    assert a.daemon(origin) is None


def test_a_migration_is_placed_where_it_is_taken(three) -> None:
    """The scheduler places a migration on a node that announced it takes
    them (a Compute stamps the tag and its load on its node's
    announcement)."""
    meshes, (a, b, _) = three
    origin = a.spawn("counter", SEED)
    with pytest.raises(ComputeNoTargetError):
        a.place_migration(origin)
    with pytest.raises(ComputeNotFoundError):
        a.place_migration(0x77)
    meshes[1].announce({"tags": ["zone:eu"]})

    def placed_on_b() -> bool:
        try:
            return a.place_migration(origin) == meshes[1].node_id
        except ComputeNoTargetError:
            return False

    wait_for("b placed", placed_on_b)
    b.expect_origin("counter", origin)
    a.start_migration(origin, meshes[0].node_id, a.place_migration(origin))
    assert a.wait_migration(origin, timeout=20) == MigrationStatus("completed", "complete")
    assert b.daemon(origin) is not None


def test_daemon_failures_and_bad_arguments_raise_typed_errors() -> None:
    release = threading.Event()

    class Picky(Counter):
        def process(self, event: DaemonEvent) -> List[bytes]:
            if event.payload == b"block":
                release.wait(10)
            if event.payload == b"boom":
                raise RuntimeError("boom")
            return super().process(event)

    with Mesh(**FAST) as mesh:
        with pytest.raises(ComputeConfigError, match="nope"):
            Compute(mesh, nope=1)
        with pytest.raises(ComputeConfigError, match="transfer_rate"):
            Compute(mesh, transfer_rate=-1)
    with Mesh(**FAST) as mesh, Compute(mesh, transfer_rate=0):
        pass  # unpaced
    with Mesh(**FAST) as mesh, Compute(mesh, work_timeout=0.2) as rt:
        with pytest.raises(ComputeTransportError):
            Compute(mesh)  # one runtime per node
        rt.register("picky", Picky)
        with pytest.raises(ComputeAlreadyRegisteredError):
            rt.register("picky", Picky)
        with pytest.raises(ComputeUnknownKindError):
            rt.spawn("nope", SEED)
        with pytest.raises(ValueError):
            rt.spawn("picky", b"short")
        origin = rt.spawn("picky", SEED)
        with pytest.raises(ComputeAlreadyRegisteredError):
            rt.spawn("picky", SEED)
        assert rt.deliver(origin, PRODUCER, 1, b"ok") == Delivery.PROCESSED
        with pytest.raises(ComputeDaemonError, match="RuntimeError: boom"):
            rt.deliver(origin, PRODUCER, 2, b"boom")
        with pytest.raises(ComputeDaemonError, match="did not answer"):
            rt.deliver(origin, PRODUCER, 2, b"block")
        release.set()
        assert rt.stats(origin)["errors"] == 2
        with pytest.raises(ComputeNotFoundError):
            rt.deliver(12345, PRODUCER, 1, b"")
        with pytest.raises(ComputeNoMigrationError):
            rt.migration_status(origin)
        with pytest.raises(ComputeNoMigrationError):
            rt.wait_migration(origin, timeout=0)
        with pytest.raises(ComputeTransportError):
            rt.start_migration(origin, 12345, mesh.node_id)
        assert rt.next_output(timeout=0) == DaemonOutput(origin, 1, (1).to_bytes(8, "little"))
        assert rt.next_output(timeout=0) is None
        # A cancel ends the waits (here from another thread, while they wait).
        for wait in (lambda c: rt.next_output(cancel=c), lambda c: rt.wait_migration(origin, cancel=c)):
            with Cancel() as token:
                timer = threading.Timer(0.05, token.cancel)
                timer.start()
                try:
                    with pytest.raises((CancelledError, ComputeNoMigrationError)):
                        wait(token)
                finally:
                    timer.join()
        rt.stop(origin)
        with pytest.raises(ComputeNotFoundError):
            rt.stop(origin)
        wait_for("the stopped daemon's object released", lambda: not rt._daemons.objects)
    with pytest.raises(ShuttingDownError):
        rt.daemons()
    assert "closed" in repr(rt)


def batch(first: int, n: int) -> List[bytes]:
    """The payloads of ``n`` events from sequence ``first`` (each its sequence)."""
    return [(first + i).to_bytes(8, "little") for i in range(n)]


def test_deliver_batch_applies_in_order_and_stops_at_a_failing_event() -> None:
    class Failing(Counter):
        def process(self, event: DaemonEvent) -> List[bytes]:
            if event.payload == b"boom":
                raise RuntimeError(f"boom at {event.sequence}")
            if event.payload == b"text":
                super().process(event)
                return ["not bytes"]  # type: ignore[list-item]
            return super().process(event)

    with Mesh(**FAST) as mesh, Compute(mesh, **FAST_COMPUTE) as rt:
        rt.register("counter", Failing)
        origin = rt.spawn("counter", SEED)
        assert rt.deliver_batch(origin, PRODUCER, 1, batch(1, 64)) == [Delivery.PROCESSED] * 64
        for seq in range(1, 65):
            assert rt.next_output(timeout=5) == DaemonOutput(origin, seq, seq.to_bytes(8, "little"))
        failing = batch(65, 8)
        failing[4] = b"boom"
        with pytest.raises(ComputeDaemonError, match="RuntimeError: boom at 69") as raised:
            rt.deliver_batch(origin, PRODUCER, 65, failing, timeout=5)
        assert getattr(raised.value, "delivered") == 4
        assert getattr(raised.value, "outcomes") == [Delivery.PROCESSED] * 4
        stats = rt.stats(origin)
        assert (stats["events_processed"], stats["errors"], stats["head_sequence"]) == (68, 1, 68)
        assert rt.deliver_batch(origin, PRODUCER, 69, batch(69, 4)) == [Delivery.PROCESSED] * 4
        # A cancelled token gives up before the work thread can take the
        # batch (nothing applied); a zero timeout does not matter to a free
        # daemon's batch, which is lent to this thread (nothing to wait for).
        with Cancel() as token:
            token.cancel()
            with pytest.raises(CancelledError):
                rt.deliver_batch(origin, PRODUCER, 73, batch(73, 1), cancel=token)
        assert rt.stats(origin)["events_processed"] == 72
        assert rt.deliver_batch(origin, PRODUCER, 73, batch(73, 1), timeout=0) == [Delivery.PROCESSED]
        assert rt.deliver_batch(origin, PRODUCER, 74, []) == []
        with pytest.raises(TypeError):
            rt.deliver_batch(origin, PRODUCER, 73, ["text"])  # type: ignore[list-item]
        with pytest.raises(ComputeNotFoundError):
            rt.deliver_batch(12345, PRODUCER, 1, batch(1, 1))
        assert rt.stats(origin)["events_processed"] == 73
        # An output that is not bytes fails its event (the ones before it
        # are delivered), lent or through the work thread.
        with pytest.raises(ComputeDaemonError, match="TypeError: output 0 is str") as raised:
            rt.deliver_batch(origin, PRODUCER, 74, batch(74, 2) + [b"text"] + batch(77, 1))
        assert getattr(raised.value, "delivered") == 2
        assert rt.stats(origin)["events_processed"] == 75
        with Cancel() as token:
            with pytest.raises(ComputeDaemonError, match="TypeError: output 0 is str") as raised:
                rt.deliver_batch(origin, PRODUCER, 77, batch(77, 1) + [b"text"], cancel=token)
        assert getattr(raised.value, "delivered") == 1
        assert rt.stats(origin)["events_processed"] == 76


def test_a_free_daemons_batch_is_applied_on_the_delivering_thread() -> None:
    ran_on: List[int] = []

    class Where(Counter):
        def process(self, event: DaemonEvent) -> List[bytes]:
            ran_on.append(threading.get_ident())
            if event.payload == b"interrupt":
                raise KeyboardInterrupt
            return super().process(event)

    with Mesh(**FAST) as mesh, Compute(mesh, **FAST_COMPUTE) as rt:
        rt.register("counter", Where)
        origin = rt.spawn("counter", SEED)
        here, worker = threading.get_ident(), rt._worker.ident
        assert rt.deliver_batch(origin, PRODUCER, 1, batch(1, 32)) == [Delivery.PROCESSED] * 32
        assert set(ran_on) == {here}, "lent: applied here"
        ran_on.clear()
        assert rt.deliver(origin, PRODUCER, 33, b"") == Delivery.PROCESSED
        with Cancel() as token:
            assert rt.deliver_batch(origin, PRODUCER, 34, batch(34, 2), cancel=token) == [Delivery.PROCESSED] * 2
        assert set(ran_on) == {worker}, "one event, or a batch with a token: the work thread"
        for seq in range(1, 36):
            assert rt.next_output(timeout=5) == DaemonOutput(origin, seq, seq.to_bytes(8, "little"))
        # A daemon method interrupted (KeyboardInterrupt) in a lent batch:
        # the batch is answered first (the events before it delivered, the
        # daemon free again), then the interrupt goes on.
        with pytest.raises(KeyboardInterrupt):
            rt.deliver_batch(origin, PRODUCER, 36, batch(36, 2) + [b"interrupt"])
        stats = rt.stats(origin)
        assert (stats["events_processed"], stats["errors"]) == (37, 1)
        ran_on.clear()
        assert rt.deliver_batch(origin, PRODUCER, 38, batch(38, 3)) == [Delivery.PROCESSED] * 3
        assert set(ran_on) == {here}
        assert rt.stats(origin)["events_processed"] == 40


def test_close_races_calls_in_flight() -> None:
    entered = threading.Event()
    release = threading.Event()

    class Slow(Counter):
        def process(self, event: DaemonEvent) -> List[bytes]:
            entered.set()
            release.wait(10)
            return super().process(event)

    with Mesh(**FAST) as mesh:
        rt = Compute(mesh)
        rt.register("slow", Slow)
        origin = rt.spawn("slow", SEED)
        errors: List[BaseException] = []

        def deliver() -> None:
            try:
                rt.deliver(origin, PRODUCER, 1, b"")
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        worker = threading.Thread(target=deliver)
        worker.start()
        entered.wait(10)
        closers = [threading.Thread(target=rt.close) for _ in range(4)]
        for t in closers:
            t.start()
        # The close wakes the delivery at once; it then waits for the
        # daemon method in progress to return before it ends.
        worker.join()
        release.set()
        for t in closers:
            t.join()
        # The in-flight delivery was woken by the close, not left hanging.
        assert len(errors) == 1 and isinstance(errors[0], ShuttingDownError), errors
        with pytest.raises(ShuttingDownError):
            rt.deliver(origin, PRODUCER, 1, b"")
        with pytest.raises(ShuttingDownError):
            rt.deliver_batch(origin, PRODUCER, 1, [b""])
        rt.close()


def test_a_forgotten_compute_is_freed_in_the_background() -> None:
    with Mesh(**FAST) as mesh:
        rt = Compute(mesh)
        worker = rt._worker
        with pytest.warns(ResourceWarning, match="Compute was never closed"):
            del rt
            gc.collect()
        # The free the finalizer handed over ends the work thread.
        worker.join(10)
        assert not worker.is_alive()


def test_batch_records_split_alike_whatever_their_lengths() -> None:
    from netmesh.compute import _RECORD, _records

    def pack(events: List[Tuple[int, int, bytes]]) -> bytes:
        return b"".join(_RECORD.pack(p, s, len(b)) + b for p, s, b in events)

    cases = [
        [],
        [(1, 1, b"")],
        [(1, s, b"x" * 8) for s in range(1, 65)],  # one length: split at once
        [(1, 1, b"ab"), (2, 2, b"abcd"), (3, 3, b"")],
        # Lengths that add up to a multiple of the first record's size.
        [(1, 1, b"a" * 4), (1, 2, b""), (1, 3, b"a" * 8)],
        [(7, 9, b"a" * 3)] * 5 + [(8, 10, b"b" * 2)],
        # A multiple of the first record's size whose second length field
        # (44 = 0x2c) shares its low byte with the first's (300 = 0x12c).
        [(1, 1, b"a" * 300), (1, 2, b"b" * 44), (1, 3, b"c" * 556)],
    ]
    for events in cases:
        assert list(_records(pack(events))) == events
    with pytest.raises(struct.error):
        _records(pack([(1, 1, b"abcd")])[:-1])


def test_a_channel_subscription_follows_its_daemon() -> None:
    """Recorded with the daemon, the subscription moves with it: the target
    subscribes before the migration completes (an event published then
    reaches it), the source lets go, and unsubscribing ends the node's."""
    from test_mesh_relay import link

    def subscribers(publisher: Mesh) -> int:
        return next(c["subscribers"] for c in publisher.channels()["channels"] if c["name"] == "ticks")

    with Mesh(**FAST) as pub, Mesh(**FAST) as ma, Mesh(**FAST) as mb:
        for m in (pub, ma, mb):
            m.start()
        link(ma, pub)
        link(mb, pub)
        link(ma, mb)
        pub.register_channel("ticks")
        with Compute(ma, **FAST_COMPUTE) as a, Compute(mb, **FAST_COMPUTE) as b:
            for rt in (a, b):
                rt.register("counter", Counter)
            origin = a.spawn("counter", SEED)
            a.subscribe_channel(origin, pub.node_id, "ticks")
            with pytest.raises(ComputeNotFoundError):
                a.subscribe_channel(0x42, pub.node_id, "ticks")
            with pytest.raises(ChannelUnknownError):
                a.subscribe_channel(origin, pub.node_id, "nope")
            assert a.stats(origin)["channels"] == [{"publisher": pub.node_id, "channel": "ticks"}]
            assert subscribers(pub) == 1

            b.expect_origin("counter", origin)
            a.start_migration(origin, ma.node_id, mb.node_id)
            assert a.wait_migration(origin, timeout=20) == MigrationStatus("completed", "complete")
            assert b.stats(origin)["channels"] == [{"publisher": pub.node_id, "channel": "ticks"}]
            pub.publish("ticks", [b"t1"], reliable=True)
            event = mb.recv(timeout=20)
            assert (event.data, event.channel) == (b"t1", "ticks")
            wait_for("A lets go of the channel", lambda: subscribers(pub) == 1)

            b.unsubscribe_channel(origin, pub.node_id, "ticks")
            assert subscribers(pub) == 0
            assert b.stats(origin)["channels"] == []
