"""close()/free racing calls on other threads for the two mesh handle
types (node and stream), with raw-pointer calls to exercise libnet's guard:
(1) calls after the free get NET_ERR_SHUTTING_DOWN; (2) concurrent closes
are idempotent while calls race them; (3) the free wakes and waits for a
blocked call (recv on the node, send_blocking on the stream; every blocking
call of both, and their cancellation, in test_blocking.py)."""

from __future__ import annotations

import threading
import time
from typing import List

from netmesh import Mesh, MeshStreamClosedError, ShuttingDownError
from netmesh._ffi import ffi, lib
from netmesh.errors import MeshError

from conftest import PSK, free_wakes_blocked, let_it_block, until_won

FAST = dict(psk=PSK, heartbeat_interval=0.05, session_timeout=1.0, hello_timeout=0.3)


def connected():
    a, b = Mesh(**FAST), Mesh(**FAST)
    a.connect(b.local_addr, b.public_key, b.node_id)
    return a, b


def test_op_after_free_is_refused() -> None:
    a, b = connected()
    s = a.open_stream(b.node_id, 1)
    raw_node, raw_stream = a._ptr, s._ptr
    s.close()
    a.close()
    try:
        s.send(b"x")
        raise AssertionError("send after close")
    except ShuttingDownError:
        pass
    out = ffi.new("uint64_t *")
    assert lib.net_mesh_node_id(raw_node, out) == lib.NET_ERR_SHUTTING_DOWN
    ev = ffi.new("net_slice_t[1]")
    assert lib.net_mesh_stream_send(raw_stream, ev, 0) == lib.NET_ERR_SHUTTING_DOWN
    assert lib.net_mesh_free(raw_node) == lib.NET_OK  # idempotent
    assert lib.net_mesh_stream_free(raw_stream) == lib.NET_OK
    b.close()


def test_concurrent_closes_with_racing_calls() -> None:
    for _ in range(10):
        a, b = connected()
        s = a.open_stream(b.node_id, 1)
        errors: List[BaseException] = []
        barrier = threading.Barrier(6)

        def op(f) -> None:
            barrier.wait()
            for _ in range(50):
                try:
                    f()
                except (ShuttingDownError, MeshError):
                    pass
                except BaseException as e:  # pragma: no cover
                    errors.append(e)

        def closer(c) -> None:
            barrier.wait()
            time.sleep(0.001)
            c()

        threads = [
            threading.Thread(target=op, args=(lambda: s.send(b"x"),)),
            threading.Thread(target=op, args=(lambda: a.recv(timeout=0.001),)),
            threading.Thread(target=op, args=(a.stats,)),
            threading.Thread(target=op, args=(a.peers,)),
            threading.Thread(target=closer, args=(s.close,)),
            threading.Thread(target=closer, args=(a.close,)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
            assert not t.is_alive()
        assert not errors, errors
        s.close()
        a.close()
        b.close()


def test_free_wakes_a_raw_recv_blocked_forever_and_waits_for_it() -> None:
    """net_mesh_free wakes a raw net_mesh_recv_next blocked with no limit
    (NET_END: woken in its wait; NET_ERR_SHUTTING_DOWN: freed before it
    began, which proves nothing) and returns only after it left libnet
    (the round's thread has its result as soon as the close returned)."""

    def attempt(_: int) -> bool:
        a = Mesh(**FAST)
        ptr = a._ptr
        peer = ffi.new("uint64_t *")
        sid = ffi.new("uint64_t *")
        data = ffi.new("net_bytes_t *")
        status = free_wakes_blocked(
            lambda: lib.net_mesh_recv_next(ptr, lib.NET_WAIT_FOREVER, peer, sid, data, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL),
            a.close,  # net_mesh_free: wakes the recv, returns after it left
        )
        return status == lib.NET_END

    until_won(200, 5, attempt)


def test_stream_free_wakes_blocked_send() -> None:
    a, b = connected()
    b.shutdown()  # no grants will come

    def attempt(round_: int) -> bool:
        s = a.open_stream(b.node_id, round_ + 1, window=200)
        s.send(bytes(100))
        outcome: List[BaseException] = []

        def blocked() -> None:
            try:
                s.send_blocking([bytes(100)])
            except (MeshError, ShuttingDownError) as e:
                outcome.append(e)

        t = threading.Thread(target=blocked)
        t.start()
        let_it_block()
        s.close()
        t.join(30)
        assert not t.is_alive() and len(outcome) == 1
        # MeshStreamClosedError: woken in its wait; ShuttingDownError: closed before.
        assert isinstance(outcome[0], (MeshStreamClosedError, ShuttingDownError)), outcome
        return isinstance(outcome[0], MeshStreamClosedError)

    until_won(200, 5, attempt)
    a.close()
    b.close()
