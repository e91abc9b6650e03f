"""Continuity through the Python SDK: a followed chain checked event by
event (a second writer breaks it, and the node says so as an event and in
its status), partition records, the event wait with a timeout and a
cancel, continuity off refused. The partition itself runs on five real
nodes in the Rust suite (tests/mesh_partitions.rs)."""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest

from netmesh import (
    Cancel,
    CancelledError,
    InvalidArgumentError,
    Mesh,
    MeshUnknownPeerError,
    causal_frame,
    genesis_link,
    next_causal_link,
)

from conftest import FAST, let_it_block

ORIGIN = 0x1234_5678_9ABC


def link(origin: int, seq: int, parent: int) -> bytes:
    """A 32-byte causal link: origin, horizon, sequence, parent hash (LE)."""
    return struct.pack("<QQQQ", origin, 0, seq, parent)


def test_a_chain_followed_and_broken():
    with Mesh(**FAST) as m:
        assert m.partitions() == []
        assert m.continuity_status() == []
        with pytest.raises(InvalidArgumentError, match="not followed"):
            m.observe_chain_event(link(ORIGIN, 1, 0), b"x")
        m.follow_chain(ORIGIN)
        m.follow_chain(ORIGIN)  # idempotent
        status = m.continuity_status()
        assert status[0]["origin"] == ORIGIN
        assert status[0]["head"]["seq"] == 0
        assert status[0]["held"] == 1
        assert status[0]["broken"] is None
        assert m.continuity_next(0.01) is None
        with pytest.raises(InvalidArgumentError):
            m.observe_chain_event(link(ORIGIN, 1, 0)[:31], b"x")
        # A parent hash that is not the genesis's: the chain breaks.
        assert m.observe_chain_event(link(ORIGIN, 1, 0xDEAD), b"x") == "broke"
        assert m.observe_chain_event(link(ORIGIN, 2, 0xBEEF), b"y") == "ignored"
        event = m.continuity_next(5)
        assert event == {"type": "chain_broken", "origin": ORIGIN, "reason": "the stream stopped verifying"}
        broken = m.continuity_status()[0]["broken"]
        assert broken["reason"] == "conflicting_chains"  # its parent is not our genesis
        assert broken["last_verified_seq"] == 0


def test_a_proof_asked_of_a_peer_arrives_as_an_event():
    """Both follow the chain from its genesis, which both hold: consistent."""
    with Mesh(**FAST) as a, Mesh(**FAST) as b:
        a.start()
        b.start()
        a.connect(b.local_addr, b.public_key, b.node_id)
        with pytest.raises(InvalidArgumentError, match="not followed"):
            a.request_continuity_proof(b.node_id, ORIGIN, 0, 0)
        a.follow_chain(ORIGIN)
        b.follow_chain(ORIGIN)
        with pytest.raises(InvalidArgumentError):
            a.request_continuity_proof(b.node_id, ORIGIN, 3, 2)
        a.request_continuity_proof(b.node_id, ORIGIN, 0, 0)
        for _ in range(100):
            event = a.continuity_next(0.1)
            if event is not None and event["type"] == "proof_checked":
                break
        else:
            pytest.fail("no proof_checked event")
        assert event["peer"] == b.node_id
        assert event["origin"] == ORIGIN
        assert event["verdict"] == "consistent"


