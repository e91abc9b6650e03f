"""The encrypted UDP mesh: nodes, Noise handshakes, streams.

::

    from netmesh import Mesh

    psk = bytes(32)                                    # the mesh-wide secret
    with Mesh(psk=psk) as a, Mesh(psk=psk) as b:
        a.start(); b.start()
        a.connect(b.local_addr, b.public_key, b.node_id)
        with a.open_stream(b.node_id, 1, reliable=True) as s:
            s.send(b"hello", b"world")                 # now, or MeshBackpressureError
            s.send_blocking([b"more"], timeout=5)      # waits for credit
        event = b.recv(timeout=5)                      # MeshEvent(peer, stream_id, data)

A :class:`Mesh` is one node (one UDP socket). It accepts handshakes at
once; :meth:`Mesh.start` adds heartbeats and failure detection.
:meth:`Mesh.connect` handshakes in the routed form by default (any started
node accepts it); :meth:`Mesh.accept` waits for a peer using the direct
form. Between two Net nodes, reliable streams retransmit and deliver in
order exactly once, and each session is bound to the peer's ed25519
identity; with Net v0.11 peers the node behaves as v0.11 does.

Handles follow the netmesh rules: thread-safe, no SDK lock around libnet
calls; closing the node wakes every blocked call (``recv`` returns None,
``accept``/``connect``/``send_blocking`` raise ShuttingDownError).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import struct
import threading
from typing import Any, AsyncIterator, Deque, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

from ._ffi import (
    BytesLike,
    buf,
    call_bytes,
    call_error,
    check,
    check_call,
    error_slot,
    ffi,
    lib,
    new_bytes,
    slice_array,
    take_bytes,
    timeout_ms,
)
from ._handle import _Handle
from .capabilities import Capabilities, GpuVendor, IndexedNode, Modality, capabilities_json
from .cancel import Cancel, call_async, call_blocking, pull, pull_async
from .errors import MeshConfigError, ShuttingDownError, error_for_status
from .redex import Seconds, _out_u64

__all__ = [
    "Mesh",
    "MeshStream",
    "MeshEvent",
    "Route",
    "Routes",
    "ChannelConfig",
    "CapabilityFilter",
    "PublishReport",
    "PublishFailure",
]

_U64_MAX = (1 << 64) - 1
# net_mesh_recv_batch records: peer, stream_id, dropped_before, len,
# channel_len, then the channel name and the bytes.
_RECORD = struct.Struct("<QQQIH")
_END = object()


class MeshEvent(NamedTuple):
    """One received event: the sending node, the stream, the bytes,
    ``dropped_before``: events of this stream dropped just before this one
    because the inbound queue was full (only senders that do not wait for
    credit cause drops), and ``channel``: the name of the channel it was
    published on ("" for an ordinary stream)."""

    peer: int
    stream_id: int
    data: bytes
    dropped_before: int = 0
    channel: str = ""


@dataclasses.dataclass(frozen=True)
class Route:
    """The route in use to one destination (:meth:`Mesh.routes`)."""

    #: The destination node.
    destination: int
    #: The direct peer packets to the destination go to.
    next_hop: int
    #: Links to the destination.
    hops: int
    #: ``"direct"``, ``"relayed"`` (a relayed session's pinned route) or
    #: ``"learned"`` (from pingwaves).
    kind: str
    #: Milliseconds since the route was last confirmed.
    age_ms: int
    #: No news for the expiry time: kept only for want of a fresher route.
    stale: bool
    #: Other usable next hops, ready if this one fails.
    alternates: int


@dataclasses.dataclass(frozen=True)
class Routes:
    """A node's routing table (:meth:`Mesh.routes`): ``routes`` in
    destination order, ``forwarding`` (routed datagrams ``forwarded`` as a
    relay, ``delivered`` to us, ``dropped_*`` by reason) and ``pingwaves``
    (``sent``, ``accepted``, ``relayed``, ``duplicate``, ``dropped_*``)
    counters."""

    node_id: int
    routes: List[Route]
    forwarding: Dict[str, int]
    pingwaves: Dict[str, int]

    def route(self, destination: int) -> Optional[Route]:
        """The route to ``destination``, or None."""
        return next((r for r in self.routes if r.destination == destination), None)

    @classmethod
    def _from_json(cls, data: Dict[str, Any]) -> "Routes":
        fields = [f.name for f in dataclasses.fields(Route)]
        return cls(
            node_id=data["node_id"],
            routes=[Route(**{k: r[k] for k in fields}) for r in data["routes"]],
            forwarding=dict(data["forwarding"]),
            pingwaves=dict(data["pingwaves"]),
        )


def _u64(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _U64_MAX:
        raise ValueError(f"{what} must be in [0, 2**64), got {value}")
    return value


_DURATIONS = {
    "heartbeat_interval": "heartbeat_interval_ms",
    "session_timeout": "session_timeout_ms",
    "handshake_timeout": "handshake_timeout_ms",
    "stream_idle_timeout": "stream_idle_timeout_ms",
    "hello_timeout": "hello_timeout_ms",
    "classify_period": "classify_period_ms",
    "classify_deadline": "classify_deadline_ms",
    "path_probe_interval": "path_probe_interval_ms",
    "proof_interval": "proof_interval_ms",
}
_PLAIN = {
    "bind",
    "nat_classify",
    "reflex_override",
    "port_mapping",
    "port_mapping_gateway",
    "handshake_retries",
    "num_shards",
    "shard_capacity",
    "window",
    "max_window",
    "window_budget",
    "large_datagrams",
    "recv_buffer",
    "send_buffer",
    "max_streams",
    "connect_form",
    "require_identity",
    "gso",
    "gro",
    "aes",
    "continuity",
    "max_pending_handshakes",
    "loopback_depth",
    "subnet",
    "subnet_policy",
}
_OBSERVATIONS = {
    lib.NET_CHAIN_EXTENDED: "extended",
    lib.NET_CHAIN_DUPLICATE: "duplicate",
    lib.NET_CHAIN_STALE: "stale",
    lib.NET_CHAIN_BROKE: "broke",
    lib.NET_CHAIN_IGNORED: "ignored",
}
_KEYS = {"psk": "psk_hex", "identity_seed": "identity_seed_hex", "static_secret": "static_secret_hex"}


def config_json(**options: Any) -> str:
    """The configuration JSON of ``net_mesh_new`` for :class:`Mesh`'s
    keyword arguments (durations in seconds, keys as 32 bytes or hex)."""
    out: Dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name in _KEYS:
            if isinstance(value, (bytes, bytearray, memoryview)):
                value = bytes(value).hex()
            out[_KEYS[name]] = value
        elif name in _DURATIONS:
            if isinstance(value, datetime.timedelta):
                value = value.total_seconds()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be seconds, not {type(value).__name__}")
            out[_DURATIONS[name]] = max(0, round(value * 1000))
        elif name in _PLAIN:
            out[name] = value
        else:
            raise MeshConfigError(
                lib.NET_ERR_MESH_CONFIG,
                f"unknown option {name!r} (known: {', '.join(sorted([*_KEYS, *_DURATIONS, *_PLAIN]))})",
            )
    return json.dumps(out, separators=(",", ":")) if out else ""


_DIRECT_OUTCOMES = {
    lib.NET_DIRECT_OUTCOME_DIRECT: "direct",
    lib.NET_DIRECT_OUTCOME_SKIP_PUNCH: "skip-punch",
    lib.NET_DIRECT_OUTCOME_NO_INTRODUCE: "no-introduce",
    lib.NET_DIRECT_OUTCOME_NO_ACK: "no-ack",
    lib.NET_DIRECT_OUTCOME_PATH_FAILED: "path-failed",
}


@dataclasses.dataclass(frozen=True)
class NatStatus:
    """Where a node's NAT stands (:meth:`Mesh.nat`)."""

    #: "open", "cone", "symmetric" or "unknown" (the ``nat:*`` tag).
    nat_class: str
    #: "IP:port" peers can reach us at, or None (never a private,
    #: loopback or wildcard address).
    reflex: Optional[str]
    #: RFC 4787 mapping shown by the last round ("EndpointIndependent", ...).
    mapping: str
    #: RFC 4787 filtering shown by the last round.
    filtering: str
    port_preserving: bool
    #: The active reflex override, if any.
    override: Optional[str]
    #: Classification rounds committed.
    rounds: int
    #: Whether the node classifies by itself.
    classify: bool
    #: Introduces received for punches this node asked for.
    punches_attempted: int = 0
    #: Direct paths after a punch.
    punches_succeeded: int = 0
    #: :meth:`Mesh.connect_direct` calls that ended relayed.
    relay_fallbacks: int = 0

    @classmethod
    def _from_json(cls, j: Dict[str, Any]) -> "NatStatus":
        return cls(
            nat_class=j["class"],
            reflex=j["reflex"],
            mapping=j["mapping"],
            filtering=j["filtering"],
            port_preserving=bool(j["port_preserving"]),
            override=j["override"],
            rounds=int(j["rounds"]),
            classify=bool(j["classify"]),
            punches_attempted=int(j["punches_attempted"]),
            punches_succeeded=int(j["punches_succeeded"]),
            relay_fallbacks=int(j["relay_fallbacks"]),
        )


