"""Subnets through the Python SDK: the ``subnet`` and ``subnet_policy``
options, a SubnetLocal channel admitting a subscriber of the publisher's
subnet (from the policy over its tags) and refusing one of another subnet,
the subnets in ``peers()`` and ``channels()``, and bad options refused."""

from __future__ import annotations

import pytest

from netmesh import ChannelConfig, ChannelConfigError, ChannelUnauthorizedError, Mesh, MeshConfigError

from conftest import FAST
from test_mesh_relay import link, wait_for

POLICY = [
    {"prefix": "zone:", "level": 0, "values": {"a": 3}},
    {"prefix": "site:", "level": 1, "values": {"x": 7, "y": 8}},
]


def subnet_of(node: Mesh, peer: int) -> object:
    return next((p["subnet"] for p in node.peers() if p["node_id"] == peer), None)


def test_subnet_local_channel_across_subnets() -> None:
    with Mesh(subnet="3.7", subnet_policy=POLICY, **FAST) as pub, Mesh(
        subnet_policy=POLICY, **FAST
    ) as mate, Mesh(subnet="3.8", subnet_policy=POLICY, **FAST) as other:
        for n in (pub, mate, other):
            n.start()
        pub.announce({})
        mate.announce({"tags": ["zone:a", "site:x"]})
        other.announce({})
        link(mate, pub)
        link(other, pub)
        wait_for(
            "the subnets learned",
            lambda: subnet_of(pub, mate.node_id) == "3.7" and subnet_of(pub, other.node_id) == "3.8",
        )
        assert mate.channels()["subnet"] == "3.7"
        pub.register_channel("local", ChannelConfig(visibility="subnet_local"))
        mate.subscribe(pub.node_id, "local")
        with pytest.raises(ChannelUnauthorizedError):
            other.subscribe(pub.node_id, "local")
        assert pub.publish("local", [b"inside"], reliable=True).delivered == 1
        event = mate.recv(timeout=20)
        assert event is not None and event.data == b"inside" and event.channel == "local"

        # An exported channel reaches its export target only.
        pub.register_channel("out", ChannelConfig(visibility="exported", export_to=["3.8"]))
        other.subscribe(pub.node_id, "out")
        with pytest.raises(ChannelUnauthorizedError):
            mate.subscribe(pub.node_id, "out")
        pub.publish("out", [b"exported"], reliable=True)
        event = other.recv(timeout=20)
        assert event is not None and event.data == b"exported" and event.channel == "out"
        with pytest.raises(ChannelConfigError, match="export_to"):
            pub.register_channel("bad", ChannelConfig(export_to=["9.9.9.9.9"]))


@pytest.mark.parametrize(
    "options",
    [
        {"subnet": "1.2.3.4.5"},
        {"subnet": 7},
        {"subnet_policy": [{"prefix": "x:", "level": 4, "values": {"a": 1}}]},
    ],
)
def test_bad_subnet_options_are_refused(options: dict) -> None:
    with pytest.raises(MeshConfigError, match="subnet"):
        Mesh(**options)