def test_a_causal_stream_is_followed_and_proved_by_the_node():
    """The receiver checks each event of a causal stream as it arrives and
    proves the chain against the sender by itself; the sender followed what
    it sent."""
    with Mesh(**FAST) as a, Mesh(**FAST, proof_interval=0.1) as b:
        a.start()
        b.start()
        a.connect(b.local_addr, b.public_key, b.node_id)
        a.follow_chain(ORIGIN)
        b.follow_chain(ORIGIN)
        with pytest.raises(MeshUnknownPeerError):
            a.open_causal_stream(12345, 1, reliable=True)
        with pytest.raises(InvalidArgumentError):
            next_causal_link(b"\0" * 31)
        with pytest.raises(ValueError):
            causal_frame(b"\0" * 31)
        prev, prev_payload = genesis_link(ORIGIN), b""
        assert prev == link(ORIGIN, 0, 0)
        events = []
        for i in range(1, 11):
            current = next_causal_link(prev, prev_payload)
            assert struct.unpack_from("<QQQ", current)[0::2] == (ORIGIN, i)
            payload = bytes([i])
            events.append(causal_frame(current, payload))
            prev, prev_payload = current, payload
        with a.open_causal_stream(b.node_id, 7, reliable=True) as stream:
            stream.send(events)
            got = []
            while len(got) < 10:
                event = b.recv(5)
                assert event is not None
                got.append(event)
            assert [e.data for e in got] == events
            for _ in range(200):
                event = b.continuity_next(0.1)
                if event is not None and event["type"] == "proof_checked":
                    assert event["verdict"] == "consistent"
                    assert event["peer"] == a.node_id
                    if event["to_seq"] == 10:
                        break
            else:
                pytest.fail("no proof of the whole chain")
        chain = b.continuity_status()[0]
        assert chain["head"]["seq"] == 10
        assert chain["source"] == a.node_id
        assert chain["proved_to"] == 10
        assert chain["proof_conflicted"] is False
        assert a.continuity_status()[0]["head"]["seq"] == 10


def _wait_events(mesh: Mesh, wanted: set, limit: float = 15.0) -> list:
    """Continuity events of ``mesh`` until every type in ``wanted`` came."""
    seen: list = []
    deadline = time.monotonic() + limit
    while not wanted <= {e["type"] for e in seen}:
        assert time.monotonic() < deadline, f"waited for {wanted}, saw {seen}"
        event = mesh.continuity_next(0.1)
        if event is not None:
            seen.append(event)
    return seen


def test_a_peer_that_fails_and_returns_heals_the_partition():
    """b goes away: a detects the split; b comes back (same keys, a new
    process as far as a can tell) and the split heals, both sides naming
    the same partition key — b learns of the split from a's greeting."""
    quick = dict(FAST, heartbeat_interval=0.02, session_timeout=0.1)
    seed, secret = os.urandom(32), os.urandom(32)
    with Mesh(**quick) as a:
        a.start()
        b = Mesh(**quick, identity_seed=seed, static_secret=secret)
        b.start()
        b_id = b.node_id
        a.connect(b.local_addr, b.public_key, b_id)
        b.close()
        _wait_events(a, {"detected"})
        record = a.partitions()[0]
        assert record["other_side"] == [b_id]
        assert record["our_side"] == [a.node_id]
        assert record["partition_key"] is None
        with Mesh(**quick, identity_seed=seed, static_secret=secret) as b2:
            b2.start()
            assert b2.node_id == b_id
            # Its identity proves it: a's old session to b is replaced.
            b2.connect(a.local_addr, a.public_key, a.node_id)
            _wait_events(a, {"healed", "agreed"})
            _wait_events(b2, {"healed", "agreed"})
            healed = a.partitions()[0]
            adopted = b2.partitions()[0]
            assert healed["phase"] == adopted["phase"] == "healed"
            assert adopted["other_side"] == [a.node_id]
            assert healed["partition_key"] is not None
            assert healed["partition_key"] == adopted["partition_key"]


def test_the_event_wait_is_cancelled():
    with Mesh(**FAST) as m:
        cancel = Cancel()

        def cancel_soon() -> None:
            let_it_block()
            cancel.cancel()

        canceller = threading.Thread(target=cancel_soon)
        canceller.start()
        # Cancelled before or during its wait: CancelledError either way.
        with pytest.raises(CancelledError):
            m.continuity_next(None, cancel=cancel)
        canceller.join()


def test_continuity_off_is_refused():
    with Mesh(continuity=False, **FAST) as m:
        with pytest.raises(InvalidArgumentError, match="continuity is off"):
            m.follow_chain(1)
        with pytest.raises(InvalidArgumentError, match="continuity is off"):
            m.continuity_next(0)
        assert m.partitions() == []
