"""close() racing calls on other threads, for the three RedEX handle types.

As for identities (test_races.py), the Python side only swaps the handle
pointer under a tiny lock and never holds a lock across a libnet call; what
makes the races safe is libnet's handle guard: a call after (or racing) the
free gets NET_ERR_SHUTTING_DOWN, and the free waits for calls already inside
(and, for a tail, first wakes a `net_redex_tail_next` blocked in it). Several
tests call the C functions on raw pointers to exercise the guard directly.

Outcomes a racing call may see, besides success:
* Redex:     ShuttingDownError;
* RedexFile: ShuttingDownError, or RedexClosedError (a subclass) when it
             slipped in between net_redex_file_close and net_redex_file_free;
* RedexTail: ShuttingDownError, or RedexTailEndedError when the free woke it.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from typing import Any, Callable, Dict, List, Tuple, Type

import pytest

from netmesh import (
    Redex,
    RedexFile,
    RedexTail,
    RedexTailEndedError,
    ShuttingDownError,
)
from netmesh._ffi import ffi, lib

from conftest import free_wakes_blocked, race_in_flight, until_won

ROUNDS = 40
_names = itertools.count()
_stats_lock = threading.Lock()


def _count(stats: Dict[str, int], **deltas: int) -> None:
    with _stats_lock:
        for key, delta in deltas.items():
            stats[key] = stats.get(key, 0) + int(delta)


def _refused_by_c(exc: BaseException) -> bool:
    """True when libnet refused the call (not the Python-side None check)."""
    return isinstance(exc, ShuttingDownError) and "has been freed" in exc.message


# -- the three subjects --------------------------------------------------------------


class Subject:
    """How to make one handle of a type, race operations on it, and call its
    C functions on the raw pointer."""

    kind = ""
    ends: Tuple[Type[BaseException], ...] = (ShuttingDownError,)

    def make(self) -> Any:
        raise NotImplementedError

    def ops(self, handle: Any) -> List[Callable[[], object]]:
        raise NotImplementedError

    def raw_free(self, ptr: Any) -> None:
        raise NotImplementedError

    def raw_call(self, ptr: Any) -> int:
        """One C call on the raw pointer; checks outputs are untouched on failure."""
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class ManagerSubject(Subject):
    kind = "redex"

    def make(self) -> Redex:
        return Redex()

    def ops(self, redex: Redex) -> List[Callable[[], object]]:
        def open_and_close() -> None:
            redex.open_file(f"race/m{next(_names)}").close()

        return [open_and_close]

    def raw_free(self, ptr: Any) -> None:
        lib.net_redex_free(ptr)

    def raw_call(self, ptr: Any) -> int:
        out = ffi.new("net_redex_file_t **")
        status = lib.net_redex_open_file(ptr, b"race/raw", 8, ffi.NULL, 0, out)
        if status == lib.NET_OK:
            lib.net_redex_file_free(out[0])
        else:
            assert out[0] == ffi.NULL, "out-parameter written on failure"
        return int(status)


class FileSubject(Subject):
    kind = "file"
    ends: Tuple[Type[BaseException], ...] = (ShuttingDownError,)  # RedexClosedError is a subclass

    def __init__(self) -> None:
        self.redex = Redex()

    def make(self) -> RedexFile:
        f = self.redex.open_file(f"race/f{next(_names)}")
        f.append(b"seed")
        return f

    def ops(self, f: RedexFile) -> List[Callable[[], object]]:
        return [
            lambda: f.append(b"race"),
            lambda: f.append_inline(b"8 bytes!"),
            lambda: f.append_batch([b"a", b"b"]),
            lambda: f.read(0),
            lambda: f.read_range(0, 4),
            lambda: f.next_seq,
            lambda: len(f),
            f.sync,
            f.sweep_retention,
            lambda: f.tail(0).close(),
        ]

    def raw_free(self, ptr: Any) -> None:
        lib.net_redex_file_free(ptr)

    def raw_call(self, ptr: Any) -> int:
        out = ffi.new("uint64_t *", 7)
        status = lib.net_redex_file_append(ptr, b"raw", 3, out)
        if status != lib.NET_OK:
            assert out[0] == 7, "out-parameter written on failure"
        return int(status)

    def cleanup(self) -> None:
        self.redex.close()


class TailSubject(Subject):
    kind = "tail"
    ends: Tuple[Type[BaseException], ...] = (ShuttingDownError, RedexTailEndedError)

    def __init__(self) -> None:
        self.redex = Redex()
        self.file = self.redex.open_file("race/tails")
        self.file.append_batch([b"t%d" % i for i in range(64)])

    def make(self) -> RedexTail:
        return self.file.tail(random.randrange(0, 64))

    def ops(self, tail: RedexTail) -> List[Callable[[], object]]:
        return [lambda: tail.next(0), lambda: tail.next(0.0005)]

    def raw_free(self, ptr: Any) -> None:
        lib.net_redex_tail_free(ptr)

    def raw_call(self, ptr: Any) -> int:
        seq = ffi.new("uint64_t *", 7)
        payload = ffi.new("net_bytes_t *")
        status = lib.net_redex_tail_next(ptr, 0, seq, payload, ffi.NULL, ffi.NULL)
        if status in (lib.NET_OK, lib.NET_LAGGED):
            lib.net_bytes_free(payload)
        else:
            assert seq[0] == 7 and payload.ptr == ffi.NULL, "outputs written without an item"
        return int(status)

    def cleanup(self) -> None:
        self.file.close()
        self.redex.close()


SUBJECTS = {"redex": ManagerSubject, "file": FileSubject, "tail": TailSubject}


@pytest.fixture(params=list(SUBJECTS))
def subject(request: Any):
    s = SUBJECTS[request.param]()
    try:
        yield s
    finally:
        s.cleanup()


# -- 1. an operation after close raises ShuttingDownError ------------------------------


def test_op_after_close_raises_shutting_down_threaded(subject: Subject):
    errors: List[BaseException] = []
    stats: Dict[str, int] = {"ops": 0, "refused_by_c": 0}
    for _ in range(ROUNDS):
        handle = subject.make()
        ops = subject.ops(handle)
        start = threading.Barrier(5)
        ended_with: List[BaseException] = []

        def worker() -> None:
            start.wait()
            done = 0
            try:
                while True:
                    for op in ops:
                        op()
                        done += 1
            except subject.ends as exc:
                ended_with.append(exc)
                _count(stats, refused_by_c=_refused_by_c(exc))
                _count(stats, **{type(exc).__name__: 1})
            except BaseException as exc:  # noqa: BLE001 - recorded for the assert
                errors.append(exc)
            finally:
                _count(stats, ops=done)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(random.uniform(0, 0.002))
        handle.close()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert len(ended_with) == 4, errors[:3]
        # Once close() has returned, every operation is refused.
        for op in ops:
            with pytest.raises(ShuttingDownError):
                op()
    assert not errors, errors[:3]
    assert stats["ops"] > 0, "no operation overlapped the close"
    print(f"race 1 {subject.kind}: {stats}")


def test_c_guard_refuses_raw_pointer_after_free(subject: Subject):
    """Bypasses the Python None check: the freed pointer itself is refused."""
    for _ in range(20):
        handle = subject.make()
        raw = handle._ptr
        assert subject.raw_call(raw) in (lib.NET_OK, lib.NET_TIMEOUT)
        handle.close()
        assert handle._ptr is None
        assert subject.raw_call(raw) == lib.NET_ERR_SHUTTING_DOWN
        assert "has been freed" in ffi.string(lib.net_last_error_message()).decode()
        subject.raw_free(raw)  # idempotent on the raw pointer too


def test_c_guard_refuses_every_file_function_after_free():
    with Redex() as redex:
        f = redex.open_file("race/all")
        tail = f.tail(0)
        raw, raw_tail = f._ptr, tail._ptr
        f.close()
        tail.close()
        u64 = ffi.new("uint64_t *", 7)
        flag = ffi.new("bool *", True)
        out = ffi.new("net_bytes_t *")
        slices = ffi.new("net_slice_t[]", 1)
        tail_out = ffi.new("net_redex_tail_t **")
        down = lib.NET_ERR_SHUTTING_DOWN
        assert lib.net_redex_file_append(raw, b"x", 1, u64) == down
        assert lib.net_redex_file_append_inline(raw, b"12345678", 8, u64) == down
        assert lib.net_redex_file_append_batch(raw, slices, 1, u64, flag) == down
        assert lib.net_redex_file_read(raw, 0, out, flag) == down
        assert lib.net_redex_file_read_range(raw, 0, 10, out) == down
        assert lib.net_redex_file_next_seq(raw, u64) == down
        assert lib.net_redex_file_len(raw, u64) == down
        assert lib.net_redex_file_sync(raw) == down
        assert lib.net_redex_file_close(raw) == down
        assert lib.net_redex_file_sweep_retention(raw, u64) == down
        assert lib.net_redex_file_tail(raw, 0, tail_out) == down
        assert lib.net_redex_tail_next(raw_tail, 0, u64, out, ffi.NULL, ffi.NULL) == down
        assert u64[0] == 7 and flag[0] and out.ptr == ffi.NULL and tail_out[0] == ffi.NULL
        assert lib.net_redex_file_free(raw) == lib.NET_OK  # freeing again: a no-op
        assert lib.net_redex_tail_free(raw_tail) == lib.NET_OK


def test_c_guard_raw_calls_racing_raw_free(subject: Subject):
    """Raw calls from many threads while another thread frees the raw
    pointer: each one succeeds or is refused, nothing else."""
    allowed = {
        lib.NET_OK,
        lib.NET_TIMEOUT,
        lib.NET_END,
        lib.NET_ERR_REDEX_CLOSED,
        lib.NET_ERR_SHUTTING_DOWN,
    }
    bad: List[str] = []
    for _ in range(ROUNDS // 2):
        handle = subject.make()
        raw = handle._ptr
        handle._ptr = None  # take ownership of the raw pointer for this test
        start = threading.Barrier(5)

        def caller() -> None:
            start.wait()
            while True:
                status = subject.raw_call(raw)
                if status == lib.NET_ERR_SHUTTING_DOWN:
                    return
                if status not in allowed:
                    bad.append(f"status {status}")
                    return

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(random.uniform(0, 0.002))
        subject.raw_free(raw)
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
    assert not bad, bad[:3]


# -- 2. many threads closing at once, and closing while others call -------------------


def test_concurrent_close_with_concurrent_ops(subject: Subject):
    failures: List[BaseException] = []
    stats: Dict[str, int] = {"ops": 0}
    for _ in range(ROUNDS):
        handle = subject.make()
        ops = subject.ops(handle)
        n_closers, n_callers = 6, 3
        start = threading.Barrier(n_closers + n_callers)

        def closer() -> None:
            start.wait()
            time.sleep(random.uniform(0, 0.001))
            try:
                handle.close()
                handle.close()
            except BaseException as exc:  # noqa: BLE001
                failures.append(exc)

        def caller() -> None:
            start.wait()
            done = 0
            try:
                for _ in range(200):
                    for op in ops:
                        op()
                        done += 1
            except subject.ends:
                pass
            except BaseException as exc:  # noqa: BLE001
                failures.append(exc)
            finally:
                _count(stats, ops=done)

        threads = [threading.Thread(target=closer) for _ in range(n_closers)]
        threads += [threading.Thread(target=caller) for _ in range(n_callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert handle.closed
    assert not failures, failures[:3]
    assert stats["ops"] > 0, "no operation overlapped the closes"
    print(f"race 2 {subject.kind}: {stats}")


def test_concurrent_raw_frees_of_one_pointer(subject: Subject):
    """The C free from many threads on the same pointer: no crash, and the
    pointer is refused afterwards."""
    for _ in range(ROUNDS):
        handle = subject.make()
        raw = handle._ptr
        handle._ptr = None
        start = threading.Barrier(8)

        def freer() -> None:
            start.wait()
            subject.raw_free(raw)

        threads = [threading.Thread(target=freer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert subject.raw_call(raw) == lib.NET_ERR_SHUTTING_DOWN


# -- 3. close waits for an in-flight operation ----------------------------------------

BIG = 48 << 20


@pytest.fixture(scope="module")
def big_payload() -> bytes:
    return os.urandom(BIG)


def test_tail_free_wakes_a_raw_next_blocked_forever():
    """net_redex_tail_free wakes a net_redex_tail_next blocked with no limit
    on the raw pointer (NET_END: woken in its wait; NET_ERR_SHUTTING_DOWN:
    the free came first, which proves nothing), and returns NET_OK. The SDK
    forms are in test_blocking.py."""
    with Redex() as redex, redex.open_file("race/block") as f:

        def attempt(_: int) -> bool:
            tail = f.tail(f.next_seq)
            raw, tail._ptr = tail._ptr, None
            seq = ffi.new("uint64_t *")
            payload = ffi.new("net_bytes_t *")
            status = free_wakes_blocked(
                lambda: lib.net_redex_tail_next(raw, lib.NET_WAIT_FOREVER, seq, payload, ffi.NULL, ffi.NULL),
                lambda: lib.net_redex_tail_free(raw),
            )
            # The freed tail is refused.
            seq = ffi.new("uint64_t *")
            payload = ffi.new("net_bytes_t *")
            assert (
                lib.net_redex_tail_next(raw, 0, seq, payload, ffi.NULL, ffi.NULL)
                == lib.NET_ERR_SHUTTING_DOWN
            )
            return status == lib.NET_END

        until_won(200, 5, attempt)
        f.append(b"ok")


@pytest.mark.parametrize("how", ["close", "raw_free"])
def test_file_close_waits_for_an_in_flight_large_append(
    redex_dir: str, big_payload: bytes, how: str
):
    """A 48 MiB append to a persistent file in flight when the file is
    closed: it either completes, and is then on disk after reopening, or it
    is refused with ShuttingDownError (RedexClosedError)."""
    attempt = itertools.count()
    state: Dict[str, Any] = {}

    def run() -> int:
        return state["file"].append(big_payload)

    def close() -> None:
        f: RedexFile = state["file"]
        if how == "close":
            f.close()
        else:
            raw, f._ptr = f._ptr, None
            assert lib.net_redex_file_free(raw) == lib.NET_OK

    def verify(seq: Any) -> None:
        with Redex(redex_dir) as redex, redex.open_file(state["name"], persistent=True) as f:
            if seq is None:
                assert len(f) == 0 and f.next_seq == 0, "a refused append left data"
            else:
                assert seq == 0 and len(f) == 1
                assert f.read(0) == big_payload, "the completed append is not on disk intact"

    def next_file() -> None:
        state["name"] = f"big/append{next(attempt)}"
        with Redex(redex_dir) as redex:
            state["file"] = redex.open_file(state["name"], persistent=True)

    def on_result(seq: Any) -> None:
        verify(seq)
        next_file()

    next_file()
    try:
        race_in_flight(run, close, on_result, f"file {how}", wanted=1)
    finally:
        state["file"].close()


def test_manager_close_waits_for_an_in_flight_open_file(redex_dir: str, big_payload: bytes):
    """open_file of a persistent channel holding 48 MiB (recovery checksums
    it) in flight when the manager is closed: the open either completes with
    the whole file, or is refused with ShuttingDownError."""
    with Redex(redex_dir) as redex, redex.open_file("big/recover", persistent=True) as f:
        f.append(big_payload)
    state: Dict[str, Any] = {}

    def run() -> RedexFile:
        return state["redex"].open_file("big/recover", persistent=True)

    def close() -> None:
        state["redex"].close()

    def on_result(f: Any) -> None:
        if f is not None:
            with f:
                assert len(f) == 1 and f.next_seq == 1
                assert len(f.read(0)) == BIG
        state["redex"] = Redex(redex_dir)

    state["redex"] = Redex(redex_dir)
    try:
        race_in_flight(run, close, on_result, "manager open_file (recovery)", wanted=3)
    finally:
        state["redex"].close()
