"""Relays and routes through the Python SDK: A, B and C each connected
directly to a relay R only; B reaches A through R (connect_via), A reaches
C along the route it learned (connect_routed); the routing table; the
errors."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import pytest

from netmesh import Cancel, CancelledError, Mesh, MeshEvent, MeshNoRouteError, Route, Routes, ShuttingDownError

from conftest import FAST


def wait_for(what: str, cond: Callable[[], bool]) -> None:
    """Polls ``cond`` every 5 ms until it holds; fails after 20 s."""
    deadline = time.monotonic() + 20
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def link(node: Mesh, relay: Mesh) -> None:
    node.connect(relay.local_addr, relay.public_key, relay.node_id)
    wait_for("the link up on the relay", lambda: any(p["node_id"] == node.node_id for p in relay.peers()))


def relay_of(node: Mesh, peer: int):
    return next((p["relay"] for p in node.peers() if p["node_id"] == peer), None)


def test_relay_and_routes() -> None:
    with Mesh(**FAST) as a, Mesh(**FAST) as r, Mesh(**FAST) as b, Mesh(**FAST) as c:
        for n in (a, r, b, c):
            n.start()
        for n in (a, b, c):
            link(n, r)

        # A relay must be a direct peer; a routed connect needs a route.
        with pytest.raises(MeshNoRouteError):
            b.connect_via(c.node_id, a.public_key, a.node_id)
        with pytest.raises(MeshNoRouteError):
            b.connect_routed(a.public_key, 0x1234)

        b.connect_via(r.node_id, a.public_key, a.node_id)
        assert relay_of(b, a.node_id) == r.node_id
        wait_for("a sees b relayed by r", lambda: relay_of(a, b.node_id) == r.node_id)
        with b.open_stream(a.node_id, 3, reliable=True) as s:
            s.send_blocking([b"b to a"], timeout=20)
            assert a.recv(timeout=20) == MeshEvent(b.node_id, 3, b"b to a")
        with a.open_stream(b.node_id, 4, reliable=True) as s:
            s.send_blocking([b"a to b"], timeout=20)
            assert b.recv(timeout=20) == MeshEvent(a.node_id, 4, b"a to b")

        def b_routes_a_through_r() -> bool:
            route = b.routes().route(a.node_id)
            return route is not None and route.next_hop == r.node_id

        wait_for("b's route to a through r", b_routes_a_through_r)
        routes = r.routes()
        assert isinstance(routes, Routes) and routes.node_id == r.node_id
        assert routes.forwarding["forwarded"] > 0 and "sent" in routes.pingwaves
        assert all(isinstance(x, Route) for x in routes.routes)
        assert {x.destination for x in routes.routes} >= {a.node_id, b.node_id, c.node_id}

        # A learns C at two hops from the pingwaves R relays, then connects.
        def a_learned_c() -> bool:
            route = a.routes().route(c.node_id)
            return route is not None and route.next_hop == r.node_id and route.hops == 2

        wait_for("a learns c through r", a_learned_c)
        assert a.routes().route(c.node_id).kind == "learned"
        a.connect_routed(c.public_key, c.node_id)
        assert relay_of(a, c.node_id) == r.node_id
        with a.open_stream(c.node_id, 5, reliable=True) as s:
            s.send_blocking([b"a to c"], timeout=20)
            assert c.recv(timeout=20) == MeshEvent(a.node_id, 5, b"a to c")

        b.close()
        with pytest.raises(ShuttingDownError):
            b.routes()
        with pytest.raises(ShuttingDownError):
            b.connect_via(r.node_id, a.public_key, a.node_id)
        with pytest.raises(ShuttingDownError):
            b.connect_routed(a.public_key, a.node_id)


def test_async_relay_calls_and_cancel() -> None:
    patient = dict(FAST, handshake_timeout=600.0, handshake_retries=1)

    async def main() -> None:
        with Mesh(**FAST) as r, Mesh(**FAST) as b, Mesh(**patient) as a:
            for n in (a, r, b):
                n.start()
            link(a, r)
            link(b, r)
            with pytest.raises(MeshNoRouteError):
                await a.connect_routed_async(b.public_key, 0x1234)
            await a.connect_via_async(r.node_id, b.public_key, b.node_id)
            assert relay_of(a, b.node_id) == r.node_id
            wait_for("routes", lambda: a.routes().route(b.node_id) is not None)
            # A handshake nobody answers waits until it is cancelled (a valid
            # key for a node id nobody has; 32 zero bytes are refused at once).
            cancel = Cancel()
            pending = asyncio.ensure_future(a.connect_via_async(r.node_id, r.public_key, 0x5EED, cancel=cancel))
            await asyncio.sleep(0)
            cancel.cancel()
            with pytest.raises(CancelledError):
                await asyncio.wait_for(pending, 20)
            with pytest.raises(MeshNoRouteError):
                await a.connect_routed_async(r.public_key, 0x5EED)

    asyncio.run(main())
