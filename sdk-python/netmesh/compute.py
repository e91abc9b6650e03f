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
that thread, one at a time; a method that raises fails the call (the event
is not applied, the migration step aborts). A method that does not answer
within ``work_timeout`` fails it too.

:meth:`Compute.deliver` waits for the daemon: never call it from a daemon
method.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional

from ._ffi import BytesLike, buf, check, check_call, error_slot, ffi, lib, new_bytes, slice_array, take_bytes, timeout_ms
from ._handle import _Handle
from .mesh import Mesh, _u64
from .cancel import Cancel, call_blocking
from .redex import Seconds

__all__ = [
    "Compute",
    "Daemon",
    "DaemonEvent",
    "DaemonOutput",
    "Delivery",
    "MigrationStatus",
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
_PLAIN = {"send_extension", "output_capacity"}


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
    method), ``send_extension`` (True; False towards v0.11 targets),
    ``output_capacity`` (65 536 outputs queued for :meth:`next_output`).

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

    def stop(self, origin: int) -> None:
        """Stops daemon ``origin`` here (ComputeNotFoundError if it does
        not run here)."""
        check(lib.net_compute_stop(self._handle(), _u64(origin, "origin")))

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
        ``events_emitted``, ``errors`` (since it started or arrived here)
        and ``head_sequence`` (its causal chain's last output)."""
        out = new_bytes()
        check(lib.net_compute_stats(self._handle(), _u64(origin, "origin"), out))
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

    def start_migration(self, origin: int, source: int, target: int) -> None:
        """Starts moving daemon ``origin`` from node ``source`` to node
        ``target``, orchestrated by this node (either of them, or a third
        node connected to both)."""
        check(lib.net_compute_start_migration(
            self._handle(), _u64(origin, "origin"), _u64(source, "source"), _u64(target, "target")))

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
        elif kind == lib.NET_COMPUTE_WORK_SNAPSHOT:
            state, n = buf(obj.snapshot(), "snapshot")
            lib.net_compute_complete_snapshot(handle, work, state, n)
        elif kind == lib.NET_COMPUTE_WORK_RESTORE:
            obj.restore(data)
            lib.net_compute_complete_restore(handle, work)
    except Exception as e:  # noqa: BLE001 - the daemon's failure is the call's
        message = f"{type(e).__name__}: {e}".encode()
        lib.net_compute_fail(handle, work, message, len(message))
