"""Compute groups through the Python SDK: a replica group of three Python
counters over three nodes (routing, scaling, a failed node's member
replaced), a standby group promoted with every event applied once, a fork
group's lineage, and ``Compute.wait_processed``."""

from __future__ import annotations

from typing import List

import pytest

from netmesh import (
    Cancel,
    CancelledError,
    Compute,
    ComputeConfigError,
    ComputeGroup,
    ComputeGroupPlacementError,
    ComputeGroupWrongKindError,
    InvalidArgumentError,
    Daemon,
    DaemonEvent,
    Delivery,
    Mesh,
    Routed,
    ShuttingDownError,
)

from conftest import FAST
from test_compute import wait_for

SEED = b"\x09" * 32
PRODUCER = 0xFEED_0000_0000_0002


class Counter(Daemon):
    """Counts events, refusing one whose sequence it has passed (an event
    applied twice fails)."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0

    def process(self, event: DaemonEvent) -> List[bytes]:
        if event.sequence <= self.last:
            raise ValueError(f"sequence {event.sequence} after {self.last}")
        self.last = event.sequence
        self.count += 1
        return []

    def snapshot(self) -> bytes:
        return self.count.to_bytes(8, "little") + self.last.to_bytes(8, "little")

    def restore(self, state: bytes) -> None:
        self.count = int.from_bytes(state[:8], "little")
        self.last = int.from_bytes(state[8:16], "little")


@pytest.fixture
def nodes():
    meshes = [Mesh(**FAST) for _ in range(3)]
    runtimes = [Compute(m, work_timeout=5) for m in meshes]
    try:
        for rt in runtimes:
            rt.register("counter", Counter)
        yield meshes, runtimes
    finally:
        for rt in runtimes:
            rt.close()
        for m in meshes:
            m.close()


def test_a_replica_group_of_three_routes_scales_and_replaces(nodes) -> None:
    _, nodes = nodes
    with ComputeGroup.replica(nodes, "counter", SEED, 3, lb={"strategy": "round_robin"}) as group:
        status = group.status()
        assert status["kind"] == "replica" and status["health"] == "healthy"
        assert len({m["node"] for m in status["members"]}) == 3
        taken = {}
        for seq in range(1, 31):
            routed = group.route(PRODUCER, seq, seq.to_bytes(8, "little"))
            assert isinstance(routed, Routed) and routed.outcome == Delivery.PROCESSED
            taken[(routed.node, routed.origin)] = taken.get((routed.node, routed.origin), 0) + 1
        assert sorted(taken.values()) == [10, 10, 10]
        # Each member's node processed what route said it took.
        for rt in nodes:
            for entry in rt.daemons():
                stats = rt.wait_processed(entry["origin"], 10, timeout=5)
                assert stats is not None and stats["events_processed"] == 10
                assert rt.daemon(entry["origin"]).count == 10

        group.scale(2)
        status = group.status()
        assert status["total"] == 2
        assert {group.route(PRODUCER, seq, b"").index for seq in range(31, 35)} == {0, 1}
        with pytest.raises(ComputeGroupPlacementError):
            group.scale(4)
        with pytest.raises(ComputeConfigError):
            group.scale(0)
        with pytest.raises(ComputeGroupWrongKindError):
            group.promote()

        # Member 1's node is reported failed: it is re-created on the node
        # scaling down freed, under a new identity.
        before = group.status()["members"][1]
        assert group.node_failed(before["node"]) == [1]
        after = group.status()["members"][1]
        assert after["node"] != before["node"] and after["generation"] == 1
        assert after["origin"] != before["origin"]
        assert group.route(PRODUCER, 100, b"").outcome == Delivery.PROCESSED
    assert group.closed
    with pytest.raises(ShuttingDownError):
        group.status()


def test_a_watching_group_replaces_a_dead_nodes_member_by_itself() -> None:
    """watch_failures: nobody calls node_failed; the member of a node
    that dies is re-created once the observer's failure detector says so."""
    meshes = [Mesh(**FAST) for _ in range(4)]
    runtimes = [Compute(m, work_timeout=5) for m in meshes]
    try:
        for m in meshes:
            m.start()
        for m in meshes[1:]:
            meshes[0].connect(m.local_addr, m.public_key, m.node_id)
        for rt in runtimes:
            rt.register("counter", Counter)
        with ComputeGroup.replica(runtimes, "counter", SEED, 2) as group:
            with pytest.raises(ValueError):
                group.watch_failures(runtimes[0], every=0)
            group.watch_failures(runtimes[0], every=0.02)
            group.watch_failures(runtimes[0], every=0.02)  # replaces the watch
            members = group.status()["members"]
            index, victim = next(
                (i, m["node"]) for i, m in enumerate(members) if m["node"] != meshes[0].node_id
            )
            dead = next(i for i, m in enumerate(meshes) if m.node_id == victim)
            runtimes[dead].close()
            meshes[dead].close()
            wait_for(
                "the dead node's member replaced",
                lambda: group.status()["members"][index]["node"] != victim,
            )
            member = group.status()["members"][index]
            assert member["generation"] == 1 and group.status()["health"] == "healthy"
            assert all(group.route(PRODUCER, seq, b"").node != victim for seq in range(1, 5))
            group.unwatch_failures()
            group.unwatch_failures()
            group.watch_failures(runtimes[0])  # still running when the group closes
    finally:
        for rt in runtimes:
            rt.close()
        for m in meshes:
            m.close()


