"""close() racing calls on other threads.

The Python side only swaps the handle pointer under a tiny lock; it never
holds a lock across a libnet call. What makes these races safe is libnet's
HandleGuard: a call after (or racing) net_identity_free gets
NET_ERR_SHUTTING_DOWN, and the free waits for calls already inside. Several
tests call the C functions on raw pointers to exercise the guard directly,
without the Python-side check in front of it.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Callable, List

import pytest

from netmesh import Identity, NetError, ShuttingDownError
from netmesh._ffi import ffi, lib

from conftest import SEED_A, race_in_flight

ROUNDS = 200


def _ops(ident: Identity) -> List[Callable[[], object]]:
    return [
        lambda: ident.origin_hash,
        lambda: ident.node_id,
        lambda: ident.public_key,
        lambda: ident.is_read_only,
        lambda: ident.sign(b"race"),
        lambda: ident.seed(),
        lambda: ident.is_valid_signature(b"race", b"\0" * 64),
    ]


# -- 1. an operation after close raises ShuttingDownError --------------------


_stats_lock = threading.Lock()


def _count(stats: dict, **deltas: int) -> None:
    with _stats_lock:
        for key, delta in deltas.items():
            stats[key] += int(delta)


def _refused_by_c(exc: ShuttingDownError) -> bool:
    """True when libnet's guard refused the call (not the Python None check)."""
    return "has been freed" in exc.message


def test_op_after_close_raises_shutting_down_threaded():
    errors: List[BaseException] = []
    stats = {"ops": 0, "refused_by_c": 0}
    for _ in range(ROUNDS):
        ident = Identity.generate()
        ops = _ops(ident)
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
            except ShuttingDownError as exc:
                ended_with.append(exc)
                _count(stats, refused_by_c=_refused_by_c(exc))
            except BaseException as exc:  # noqa: BLE001 - recorded for the assert
                errors.append(exc)
            finally:
                _count(stats, ops=done)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(random.uniform(0, 0.002))
        ident.close()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert len(ended_with) == 4
        for exc in ended_with:
            assert exc.status == lib.NET_ERR_SHUTTING_DOWN
        for op in ops:
            with pytest.raises(ShuttingDownError):
                op()
    assert not errors, errors[:3]
    assert stats["ops"] > 0, "no operation overlapped the close"
    assert stats["refused_by_c"] > 0, "libnet's guard never refused a racing call"
    print(f"race 1: {stats}")


def test_c_guard_refuses_raw_pointer_after_free():
    """Bypasses the Python None check: the freed pointer itself is refused."""
    for _ in range(ROUNDS):
        ident = Identity.from_seed(SEED_A)
        raw = ident._ptr
        expected = ident.origin_hash
        ident.close()
        assert ident._ptr is None
        out = ffi.new("uint64_t *")
        status = lib.net_identity_origin_hash(raw, out)
        assert status == lib.NET_ERR_SHUTTING_DOWN
        assert out[0] == 0, "out-parameter written on failure"
        assert "freed" in ffi.string(lib.net_last_error_message()).decode()
        sig = ffi.new("net_bytes_t *")
        assert lib.net_identity_sign(raw, b"m", 1, sig) == lib.NET_ERR_SHUTTING_DOWN
        assert sig.ptr == ffi.NULL and sig.len == 0
        lib.net_identity_free(raw)  # idempotent on the raw pointer too
    assert expected == 0x782A3238801976BF


def test_c_guard_raw_calls_racing_raw_free():
    """Raw calls from many threads while another frees the raw pointer: every
    call either succeeds with the right answer or gets NET_ERR_SHUTTING_DOWN."""
    bad: List[str] = []
    for _ in range(ROUNDS // 2):
        ident = Identity.from_seed(SEED_A)
        expected = ident.origin_hash
        raw = ident._ptr
        ident._ptr = None  # take ownership of the raw pointer for this test
        start = threading.Barrier(5)

        def caller() -> None:
            out = ffi.new("uint64_t *")
            start.wait()
            while True:
                status = lib.net_identity_origin_hash(raw, out)
                if status == lib.NET_ERR_SHUTTING_DOWN:
                    return
                if status != lib.NET_OK or out[0] != expected:
                    bad.append(f"status {status} value {out[0]:#x}")
                    return

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(random.uniform(0, 0.002))
        lib.net_identity_free(raw)
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
    assert not bad, bad[:3]


# -- 2. many threads closing at once, and closing while others call -----------


def test_concurrent_close_with_concurrent_ops():
    failures: List[BaseException] = []
    stats = {"ops": 0, "refused_by_c": 0}
    for _ in range(ROUNDS):
        ident = Identity.generate()
        ops = _ops(ident)
        n_closers, n_callers = 6, 3
        start = threading.Barrier(n_closers + n_callers)

        def closer() -> None:
            start.wait()
            time.sleep(random.uniform(0, 0.001))
            try:
                ident.close()
                ident.close()
            except BaseException as exc:  # noqa: BLE001
                failures.append(exc)

        def caller() -> None:
            start.wait()
            done = 0
            try:
                for _ in range(1000):
                    for op in ops:
                        op()
                        done += 1
            except ShuttingDownError as exc:
                _count(stats, refused_by_c=_refused_by_c(exc))
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
        assert ident.closed
    assert not failures, failures[:3]
    assert stats["ops"] > 0, "no operation overlapped the closes"
    assert stats["refused_by_c"] > 0, "libnet's guard never refused a racing call"
    print(f"race 2: {stats}")


def test_concurrent_raw_frees_of_one_pointer():
    """net_identity_free from many threads on the same pointer: no crash."""
    for _ in range(ROUNDS):
        ident = Identity.generate()
        raw = ident._ptr
        ident._ptr = None
        start = threading.Barrier(8)

        def freer() -> None:
            start.wait()
            lib.net_identity_free(raw)

        threads = [threading.Thread(target=freer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        out = ffi.new("uint64_t *")
        assert lib.net_identity_origin_hash(raw, out) == lib.NET_ERR_SHUTTING_DOWN


# -- 3. close waits for an in-flight operation --------------------------------

BIG = 64 << 20


@pytest.fixture(scope="module")
def big_message() -> bytes:
    return bytes(BIG)


def test_close_waits_for_in_flight_sign(big_message: bytes):
    """sign() of 64 MiB (a few hundred ms inside libnet) on one thread,
    close() from another while it runs: the sign either completes with a
    good signature (the close waited for it: the free returns only once no
    call is inside) or lost the race (ShuttingDownError) and the round is
    retried with a shorter delay."""
    state = {}

    def run() -> bytes:
        return state["ident"].sign(big_message)

    def close() -> None:
        state["ident"].close()

    def on_result(sig) -> None:
        if sig is not None:
            # The signature is intact: check it with a twin identity.
            with Identity.from_seed(state["seed"]) as twin:
                twin.verify(big_message, sig)
        fresh()

    def fresh() -> None:
        state["seed"] = os.urandom(32)
        state["ident"] = Identity.from_seed(state["seed"])

    fresh()
    try:
        race_in_flight(run, close, on_result, "identity sign", wanted=3)
    finally:
        state["ident"].close()
