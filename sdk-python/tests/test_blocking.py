"""Every handle type with blocking calls — RedEX tail, CortEX model and
watch, mesh node and stream, bus, and the log pull — against the two ways a
blocked call must end: its handle closed ("close wakes a call blocked
forever") and its Cancel cancelled ("cancel wakes a blocked call").

No sleeps: each round starts the call (on another thread, or on the main
thread, where netmesh waits on a helper thread), lets it run, interrupts
it, and counts only when the outcome proves the call was waiting: a cancel
says "while it waited" (not "already cancelled when it started"), a close
ends a pull call with its end (``RedexTailEndedError``, a watch's end, a
``recv`` of None) or says "freed while the call waited", where a close that
came first gives ``ShuttingDownError`` (see conftest.until_won).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Tuple

import pytest

from netmesh import (
    Bus,
    Cancel,
    CancelledError,
    CortexWatchEndedError,
    Mesh,
    MeshHandshakeTimeoutError,
    MeshStreamClosedError,
    Memories,
    Redex,
    RedexTailEndedError,
    ShuttingDownError,
    Tasks,
)

from conftest import FAST, FakeRedis, interrupted_while_waiting, let_it_block, run_blocked, until_won

WHERE = ["thread", "main"]
ROUNDS, WANTED = 200, 3
# A bus whose flush waits far longer than any round: its one event sits in
# the batcher (a minute's delay, batches of a thousand).
PATIENT = {
    "num_shards": 1,
    "adapter": {"type": "redex"},
    "batch": {"min_size": 1000, "max_size": 1000, "max_delay_ms": 60000},
    "shutdown_timeout_ms": 600000,
}
_names = itertools.count()


def cancelled_while_waiting(outcome: Tuple[str, Any]) -> bool:
    kind, value = outcome
    assert kind == "error" and isinstance(value, CancelledError), outcome
    return interrupted_while_waiting(value.message)


def cancelled_not_before(outcome: Tuple[str, Any]) -> bool:
    """The mesh's calls say only "the call was cancelled" when cancelled in
    their wait (as tests/ffi_mesh.rs checks): anything but "already
    cancelled when it started" counts."""
    kind, value = outcome
    assert kind == "error" and isinstance(value, CancelledError), outcome
    return "already cancelled" not in value.message


def cancel_rounds(
    make_call: Callable[[Cancel], Callable[[], Any]],
    where: str,
    won: Callable[[Tuple[str, Any]], bool] = cancelled_while_waiting,
    wanted: int = WANTED,
) -> None:
    """Rounds of ``make_call(token)()`` cancelled through ``token``."""

    def attempt(_: int) -> bool:
        with Cancel() as token:
            return won(run_blocked(make_call(token), token.cancel, where))

    until_won(ROUNDS, wanted, attempt)


# -- RedEX tail ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", WHERE)
def test_tail_close_wakes_a_next_blocked_forever(where: str) -> None:
    with Redex() as redex, redex.open_file("block/tail") as f:

        def attempt(_: int) -> bool:
            tail = f.tail(f.next_seq)
            kind, value = run_blocked(tail.next, tail.close, where)
            assert kind == "error", value
            if isinstance(value, RedexTailEndedError):
                return True  # woken in its wait: NET_END
            assert isinstance(value, ShuttingDownError), value
            return False  # closed before it began

        until_won(ROUNDS, WANTED, attempt)
        f.append(b"the file is unaffected")


@pytest.mark.parametrize("where", WHERE)
def test_cancel_wakes_a_blocked_tail_next_and_the_tail_reads_on(where: str) -> None:
    with Redex() as redex, redex.open_file("block/tail-cancel") as f, f.tail(0) as tail:
        cancel_rounds(lambda token: lambda: tail.next(cancel=token), where)
        # A cancelled next consumed nothing.
        f.append(b"after")
        assert tail.next(5) == (0, b"after")


def test_a_tail_iterates_until_its_cancel_is_cancelled() -> None:
    with Redex() as redex, redex.open_file("block/tail-iter") as f:
        f.append(b"x")

        def attempt(_: int) -> bool:
            with Cancel() as token, f.tail(0, cancel=token) as tail:
                seen = []
                kind, value = run_blocked(lambda: seen.extend(tail), token.cancel)
                assert seen == [(0, b"x")]
                return cancelled_while_waiting((kind, value))

        until_won(ROUNDS, WANTED, attempt)


# -- CortEX models and watches ------------------------------------------------------------


@pytest.fixture
def redex():
    with Redex() as r:
        yield r


def _open(redex: Redex, kind: str) -> Any:
    return Tasks(redex, 1) if kind == "tasks" else Memories(redex, 1)