class Mesh(_Handle):
    """A mesh node (``net_mesh_t``).

    Keyword options (all optional): ``bind`` ("IP:port", default
    127.0.0.1:0), ``psk`` (32 bytes or 64 hex digits; random by default),
    ``identity_seed``, ``static_secret``, ``heartbeat_interval``,
    ``session_timeout``, ``handshake_timeout``, ``stream_idle_timeout``,
    ``hello_timeout`` (seconds), ``handshake_retries``, ``num_shards``,
    ``shard_capacity``, ``window`` (bytes, 0 = unlimited), ``max_window``
    (bytes, default 4 MiB: how far a default window widens between Net
    nodes while its sender is held back and the reader keeps up; at most
    ``window`` turns that off), ``window_budget`` (bytes, default 64 MiB),
    ``large_datagrams`` (bool, default True: up to 65 000-byte datagrams
    between Net nodes where the route carries them unfragmented and a probe
    gets through), ``path_probe_interval`` (seconds), ``recv_buffer``,
    ``send_buffer``, ``max_streams``, ``connect_form`` ("routed" |
    "direct"), ``require_identity``, ``gso`` / ``gro`` (bools, the Linux UDP
    offloads; on by default), ``aes`` (bool, default True: offer
    AES-256-GCM to Net peers when the CPU has AES instructions),
    ``continuity`` (bool, default True: partition records, the heal
    exchange and chain reconciliation run by themselves),
    ``proof_interval`` (seconds, default 10; 0: off — how often a chain
    heard on a causal stream is proved against the peer it came from),
    ``max_pending_handshakes``,
    ``loopback_depth``; NAT: ``nat_classify`` (bool, default True: the node
    classifies its NAT by itself), ``classify_period`` /
    ``classify_deadline`` (seconds), ``reflex_override`` ("IP:port", a
    public address), ``port_mapping`` (bool, default False: ask the gateway
    for a mapping with PCP, NAT-PMP or UPnP IGD), ``port_mapping_gateway``
    (IPv4; default the default route's); subnets: ``subnet`` ("global" or
    one to four dotted levels such as "3.7.2": this node's subnet),
    ``subnet_policy`` (a list of rules ``{"prefix": "region:", "level": 0,
    "values": {"eu": 3}}`` mapping capability tags to subnet levels: this
    node's subnet when ``subnet`` is unset, and that of peers announcing no
    ``subnet:`` tag). Unknown options raise MeshConfigError.

    The blocking calls (:meth:`connect`, :meth:`accept`, :meth:`recv`,
    :meth:`recv_batch`, iteration) take ``cancel=`` and have ``*_async``
    forms for asyncio; :meth:`close` (or :meth:`shutdown`) wakes them.
    """

    __slots__ = ("_pending", "_continuity_pending")
    _kind = "Mesh"
    _free = staticmethod(lib.net_mesh_free)

    def __init__(self, **options: Any) -> None:
        self._lock = threading.Lock()
        self._ptr = None
        # Events taken by a receive that a signal or a task cancellation
        # abandoned, delivered first.
        self._pending: Deque[MeshEvent] = collections.deque()
        self._continuity_pending: Deque[Dict[str, Any]] = collections.deque()
        raw = config_json(**options).encode()
        out = ffi.new("net_mesh_t **")
        check(lib.net_mesh_new(raw if raw else ffi.NULL, len(raw), out))
        self._ptr = out[0]

    # -- identity ----------------------------------------------------------------

    @property
    def node_id(self) -> int:
        """This node's node_id (derived from its ed25519 identity)."""
        out = ffi.new("uint64_t *")
        check(lib.net_mesh_node_id(self._handle(), out))
        return int(out[0])

    @property
    def public_key(self) -> bytes:
        """The static X25519 public key initiators need for :meth:`connect`."""
        out = new_bytes()
        check(lib.net_mesh_public_key(self._handle(), out))
        return take_bytes(out)

    @property
    def entity_id(self) -> bytes:
        """This node's ed25519 entity id (32 bytes)."""
        out = new_bytes()
        check(lib.net_mesh_entity_id(self._handle(), out))
        return take_bytes(out)

    @property
    def local_addr(self) -> str:
        """The bound address, "IP:port"."""
        out = new_bytes()
        check(lib.net_mesh_local_addr(self._handle(), out))
        return take_bytes(out).decode()

    # -- sessions ------------------------------------------------------------------

    def start(self) -> None:
        """Starts heartbeats, failure detection and eviction (idempotent)."""
        check(lib.net_mesh_start(self._handle()))

    def _connect_call(self, addr: str, public_key: BytesLike, node_id: int) -> Any:
        handle = self._handle()
        raw = addr.encode()
        key, n = buf(public_key, "public_key")
        peer = _u64(node_id, "node_id")

        def call(token: Any) -> None:
            err = error_slot()
            check_call(lib.net_mesh_connect(handle, raw, len(raw), key, n, peer, token, err), err)

        return call

    def connect(
        self, addr: str, public_key: BytesLike, node_id: int, *, cancel: Optional[Cancel] = None
    ) -> None:
        """Handshakes with ``node_id`` at ``addr`` (its static X25519
        ``public_key``); blocks up to handshake_timeout × retries (GIL
        released). MeshHandshakeTimeoutError, MeshSessionExistsError,
        CancelledError, ShuttingDownError (also when the node is closed
        meanwhile), …"""
        call_blocking(self._connect_call(addr, public_key, node_id), cancel)

    async def connect_async(
        self, addr: str, public_key: BytesLike, node_id: int, *, cancel: Optional[Cancel] = None
    ) -> None:
        """:meth:`connect` for asyncio (cancelling the task cancels the handshake)."""
        await call_async(self._connect_call(addr, public_key, node_id), cancel)

    def _connect_via_call(self, relay: Optional[int], public_key: BytesLike, node_id: int) -> Any:
        handle = self._handle()
        key, n = buf(public_key, "public_key")
        peer = _u64(node_id, "node_id")
        hop = None if relay is None else _u64(relay, "relay")

        def call(token: Any) -> None:
            err = error_slot()
            if hop is None:
                status = lib.net_mesh_connect_routed(handle, key, n, peer, token, err)
            else:
                status = lib.net_mesh_connect_via(handle, hop, key, n, peer, token, err)
            check_call(status, err)

        return call

    def _connect_direct_call(self, public_key: BytesLike, node_id: int, coordinator: int) -> Any:
        handle = self._handle()
        key, n = buf(public_key, "public_key")
        peer = _u64(node_id, "node_id")
        via = _u64(coordinator, "coordinator")

        def call(token: Any) -> str:
            err = error_slot()
            out = ffi.new("uint32_t *")
            check_call(lib.net_mesh_connect_direct(handle, peer, key, n, via, token, err, out), err)
            return _DIRECT_OUTCOMES.get(int(out[0]), "path-failed")

        return call

    def connect_direct(
        self, public_key: BytesLike, node_id: int, coordinator: int, *, cancel: Optional[Cancel] = None
    ) -> str:
        """Reaches ``node_id`` on a direct path, with ``coordinator`` (a
        direct peer holding sessions with both) for the hole punch; a
        session relayed already moves to the punched path with nothing lost
        or repeated. Returns ``"direct"`` or why the session stays relayed:
        ``"skip-punch"``, ``"no-introduce"``, ``"no-ack"``,
        ``"path-failed"``. MeshNoRouteError when ``coordinator`` is not a
        direct peer."""
        result: str = call_blocking(self._connect_direct_call(public_key, node_id, coordinator), cancel)
        return result

    async def connect_direct_async(
        self, public_key: BytesLike, node_id: int, coordinator: int, *, cancel: Optional[Cancel] = None
    ) -> str:
        """:meth:`connect_direct` for asyncio."""
        result: str = await call_async(self._connect_direct_call(public_key, node_id, coordinator), cancel)
        return result

    def connect_via(
        self, relay: int, public_key: BytesLike, node_id: int, *, cancel: Optional[Cancel] = None
    ) -> None:
        """Handshakes with ``node_id`` (its static X25519 ``public_key``)
        through ``relay``, one of this node's direct peers. The session is
        relayed: its packets travel routed towards the best route (the
        relay, or another path if it fails); the peer needs no accept.
        MeshNoRouteError when ``relay`` is not a direct peer; otherwise as
        :meth:`connect`."""
        call_blocking(self._connect_via_call(relay, public_key, node_id), cancel)

    async def connect_via_async(
        self, relay: int, public_key: BytesLike, node_id: int, *, cancel: Optional[Cancel] = None
    ) -> None:
        """:meth:`connect_via` for asyncio."""
        await call_async(self._connect_via_call(relay, public_key, node_id), cancel)

    def connect_routed(
        self, public_key: BytesLike, node_id: int, *, cancel: Optional[Cancel] = None
    ) -> None:
        """:meth:`connect_via` through the next hop of the best route to
        ``node_id`` learned from pingwaves (see :meth:`routes`; the nodes on
        the path must be started). MeshNoRouteError when none is known."""
        call_blocking(self._connect_via_call(None, public_key, node_id), cancel)

    async def connect_routed_async(
        self, public_key: BytesLike, node_id: int, *, cancel: Optional[Cancel] = None
    ) -> None:
        """:meth:`connect_routed` for asyncio."""
        await call_async(self._connect_via_call(None, public_key, node_id), cancel)

    def _accept_raw(self, handle: Any, peer: int, ms: int, token: Any) -> Optional[str]:
        out = new_bytes()
        err = error_slot()
        status = lib.net_mesh_accept(handle, peer, ms, out, token, err)
        if status == lib.NET_TIMEOUT:
            return None
        if status != lib.NET_OK:
            lib.net_bytes_free(out)
            raise call_error(status, err)
        return take_bytes(out).decode()

    def accept(
        self, node_id: int, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[str]:
        """Waits for ``node_id`` to handshake in the direct form; returns its
        address, or None when ``timeout`` passed. ShuttingDownError when the
        node is shut down or closed meanwhile, CancelledError."""
        handle, peer = self._handle(), _u64(node_id, "node_id")
        return pull(  # type: ignore[no-any-return]
            lambda ms, token: self._accept_raw(handle, peer, ms, token),
            timeout_ms(timeout),
            cancel,
        )

    async def accept_async(
        self, node_id: int, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[str]:
        """:meth:`accept` for asyncio."""
        handle, peer = self._handle(), _u64(node_id, "node_id")
        return await pull_async(  # type: ignore[no-any-return]
            lambda ms, token: self._accept_raw(handle, peer, ms, token),
            timeout_ms(timeout),
            cancel,
        )

    # -- streams and events -----------------------------------------------------------

    def open_stream(
        self, peer: int, stream_id: int, *, reliable: bool = False, window: Optional[int] = None
    ) -> "MeshStream":
        """Opens stream ``stream_id`` to ``peer``; ``window`` in bytes (None:
        the node's default, 0: unlimited)."""
        return self._open_stream(lib.net_mesh_open_stream, peer, stream_id, reliable, window)

    def _open_stream(
        self, fn: Any, peer: int, stream_id: int, reliable: bool, window: Optional[int]
    ) -> "MeshStream":
        out = ffi.new("net_mesh_stream_t **")
        w = _U64_MAX if window is None else _u64(window, "window")
        check(fn(self._handle(), _u64(peer, "peer"), _u64(stream_id, "stream_id"), bool(reliable), w, out))
        return MeshStream(out[0], self, peer, stream_id)

    def open_causal_stream(
        self, peer: int, stream_id: int, *, reliable: bool = False, window: Optional[int] = None
    ) -> "MeshStream":
        """Opens a stream as :meth:`open_stream` does, as a causal stream: its
        packets carry subprotocol 0x0400, so each event is read as causal
        frames (:func:`causal_frame`). A Net receiver checks the frames of
        every chain it follows (:meth:`follow_chain`) as they arrive, in
        stream order on a reliable stream, and proves the chain against this
        node every ``proof_interval``; this node checks the frames it sends
        for the chains it follows. The receiving application gets the events
        as on any stream."""
        return self._open_stream(lib.net_mesh_open_causal_stream, peer, stream_id, reliable, window)

    def _recv_raw(self, handle: Any, ms: int, token: Any) -> Any:
        peer = _out_u64()
        stream_id = _out_u64()
        dropped = _out_u64()
        out = new_bytes()
        channel = new_bytes()
        err = error_slot()
        status = lib.net_mesh_recv_next(handle, ms, peer, stream_id, out, dropped, channel, token, err)
        if status == lib.NET_OK:
            return MeshEvent(
                int(peer[0]),
                int(stream_id[0]),
                take_bytes(out),
                int(dropped[0]),
                take_bytes(channel).decode(),
            )
        if status == lib.NET_TIMEOUT:
            return None
        if status == lib.NET_END:
            return _END
        raise call_error(status, err)

    def _recv_batch_raw(self, handle: Any, max_events: int, ms: int, token: Any) -> Any:
        out = new_bytes()
        count = ffi.new("size_t *")
        err = error_slot()
        status = lib.net_mesh_recv_batch(handle, max_events, ms, out, count, token, err)
        if status == lib.NET_OK:
            return _unpack(take_bytes(out), int(count[0]))
        if status == lib.NET_TIMEOUT:
            return None
        if status == lib.NET_END:
            return _END
        raise call_error(status, err)

    def _keep(self, value: Any) -> None:
        if isinstance(value, MeshEvent):
            self._pending.append(value)
        elif isinstance(value, list):
            self._pending.extend(value)

    def _take_pending(self, max_events: int) -> List[MeshEvent]:
        events: List[MeshEvent] = []
        while len(events) < max_events:
            try:
                events.append(self._pending.popleft())
            except IndexError:
                break
        return events

    def _recv(self, timeout: Optional[Seconds], cancel: Optional[Cancel]) -> Any:
        ms = timeout_ms(timeout)
        for event in self._take_pending(1):
            return event
        handle = self._handle()
        return pull(lambda ms, token: self._recv_raw(handle, ms, token), ms, cancel, self._keep)

    def recv(
        self, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[MeshEvent]:
        """The next event from any peer, or None on timeout or once the node
        is shut down (check :attr:`closed`). Releases the GIL while waiting;
        on the main thread Ctrl-C interrupts it. CancelledError when
        ``cancel`` is cancelled (nothing is taken)."""
        event = self._recv(timeout, cancel)
        return None if event is _END else event

    async def recv_async(
        self, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[MeshEvent]:
        """:meth:`recv` for asyncio: cancelling the task cancels the receive
        (an event already taken is kept for the next receive)."""
        ms = timeout_ms(timeout)
        for event in self._take_pending(1):
            return event
        handle = self._handle()
        event = await pull_async(
            lambda ms, token: self._recv_raw(handle, ms, token), ms, cancel, self._keep
        )
        return None if event is _END else event

    def recv_batch(
        self,
        max_events: int = 1024,
        timeout: Optional[Seconds] = None,
        *,
        cancel: Optional[Cancel] = None,
    ) -> List[MeshEvent]:
        """Up to ``max_events`` events (at least one unless the timeout
        passed or the node shut down, then []): one libnet call for many
        events."""
        ms = timeout_ms(timeout)
        n = max(1, max_events)
        pending = self._take_pending(n)
        if pending:
            return pending
        handle = self._handle()
        events = pull(
            lambda ms, token: self._recv_batch_raw(handle, n, ms, token), ms, cancel, self._keep
        )
        return [] if events is None or events is _END else events

    async def recv_batch_async(
        self,
        max_events: int = 1024,
        timeout: Optional[Seconds] = None,
        *,
        cancel: Optional[Cancel] = None,
    ) -> List[MeshEvent]:
        """:meth:`recv_batch` for asyncio."""
        ms = timeout_ms(timeout)
        n = max(1, max_events)
        pending = self._take_pending(n)
        if pending:
            return pending
        handle = self._handle()
        events = await pull_async(
            lambda ms, token: self._recv_batch_raw(handle, n, ms, token), ms, cancel, self._keep
        )
        return [] if events is None or events is _END else events

    def events(self, *, cancel: Optional[Cancel] = None) -> Iterator[MeshEvent]:
        """Events until the node shuts down or is closed (from any thread);
        CancelledError once ``cancel`` is cancelled. ``for e in mesh`` is
        ``mesh.events()``."""
        while True:
            if self._ptr is None and not self._pending:
                return
            try:
                event = self._recv(None, cancel)
            except ShuttingDownError:
                return
            if event is _END:
                return
            if event is not None:
                yield event

    def __iter__(self) -> Iterator[MeshEvent]:
        return self.events()

    async def events_async(self, *, cancel: Optional[Cancel] = None) -> AsyncIterator[MeshEvent]:
        """:meth:`events` for asyncio: ``async for e in mesh.events_async()``."""
        while True:
            if self._ptr is None and not self._pending:
                return
            try:
                event = await self.recv_async(cancel=cancel)
            except ShuttingDownError:
                return
            if event is None:
                return  # shut down
            yield event

    def __aiter__(self) -> AsyncIterator[MeshEvent]:
        return self.events_async()

    # -- introspection ------------------------------------------------------------------

    def peers(self) -> List[Dict[str, Any]]:
        """The peers: node_id, addr, session_id, health, identity ("net" |
        "legacy" | "pending"), entity (hex or None), streams, idle_ms,
        cipher, dropped_unreported (events from the peer dropped for want
        of queue room, not yet reported on a later event's
        ``dropped_before``), relay (the node_id of the relay a relayed
        session goes through; None for a direct peer), max_datagram (8192,
        v0.11's, or up to 65 000 between Net nodes once a large-datagram
        probe got through), subnet (the peer's subnet as this node knows it,
        "global" or dotted levels; None when unknown)."""
        out = new_bytes()
        check(lib.net_mesh_peers(self._handle(), out))
        result: List[Dict[str, Any]] = json.loads(take_bytes(out))
        return result

    # -- continuity and partitions ------------------------------------------------------

    def partitions(self) -> List[Dict[str, Any]]:
        """The partition records, oldest first: id, phase ("suspected" |
        "confirmed" | "healing" | "healed"), our_side, other_side, returned
        (node ids), cause ({"kind": "subnet" | "broad_outage" | "unknown",
        ...}), horizon_at_split ([origin, seq] pairs), detected_at_ms,
        confirmed_at_ms, healed_at_ms, partition_key (None until a returned
        peer's view arrived)."""
        out = new_bytes()
        check(lib.net_mesh_partitions(self._handle(), out))
        result: List[Dict[str, Any]] = json.loads(take_bytes(out))
        return result

    def continuity_status(self) -> List[Dict[str, Any]]:
        """The chains this node follows: origin, head ({origin, seq, hash}),
        held, broken (None or {reason, last_verified_seq, detected_at_ms}),
        forks (each {original_origin, forked_origin, fork_seq, bytes}),
        source (None or the peer its events last came from on a causal
        stream, which the node proves it against), proved_to (the last
        sequence those proofs settled), proof_conflicted."""
        out = new_bytes()
        check(lib.net_mesh_continuity_status(self._handle(), out))
        result: List[Dict[str, Any]] = json.loads(take_bytes(out))
        return result

    def follow_chain(self, origin: int) -> None:
        """Follows chain ``origin`` from its genesis (idempotent): it is then
        checked event by event and reconciled after a partition heals.
        InvalidArgumentError when the node runs without continuity."""
        check(lib.net_mesh_follow_chain(self._handle(), _u64(origin, "origin")))

    def request_continuity_proof(self, peer: int, origin: int, from_seq: int, to_seq: int) -> None:
        """Asks ``peer`` to prove ``from_seq..=to_seq`` of the followed chain
        ``origin`` and checks the proof against what this node holds or
        remembers; the verdict arrives as a ``proof_checked`` event of
        :meth:`continuity_next` (``verdict``: "consistent", "conflicts" with
        ``seq``/``ours``/``theirs``, "unknown", "unavailable" with
        ``their_head``, or "unanswered"). InvalidArgumentError when
        continuity is off, the chain is not followed, ``from_seq > to_seq``
        or the span is 100 000 events or more, or ``peer`` is not a
        connected continuity peer."""
        check(
            lib.net_mesh_request_continuity_proof(
                self._handle(),
                _u64(peer, "peer"),
                _u64(origin, "origin"),
                _u64(from_seq, "from_seq"),
                _u64(to_seq, "to_seq"),
            )
        )

    def observe_chain_event(self, link: BytesLike, payload: BytesLike = b"") -> str:
        """Hands the node the next event of a followed chain (its 32-byte
        causal link and its payload); returns what it did: "extended",
        "duplicate", "stale", "broke" (a ``chain_broken`` event follows) or
        "ignored" (the chain was already broken). InvalidArgumentError for a
        malformed link or a chain not followed."""
        link_buf, link_len = buf(link, "link")
        payload_buf, payload_len = buf(payload, "payload")
        code = ffi.new("uint32_t *")
        check(
            lib.net_mesh_observe_chain_event(
                self._handle(), link_buf, link_len, payload_buf, payload_len, code
            )
        )
        return _OBSERVATIONS.get(int(code[0]), "ignored")

    def _continuity_raw(self, handle: Any, ms: int, token: Any) -> Any:
        out = new_bytes()
        err = error_slot()
        status = lib.net_mesh_continuity_next(handle, ms, out, token, err)
        if status == lib.NET_OK:
            return json.loads(take_bytes(out))
        if status == lib.NET_TIMEOUT:
            return None
        if status == lib.NET_END:
            return _END
        raise call_error(status, err)

    def _keep_continuity(self, value: Any) -> None:
        if isinstance(value, dict):
            self._continuity_pending.append(value)

    def continuity_next(
        self, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[Dict[str, Any]]:
        """The next continuity event as a dict (``type``: "detected",
        "extended", "confirmed", "healing", "healed", "agreed",
        "reconciled", "fork_adopted", "chain_broken"), or None on timeout or
        once the node is shut down. CancelledError when ``cancel`` is
        cancelled (nothing is lost: an event taken meanwhile is kept)."""
        if self._continuity_pending:
            return self._continuity_pending.popleft()
        ms = timeout_ms(timeout)
        handle = self._handle()
        event = pull(
            lambda ms, token: self._continuity_raw(handle, ms, token),
            ms,
            cancel,
            self._keep_continuity,
        )
        return None if event is _END else event

    def routes(self) -> Routes:
        """The routing table: a :class:`Routes` with one :class:`Route` per
        reachable destination, and the forwarding and pingwave counters."""
        out = new_bytes()
        check(lib.net_mesh_routes(self._handle(), out))
        return Routes._from_json(json.loads(take_bytes(out)))

    def nat(self) -> "NatStatus":
        """Where this node's NAT stands (:class:`NatStatus`): the class the
        ``nat:*`` capability tag carries, the reflex address peers can reach
        us at, the RFC 4787 detail of the last classification round."""
        out = new_bytes()
        check(lib.net_mesh_nat(self._handle(), out))
        return NatStatus._from_json(json.loads(take_bytes(out)))

    def set_reflex_override(self, addr: Optional[str]) -> None:
        """Sets the operator's reflex override (``"IP:port"``, a public
        address: class Open with that reflex, classification paused), or
        clears it with None. A node that announced re-announces at once.
        InvalidArgumentError for a malformed, private, loopback or wildcard
        address."""
        if addr is None:
            check(lib.net_mesh_set_reflex_override(self._handle(), ffi.NULL, 0))
        else:
            data = addr.encode()
            check(lib.net_mesh_set_reflex_override(self._handle(), data, len(data)))

    def reclassify_nat(self) -> None:
        """Starts a NAT classification round now (it needs two direct Net
        peers on distinct IP addresses); ``nat().rounds`` counts the rounds
        committed."""
        check(lib.net_mesh_reclassify_nat(self._handle()))

    def stats(self) -> Dict[str, int]:
        """The node's counters."""
        out = new_bytes()
        check(lib.net_mesh_stats(self._handle(), out))
        result: Dict[str, int] = json.loads(take_bytes(out))
        return result

    # -- lifetime ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stops the node without freeing it (``net_mesh_close``): blocked
        calls return (``recv`` with None, the others with
        ShuttingDownError), later ones raise ShuttingDownError."""
        ptr = self._ptr
        if ptr is not None:
            status = lib.net_mesh_close(ptr)
            if status not in (lib.NET_OK, lib.NET_ERR_SHUTTING_DOWN):
                check(status)

    # -- channels and capabilities --------------------------------------------------

    def register_channel(self, name: str, config: Optional["ChannelConfig"] = None) -> int:
        """Registers the channel ``name`` (or replaces its config); returns
        the subscribers evicted because they no longer qualify.
        ChannelConfigError naming the key, ChannelNameError,
        ChannelHashCollisionError."""
        n, nl = _name(name)
        cfg = json.dumps((config or ChannelConfig())._json()).encode()
        evicted = _out_u64()
        check(lib.net_mesh_register_channel(self._handle(), n, nl, cfg, len(cfg), evicted))
        return int(evicted[0])

    def deregister_channel(self, name: str) -> int:
        """Removes the channel ``name``; returns the subscribers evicted."""
        n, nl = _name(name)
        evicted = _out_u64()
        check(lib.net_mesh_deregister_channel(self._handle(), n, nl, evicted))
        return int(evicted[0])

    def install_channel_token(self, token: BytesLike) -> None:
        """Keeps a 159-byte token (typically a delegation parent that
        subscribers' tokens chain through) for authorization checks."""
        t, tl = buf(token, "token")
        check(lib.net_mesh_install_channel_token(self._handle(), t, tl))

    def _membership_call(self, publisher: int, name: str, token: Optional[BytesLike], subscribe: bool) -> Any:
        handle = self._handle()
        peer = _u64(publisher, "publisher")
        n, nl = _name(name)
        t, tl = (ffi.NULL, 0) if token is None else buf(token, "token")

        def call(cancel_token: Any, _keep: Any = (n, t)) -> None:
            err = error_slot()
            if subscribe:
                status = lib.net_mesh_subscribe(handle, peer, n, nl, t, tl, cancel_token, err)
            else:
                status = lib.net_mesh_unsubscribe(handle, peer, n, nl, cancel_token, err)
            check_call(status, err)

        return call

    def subscribe(
        self,
        publisher: int,
        name: str,
        token: Optional[BytesLike] = None,
        *,
        cancel: Optional[Cancel] = None,
    ) -> None:
        """Subscribes to ``name`` at ``publisher`` (a direct or relayed
        peer), presenting ``token`` if given, and waits for the answer. The
        channel's events then arrive with ``MeshEvent.channel`` set.
        Refusals: ChannelUnauthorizedError, ChannelUnknownError,
        ChannelRateLimitedError, ChannelFullError; also
        ChannelHashCollisionError, MeshUnknownPeerError, CancelledError,
        ShuttingDownError."""
        call_blocking(self._membership_call(publisher, name, token, True), cancel)

    async def subscribe_async(
        self,
        publisher: int,
        name: str,
        token: Optional[BytesLike] = None,
        *,
        cancel: Optional[Cancel] = None,
    ) -> None:
        """:meth:`subscribe` for asyncio."""
        await call_async(self._membership_call(publisher, name, token, True), cancel)

    def unsubscribe(self, publisher: int, name: str, *, cancel: Optional[Cancel] = None) -> None:
        """Ends the subscription to ``name`` at ``publisher`` and waits for
        the answer; its events stop arriving."""
        call_blocking(self._membership_call(publisher, name, None, False), cancel)

    async def unsubscribe_async(self, publisher: int, name: str, *, cancel: Optional[Cancel] = None) -> None:
        """:meth:`unsubscribe` for asyncio."""
        await call_async(self._membership_call(publisher, name, None, False), cancel)

    def publish(self, name: str, events: Iterable[BytesLike], *, reliable: bool = False) -> "PublishReport":
        """Publishes ``events`` on this node's registered channel ``name`` to
        every authorized subscriber; never waits. ChannelUnknownError,
        ChannelUnauthorizedError, ChannelRateLimitedError,
        MeshTooLargeError."""
        n, nl = _name(name)
        slices, count, _keep = slice_array(list(events), "events")
        out = new_bytes()
        check(lib.net_mesh_publish(self._handle(), n, nl, slices, count, bool(reliable), out))
        return PublishReport._from_json(json.loads(take_bytes(out)))

    def channels(self) -> Dict[str, Any]:
        """``channels`` registered here (name, hash, subscribers, …),
        ``subscriptions`` held (publisher, channel), ``counters`` and
        ``subnet`` (this node's subnet, "global" or dotted levels)."""
        out = new_bytes()
        check(lib.net_mesh_channels(self._handle(), out))
        result: Dict[str, Any] = json.loads(take_bytes(out))
        return result

    def announce(self, capabilities: Union[Capabilities, Dict[str, Any]]) -> None:
        """Announces this node's capabilities: a :class:`Capabilities`, or a
        WIRE.md §10.4 set as a dict (``hardware``, ``software``, ``models``,
        ``tools``, ``tags``, ``limits``; omitted members take their
        defaults). MeshCapabilitiesError naming a bad key or enumeration
        name."""
        data = json.dumps(capabilities_json(capabilities)).encode()
        check(lib.net_mesh_announce(self._handle(), data, len(data)))

    def _query(self, fn: Any, query: Dict[str, Any]) -> Any:
        data = json.dumps(query).encode()
        out = new_bytes()
        check(fn(self._handle(), data, len(data), out))
        return json.loads(take_bytes(out))

    def find_nodes(self, filter: Optional["CapabilityFilter"] = None, *, scope: str = "any") -> List[int]:
        """The indexed nodes (this one once it announced) matching
        ``filter`` within ``scope``, in ascending id order."""
        query = {"filter": (filter or CapabilityFilter())._json(), "scope": scope}
        return [int(n) for n in self._query(lib.net_mesh_find_nodes, query)["nodes"]]

    def find_best_node(
        self,
        filter: Optional["CapabilityFilter"] = None,
        *,
        scope: str = "any",
        weights: Optional[Dict[str, float]] = None,
    ) -> Optional[Tuple[int, float]]:
        """(node_id, score) of the best-scoring match (``weights``: memory,
        vram, speed, loaded, each 0..1), or None."""
        query: Dict[str, Any] = {"filter": (filter or CapabilityFilter())._json(), "scope": scope}
        if weights:
            query["weights"] = weights
        best = self._query(lib.net_mesh_find_best_node, query)
        if best["node_id"] is None:
            return None
        return int(best["node_id"]), float(best["score"])

    def capabilities(self) -> List[IndexedNode]:
        """Every live indexed node (this one once it announced), its
        announcement's version, times, hop count, reflexive address and
        typed :class:`Capabilities`."""
        out = new_bytes()
        check(lib.net_mesh_capabilities(self._handle(), out))
        return [IndexedNode._from_json(n) for n in json.loads(take_bytes(out))["nodes"]]

    def close(self) -> None:
        """Shuts the node down and frees it (idempotent, thread-safe): every
        call blocked on it or its streams returns first. BusyError if calls
        were still running after 5 s."""
        super().close()

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<Mesh closed>"
        try:
            return f"<Mesh node_id={self.node_id:#018x} {self.local_addr}>"
        except ShuttingDownError:
            return "<Mesh shut down>"


def _name(name: str) -> Tuple[bytes, int]:
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    data = name.encode()
    return data, len(data)


@dataclasses.dataclass
class CapabilityFilter:
    """Constraints on announced capabilities (a query's filter, or a
    channel's publish / subscribe filter); empty fields constrain nothing.
    ``require_tags`` must all be present, ``require_models`` /
    ``require_tools`` any one; ``min_vram_mb`` counts every GPU, but
    ``require_gpu`` and ``gpu_vendor`` only the primary one;
    ``min_context_length`` and ``require_modalities`` look at the models.
    ``gpu_vendor`` and ``require_modalities`` take :class:`GpuVendor` /
    :class:`Modality` members or their names (any case)."""

    require_tags: List[str] = dataclasses.field(default_factory=list)
    require_models: List[str] = dataclasses.field(default_factory=list)
    require_tools: List[str] = dataclasses.field(default_factory=list)
    min_memory_mb: Optional[int] = None
    require_gpu: bool = False
    gpu_vendor: Optional[Union[GpuVendor, str]] = None
    min_vram_mb: Optional[int] = None
    min_context_length: Optional[int] = None
    require_modalities: List[Union[Modality, str]] = dataclasses.field(default_factory=list)

    def _json(self) -> Dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, [], False)}
        if self.gpu_vendor is not None:
            out["gpu_vendor"] = GpuVendor.parse(self.gpu_vendor).value
        if self.require_modalities:
            out["require_modalities"] = [Modality.parse(m).value for m in self.require_modalities]
        return out


@dataclasses.dataclass
class ChannelConfig:
    """A channel's policy; the default is an open, global channel.
    ``trusted_issuers``: entity ids (32 bytes) that may root a token chain
    besides this node, or "any" (v0.11's rule). ``export_to``: the subnets
    ("3.8") whose peers, and those of the subnets below them, may see an
    "exported" channel (none without it)."""

    visibility: str = "global"
    publish_caps: Optional[CapabilityFilter] = None
    subscribe_caps: Optional[CapabilityFilter] = None
    require_token: bool = False
    trusted_issuers: Any = dataclasses.field(default_factory=list)
    max_subscribers: Optional[int] = None
    max_rate_pps: Optional[int] = None
    reliable: bool = False
    priority: int = 0
    export_to: List[str] = dataclasses.field(default_factory=list)

    def _json(self) -> Dict[str, Any]:
        issuers = self.trusted_issuers
        return {
            "visibility": self.visibility,
            "publish_caps": self.publish_caps._json() if self.publish_caps else None,
            "subscribe_caps": self.subscribe_caps._json() if self.subscribe_caps else None,
            "require_token": self.require_token,
            "trusted_issuers": issuers if isinstance(issuers, str) else [bytes(i).hex() for i in issuers],
            "max_subscribers": self.max_subscribers,
            "max_rate_pps": self.max_rate_pps,
            "reliable": self.reliable,
            "priority": self.priority,
            "export_to": list(self.export_to),
        }


class PublishFailure(NamedTuple):
    """A subscriber a publish could not send to: its node_id, the status
    name (e.g. "NET_ERR_MESH_BACKPRESSURE"), code and message."""

    peer: int
    status: str
    code: int
    message: str


@dataclasses.dataclass(frozen=True)
class PublishReport:
    """What a publish did: subscribers it was for (``attempted``), whose
    packets were queued (``delivered``), dropped by the publish-time
    re-check (``evicted``), and the per-subscriber ``errors``."""

    attempted: int
    delivered: int
    evicted: int
    errors: Tuple[PublishFailure, ...]

    @classmethod
    def _from_json(cls, j: Dict[str, Any]) -> "PublishReport":
        errors = tuple(PublishFailure(int(e["peer"]), e["status"], int(e["code"]), e["message"]) for e in j["errors"])
        return cls(int(j["attempted"]), int(j["delivered"]), int(j["evicted"]), errors)


def _unpack(data: bytes, count: int) -> List[MeshEvent]:
    events = []
    pos = 0
    for _ in range(count):
        if pos + _RECORD.size > len(data):
            raise error_for_status(lib.NET_ERR_INTERNAL, "recv_batch: truncated record")
        peer, stream_id, dropped_before, n, c = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        channel = data[pos : pos + c].decode()
        pos += c
        events.append(MeshEvent(peer, stream_id, data[pos : pos + n], dropped_before, channel))
        pos += n
    return events


class MeshStream(_Handle):
    """One stream to one peer (``net_mesh_stream_t``); closing it closes the
    stream (a blocked ``send_blocking`` raises MeshStreamClosedError)."""

    __slots__ = ("_mesh", "_peer", "_stream_id")
    _kind = "MeshStream"
    _free = staticmethod(lib.net_mesh_stream_free)

    def __init__(self, _handle: Any, mesh: Mesh, peer: int, stream_id: int) -> None:
        """Internal: use :meth:`Mesh.open_stream`."""
        if _handle is None or _handle == ffi.NULL:
            raise TypeError("use Mesh.open_stream()")
        super().__init__(_handle)
        self._mesh = mesh
        self._peer = peer
        self._stream_id = stream_id

    @property
    def peer(self) -> int:
        return self._peer

    @property
    def stream_id(self) -> int:
        return self._stream_id

    def info(self) -> Tuple[int, int]:
        """(peer node_id, stream_id), asked of libnet: raises
        ShuttingDownError once the stream (or its node) is closed."""
        peer = _out_u64()
        stream_id = _out_u64()
        check(lib.net_mesh_stream_info(self._handle(), peer, stream_id))
        return int(peer[0]), int(stream_id[0])

    def send(self, *events: BytesLike) -> None:
        """Sends the events now, or none of them (MeshBackpressureError when
        the window cannot take them all)."""
        if len(events) == 1 and isinstance(events[0], (list, tuple)):
            events = tuple(events[0])
        slices, n, _keep = slice_array(list(events), "events")
        check(lib.net_mesh_stream_send(self._handle(), slices, n))

    def _send_call(self, events: Iterable[BytesLike], timeout: Optional[Seconds]) -> Any:
        handle = self._handle()
        slices, n, keep = slice_array(list(events), "events")
        ms = timeout_ms(timeout)

        def call(token: Any, _views: Any = keep) -> bool:  # _views: alive until the call returns
            err = error_slot()
            status = lib.net_mesh_stream_send_blocking(handle, slices, n, ms, token, err)
            if status == lib.NET_TIMEOUT:
                return False
            check_call(status, err)
            return True

        return call

    def send_blocking(
        self,
        events: Iterable[BytesLike],
        timeout: Optional[Seconds] = None,
        *,
        cancel: Optional[Cancel] = None,
    ) -> bool:
        """Sends the events, waiting for credit; False when ``timeout``
        passed first (the packets before that one were sent).
        MeshStreamClosedError when the stream is closed meanwhile,
        ShuttingDownError when its node is, CancelledError (the packets
        before the one it waited for were sent)."""
        return call_blocking(self._send_call(events, timeout), cancel)  # type: ignore[no-any-return]

    async def send_blocking_async(
        self,
        events: Iterable[BytesLike],
        timeout: Optional[Seconds] = None,
        *,
        cancel: Optional[Cancel] = None,
    ) -> bool:
        """:meth:`send_blocking` for asyncio."""
        return await call_async(self._send_call(events, timeout), cancel)

    def close(self) -> None:
        """Closes the stream and frees it; a ``send_blocking`` blocked on it
        raises MeshStreamClosedError first. BusyError if calls were still
        running after 5 s."""
        super().close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<MeshStream peer={self._peer:#018x} stream={self._stream_id}{state}>"


def genesis_link(origin: int) -> bytes:
    """The first causal link of chain ``origin`` (its event has no payload)."""
    return struct.pack("<QQQQ", _u64(origin, "origin"), 0, 0, 0)


def next_causal_link(prev: BytesLike, prev_payload: BytesLike = b"", horizon: int = 0) -> bytes:
    """The causal link that follows ``prev`` (32 bytes) whose event carried
    ``prev_payload``: the same origin, ``horizon``, the next sequence and
    the parent hash xxh3_64(prev ‖ prev_payload)."""
    link, n = buf(prev, "prev")
    payload, m = buf(prev_payload, "prev_payload")
    return call_bytes(lib.net_causal_next_link, link, n, payload, m, _u64(horizon, "horizon"))


def causal_frame(link: BytesLike, payload: BytesLike = b"") -> bytes:
    """One event of a causal stream: the 32-byte ``link`` and ``payload``
    framed as u32 LE (32 + len(payload)) ‖ link ‖ payload (frames may be
    concatenated into one event)."""
    link = bytes(link)
    payload = bytes(payload)
    if len(link) != 32:
        raise ValueError(f"a causal link is 32 bytes, got {len(link)}")
    return struct.pack("<I", 32 + len(payload)) + link + payload
