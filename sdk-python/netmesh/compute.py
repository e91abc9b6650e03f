"""Compute: stateful daemons written in Python that migrate between nodes.

::

    from netmesh import Compute, Daemon, Mesh

    class Counter(Daemon):
        def __init__(self) -> None:
            self.count = 0
        def process(self, event):                 # DaemonEvent
            self.count += 1
            return [self.count.to_bytes(8, "little")]
        def snapshot(self) -> bytes:
            return self.count.to_bytes(8, "little")
        def restore(self, state: bytes) -> None:
            self.count = int.from_bytes(state, "little")

    with Compute(mesh_a) as a, Compute(mesh_b) as b:
        a.register("counter", Counter); b.register("counter", Counter)
        origin = a.spawn("counter", seed)          # runs on node A
        b.expect("counter", seed)                   # may arrive on node B
        a.deliver(origin, producer, 1, b"event")
        a.start_migration(origin, mesh_a.node_id, mesh_b.node_id)
        a.wait_migration(origin, timeout=10)        # MigrationStatus

A :class:`Compute` is a node's compute runtime (``net_compute_t``). libnet
never calls into Python: every call it makes on a daemon (process an event,
snapshot, restore, build an object for an arriving migration, drop one)
is a work item that the runtime's own thread pulls with ``net_compute_next``
and answers by calling the daemon object. Daemon methods therefore run on
that thread; a method that raises fails the call (the event is not applied,
the migration step aborts). A method that does not answer within
``work_timeout`` fails it too. One exception: a batch that
:meth:`Compute.deliver_batch` hands to a daemon of this Compute that is free
is lent to the delivering thread (``net_compute_lend_batch``), which calls
``process`` itself — no thread hand-offs. A daemon's methods never run two
at a time; different daemons' methods may then run on different threads.

:meth:`Compute.deliver` waits for the daemon: never call it from a daemon
method.
"""

from __future__ import annotations

import array
import dataclasses
import enum
import json
import operator
import struct
import threading
from itertools import repeat
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from ._ffi import (
    U32, BytesLike, buf, check, check_call, error_slot, ffi, lib, new_bytes, pack_bytes, slice_array, take_bytes,
    timeout_ms,
)
from ._handle import _Handle
from .mesh import Mesh, _name, _u64
from ._neterror import NetError
from .cancel import Cancel, call_blocking
from .redex import Seconds

__all__ = [
    "Compute",
    "ComputeGroup",
    "Daemon",
    "DaemonEvent",
    "DaemonOutput",
    "Delivery",
    "MigrationStatus",
    "Routed",
]


class DaemonEvent(NamedTuple):
    """An event a daemon processes: its producer (origin hash), its
    sequence in the producer's chain, the bytes, and the daemon's own
    origin hash."""

    producer: int
    sequence: int
    payload: bytes
    daemon: int


class DaemonOutput(NamedTuple):
    """An output a daemon emitted: the daemon's origin hash, the output's
    sequence in the daemon's causal chain, the bytes."""

    daemon: int
    sequence: int
    payload: bytes


class Delivery(enum.IntEnum):
    """What :meth:`Compute.deliver` did with an event."""

    #: Processed here; the outputs are queued for :meth:`Compute.next_output`.
    PROCESSED = lib.NET_COMPUTE_PROCESSED
    #: Kept for the migration in progress; applied once, wherever the daemon ends up.
    BUFFERED = lib.NET_COMPUTE_BUFFERED
    #: The daemon moved; forwarded to its new node.
    FORWARDED = lib.NET_COMPUTE_FORWARDED
    #: Already applied; dropped.
    DUPLICATE = lib.NET_COMPUTE_DUPLICATE


@dataclasses.dataclass(frozen=True)
class MigrationStatus:
    """Where a migration orchestrated by this node stands: ``state`` is
    ``"running"``, ``"completed"`` or ``"failed"``; ``phase`` one of
    ``snapshot``, ``transfer``, ``restore``, ``replay``, ``cutover``,
    ``complete`` (None once failed); a failure has the v0.11 ``code`` and a
    ``reason`` ("factory-not-found", "state-failed: ...", ...)."""

    state: str
    phase: Optional[str] = None
    code: Optional[int] = None
    reason: Optional[str] = None

    @property
    def done(self) -> bool:
        """Whether the migration has finished (completed or failed)."""
        return self.state != "running"

    @classmethod
    def _from_json(cls, raw: bytes) -> "MigrationStatus":
        j = json.loads(raw)
        return cls(state=j["state"], phase=j.get("phase"), code=j.get("code"), reason=j.get("reason"))


class Daemon:
    """A daemon: subclass it and override :meth:`process` (and, for a
    stateful daemon, :meth:`snapshot` and :meth:`restore`). Its methods run
    on the runtime's work thread, one at a time."""

    def process(self, event: DaemonEvent) -> Iterable[BytesLike]:
        """Applies one event; returns its outputs (zero or more). Raise to
        refuse it (it is then not applied: leave the state unchanged)."""
        raise NotImplementedError

    def snapshot(self) -> bytes:
        """The daemon's state as bytes (empty for a stateless daemon)."""
        return b""

    def restore(self, state: bytes) -> None:
        """Replaces the state with ``state`` (from :meth:`snapshot`)."""
        if state:
            raise ValueError(f"{type(self).__name__} is stateless but got {len(state)} bytes of state")