@pytest.mark.parametrize("kind", ["tasks", "memories"])
@pytest.mark.parametrize("where", WHERE)
def test_watch_close_wakes_a_next_blocked_forever(redex: Redex, kind: str, where: str) -> None:
    with _open(redex, kind) as model:

        def attempt(_: int) -> bool:
            _rows, watch = model.snapshot_and_watch()  # only later changes: next blocks
            kind_, value = run_blocked(watch.next, watch.close, where)
            assert kind_ == "error", value
            if isinstance(value, CortexWatchEndedError):
                return True
            assert isinstance(value, ShuttingDownError), value
            return False

        until_won(ROUNDS, WANTED, attempt)


@pytest.mark.parametrize("kind", ["tasks", "memories"])
@pytest.mark.parametrize("where", WHERE)
def test_cancel_wakes_a_blocked_watch_next(redex: Redex, kind: str, where: str) -> None:
    with _open(redex, kind) as model:
        _rows, watch = model.snapshot_and_watch()
        with watch:
            cancel_rounds(lambda token: lambda: watch.next(cancel=token), where)
            # The watch still works after cancelled calls.
            if kind == "tasks":
                model.create(9, "after")
            else:
                model.store(9, "after")
            update = watch.next(5)
            assert isinstance(update, list) and [r.id for r in update] == [9]


@pytest.mark.parametrize("kind", ["tasks", "memories"])
@pytest.mark.parametrize("where", WHERE)
def test_model_close_wakes_a_wait_for_seq_blocked_forever(redex: Redex, kind: str, where: str) -> None:
    def attempt(_: int) -> bool:
        model = _open(redex, kind)
        kind_, value = run_blocked(lambda: model.wait_for_seq(10**6), model.close, where)
        assert kind_ == "error" and isinstance(value, ShuttingDownError), (kind_, value)
        return interrupted_while_waiting(value.message)  # "freed while the call waited"

    until_won(ROUNDS, WANTED, attempt)


@pytest.mark.parametrize("kind", ["tasks", "memories"])
@pytest.mark.parametrize("where", WHERE)
def test_cancel_wakes_a_blocked_wait_for_seq(redex: Redex, kind: str, where: str) -> None:
    with _open(redex, kind) as model:
        cancel_rounds(lambda token: lambda: model.wait_for_seq(10**6, cancel=token), where)
        # Waiting still works after cancelled waits.
        seq = model.create(1, "x") if kind == "tasks" else model.store(1, "x")
        assert model.wait_for_seq(seq, 5)


@pytest.mark.parametrize("kind", ["tasks", "memories"])
def test_model_close_ends_its_watches_blocked_forever(redex: Redex, kind: str) -> None:
    for _ in range(5):
        model = _open(redex, kind)
        _rows, watch = model.snapshot_and_watch()
        kind_, value = run_blocked(watch.next, model.close)
        assert kind_ == "error" and isinstance(value, CortexWatchEndedError), value
        # The watch outlives its model: it stays ended, and closes cleanly.
        with pytest.raises(CortexWatchEndedError):
            watch.next()
        assert list(watch) == []
        watch.close()


# -- mesh node and stream -------------------------------------------------------------------


@pytest.mark.parametrize("where", WHERE)
def test_mesh_close_wakes_a_recv_blocked_forever(where: str) -> None:
    def attempt(_: int) -> bool:
        node = Mesh(**FAST)
        kind, value = run_blocked(node.recv, node.close, where)
        if kind == "value":
            assert value is None  # NET_END: woken in its wait
            return True
        assert isinstance(value, ShuttingDownError), value
        return False  # closed before it began

    until_won(ROUNDS, WANTED, attempt)


@pytest.mark.parametrize("where", WHERE)
def test_mesh_close_wakes_an_accept_blocked_forever(where: str) -> None:
    def attempt(_: int) -> bool:
        node = Mesh(**FAST)
        kind, value = run_blocked(lambda: node.accept(99), node.close, where)
        assert kind == "error" and isinstance(value, ShuttingDownError), (kind, value)
        # Woken in its wait ("shut down"), not refused at the door ("freed", "closed").
        return "shut down" in value.message

    until_won(ROUNDS, WANTED, attempt)


@pytest.mark.parametrize("where", WHERE)
def test_cancel_wakes_a_blocked_recv_recv_batch_and_accept(where: str) -> None:
    with Mesh(**FAST) as node:
        calls = itertools.cycle(
            [
                lambda token: lambda: node.recv(cancel=token),
                lambda token: lambda: node.recv_batch(16, cancel=token),
                lambda token: lambda: node.accept(99, cancel=token),
            ]
        )
        cancel_rounds(lambda token: next(calls)(token), where, cancelled_not_before, 3 * WANTED)
        # The node works on.
        with Mesh(**FAST) as other:
            node.connect(other.local_addr, other.public_key, other.node_id)


def _silent_peer_connect(node: Mesh, stranger: Mesh, cancel: Any = None) -> Callable[[], Any]:
    # A peer with another PSK never answers: the handshake waits its whole
    # (long) timeout unless interrupted.
    return lambda: node.connect(stranger.local_addr, stranger.public_key, stranger.node_id, cancel=cancel)


