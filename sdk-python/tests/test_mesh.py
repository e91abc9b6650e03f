"""The mesh through the Python SDK: two nodes in one process exchange
events both ways over UDP on 127.0.0.1, reliably and not; credit and
backpressure; errors; introspection."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

from netmesh import (
    Cancel,
    CancelledError,
    Mesh,
    MeshBackpressureError,
    MeshConfigError,
    MeshEvent,
    MeshHandshakeTimeoutError,
    MeshSessionExistsError,
    MeshTooLargeError,
    MeshUnknownPeerError,
    ShuttingDownError,
)

from conftest import FAST, let_it_block, until_won


@pytest.fixture
def pair():
    with Mesh(**FAST) as a, Mesh(**FAST) as b:
        a.start()
        b.start()
        a.connect(b.local_addr, b.public_key, b.node_id)
        deadline = time.monotonic() + 5
        while not b.peers() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield a, b


def recv_n(node: Mesh, n: int) -> list:
    got = []
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        got.extend(node.recv_batch(n - len(got), timeout=0.2))
    assert len(got) == n, f"got {len(got)} of {n}"
    return got


def test_identity_and_addresses() -> None:
    with Mesh(**FAST) as a:
        assert len(a.public_key) == 32 and len(a.entity_id) == 32
        assert a.local_addr.startswith("127.0.0.1:")
        assert 0 < a.node_id < 2**64
        assert "node_id" in repr(a)


def test_events_both_ways(pair) -> None:
    a, b = pair
    with a.open_stream(b.node_id, 7, reliable=True) as s:
        assert s.info() == (b.node_id, 7)
        s.send(b"hello", b"from a")
        got = recv_n(b, 2)
        assert got == [MeshEvent(a.node_id, 7, b"hello"), MeshEvent(a.node_id, 7, b"from a")]
    with b.open_stream(a.node_id, 9) as back:
        back.send([b"back"])
        assert a.recv(timeout=5) == MeshEvent(b.node_id, 9, b"back")
    assert a.recv(timeout=0.02) is None
    with pytest.raises(ShuttingDownError):
        s.info()
    peer = a.peers()[0]
    assert peer["node_id"] == b.node_id and peer["health"] == "alive"
    assert peer["identity"] == "net" and bytes.fromhex(peer["entity"]) == b.entity_id
    assert b.stats()["events_received"] >= 2


def test_reliable_stream_many_events_in_order(pair) -> None:
    a, b = pair
    with a.open_stream(b.node_id, 3, reliable=True, window=0) as s:
        for i in range(0, 5000, 500):
            s.send(*[i.to_bytes(4, "little") for i in range(i, i + 500)])
        got = recv_n(b, 5000)
    assert [int.from_bytes(e.data, "little") for e in got] == list(range(5000))


def test_backpressure_and_blocking_send(pair) -> None:
    a, b = pair
    with a.open_stream(b.node_id, 4, window=1000) as s:
        big = bytes(900)
        s.send(big)
        with pytest.raises(MeshTooLargeError):
            s.send(big, big)  # can never fit a 1000-byte window at once
        try:
            s.send(big)
        except MeshBackpressureError:
            pass
        # Credit comes back as the reader takes events: read meanwhile.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            reader = pool.submit(recv_n, b, 4)
            assert s.send_blocking([big, big, big], timeout=5)
            assert len(reader.result()) == 4


def test_errors() -> None:
    with pytest.raises(MeshConfigError, match="colour"):
        Mesh(colour="blue")
    with pytest.raises(MeshConfigError):
        Mesh(bind="nowhere")
    with Mesh(**FAST, handshake_timeout=0.1, handshake_retries=1) as a, Mesh() as stranger:
        with pytest.raises(MeshHandshakeTimeoutError):  # wrong PSK: silence
            a.connect(stranger.local_addr, stranger.public_key, stranger.node_id)
        with pytest.raises(MeshUnknownPeerError):
            a.open_stream(12345, 1)
        assert a.accept(999, timeout=0.05) is None


def test_session_exists(pair) -> None:
    a, b = pair
    with pytest.raises(MeshSessionExistsError):
        a.connect(b.local_addr, b.public_key, b.node_id)


def test_direct_form_with_accept() -> None:
    """A direct-form handshake needs the accept waiting first: a round whose
    connect came too early (it times out) is retried."""

    def attempt(_: int) -> bool:
        with Mesh(**FAST, connect_form="direct", handshake_timeout=0.5) as a, Mesh(**FAST) as b:
            b.start()
            got = []
            with Cancel() as stop:

                def accept() -> None:
                    try:
                        got.append(b.accept(a.node_id, timeout=60, cancel=stop))
                    except CancelledError:
                        got.append("cancelled")

                t = threading.Thread(target=accept)
                t.start()
                let_it_block()
                try:
                    a.connect(b.local_addr, b.public_key, b.node_id)
                except MeshHandshakeTimeoutError:
                    stop.cancel()
                    t.join(30)
                    return False
                t.join(30)
                assert got == [a.local_addr]
                return True

    until_won(10, 1, attempt)


def test_close_ends_a_blocked_iteration() -> None:
    a = Mesh(**FAST)
    out = []
    t = threading.Thread(target=lambda: out.extend(a))
    t.start()
    let_it_block()
    a.close()
    t.join(30)
    assert not t.is_alive() and out == []
    with pytest.raises(ShuttingDownError):
        a.start()


def test_shutdown_ends_receives_and_refuses_calls() -> None:
    with Mesh(**FAST) as a:
        a.shutdown()  # net_mesh_close: the handle stays valid
        a.shutdown()
        assert not a.closed
        assert a.recv(timeout=5) is None  # ended
        assert list(a) == []
        with pytest.raises(ShuttingDownError):
            a.accept(1, timeout=5)
        assert isinstance(a.stats(), dict)  # introspection still answers


def test_drops_reach_the_application() -> None:
    """A sender that does not wait for credit (window 0) overflows a reader
    that does not read: every dropped event reaches the application, as
    ``dropped_before`` on the stream's next event and at once in the peer's
    ``dropped_unreported``."""
    with Mesh(**FAST) as a, Mesh(**FAST, shard_capacity=100) as b:
        a.connect(b.local_addr, b.public_key, b.node_id)
        n = 2000
        # 64-byte events: the burst exceeds the 64 KiB receive window.
        event = lambda i: i.to_bytes(4, "little") + bytes(60)  # noqa: E731
        with a.open_stream(b.node_id, 12, window=0) as s:
            for i in range(n):
                s.send(event(i))
            deadline = time.monotonic() + 20
            while True:
                stats = b.stats()
                if stats["inbound_dropped"] + stats["inbound_queued"] == n:
                    break
                assert time.monotonic() < deadline, stats
                time.sleep(0.005)
            dropped = stats["inbound_dropped"]
            assert 0 < dropped < n
            expected = 0
            for e in recv_n(b, n - dropped):
                number = int.from_bytes(e.data[:4], "little")
                assert e.dropped_before == number - expected, number
                expected = number + 1
            unreported = n - expected
            assert b.peers()[0]["dropped_unreported"] == unreported
            s.send(event(n))
            assert recv_n(b, 1)[0].dropped_before == unreported


@pytest.mark.parametrize("large, want", [(True, 65000), (False, 8192)])
def test_datagram_and_window_options(large: bool, want: int) -> None:
    """Window growth and large datagrams are options: two nodes with large
    datagrams reach 65 000-byte datagrams on loopback; a node without them
    keeps its peer at v0.11's 8192 and is never probed."""
    opts = dict(FAST, max_window=1 << 20, window_budget=8 << 20, path_probe_interval=0.2)
    with Mesh(**opts) as a, Mesh(**FAST, large_datagrams=large) as b:
        a.connect(b.local_addr, b.public_key, b.node_id)
        deadline = time.monotonic() + 20

        def done() -> bool:
            peers = a.peers()
            return (
                len(peers) == 1
                and peers[0]["identity"] == "net"
                and peers[0]["max_datagram"] == want
                and (want == 8192 or a.stats()["paths_enlarged"] >= 1)
            )

        while not done():
            assert time.monotonic() < deadline, (a.peers(), a.stats())
            time.sleep(0.005)  # bounded poll of the peer list
        if not large:
            assert a.stats()["path_probes_sent"] == 0
    with pytest.raises(MeshConfigError):
        Mesh(**FAST, path_probe_interval=0.01)