_DURATIONS = {
    "retry_interval": "retry_interval_ms",
    "step_timeout": "step_timeout_ms",
    "source_timeout": "source_timeout_ms",
    "work_timeout": "work_timeout_ms",
}
_PLAIN = {"send_extension", "output_capacity", "transfer_rate"}


def _config_json(options: Dict[str, Any]) -> bytes:
    out: Dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name in _DURATIONS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be seconds, not {type(value).__name__}")
            out[_DURATIONS[name]] = max(1, round(value * 1000))
        elif name in _PLAIN:
            out[name] = value
        else:
            from .errors import ComputeConfigError

            known = ", ".join(sorted([*_DURATIONS, *_PLAIN]))
            raise ComputeConfigError(lib.NET_ERR_COMPUTE_CONFIG, f"unknown option {name!r} (known: {known})")
    return json.dumps(out).encode() if out else b""


def _seed(seed: BytesLike) -> Any:
    data, n = buf(seed, "seed")
    if n != 32:
        raise ValueError(f"seed must be 32 bytes, got {n}")
    return data


class Compute(_Handle):
    """A node's compute runtime (``net_compute_t``), installed as the
    mesh node's migration handler (one per node).

    Keyword options, all optional: ``retry_interval`` (seconds, 0.2: how
    often an unanswered migration message is re-sent), ``step_timeout``
    (10: a phase before cut-over that takes longer aborts), ``source_timeout``
    (30), ``work_timeout`` (30: how long a daemon call waits for a daemon
    method), ``send_extension`` (True: to Net targets only, never to a v0.11
    one; False: never),
    ``output_capacity`` (65 536 outputs queued for :meth:`next_output`),
    ``transfer_rate`` (bytes per second at which snapshot chunks leave for
    another node; 268 435 456; 0: unpaced).

    A thread of the runtime pulls work and runs the daemon objects; it
    ends when the runtime is closed.
    """

    __slots__ = ("_daemons", "_worker")
    _kind = "Compute"
    _free = staticmethod(lib.net_compute_free)

    def __init__(self, mesh: Mesh, **options: Any) -> None:
        self._lock = threading.Lock()
        self._ptr = None
        # Shared with the work thread, which holds it and the raw handle but
        # not the Compute: a Compute dropped without close() is collected,
        # and the free its finalizer hands over ends the thread.
        self._daemons = _Daemons()
        raw = _config_json(options)
        out = ffi.new("net_compute_t **")
        check(lib.net_compute_new(mesh._handle(), raw if raw else ffi.NULL, len(raw), out))
        self._ptr = out[0]
        self._worker = threading.Thread(
            target=_serve, args=(out[0], self._daemons), name="netmesh-compute", daemon=True)
        self._worker.start()

    # -- daemons -----------------------------------------------------------------

    def register(self, kind: str, factory: Callable[[], Daemon], *, stateful: bool = True) -> None:
        """Registers daemon kind ``kind``: ``factory()`` builds a fresh
        daemon object (for :meth:`spawn` and for a daemon arriving by
        migration). ComputeAlreadyRegisteredError if the kind exists."""
        raw = kind.encode()
        check(lib.net_compute_register_kind(self._handle(), raw, len(raw), stateful))
        self._daemons.factories[kind] = factory

    def spawn(self, kind: str, seed: BytesLike, daemon: Optional[Daemon] = None) -> int:
        """Runs a daemon of ``kind`` here under the identity of ``seed``
        (32 bytes): ``daemon``, or a new one from the kind's factory.
        Returns its origin hash, which names it everywhere."""
        handle = self._handle()
        daemons = self._daemons
        if kind not in daemons.factories:
            from .errors import ComputeUnknownKindError

            raise ComputeUnknownKindError(lib.NET_ERR_COMPUTE_UNKNOWN_KIND, f"no daemon kind {kind!r} is registered")
        key = _seed(seed)
        instance = daemons.keep(daemon if daemon is not None else daemons.factories[kind]())
        raw = kind.encode()
        out = ffi.new("uint64_t *")
        status = lib.net_compute_spawn(handle, raw, len(raw), key, 32, instance, out)
        if status != lib.NET_OK:
            daemons.drop(instance)
            check(status)
        daemons.note_origin(int(out[0]), instance)
        return int(out[0])

    def expect(self, kind: str, seed: BytesLike) -> int:
        """Lets the daemon of ``kind`` with the identity of ``seed`` arrive
        here by migration (its object is built by the kind's factory when
        it comes). Returns its origin hash. ComputeAlreadyRegisteredError if
        it is already expected here."""
        raw = kind.encode()
        out = ffi.new("uint64_t *")
        check(lib.net_compute_expect(self._handle(), raw, len(raw), _seed(seed), 32, out))
        return int(out[0])

    def expect_origin(self, kind: str, origin: int) -> None:
        """Lets daemon ``origin`` of ``kind`` arrive here by migration
        without its seed: its identity travels with it, sealed to this node
        (see ``start_migration``'s ``transport_identity``). A snapshot that
        comes without one is refused (the migration fails with
        ``identity-transport-failed``). ComputeAlreadyRegisteredError if it
        is already expected here."""
        raw = kind.encode()
        check(lib.net_compute_expect_origin(self._handle(), raw, len(raw), _u64(origin, "origin")))

    def stop(self, origin: int) -> None:
        """Stops daemon ``origin`` here (ComputeNotFoundError if it does
        not run here)."""
        check(lib.net_compute_stop(self._handle(), _u64(origin, "origin")))

    def subscribe_channel(
        self,
        origin: int,
        publisher: int,
        channel: str,
        token: Optional[BytesLike] = None,
        *,
        cancel: Optional[Cancel] = None,
    ) -> None:
        """Subscribes daemon ``origin`` (running here) to ``channel`` at
        ``publisher``, presenting ``token`` if given, and waits for the
        answer. The subscription is the node's, recorded with the daemon:
        when it migrates, its new node subscribes before the daemon is
        restored there and the old node lets go at cut-over. Daemons of one
        node share its subscription, which ends when the last lets go
        (:meth:`unsubscribe_channel`, :meth:`stop`). The channel's events
        arrive through this node's :meth:`Mesh.recv`; deliver them to the
        daemon. ``stats(origin)["channels"]`` lists a daemon's channels.
        Raises ComputeNotFoundError, or what :meth:`Mesh.subscribe` raises."""
        handle = self._handle()
        target, peer = _u64(origin, "origin"), _u64(publisher, "publisher")
        n, nl = _name(channel)
        t, tl = (ffi.NULL, 0) if token is None else buf(token, "token")

        def call(cancel_token: Any, _keep: Any = (n, t)) -> None:
            err = error_slot()
            check_call(lib.net_compute_subscribe_channel(handle, target, peer, n, nl, t, tl, cancel_token, err), err)

        call_blocking(call, cancel)

    def unsubscribe_channel(
        self, origin: int, publisher: int, channel: str, *, cancel: Optional[Cancel] = None
    ) -> None:
        """Ends daemon ``origin``'s subscription to ``channel`` at
        ``publisher``; the node unsubscribes (waiting for the answer) once
        no daemon here holds the channel. Raises ComputeNotFoundError, or
        what :meth:`Mesh.unsubscribe` raises."""
        handle = self._handle()
        target, peer = _u64(origin, "origin"), _u64(publisher, "publisher")
        n, nl = _name(channel)

        def call(cancel_token: Any, _keep: Any = n) -> None:
            err = error_slot()
            check_call(lib.net_compute_unsubscribe_channel(handle, target, peer, n, nl, cancel_token, err), err)

        call_blocking(call, cancel)

    def daemon(self, origin: int) -> Optional[Daemon]:
        """The object of daemon ``origin`` if it runs here, else None."""
        if not any(entry["origin"] == origin for entry in self.daemons()):
            return None
        return self._daemons.running(origin)

    def daemons(self) -> List[Dict[str, Any]]:
        """The daemons running here: ``[{"origin", "name"}]``."""
        out = new_bytes()
        check(lib.net_compute_daemons(self._handle(), out))
        result: List[Dict[str, Any]] = json.loads(take_bytes(out))
        return result

    def stats(self, origin: int) -> Dict[str, Any]:
        """Daemon ``origin``'s counters: ``name``, ``events_processed``,
        ``events_emitted``, ``errors`` (since it started or arrived here),
        ``head_sequence`` (its causal chain's last output) and ``channels``
        (its channel subscriptions: ``publisher``, ``channel``)."""
        out = new_bytes()
        check(lib.net_compute_stats(self._handle(), _u64(origin, "origin"), out))
        result: Dict[str, Any] = json.loads(take_bytes(out))
        return result

    def wait_processed(
        self, origin: int, count: int, timeout: Seconds = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[Dict[str, Any]]:
        """Waits until daemon ``origin`` runs here having processed at
        least ``count`` events (it may still be on its way here by
        migration) and returns its :meth:`stats`; None if ``timeout``
        seconds pass first. The count is checked after every delivery here:
        nothing polls. ``cancel`` ends the wait (CancelledError)."""
        handle = self._handle()
        target = _u64(origin, "origin")
        wanted = _u64(count, "count")
        ms = timeout_ms(timeout)
        out = new_bytes()

        def call(token: Any) -> int:
            err = error_slot()
            status = int(lib.net_compute_wait_processed(handle, target, wanted, ms, out, token, err))
            check_call(status, err)
            return status

        if call_blocking(call, cancel) != lib.NET_OK:
            return None
        result: Dict[str, Any] = json.loads(take_bytes(out))
        return result

    def deliver(self, origin: int, producer: int, sequence: int, payload: BytesLike) -> Delivery:
        """Delivers an event to daemon ``origin`` wherever it is (a
        producer's sequences start at 1 and are contiguous per daemon) and
        waits until it is processed, buffered or forwarded. Raises
        ComputeDaemonError if the daemon refused it or did not answer."""
        data, n = buf(payload, "payload")
        outcome = ffi.new("uint32_t *")
        err = error_slot()
        status = lib.net_compute_deliver(
            self._handle(), _u64(origin, "origin"), _u64(producer, "producer"), _u64(sequence, "sequence"),
            data, n, outcome, err,
        )
        check_call(status, err)
        return Delivery(int(outcome[0]))

    def deliver_batch(
        self,
        origin: int,
        producer: int,
        first_sequence: int,
        payloads: Sequence[BytesLike],
        timeout: Seconds = None,
        *,
        cancel: Optional[Cancel] = None,
    ) -> Optional[List[Delivery]]:
        """Delivers ``payloads`` from ``producer`` at sequences
        ``first_sequence``, ``first_sequence + 1``, … to daemon ``origin``
        in order, as one call and — for the events processed here — one
        work item, which the work thread applies with one ``process`` call
        per event. Returns each event's Delivery; None (nothing delivered)
        if the daemon did not take the batch up within ``timeout`` seconds
        (None: no limit); ``cancel`` gives up likewise (CancelledError).
        Once taken up, the call waits for the daemon. If an event fails the
        error is raised with ``delivered`` (how many events before it were
        delivered) and ``outcomes`` (their Deliveries) set; the events after
        it were not delivered.

        Without ``cancel``, a batch for a daemon of this Compute that is
        free is lent to the calling thread instead: ``process`` runs here,
        with no thread hand-off (``timeout`` does not matter to it: there is
        nothing to wait for)."""
        handle = self._handle()
        target = _u64(origin, "origin")
        source = _u64(producer, "producer")
        first = _u64(first_sequence, "first_sequence")
        parts = payloads if isinstance(payloads, (list, tuple)) else list(payloads)
        if cancel is None:
            done = _lent_batch(handle, self._daemons, target, source, first, parts)
            if done is not None:
                return done
        data, lengths, count = _pack(parts)
        raw = ffi.new("uint32_t[]", max(count, 1))
        delivered = ffi.new("size_t *")
        ms = timeout_ms(timeout)

        def outcomes() -> List[Delivery]:
            n = min(int(delivered[0]), count)
            if ffi.buffer(raw, 4 * n)[:] == _ALL_PROCESSED * n:  # the usual answer
                return [Delivery.PROCESSED] * n
            return list(map(_DELIVERIES.__getitem__, ffi.unpack(raw, n)))

        def call(token: Any) -> int:
            err = error_slot()
            status = int(lib.net_compute_deliver_batch(
                handle, target, source, first, data, len(data), lengths, count, ms, raw, delivered, token, err,
            ))
            try:
                check_call(status, err)
            except NetError as e:
                done = outcomes()
                setattr(e, "delivered", len(done))
                setattr(e, "outcomes", done)
                raise
            return status

        # Without a token it runs on this thread, as deliver() does (a
        # taken batch is bounded by work_timeout); with one, so that a
        # signal handler on the main thread can cancel it.
        status = call(ffi.NULL) if cancel is None else call_blocking(call, cancel)
        if status != lib.NET_OK:
            return None
        return outcomes()

    def next_output(self, timeout: Seconds = None, *, cancel: Optional[Cancel] = None) -> Optional[DaemonOutput]:
        """The next output of any daemon here, waiting up to ``timeout``
        seconds (None: no limit); None on timeout or once closed.
        ``cancel`` ends the wait (CancelledError)."""
        handle = self._handle()
        ms = timeout_ms(timeout)
        origin = ffi.new("uint64_t *")
        seq = ffi.new("uint64_t *")
        out = new_bytes()

        def call(token: Any) -> int:
            err = error_slot()
            status = int(lib.net_compute_next_output(handle, ms, origin, seq, out, token, err))
            check_call(status, err)
            return status

        if call_blocking(call, cancel) != lib.NET_OK:
            return None
        return DaemonOutput(int(origin[0]), int(seq[0]), take_bytes(out))

    # -- migration ---------------------------------------------------------------

    def place_migration(self, origin: int) -> int:
        """Chooses where daemon ``origin``, running on this node, may
        migrate: of the nodes this node's capability index holds that
        announce ``subprotocol:0x0500`` (every node with a ``Compute``
        stamps it, and its number of daemons as ``compute:load=N``, on what
        it announces with :meth:`Mesh.announce`) and match the daemon's
        requirements, the least loaded (ties: the lower node id).
        ComputeNoTargetError when no node qualifies; ComputeNotFoundError
        when the daemon does not run here. Start the move with
        ``start_migration(origin, <this node>, target)``."""
        target = ffi.new("uint64_t *")
        check(lib.net_compute_place_migration(self._handle(), _u64(origin, "origin"), target))
        return int(target[0])

    def start_migration(self, origin: int, source: int, target: int, *,
                        transport_identity: bool | None = None) -> None:
        """Starts moving daemon ``origin`` from node ``source`` to node
        ``target``, orchestrated by this node (either of them, or a third
        node connected to both).

        ``transport_identity`` (default True): when this node is the
        source, the daemon's seed is sealed to the target's static key and
        travels with it, so the target needs only ``expect_origin``; the
        start fails with ComputeIdentityTransportError when the target's
        key is not known here. False: the target must know the seed
        (``expect``)."""
        ids = (_u64(origin, "origin"), _u64(source, "source"), _u64(target, "target"))
        if transport_identity is None:
            check(lib.net_compute_start_migration(self._handle(), *ids))
            return
        options = json.dumps({"transport_identity": bool(transport_identity)}).encode()
        check(lib.net_compute_start_migration_opts(self._handle(), *ids, options, len(options)))

    def migration_status(self, origin: int) -> MigrationStatus:
        """The migration of ``origin`` orchestrated here (the last one, once
        finished). ComputeNoMigrationError if there is none."""
        out = new_bytes()
        check(lib.net_compute_migration_status(self._handle(), _u64(origin, "origin"), out))
        return MigrationStatus._from_json(take_bytes(out))

    def wait_migration(
        self, origin: int, timeout: Seconds = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[MigrationStatus]:
        """Waits until the migration of ``origin`` orchestrated here has
        completed or failed (None if ``timeout`` seconds pass first).
        ``cancel`` ends the wait (CancelledError)."""
        handle = self._handle()
        target = _u64(origin, "origin")
        ms = timeout_ms(timeout)
        out = new_bytes()

        def call(token: Any) -> int:
            err = error_slot()
            status = int(lib.net_compute_wait_migration(handle, target, ms, out, token, err))
            check_call(status, err)
            return status

        if call_blocking(call, cancel) != lib.NET_OK:
            return None
        return MigrationStatus._from_json(take_bytes(out))

    # -- the work loop -------------------------------------------------------------

    def close(self) -> None:
        """Closes the runtime: the work thread ends, calls blocked in it
        return, its daemons stop here. Idempotent."""
        super().close()
        worker = self._worker
        if worker is not threading.current_thread():
            worker.join()

    def __repr__(self) -> str:
        return f"<Compute {'closed' if self.closed else 'open'}>"


class Routed(NamedTuple):
    """Where :meth:`ComputeGroup.route` delivered an event: the member's
    index, origin hash and node, and what its runtime did."""

    index: int
    origin: int
    node: int
    outcome: Delivery


def _runtimes(nodes: Sequence[Compute]) -> Any:
    if not nodes:
        raise ValueError("a group needs at least one node")
    return ffi.new("const net_compute_t *[]", [rt._handle() for rt in nodes])


def _lb_json(lb: Optional[Dict[str, Any]]) -> bytes:
    return json.dumps(lb).encode() if lb else b""


class ComputeGroup(_Handle):
    """A replica, fork or standby group (``net_compute_group_t``) of
    daemons of one registered kind, placed on distinct nodes among the
    :class:`Compute` runtimes it is made over (runtimes of this process:
    groups spanning processes are not there yet). Each member is an
    object built by its node's kind factory, called on that node's work
    thread. Build one with :meth:`replica`, :meth:`fork` or
    :meth:`standby`; close it to stop its members.

    Group calls wait for the members' daemon methods: never make them from
    a daemon method."""

    __slots__ = ()
    _kind = "ComputeGroup"
    _free = staticmethod(lib.net_compute_group_free)

    @classmethod
    def replica(
        cls, nodes: Sequence[Compute], kind: str, seed: BytesLike, count: int, *, lb: Optional[Dict[str, Any]] = None
    ) -> "ComputeGroup":
        """``count`` identical daemons of ``kind`` (identities from the
        32-byte ``seed``), one per node, sharing routed events through a
        load balancer (``lb``: its configuration, e.g. ``{"strategy":
        "round_robin"}``)."""
        raw, cfg = kind.encode(), _lb_json(lb)
        out = ffi.new("net_compute_group_t **")
        runtimes = _runtimes(nodes)
        check(lib.net_compute_group_replica(
            runtimes, len(nodes), raw, len(raw), _seed(seed), 32, _u32(count), cfg if cfg else ffi.NULL, len(cfg), out))
        return cls(out[0])

    @classmethod
    def fork(
        cls, nodes: Sequence[Compute], kind: str, parent_node: int, parent_origin: int, count: int, *,
        lb: Optional[Dict[str, Any]] = None,
    ) -> "ComputeGroup":
        """``count`` forks of daemon ``parent_origin`` (running on node
        ``parent_node``), each started from its state with a new identity
        and a ForkRecord (see :meth:`status`), one per node."""
        raw, cfg = kind.encode(), _lb_json(lb)
        out = ffi.new("net_compute_group_t **")
        runtimes = _runtimes(nodes)
        check(lib.net_compute_group_fork(
            runtimes, len(nodes), raw, len(raw), _u64(parent_node, "parent_node"), _u64(parent_origin, "parent_origin"),
            _u32(count), cfg if cfg else ffi.NULL, len(cfg), out))
        return cls(out[0])

    @classmethod
    def standby(cls, nodes: Sequence[Compute], kind: str, seed: BytesLike, count: int) -> "ComputeGroup":
        """``count`` (≥ 2) copies of one daemon: member 0 active, the
        others standbys brought to its state by :meth:`sync` and made
        active by :meth:`promote`."""
        raw = kind.encode()
        out = ffi.new("net_compute_group_t **")
        runtimes = _runtimes(nodes)
        check(lib.net_compute_group_standby(runtimes, len(nodes), raw, len(raw), _seed(seed), 32, _u32(count), out))
        return cls(out[0])

    def route(self, producer: int, sequence: int, payload: BytesLike, *, key: Optional[str] = None) -> Routed:
        """Routes an event into the group (a replica or fork group's load
        balancer picks a member, ``key`` being the consistent-hash key; a
        standby group's active takes it) and waits until it is processed."""
        data, n = buf(payload, "payload")
        raw_key = key.encode() if key is not None else None
        index, origin, node, outcome = (ffi.new("uint32_t *"), ffi.new("uint64_t *"), ffi.new("uint64_t *"),
                                        ffi.new("uint32_t *"))
        err = error_slot()
        status = lib.net_compute_group_route(
            self._handle(), _u64(producer, "producer"), _u64(sequence, "sequence"), data, n,
            raw_key if raw_key is not None else ffi.NULL, len(raw_key or b""), index, origin, node, outcome, err)
        check_call(status, err)
        return Routed(int(index[0]), int(origin[0]), int(node[0]), Delivery(int(outcome[0])))

    def scale(self, count: int) -> None:
        """Scales a replica or fork group to ``count`` members."""
        check(lib.net_compute_group_scale(self._handle(), _u32(count)))

    def migrate(self, index: int, node: int) -> None:
        """Moves member ``index`` to node ``node`` with the migration
        protocol: a replica or fork, or a standby group's active (``index``
        = its active index). The same member (identity, state and chain)
        continues there; ``node`` must be one of the group's runtimes, not
        reported failed, holding no member. Waits until the move is over;
        ComputeGroupMigrationError if it failed (the member stays)."""
        check(lib.net_compute_group_migrate(self._handle(), _u32(index), _u64(node, "node")))

    def node_failed(self, node: int) -> List[int]:
        """Reports node ``node`` failed: its members are re-created on other
        nodes. Returns the indices replaced."""
        out = new_bytes()
        check(lib.net_compute_group_node_failed(self._handle(), _u64(node, "node"), out))
        replaced: List[int] = json.loads(take_bytes(out))["replaced"]
        return replaced

    def watch_failures(self, observer: Compute, every: float = 0.05) -> None:
        """Follows ``observer``'s failure detector: every ``every`` seconds
        the group looks at the peers of ``observer``'s node, and a node it
        saw alive that is reported failed (or is gone) is handled as by
        :meth:`node_failed`, once, and as by :meth:`node_recovered` when it
        is alive again — nobody has to report them. ``observer`` is one of
        the group's runtimes, or any on a node connected to the members'
        nodes, its mesh started (:meth:`Mesh.start`). A second call
        replaces the watch; :meth:`unwatch_failures` or closing the group
        ends it."""
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0:
            raise ValueError(f"every must be a positive number of seconds, got {every!r}")
        ms = min(max(1, round(every * 1000)), 0xFFFFFFFF)
        check(lib.net_compute_group_watch_failures(self._handle(), observer._handle(), ms))

    def unwatch_failures(self) -> None:
        """Ends :meth:`watch_failures` (no-op without one)."""
        check(lib.net_compute_group_unwatch_failures(self._handle()))

    def node_recovered(self, node: int) -> List[int]:
        """Reports node ``node`` back (alive again, or restarted): it may hold
        members again, copies the group left there are stopped, and an
        unhealthy member still running there takes traffic again. Returns
        the indices back in service (none for a standby group)."""
        out = new_bytes()
        check(lib.net_compute_group_node_recovered(self._handle(), _u64(node, "node"), out))
        restored: List[int] = json.loads(take_bytes(out))["restored"]
        return restored

    def sync(self) -> Dict[str, Any]:
        """Brings a standby group's standbys to the active's state; returns
        ``{"through_seq", "synced": [index], "failed": [{"index", "error"}]}``."""
        out = new_bytes()
        check(lib.net_compute_group_sync(self._handle(), out))
        result: Dict[str, Any] = json.loads(take_bytes(out))
        return result

    def promote(self) -> int:
        """Makes the most recent standby the active (the events logged
        since its sync are replayed into it, each once); returns its index."""
        out = ffi.new("uint32_t *")
        check(lib.net_compute_group_promote(self._handle(), out))
        return int(out[0])

    def status(self) -> Dict[str, Any]:
        """The group: ``kind``, ``health``, ``nodes``, ``members`` (index,
        origin, node, healthy, generation) and the kind's own fields
        (replica ``group_id``; fork ``parent_origin``, ``fork_seq``,
        ``records``, ``lineage_verified``; standby ``origin``, ``active``,
        ``logged``)."""
        out = new_bytes()
        check(lib.net_compute_group_status(self._handle(), out))
        result: Dict[str, Any] = json.loads(take_bytes(out))
        return result

    def __repr__(self) -> str:
        return f"<ComputeGroup {'closed' if self.closed else 'open'}>"


def _u32(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"count must be an integer in 0..2**32-1, got {value!r}")
    return value


class _Daemons:
    """The daemon objects of one Compute: factories by kind, objects by
    instance id, and the instance running each daemon (origin) here."""

    def __init__(self) -> None:
        self.factories: Dict[str, Callable[[], Daemon]] = {}
        self.lock = threading.Lock()
        self.objects: Dict[int, Daemon] = {}
        self.origins: Dict[int, int] = {}
        self.next_instance = 1

    def keep(self, daemon: Daemon) -> int:
        with self.lock:
            instance = self.next_instance
            self.next_instance += 1
            self.objects[instance] = daemon
        return instance

    def drop(self, instance: int, origin: Optional[int] = None) -> None:
        with self.lock:
            self.objects.pop(instance, None)
            if origin is not None and self.origins.get(origin) == instance:
                del self.origins[origin]

    def note_origin(self, origin: int, instance: int) -> None:
        with self.lock:
            self.origins[origin] = instance

    def running(self, origin: int) -> Optional[Daemon]:
        with self.lock:
            instance = self.origins.get(origin)
            return self.objects.get(instance) if instance is not None else None

    def get(self, instance: int) -> Daemon:
        with self.lock:
            return self.objects[instance]


def _serve(handle: Any, daemons: _Daemons) -> None:
    """The work thread: pulls work items until the runtime is freed."""
    work = ffi.new("uint64_t *")
    kind = ffi.new("uint32_t *")
    instance = ffi.new("uint64_t *")
    daemon = ffi.new("uint64_t *")
    producer = ffi.new("uint64_t *")
    sequence = ffi.new("uint64_t *")
    payload = new_bytes()
    while True:
        status = lib.net_compute_next(
            handle, lib.NET_WAIT_FOREVER, work, kind, instance, daemon, producer, sequence, payload,
            ffi.NULL, ffi.NULL,
        )
        if status != lib.NET_OK:
            return  # NET_END: closed (or freed)
        data = take_bytes(payload)
        _answer(handle, daemons, int(work[0]), int(kind[0]), int(instance[0]), int(daemon[0]),
                int(producer[0]), int(sequence[0]), data)


def _answer(handle: Any, daemons: _Daemons, work: int, kind: int, instance: int, origin: int,
            producer: int, sequence: int, data: bytes) -> None:
    """Runs one work item on its daemon object and answers it."""
    if kind == lib.NET_COMPUTE_WORK_DROP:
        daemons.drop(instance, origin)
        return
    try:
        if kind == lib.NET_COMPUTE_WORK_CREATE:
            new = daemons.keep(daemons.factories[data.decode()]())
            if lib.net_compute_complete_create(handle, work, new) == lib.NET_OK:
                daemons.note_origin(origin, new)
            else:
                daemons.drop(new)
            return
        obj = daemons.get(instance)
        if kind == lib.NET_COMPUTE_WORK_PROCESS:
            outputs = list(obj.process(DaemonEvent(producer, sequence, data, origin)) or ())
            slices, n, _views = slice_array(outputs, "outputs")
            lib.net_compute_complete_process(handle, work, slices, n)
        elif kind == lib.NET_COMPUTE_WORK_PROCESS_BATCH:
            _answer_batch(handle, work, obj, origin, data)
        elif kind == lib.NET_COMPUTE_WORK_SNAPSHOT:
            state, n = buf(obj.snapshot(), "snapshot")
            lib.net_compute_complete_snapshot(handle, work, state, n)
        elif kind == lib.NET_COMPUTE_WORK_RESTORE:
            obj.restore(data)
            lib.net_compute_complete_restore(handle, work)
    except Exception as e:  # noqa: BLE001 - the daemon's failure is the call's
        message = f"{type(e).__name__}: {e}".encode()
        lib.net_compute_fail(handle, work, message, len(message))


_RECORD = struct.Struct("<QQI")
_BYTES_LIKE = (bytes, bytearray, memoryview)
_DELIVERIES = {d.value: d for d in Delivery}
_new_event = tuple.__new__
_UNIFORM: Dict[int, struct.Struct] = {}  # payload length -> one record's layout, less the length
_ALL_PROCESSED = array.array(U32, [Delivery.PROCESSED]).tobytes()  # one outcome, native order


def _u32s(values: Iterable[int]) -> Any:
    """A ``uint32_t[]`` of ``values`` (at least one element: ``[0]`` when
    empty). Built by ``array`` in C, not element by element by cffi."""
    packed = array.array(U32, values)
    if not packed:
        packed.append(0)
    return ffi.from_buffer("uint32_t[]", packed)


def _pack(payloads: Sequence[BytesLike]) -> Any:
    """Payloads as one buffer, a uint32_t length array and the count."""
    parts = payloads if isinstance(payloads, (list, tuple)) else list(payloads)
    data, lengths = pack_bytes(parts, "payloads")
    return data, _u32s(lengths), len(parts)


def _records(data: bytes) -> Iterable[Any]:
    """A ProcessBatch item's records as (producer, sequence, payload)
    tuples. Records of one payload length — a producer's batch usually is
    — are split by ``struct`` as they are iterated; the general walk is the
    fallback (and raises struct.error on a truncated record)."""
    header = _RECORD.size  # NET_COMPUTE_BATCH_RECORD_HEADER
    if len(data) >= header:
        n = int.from_bytes(data[header - 4:header], "little")
        layout = _UNIFORM.get(n)
        if layout is None:
            if len(_UNIFORM) >= 64:  # many lengths: keep the cache small
                _UNIFORM.clear()
            layout = _UNIFORM[n] = struct.Struct(f"<QQ4x{n}s")
        size = layout.size
        count, rest = divmod(len(data), size)
        # Sound: every record's length field sits where this split puts it
        # (the first record's is n, so the second starts at `size`, and so
        # on); compared a byte column at a time.
        if rest == 0 and all(
            data[at::size] == data[at:at + 1] * count for at in range(header - 4, header)
        ):
            return layout.iter_unpack(data)
    records, at, end = [], 0, len(data)
    unpack_from = _RECORD.unpack_from
    while at < end:
        producer, sequence, n = unpack_from(data, at)
        start = at + header
        at = start + n
        if at > end:
            raise struct.error(f"record at {start - header} runs past the batch")
        records.append((producer, sequence, data[start:at]))
    return records


def _answer_batch(handle: Any, work: int, obj: Daemon, origin: int, data: bytes) -> None:
    """A ProcessBatch item: ``process`` per event in order until one
    raises, then one answer with the applied events' outputs (and the
    failure of the event that raised)."""
    events = map(_new_event, repeat(DaemonEvent), map(operator.add, _records(data), repeat((origin,))))
    answer, interrupted = _run_batch(obj.process, events)
    lib.net_compute_complete_batch(handle, work, *answer)
    if interrupted is not None:
        raise interrupted


def _lent_batch(handle: Any, daemons: _Daemons, origin: int, producer: int, first: int,
                payloads: Sequence[BytesLike]) -> Optional[List[Delivery]]:
    """``payloads`` applied on this thread to daemon ``origin``'s object if
    the runtime lends the batch (the daemon is this Compute's, here and
    free): each event's Delivery, or None when it must take the usual path.
    The lease is always answered, also when applying raised."""
    n = len(payloads)
    if not n:
        return None
    if set(map(type, payloads)) != {bytes}:
        pack_bytes(payloads, "payloads")  # TypeError for what is not bytes-like
        payloads = [bytes(p) for p in payloads]  # the daemon gets bytes, as through the work thread
    lease = ffi.new("uint64_t[2]")  # the lease id, the object's instance id
    err = error_slot()
    check_call(lib.net_compute_lend_batch(handle, origin, producer, first, n, lease, lease + 1, err), err)
    if not lease[0]:
        return None
    with daemons.lock:
        obj = daemons.objects.get(int(lease[1]))
    interrupted: Optional[BaseException] = None
    if obj is None:  # dropped meanwhile: fail the first event
        why = b"KeyError: the daemon's object is gone"
        answer: Tuple[Any, ...] = (0, b"", 0, ffi.NULL, 0, ffi.NULL, why, len(why))
    else:
        events = map(_new_event, repeat(DaemonEvent),
                     zip(repeat(producer), range(first, first + n), payloads, repeat(origin)))
        answer, interrupted = _run_batch(obj.process, events)
    delivered = ffi.new("size_t *")
    err = error_slot()
    status = lib.net_compute_finish_batch(handle, lease[0], *answer, delivered, err)
    if interrupted is not None:
        raise interrupted
    try:
        check_call(status, err)
    except NetError as e:
        done = [Delivery.PROCESSED] * int(delivered[0])
        setattr(e, "delivered", len(done))
        setattr(e, "outcomes", done)
        raise
    return [Delivery.PROCESSED] * n


def _run_batch(process: Callable[[DaemonEvent], Any],
               events: Iterable[DaemonEvent]) -> Tuple[Tuple[Any, ...], Optional[BaseException]]:
    """``process`` per event in order until one raises or returns an output
    that is not bytes-like; the answer's arguments after the work id or
    lease (``applied``, the packed outputs, their lengths and count, the
    counts per event, the failure and its length), and an exception that is
    not an Exception (KeyboardInterrupt, SystemExit: re-raised once the
    batch is answered)."""
    outputs: List[Any] = []
    per_event: List[int] = []
    count = per_event.append
    add = outputs.append
    failure: Optional[str] = None
    interrupted: Optional[BaseException] = None
    try:
        for event in events:
            out = process(event)
            if type(out) is list and len(out) == 1 and type(out[0]) is bytes:  # the usual answer
                add(out[0])
                count(1)
            elif out is None:
                count(0)
            else:
                out = list(out)
                bad = next((i for i, o in enumerate(out) if not isinstance(o, _BYTES_LIKE)), None)
                if bad is not None:
                    failure = f"TypeError: output {bad} is {type(out[bad]).__name__}, not bytes-like"
                    break
                outputs += out
                count(len(out))
    except Exception as e:  # noqa: BLE001 - the daemon's failure is the event's
        failure = f"{type(e).__name__}: {e}"
    except BaseException as e:  # noqa: BLE001 - answered first, then re-raised
        failure = f"{type(e).__name__}: {e}"
        interrupted = e
    packed = b"".join(outputs)
    sizes = list(map(len, outputs))
    if sum(sizes) != len(packed):  # memoryviews of wider items
        sizes = [memoryview(o).nbytes for o in outputs]
    message = ffi.NULL if failure is None else failure.encode()
    answer = (len(per_event), packed, len(packed), _u32s(sizes), len(outputs), _u32s(per_event), message,
              0 if failure is None else len(message))
    return answer, interrupted
