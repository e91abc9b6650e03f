"""NAT status through the Python SDK: a node with two Net peers on other
addresses of the loopback interface classifies itself (Open: both saw its
own address; loopback is never advertised as a reflex); the operator
override and its errors; a round on demand; the NAT config options."""

from __future__ import annotations

import time
from typing import Callable

import pytest

from netmesh import InvalidArgumentError, Mesh, MeshConfigError, NatStatus

from conftest import FAST


def wait_for(what: str, cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def bound(node: Mesh, peer: int) -> bool:
    return any(p["node_id"] == peer and p["identity"] == "net" for p in node.peers())


def test_a_node_classifies_itself_and_takes_an_override() -> None:
    with Mesh(**FAST, bind="127.0.0.1:0") as a, Mesh(**FAST, bind="127.0.0.2:0") as b, Mesh(
        **FAST, bind="127.0.0.3:0"
    ) as c:
        for n in (a, b, c):
            n.start()
        before = a.nat()
        assert isinstance(before, NatStatus)
        assert (before.nat_class, before.reflex, before.rounds, before.classify) == ("unknown", None, 0, True)
        for peer in (b, c):
            a.connect(peer.local_addr, peer.public_key, peer.node_id)
            wait_for("a bound session", lambda: bound(a, peer.node_id) and bound(peer, a.node_id))
        wait_for("a classification round", lambda: a.nat().rounds >= 1)
        status = a.nat()
        assert status.nat_class == "open"
        assert status.reflex is None
        assert status.mapping == "None"
        assert a.stats()["reflex_probes"] >= 2

        a.set_reflex_override("203.0.113.7:4242")
        status = a.nat()
        assert (status.nat_class, status.reflex, status.override) == ("open", "203.0.113.7:4242", "203.0.113.7:4242")
        for bad in ("10.0.0.1:80", "0.0.0.0:80", "not an address"):
            with pytest.raises(InvalidArgumentError):
                a.set_reflex_override(bad)
        a.set_reflex_override(None)
        assert a.nat().override is None

        rounds = a.nat().rounds
        a.reclassify_nat()
        wait_for("a second round", lambda: a.nat().rounds > rounds)


def test_nat_options() -> None:
    with Mesh(**FAST, nat_classify=False, reflex_override="198.51.100.9:7000", classify_period=30) as a:
        status = a.nat()
        assert (status.classify, status.reflex) == (False, "198.51.100.9:7000")
    with pytest.raises(MeshConfigError):
        Mesh(**FAST, reflex_override="192.168.1.1:7000")
    with pytest.raises(MeshConfigError):
        Mesh(**FAST, port_mapping=True, port_mapping_gateway="not an address")


def test_connect_direct_moves_a_relayed_session_to_a_direct_path() -> None:
    import asyncio

    from netmesh import MeshNoRouteError

    with Mesh(**FAST) as a, Mesh(**FAST) as r, Mesh(**FAST) as b:
        for n in (a, r, b):
            n.start()
        for n in (a, b):
            n.connect(r.local_addr, r.public_key, r.node_id)
            wait_for("bound to r", lambda: bound(n, r.node_id) and bound(r, n.node_id))
        a.connect_via(r.node_id, b.public_key, b.node_id)
        wait_for("a relayed session", lambda: bound(a, b.node_id) and bound(b, a.node_id))
        relay = lambda n, peer: next(p["relay"] for p in n.peers() if p["node_id"] == peer)  # noqa: E731
        assert relay(a, b.node_id) == r.node_id

        with pytest.raises(MeshNoRouteError):
            a.connect_direct(b.public_key, b.node_id, 0x1234)
        assert a.connect_direct(b.public_key, b.node_id, r.node_id) == "direct"
        assert relay(a, b.node_id) is None
        wait_for("b moved too", lambda: relay(b, a.node_id) is None)
        status = a.nat()
        assert (status.punches_attempted, status.punches_succeeded) == (1, 1)
        # Already direct: nothing to do.
        assert asyncio.run(a.connect_direct_async(b.public_key, b.node_id, r.node_id)) == "direct"