@pytest.mark.parametrize("where", WHERE)
def test_cancel_and_close_wake_a_blocked_connect(where: str) -> None:
    slow = dict(FAST, handshake_timeout=600, handshake_retries=1)
    with Mesh() as stranger:
        with Mesh(**slow) as node:
            cancel_rounds(
                lambda token: _silent_peer_connect(node, stranger, token), where, cancelled_not_before
            )

        def attempt(_: int) -> bool:
            node = Mesh(**slow)
            kind, value = run_blocked(_silent_peer_connect(node, stranger), node.close, where)
            assert kind == "error", value
            assert not isinstance(value, MeshHandshakeTimeoutError), value
            assert isinstance(value, ShuttingDownError), value
            return "has been freed" not in value.message and "is closed" not in value.message

        until_won(ROUNDS, WANTED, attempt)


def _stalled_stream(a: Mesh, b: Mesh) -> Any:
    """A stream from ``a`` whose window is spent and will never be granted
    again (its receiver ``b`` is shut down)."""
    s = a.open_stream(b.node_id, next(_names) + 1, window=200)
    s.send(bytes(100))  # 184 of 200 spent
    return s


@pytest.fixture
def stalled_pair():
    a, b = Mesh(**FAST), Mesh(**FAST)
    try:
        a.connect(b.local_addr, b.public_key, b.node_id)
        b.shutdown()  # no grants will come
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("where", WHERE)
def test_stream_close_wakes_a_send_blocked_forever(stalled_pair: Any, where: str) -> None:
    a, b = stalled_pair

    def attempt(_: int) -> bool:
        s = _stalled_stream(a, b)
        kind, value = run_blocked(lambda: s.send_blocking([bytes(100)]), s.close, where)
        assert kind == "error", value
        if isinstance(value, MeshStreamClosedError):
            return True  # woken in its wait
        assert isinstance(value, ShuttingDownError), value
        return False  # closed before it began

    until_won(ROUNDS, WANTED, attempt)


@pytest.mark.parametrize("where", WHERE)
def test_cancel_wakes_a_blocked_send(stalled_pair: Any, where: str) -> None:
    a, b = stalled_pair
    with _stalled_stream(a, b) as s:
        cancel_rounds(
            lambda token: lambda: s.send_blocking([bytes(100)], cancel=token), where, cancelled_not_before
        )


# -- bus -------------------------------------------------------------------------------------


def _patient_bus() -> Bus:
    bus = Bus(PATIENT)
    bus.ingest(b"one event")
    return bus


@pytest.mark.parametrize("where", WHERE)
def test_bus_close_wakes_a_flush_blocked_forever(where: str) -> None:
    def attempt(_: int) -> bool:
        bus = _patient_bus()
        # The close wakes the flush, then shuts the bus down losslessly (the
        # event is dispatched by the shutdown's drain): no BusyError.
        kind, value = run_blocked(bus.flush, bus.close, where)
        assert kind == "error" and isinstance(value, ShuttingDownError), (kind, value)
        return interrupted_while_waiting(value.message)

    until_won(ROUNDS, WANTED, attempt)


@pytest.mark.parametrize("where", WHERE)
def test_cancel_wakes_a_blocked_flush(where: str) -> None:
    bus = _patient_bus()
    cancel_rounds(lambda token: lambda: bus.flush(cancel=token), where)
    # Nothing was lost by the cancelled flushes: the shutdown drains the event.
    report = bus.shutdown()
    assert report["shutdown_was_lossy"] is False
    assert bus.stats()["events_dispatched"] == 1
    bus.close()


def _silent_redis_bus(server: FakeRedis) -> Bus:
    return Bus(
        num_shards=1,
        adapter={"type": "redis", "url": server.url, "command_timeout_ms": 600000},
        shutdown_timeout_ms=100,
    )


@pytest.mark.parametrize("where", WHERE)
def test_bus_close_and_cancel_wake_a_blocked_poll(fake_redis: FakeRedis, where: str) -> None:
    # The server never answers XRANGE: a poll waits on it for good.
    with _silent_redis_bus(fake_redis) as bus:
        cancel_rounds(lambda token: lambda: bus.poll(cancel=token), where)

    def attempt(_: int) -> bool:
        server = FakeRedis()
        try:
            bus = _silent_redis_bus(server)
            kind, value = run_blocked(bus.poll, bus.close, where)
            assert kind == "error" and isinstance(value, ShuttingDownError), (kind, value)
            return interrupted_while_waiting(value.message)
        finally:
            server.close()

    until_won(ROUNDS, WANTED, attempt)


# -- the log pull ------------------------------------------------------------------------------


def test_stopping_the_log_puller_cancels_its_blocked_pull() -> None:
    from netmesh.log import _puller

    try:

        def attempt(_: int) -> bool:
            _puller.start()
            let_it_block()
            assert _puller.stop(30), "the log puller did not stop"
            error = _puller.ended_with
            assert isinstance(error, CancelledError), error
            return interrupted_while_waiting(error.message)

        until_won(ROUNDS, WANTED, attempt)
    finally:
        _puller.start()