def test_a_member_returns_to_service_with_its_node(nodes) -> None:
    """A node reported failed with no free node to take its member: the
    member is out of service until the node is reported back."""
    _, nodes = nodes
    with ComputeGroup.replica(nodes, "counter", SEED, 3, lb={"strategy": "round_robin"}) as group:
        member = group.status()["members"][1]
        assert group.node_failed(member["node"]) == []
        assert group.status()["health"] == "degraded"
        assert member["node"] not in {group.route(PRODUCER, seq, b"").node for seq in range(1, 7)}
        assert group.node_recovered(member["node"]) == [1]
        status = group.status()
        assert status["health"] == "healthy"
        assert status["members"][1]["origin"] == member["origin"]
        assert group.node_recovered(member["node"]) == []


def test_a_standby_is_promoted_with_nothing_applied_twice(nodes) -> None:
    meshes, nodes = nodes
    group = ComputeGroup.standby(nodes, "counter", SEED, 2)
    try:
        origin = group.status()["origin"]
        for seq in range(1, 11):
            assert group.route(PRODUCER, seq, b"").index == 0
        report = group.sync()
        assert report["synced"] == [1] and report["failed"] == []
        for seq in range(11, 16):
            group.route(PRODUCER, seq, b"")
        assert group.status()["logged"] == 5
        assert group.promote() == 1
        status = group.status()
        assert status["active"] == 1
        active_node = status["members"][1]["node"]
        new_active = next(rt for rt, m in zip(nodes, meshes) if m.node_id == active_node)
        counter = new_active.daemon(origin)
        assert (counter.count, counter.last) == (15, 15)
        assert group.route(PRODUCER, 16, b"").index == 1
        assert (counter.count, counter.last) == (16, 16)
        with pytest.raises(ComputeGroupWrongKindError):
            group.scale(3)
    finally:
        group.close()


def test_a_standby_groups_active_migrates_to_a_free_node(nodes) -> None:
    meshes, nodes = nodes
    # A migration goes node to node: connect them all.
    for i, j in ((0, 1), (0, 2), (1, 2)):
        meshes[i].connect(meshes[j].local_addr, meshes[j].public_key, meshes[j].node_id)
    group = ComputeGroup.standby(nodes, "counter", SEED, 2)
    try:
        status = group.status()
        origin = status["origin"]
        for seq in range(1, 6):
            group.route(PRODUCER, seq, b"")
        used = {m["node"] for m in status["members"]}
        free = next(m.node_id for m in meshes if m.node_id not in used)
        with pytest.raises(ComputeGroupPlacementError):
            group.migrate(0, status["members"][1]["node"])
        with pytest.raises(InvalidArgumentError):
            group.migrate(1, free)
        group.migrate(0, free)
        assert group.status()["members"][0]["node"] == free
        moved = next(rt for rt, m in zip(nodes, meshes) if m.node_id == free).daemon(origin)
        assert (moved.count, moved.last) == (5, 5)
        assert group.route(PRODUCER, 6, b"").node == free
        assert (moved.count, moved.last) == (6, 6)
    finally:
        group.close()


def test_a_fork_group_starts_from_its_parent(nodes) -> None:
    meshes, nodes = nodes
    parent = nodes[0].spawn("counter", b"\x03" * 32)
    for seq in range(1, 6):
        nodes[0].deliver(parent, PRODUCER, seq, b"")
    node0 = nodes[0].wait_processed(parent, 5, timeout=5)
    assert node0 is not None
    with ComputeGroup.fork(nodes, "counter", meshes[0].node_id, parent, 2) as group:
        status = group.status()
        assert status["kind"] == "fork" and status["parent_origin"] == parent
        assert status["lineage_verified"] is True and len(status["records"]) == 2
        routed = group.route(PRODUCER, 6, b"")
        fork = next(rt for rt in nodes if rt.daemon(routed.origin) is not None).daemon(routed.origin)
        assert (fork.count, fork.last) == (6, 6)


def test_wait_processed_times_out_and_is_cancelled(nodes) -> None:
    _, nodes = nodes
    origin = nodes[0].spawn("counter", b"\x04" * 32)
    assert nodes[0].wait_processed(origin, 1, timeout=0.02) is None
    cancel = Cancel()
    cancel.cancel()
    with pytest.raises(CancelledError):
        nodes[0].wait_processed(origin, 1, cancel=cancel)
    nodes[0].deliver(origin, PRODUCER, 1, b"")
    stats = nodes[0].wait_processed(origin, 1)
    assert stats is not None and stats["events_processed"] == 1 and stats["origin"] == origin
