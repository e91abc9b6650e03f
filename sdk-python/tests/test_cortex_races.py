"""close()/free racing calls on other threads, for the four CortEX handle
types (tasks and memories models, and their watches).

The SDK holds no lock across libnet calls; libnet's handle guard makes a
call after the free fail with NET_ERR_SHUTTING_DOWN and makes the free wait
for calls already inside (waking a blocked watch first). Raw-pointer calls
exercise the guard directly.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, List

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
    api = type(model)._api
    assert api["count_where"](raw_model, ffi.NULL, 0, out) == lib.NET_ERR_SHUTTING_DOWN
    assert api["wait_for_seq"](raw_model, 0, 0) == lib.NET_ERR_SHUTTING_DOWN
    rows = ffi.new("net_bytes_t *")
    missed = ffi.new("uint64_t *")
    assert api["watch_next"](raw_watch, 0, rows, missed) == lib.NET_ERR_SHUTTING_DOWN
    # Freeing again is a no-op.
    api["free"](raw_model)
    api["watch_free"](raw_watch)


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
def test_watch_free_wakes_a_blocked_next(redex: Redex, kind: str) -> None:
    model = Tasks(redex, 1) if kind == "tasks" else Memories(redex, 1)
    watch = model.watch()
    assert watch.next(timeout=5) == []
    ptr = watch._ptr
    api = type(model)._api
    result: List[int] = []
    left = threading.Event()

    def blocked() -> None:
        rows = ffi.new("net_bytes_t *")
        missed = ffi.new("uint64_t *")
        result.append(api["watch_next"](ptr, lib.NET_WAIT_FOREVER, rows, missed))
        left.set()

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.1)
    assert not left.is_set()
    started = time.monotonic()
    watch.close()  # net_*_watch_free: wakes the next, returns after it left
    assert left.is_set(), "the free returned before the blocked next left libnet"
    assert time.monotonic() - started < 5
    t.join(5)
    assert result == [lib.NET_END]
    model.close()


@pytest.mark.parametrize("kind", ["tasks", "memories"])
def test_model_free_waits_for_a_large_write(redex: Redex, kind: str) -> None:
    model = Tasks(redex, 1) if kind == "tasks" else Memories(redex, 1)
    big = "x" * (32 << 20)
    outcome: List[object] = []

    def write() -> None:
        try:
            if kind == "tasks":
                outcome.append(model.create(1, big))
            else:
                outcome.append(model.store(1, big, [], ""))
        except ACCEPTABLE as e:
            outcome.append(e)

    t = threading.Thread(target=write)
    t.start()
    time.sleep(0.005)
    model.close()
    t.join(30)
    assert not t.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], (int, *ACCEPTABLE)), outcome
