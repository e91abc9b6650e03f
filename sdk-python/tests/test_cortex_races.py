"""close()/free racing calls on other threads, for the four CortEX handle
types (tasks and memories models, and their watches).

The SDK holds no lock across libnet calls; libnet's handle guard makes a
call after the free fail with NET_ERR_SHUTTING_DOWN and makes the free wait
for calls already inside (waking a blocked watch first). Raw-pointer calls
exercise the guard directly.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List

import pytest

from netmesh import (
    CortexHaltedError,
    CortexWatchEndedError,
    Memories,
    Redex,
    RedexClosedError,
    ShuttingDownError,
    Tasks,
)
from netmesh._ffi import ffi, lib

from conftest import free_wakes_blocked, race_in_flight, until_won

ROUNDS = 20
ACCEPTABLE = (ShuttingDownError, CortexHaltedError, RedexClosedError, CortexWatchEndedError)


@pytest.fixture
def redex():
    with Redex() as r:
        yield r


def _models(redex: Redex) -> List[Any]:
    return [Tasks(redex, 1), Memories(redex, 1)]


def _write(model: Any, i: int) -> int:
    if isinstance(model, Tasks):
        return model.create(i, "t")
    return model.store(i, "m", ["a"], "s")


# -- 1. an operation after the free is refused -----------------------------------------


@pytest.mark.parametrize("kind", ["tasks", "memories"])
def test_op_after_close_is_refused(redex: Redex, kind: str) -> None:
    model = Tasks(redex, 1) if kind == "tasks" else Memories(redex, 1)
    watch = model.watch()
    raw_model, raw_watch = model._ptr, watch._ptr
    watch.close()
    model.close()
    with pytest.raises(ShuttingDownError):
        _write(model, 1)
    with pytest.raises(ShuttingDownError):
        watch.next(timeout=0)
    # The guard itself, on the freed raw pointers.
    out = ffi.new("uint64_t *")
    assert lib.net_model_count_where(raw_model, ffi.NULL, 0, out) == lib.NET_ERR_SHUTTING_DOWN
    assert lib.net_model_wait_for_seq(raw_model, 0, 0, ffi.NULL, ffi.NULL) == lib.NET_ERR_SHUTTING_DOWN
    rows = ffi.new("net_bytes_t *")
    missed = ffi.new("uint64_t *")
    assert (
        lib.net_model_watch_next(raw_watch, 0, rows, missed, ffi.NULL, ffi.NULL)
        == lib.NET_ERR_SHUTTING_DOWN
    )
    # Freeing again is a no-op.
    assert lib.net_model_free(raw_model) == lib.NET_OK
    assert lib.net_model_watch_free(raw_watch) == lib.NET_OK


# -- 2. concurrent closes are idempotent, with operations racing them -----------------


def _race(target_close: Callable[[], None], ops: List[Callable[[], object]]) -> None:
    barrier = threading.Barrier(len(ops) + 2)
    errors: List[BaseException] = []

    def run_op(op: Callable[[], object]) -> None:
        barrier.wait()
        for _ in range(20):
            try:
                op()
            except ACCEPTABLE:
                pass
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

    def run_close() -> None:
        barrier.wait()
        target_close()

    threads = [threading.Thread(target=run_op, args=(op,)) for op in ops]
    threads += [threading.Thread(target=run_close) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert not errors, errors


def test_concurrent_model_closes_with_racing_ops(redex: Redex) -> None:
    for i in range(ROUNDS):
        for model in _models(redex):
            ops: List[Callable[[], object]] = [
                lambda m=model: _write(m, i),
                lambda m=model: m.find_many(),
                lambda m=model: m.progress(),
                lambda m=model: m.snapshot(),
            ]
            _race(model.close, ops)
            assert model.closed


def test_concurrent_watch_closes_with_racing_next(redex: Redex) -> None:
    for model in _models(redex):
        for _ in range(ROUNDS):
            watch = model.watch()
            _race(watch.close, [lambda w=watch: w.next(timeout=0.001)] * 2)
            assert watch.closed
        model.close()


# -- 3. the free waits for the operation in flight ----------------------------------------


@pytest.mark.parametrize("kind", ["tasks", "memories"])
def test_watch_free_wakes_a_raw_next_blocked_forever(redex: Redex, kind: str) -> None:
    """net_model_watch_free on the raw pointer: a net_model_watch_next
    blocked with no limit returns NET_END (woken in its wait) — or
    NET_ERR_SHUTTING_DOWN when the free came first, which proves nothing —
    and the free returns NET_OK. The SDK forms are in test_blocking.py."""
    model = Tasks(redex, 1) if kind == "tasks" else Memories(redex, 1)

    def attempt(_: int) -> bool:
        _rows, watch = model.snapshot_and_watch()
        ptr, watch._ptr = watch._ptr, None
        rows = ffi.new("net_bytes_t *")
        missed = ffi.new("uint64_t *")
        status = free_wakes_blocked(
            lambda: lib.net_model_watch_next(ptr, lib.NET_WAIT_FOREVER, rows, missed, ffi.NULL, ffi.NULL),
            lambda: lib.net_model_watch_free(ptr),
        )
        return status == lib.NET_END

    until_won(200, 5, attempt)
    model.close()


@pytest.mark.parametrize("kind", ["tasks", "memories"])
def test_model_free_waits_for_a_large_write(redex: Redex, kind: str) -> None:
    """A 32 MiB write in flight when the model is closed: it lands (and the
    close waited for it) or is refused."""
    big = "x" * (32 << 20)
    state: Dict[str, Any] = {}

    def fresh() -> None:
        state["model"] = Tasks(redex, 1) if kind == "tasks" else Memories(redex, 1)

    def run() -> int:
        model = state["model"]
        if kind == "tasks":
            return model.create(1, big)
        return model.store(1, big, [], "")

    def on_result(seq: Any) -> None:
        assert seq is None or isinstance(seq, int)
        fresh()

    fresh()
    try:
        race_in_flight(run, lambda: state["model"].close(), on_result, f"{kind} write", wanted=1)
    finally:
        state["model"].close()
