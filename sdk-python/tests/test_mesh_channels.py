"""Channels and capabilities through the Python SDK: register, subscribe
(accepted, unknown channel, token required without and with a token the
publisher's identity issued), publish with a report and receive with the
channel name, unsubscribe stops delivery; announce and find across three
nodes (one hop forwarded); a subscriber relayed through R; calls after
close; a full capability set read back field by field and found by a
filter on each kind of field; a full channel and a spent publish rate."""

from __future__ import annotations

import asyncio

import pytest

from netmesh import (
    AcceleratorInfo,
    AcceleratorType,
    Capabilities,
    CapabilityFilter,
    ChannelFullError,
    ChannelRateLimitedError,
    GpuInfo,
    GpuVendor,
    Hardware,
    Limits,
    Modality,
    ModelInfo,
    Software,
    ToolInfo,
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
        entry = next(n for n in a.capabilities() if n.node_id == c.node_id)
        assert entry.hop_count == 1
        assert entry.capabilities.hardware.memory_mb == 4096

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


def full_capabilities() -> Capabilities:
    """A set with every member set (enumerations in assorted spellings)."""
    return Capabilities(
        hardware=Hardware(
            cpu_cores=16,
            cpu_threads=32,
            memory_mb=65536,
            gpu=GpuInfo("NVIDIA", "RTX 4090", 24576, 128, 512, 825),
            additional_gpus=[GpuInfo(GpuVendor.AMD, "MI300", 8192, 304, 0, 1307)],
            storage_mb=2_000_000,
            network_mbps=10_000,
            accelerators=[AcceleratorInfo("tpu", "v5e", 16384, 3940)],
        ),
        software=Software(
            os="linux",
            os_version="6.8",
            runtimes=[("python", "3.12")],
            frameworks=[("torch", "2.3")],
            cuda_version="12.4",
            drivers=[("nvidia", "550.54")],
        ),
        models=[ModelInfo("llama-3-8b", "llama", 80, 8192, "q4_k_m", ["text", "tool_use"], 95, True)],
        tools=[ToolInfo("grep", "Grep", "3.11", '{"type":"object"}', '{"type":"string"}', ["fs"], 40, True)],
        tags=["gpu", "zone:eu"],
        limits=Limits(4, 4096, 600, 8, 1 << 20, 1 << 21),
    )


def test_a_full_capability_set_reads_back_field_by_field() -> None:
    caps = full_capabilities()
    assert caps.hardware.gpu is not None and caps.hardware.gpu.vendor is GpuVendor.NVIDIA
    assert caps.models[0].modalities == [Modality.TEXT, Modality.TOOL_USE]
    assert caps.to_json()["hardware"]["accelerators"][0]["accel_type"] == "Tpu"
    assert Capabilities.from_json(caps.to_json()) == caps
    with pytest.raises(MeshCapabilitiesError, match="nvidea"):
        GpuInfo(vendor="nvidea")
    with pytest.raises(MeshCapabilitiesError, match="smell"):
        ModelInfo(modalities=["smell"])

    with Mesh(**FAST) as a, Mesh(**FAST) as b, Mesh(**FAST) as c:
        for n in (a, b, c):
            n.start()
        link(a, b)
        link(c, b)
        # A dict's list items may leave members out; an unknown one is named.
        c.announce({"models": [{"model_id": "partial"}], "hardware": {"gpu": {"vendor": "Amd"}}})
        with pytest.raises(MeshCapabilitiesError, match=r"`tools\[0\]\.tool_name`"):
            c.announce({"tools": [{"tool_name": "x"}]})
        c.announce(caps)
        wait_for("a finds c", lambda: a.find_nodes(CapabilityFilter(require_tags=["zone:eu"])) == [c.node_id])
        entry = next(n for n in a.capabilities() if n.node_id == c.node_id)
        got = entry.capabilities
        for member in ("hardware", "software", "models", "tools", "tags", "limits"):
            assert getattr(got, member) == getattr(caps, member), member
        assert got == caps
        assert got.hardware.accelerators[0].accel_type is AcceleratorType.TPU
        assert entry.hop_count == 1 and entry.expires_at_ns > entry.timestamp_ns > 0

        for finds in (
            CapabilityFilter(require_models=["llama-3-8b"]),
            CapabilityFilter(require_tools=["grep"]),
            CapabilityFilter(min_memory_mb=65536),
            CapabilityFilter(require_gpu=True, gpu_vendor=GpuVendor.NVIDIA),
            CapabilityFilter(min_vram_mb=24576 + 8192),
            CapabilityFilter(min_context_length=8192),
            CapabilityFilter(require_modalities=[Modality.TOOL_USE, "text"]),
        ):
            assert a.find_nodes(finds) == [c.node_id], finds
        for misses in (
            CapabilityFilter(require_models=["gpt"]),
            CapabilityFilter(min_memory_mb=65537),
            CapabilityFilter(gpu_vendor="amd"),  # only the primary GPU counts
            CapabilityFilter(min_vram_mb=24576 + 8192 + 1),
            CapabilityFilter(require_modalities=["image"]),
        ):
            assert a.find_nodes(misses) == [], misses
        with pytest.raises(MeshCapabilitiesError):
            a.find_nodes(CapabilityFilter(gpu_vendor="nvidea"))


def test_a_full_channel_and_a_spent_rate_raise_their_own_errors() -> None:
    with Mesh(**FAST) as a, Mesh(**FAST) as b, Mesh(**FAST) as c:
        for n in (a, b, c):
            n.start()
        link(b, a)
        link(c, a)
        a.register_channel("one", ChannelConfig(max_subscribers=1))
        b.subscribe(a.node_id, "one")
        b.subscribe(a.node_id, "one")  # idempotent at the cap
        with pytest.raises(ChannelFullError):
            c.subscribe(a.node_id, "one")
        a.register_channel("slow", ChannelConfig(max_rate_pps=1))
        a.publish("slow", [b"first"])
        with pytest.raises(ChannelRateLimitedError, match="rate"):
            a.publish("slow", [b"second"])
