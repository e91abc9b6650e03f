"""Channels and capabilities through the Python SDK: register, subscribe
(accepted, unknown channel, token required without and with a token the
publisher's identity issued), publish with a report and receive with the
channel name, unsubscribe stops delivery; announce and find across three
nodes (one hop forwarded); a subscriber relayed through R; calls after
close."""

from __future__ import annotations

import asyncio

import pytest

from netmesh import (
    CapabilityFilter,
    ChannelConfig,
    ChannelConfigError,
    ChannelUnauthorizedError,
    ChannelUnknownError,
    Identity,
    Mesh,
    MeshCapabilitiesError,
    MeshEvent,
    PublishReport,
    Scope,
    ShuttingDownError,
    Token,
    channel_hash,
)

from conftest import FAST
from test_mesh_relay import link, wait_for

SEED = bytes([7]) * 32


def test_subscribe_publish_receive_and_tokens() -> None:
    with Mesh(identity_seed=SEED, **FAST) as a, Mesh(**FAST) as b:
        a.start()
        b.start()
        link(b, a)
        with pytest.raises(ChannelConfigError, match="priority"):
            a.register_channel("news", ChannelConfig(priority=300))
        with pytest.raises(ValueError):  # ChannelConfigError is a ValueError
            a.register_channel("news", ChannelConfig(visibility="galaxy"))
        assert a.register_channel("news", ChannelConfig(reliable=True)) == 0
        a.register_channel("secret", ChannelConfig(require_token=True))

        b.subscribe(a.node_id, "news")
        with pytest.raises(ChannelUnknownError):
            b.subscribe(a.node_id, "nope")
        with pytest.raises(ChannelUnauthorizedError):
            b.subscribe(a.node_id, "secret")
        with Identity.from_seed(SEED) as issuer:
            token = Token.issue(issuer, b.entity_id, Scope.SUBSCRIBE, channel_hash("secret"), 3600)
        b.subscribe(a.node_id, "secret", bytes(token))

        report = a.publish("news", [b"n1"])
        assert report == PublishReport(attempted=1, delivered=1, evicted=0, errors=())
        event = b.recv(timeout=20)
        assert event == MeshEvent(a.node_id, event.stream_id, b"n1", 0, "news")
        a.publish("secret", [b"s1"], reliable=True)
        assert [(e.data, e.channel) for e in b.recv_batch(8, timeout=20)] == [(b"s1", "secret")]
        with pytest.raises(ChannelUnknownError):
            a.publish("unregistered", [b"x"])
        assert {c["name"] for c in a.channels()["channels"]} == {"news", "secret"}

        # Unsubscribe stops delivery: the next event b gets is on "secret".
        asyncio.run(b.unsubscribe_async(a.node_id, "news"))
        assert a.publish("news", [b"gone"]).attempted == 0
        a.publish("secret", [b"s2"])
        assert b.recv(timeout=20).channel == "secret"
        assert a.deregister_channel("secret") == 1
        a.install_channel_token(bytes(token))

        a.close()
        with pytest.raises(ShuttingDownError):
            a.publish("news", [b"x"])
        with pytest.raises(ShuttingDownError):
            a.register_channel("news")
        with pytest.raises(ShuttingDownError):
            a.subscribe(1, "news")


def test_announce_and_find_across_three_nodes() -> None:
    with Mesh(**FAST) as a, Mesh(**FAST) as b, Mesh(**FAST) as c:
        for n in (a, b, c):
            n.start()
        link(a, b)
        link(c, b)
        c.announce({"tags": ["gpu"], "hardware": {"memory_mb": 4096}})
        with pytest.raises(MeshCapabilitiesError, match="memroy_mb"):
            c.announce({"hardware": {"memroy_mb": 1}})
        gpu = CapabilityFilter(require_tags=["gpu"])
        wait_for("a finds c", lambda: a.find_nodes(gpu) == [c.node_id])
        best = a.find_best_node(gpu, weights={"memory": 1.0})
        assert best is not None and best[0] == c.node_id
        assert a.find_best_node(CapabilityFilter(require_tags=["tpu"])) is None
        with pytest.raises(MeshCapabilitiesError):
            a.find_nodes(scope="everywhere")
        entry = next(n for n in a.capabilities() if n["node_id"] == c.node_id)
        assert entry["hop_count"] == 1
        assert entry["capabilities"]["hardware"]["memory_mb"] == 4096

        a.register_channel("jobs", ChannelConfig(subscribe_caps=gpu))
        link(c, a)
        c.subscribe(a.node_id, "jobs")
        with pytest.raises(ChannelUnauthorizedError):
            b.subscribe(a.node_id, "jobs")


def test_a_subscriber_relayed_through_r() -> None:
    with Mesh(**FAST) as a, Mesh(**FAST) as r, Mesh(**FAST) as b:
        for n in (a, r, b):
            n.start()
        link(a, r)
        link(b, r)
        b.connect_via(r.node_id, a.public_key, a.node_id)
        a.register_channel("relayed")
        asyncio.run(b.subscribe_async(a.node_id, "relayed"))
        assert a.publish("relayed", [b"over r"], reliable=True).delivered == 1
        event = b.recv(timeout=20)
        assert (event.peer, event.data, event.channel) == (a.node_id, b"over r", "relayed")
        b.unsubscribe(a.node_id, "relayed")
        assert a.publish("relayed", [b"gone"]).attempted == 0
