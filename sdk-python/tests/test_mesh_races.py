"""close()/free racing calls on other threads for the two mesh handle
types (node and stream), with raw-pointer calls to exercise libnet's guard:
(1) calls after the free get NET_ERR_SHUTTING_DOWN; (2) concurrent closes
are idempotent while calls race them; (3) the free wakes and waits for a
blocked call (recv on the node, send_blocking on the stream)."""

from __future__ import annotations

import threading
import time
from typing import List

from netmesh import Mesh, ShuttingDownError
from netmesh._ffi import ffi, lib
from netmesh.errors import MeshError

PSK = bytes([0x5A] * 32)
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
    lib.net_mesh_free(raw_node)  # idempotent
    lib.net_mesh_stream_free(raw_stream)
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


def test_free_wakes_blocked_recv_and_waits() -> None:
    a = Mesh(**FAST)
    ptr = a._ptr
    result = []
    left = threading.Event()

    def blocked() -> None:
        peer = ffi.new("uint64_t *")
        sid = ffi.new("uint64_t *")
        data = ffi.new("net_bytes_t *")
        result.append(lib.net_mesh_recv_next(ptr, lib.NET_WAIT_FOREVER, peer, sid, data))
        left.set()

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.1)
    assert not left.is_set()
    a.close()  # net_mesh_free: wakes the recv, returns after it left
    assert left.wait(0.05), "the free returned before the blocked recv left"
    t.join(5)
    assert result == [lib.NET_END]


def test_stream_free_wakes_blocked_send() -> None:
    a, b = connected()
    s = a.open_stream(b.node_id, 1, window=200)
    b.shutdown()  # no grants will come
    s.send(bytes(100))
    outcome = []

    def blocked() -> None:
        try:
            outcome.append(s.send_blocking([bytes(100)]))
        except (MeshError, ShuttingDownError) as e:
            outcome.append(e)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.1)
    s.close()
    t.join(5)
    assert not t.is_alive()
    assert len(outcome) == 1 and type(outcome[0]).__name__ == "MeshStreamClosedError"
    a.close()
    b.close()
