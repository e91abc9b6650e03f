"""CortEX: folded, queryable state over RedEX logs.

::

    from netmesh import Redex, Tasks, TaskFilter

    with Redex("/var/lib/app") as redex:
        with Tasks(redex, origin_hash=identity.origin_hash, persistent=True) as tasks:
            seq = tasks.create(1, "write the spec")
            tasks.wait_for_seq(seq)                      # the fold has applied it
            tasks.find_unique(1)                         # Task(id=1, title=..., ...)
            tasks.find_many(TaskFilter(status="pending", order_by="created_desc"))
            with tasks.watch(TaskFilter(status="pending")) as watch:
                for update in watch:                     # the current rows, then each change
                    if isinstance(update, WatchLagged):  # a slow reader missed changes;
                        continue                         # the next rows have them all
                    print(update)

One generic model, :class:`Model` (libnet's ``net_model_t``: open, fold
progress, waits, queries, watches, snapshots, deletes, close — the same for
every kind), and its two kinds, byte-compatible with Net v0.11, as thin
subclasses adding typed rows, filters and their own writes: :class:`Tasks`
(create, rename, complete) and :class:`Memories` (store, retag, pin, unpin).
Each write appends an event to the model's RedEX channel
(``cortex/tasks`` / ``cortex/memories``) and returns its RedEX sequence
number; a fold thread inside libnet applies events to the in-memory state
that queries read. ``wait_for_seq`` is read-your-writes.

A model opened with ``persistent=True`` on a :class:`~netmesh.Redex` with a
base directory recovers its state from the log when reopened;
:meth:`Tasks.snapshot` / :meth:`Tasks.restore` skip the replay.

Handles follow the netmesh rules: thread-safe, no SDK lock around libnet
calls, ``close()`` idempotent and safe against calls racing it on other
threads (they fail with :class:`~netmesh.ShuttingDownError`).
"""

from __future__ import annotations

import enum
import json
import threading
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    Generic,
    Iterable,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from ._ffi import (
    buf,
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
from ._stream import END, _Stream
from .cancel import Cancel, _check_cancel, pull, pull_async
from .errors import (
    CortexInvalidConfigError,
    CortexWatchEndedError,
)
from .redex import (
    FsyncPolicy,
    Redex,
    Seconds,
    _check_u64,
    config_json,
)

__all__ = [
    "Model",
    "ModelKind",
    "Tasks",
    "Memories",
    "Task",
    "Memory",
    "TaskFilter",
    "MemoryFilter",
    "Progress",
    "Snapshot",
    "Watch",
    "WatchLagged",
    "ErrorPolicy",
    "StartPosition",
]

_U64_MAX = (1 << 64) - 1

#: What the fold does when an event fails to apply: ``"stop"`` (default;
#: the model halts and refuses writes) or ``"log_and_continue"``.
ErrorPolicy = Literal["stop", "log_and_continue"]
#: Where the fold starts: ``"beginning"`` (default), ``"live"`` (only new
#: events) or a RedEX sequence number.
StartPosition = Union[Literal["beginning", "live"], int]


# -- rows --------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A task row."""

    id: int
    title: str
    status: Literal["pending", "completed"]
    created_ns: int
    updated_ns: int

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @classmethod
    def _from_json(cls, row: Dict[str, Any]) -> "Task":
        return cls(
            id=row["id"],
            title=row["title"],
            status=row["status"],
            created_ns=row["created_ns"],
            updated_ns=row["updated_ns"],
        )


@dataclass(frozen=True)
class Memory:
    """A memory row."""

    id: int
    content: str
    tags: Tuple[str, ...]
    source: str
    created_ns: int
    updated_ns: int
    pinned: bool

    @classmethod
    def _from_json(cls, row: Dict[str, Any]) -> "Memory":
        return cls(
            id=row["id"],
            content=row["content"],
            tags=tuple(row["tags"]),
            source=row["source"],
            created_ns=row["created_ns"],
            updated_ns=row["updated_ns"],
            pinned=row["pinned"],
        )


@dataclass(frozen=True)
class Progress:
    """Where a model's fold is.

    ``applied_through_seq``: every event up to it applied (the read-your-
    writes watermark, None before the first); ``folded_through_seq``: the
    last event the fold attempted; ``running``: False once the fold
    stopped (closed, or halted by an error under ``policy="stop"``);
    ``errors``/``last_error``: events that failed to apply; ``app_seq``: the
    sequence the next write carries in its EventMeta.
    """

    applied_through_seq: Optional[int]
    folded_through_seq: Optional[int]
    running: bool
    errors: int
    last_error: Optional[str]
    app_seq: int


@dataclass(frozen=True)
class Snapshot:
    """A model snapshot: the postcard ``data`` of v0.11 and ``last_seq``,
    the RedEX sequence of the last event it contains (None: empty log)."""

    data: bytes
    last_seq: Optional[int]


@dataclass(frozen=True)
class WatchLagged:
    """Yielded by a :class:`Watch` whose reader fell behind: ``missed``
    changes were coalesced; the next rows already include them all."""

    missed: int


# -- filters -----------------------------------------------------------------------


def _opt_u64(value: Optional[int], key: str) -> Optional[int]:
    return None if value is None else _check_query_u64(value, key)


def _check_query_u64(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _U64_MAX:
        raise ValueError(f"{key} must be in [0, 2**64), got {value}")
    return value


def _common_filter(f: Any, out: Dict[str, Any]) -> None:
    if f.ids is not None:
        out["ids"] = [_check_query_u64(i, "ids[]") for i in f.ids]
    for key in ("created_after", "created_before", "updated_after", "updated_before"):
        value = _opt_u64(getattr(f, key), key)
        if value is not None:
            out[key] = value
    if f.order_by is not None:
        out["order_by"] = f.order_by
    if f.offset is not None:
        out["offset"] = _check_query_u64(f.offset, "offset")
    if f.limit is not None:
        out["limit"] = _check_query_u64(f.limit, "limit")


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a query or watch covers (every field optional; all set
    fields must match). Times are nanoseconds since the Unix epoch.
    ``order_by``: ``"id_asc"`` (default), ``"id_desc"``, ``"created_asc"``,
    ``"created_desc"``, ``"updated_asc"``, ``"updated_desc"``,
    ``"title_asc"``, ``"title_desc"``."""

    ids: Optional[Sequence[int]] = None
    status: Optional[Literal["pending", "completed"]] = None
    title_contains: Optional[str] = None
    created_after: Optional[int] = None
    created_before: Optional[int] = None
    updated_after: Optional[int] = None
    updated_before: Optional[int] = None
    order_by: Optional[str] = None
    offset: Optional[int] = None
    limit: Optional[int] = None

    def to_json(self) -> str:
        """The filter JSON libnet takes."""
        out: Dict[str, Any] = {}
        _common_filter(self, out)
        if self.status is not None:
            out["status"] = self.status
        if self.title_contains is not None:
            out["title_contains"] = self.title_contains
        return json.dumps(out, separators=(",", ":"))


@dataclass(frozen=True)
class MemoryFilter:
    """Which memories a query or watch covers (every field optional; all set
    fields must match). ``tags_any``: at least one of these tags;
    ``tags_all``: every one. ``order_by``: ``id``/``created``/``updated``
    with ``_asc``/``_desc``."""

    ids: Optional[Sequence[int]] = None
    tags_any: Optional[Sequence[str]] = None
    tags_all: Optional[Sequence[str]] = None
    source: Optional[str] = None
    pinned: Optional[bool] = None
    content_contains: Optional[str] = None
    created_after: Optional[int] = None
    created_before: Optional[int] = None
    updated_after: Optional[int] = None
    updated_before: Optional[int] = None
    order_by: Optional[str] = None
    offset: Optional[int] = None
    limit: Optional[int] = None

    def to_json(self) -> str:
        """The filter JSON libnet takes."""
        out: Dict[str, Any] = {}
        _common_filter(self, out)
        if self.tags_any is not None:
            out["tags_any"] = list(self.tags_any)
        if self.tags_all is not None:
            out["tags_all"] = list(self.tags_all)
        if self.source is not None:
            out["source"] = self.source
        if self.pinned is not None:
            out["pinned"] = bool(self.pinned)
        if self.content_contains is not None:
            out["content_contains"] = self.content_contains
        return json.dumps(out, separators=(",", ":"))


# -- configuration -------------------------------------------------------------------


def model_config_json(
    *,
    persistent: bool = False,
    fsync: FsyncPolicy = None,
    max_events: Optional[int] = None,
    max_bytes: Optional[int] = None,
    max_age: Optional[Seconds] = None,
    repair: bool = False,
    policy: Optional[ErrorPolicy] = None,
    start: Optional[StartPosition] = None,
    changes_capacity: Optional[int] = None,
) -> str:
    """The configuration JSON of ``net_model_open``."""
    base = config_json(
        persistent=persistent,
        fsync=fsync,
        max_events=max_events,
        max_bytes=max_bytes,
        max_age=max_age,
        repair=repair,
    )
    config: Dict[str, Any] = json.loads(base) if base else {}
    if policy is not None:
        if policy not in ("stop", "log_and_continue"):
            raise CortexInvalidConfigError(
                lib.NET_ERR_CORTEX_INVALID_CONFIG,
                f'policy: expected "stop" or "log_and_continue", got {policy!r}',
            )
        config["policy"] = policy
    if start is not None:
        if start in ("beginning", "live"):
            config["start"] = start
        elif isinstance(start, int) and not isinstance(start, bool):
            config["start"] = {"from_seq": _check_u64(start, "start.from_seq")}
        else:
            raise CortexInvalidConfigError(
                lib.NET_ERR_CORTEX_INVALID_CONFIG,
                f'start: expected "beginning", "live" or a sequence number, got {start!r}',
            )
    if changes_capacity is not None:
        config["changes_capacity"] = _check_u64(changes_capacity, "changes_capacity")
    return json.dumps(config, separators=(",", ":")) if config else ""


def _take_json(out: Any) -> Any:
    return json.loads(take_bytes(out).decode("utf-8"))


def _json_call(fn: Any, *args: Any) -> Any:
    out = new_bytes()
    status = fn(*args, out)
    if status != lib.NET_OK:
        lib.net_bytes_free(out)
        check(status)
    return _take_json(out)


def _text(value: Union[str, bytes], name: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        raw.decode("utf-8")  # UnicodeDecodeError for non-UTF-8, before libnet sees it
        return raw
    raise TypeError(f"{name} must be str, not {type(value).__name__}")


def _id(value: Any) -> int:
    return _check_query_u64(value, "id")


class ModelKind(enum.IntEnum):
    """The kinds of CortEX model libnet has (``NET_MODEL_*``)."""

    #: Tasks, on channel ``cortex/tasks``.
    TASKS = lib.NET_MODEL_TASKS
    #: Memories, on channel ``cortex/memories``.
    MEMORIES = lib.NET_MODEL_MEMORIES


# -- watches --------------------------------------------------------------------------

Row = TypeVar("Row")


class Watch(_Stream[Union[List[Row], WatchLagged]]):
    """A live query on a model (``net_model_watch_t``): iterating yields the
    current rows (a list) first, then the new rows after each change, or a
    :class:`WatchLagged` when this reader fell behind (the next rows include
    everything it missed). ``async for`` works too.

    Iteration ends when the model is closed, its fold halts, or the watch is
    closed from another thread (``close()`` wakes a blocked iteration); it
    raises CancelledError once the watch's ``cancel`` token (given to
    :meth:`Model.watch`) is cancelled. :meth:`next` / :meth:`next_async` are
    the one-update forms with a timeout and a token of their own.
    """

    __slots__ = ("_row", "_model")
    _kind = "Watch"
    _free = staticmethod(lib.net_model_watch_free)
    _ended_error = CortexWatchEndedError
    _ended_message = "the watch has ended: its model closed or halted, or it was closed"

    def __init__(
        self,
        handle: Any,
        row: Callable[[Dict[str, Any]], Row],
        model: Any,
        cancel: Optional[Cancel] = None,
    ) -> None:
        """Internal: use :meth:`Model.watch`."""
        if handle is None or handle == ffi.NULL:
            raise TypeError("use Model.watch() or snapshot_and_watch()")
        super().__init__(handle, cancel)
        self._row = row
        self._model = model  # keeps the model object alive while watched

    def next(
        self, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Union[List[Row], WatchLagged, None]:
        """Waits up to ``timeout`` seconds (None: no limit) for the next
        update: a list of rows, a :class:`WatchLagged`, or None on timeout.
        Raises CortexWatchEndedError once the watch has ended,
        ShuttingDownError if it was closed before, CancelledError when
        ``cancel`` is cancelled (the watch stays usable)."""
        return self._ended(self._pull(timeout_ms(timeout), cancel, iterating=False))

    async def next_async(
        self, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Union[List[Row], WatchLagged, None]:
        """:meth:`next` for asyncio: cancelling the task cancels the wait (an
        update already taken is kept for the next call)."""
        return self._ended(await self._pull_async(timeout_ms(timeout), cancel, iterating=False))

    def _next_raw(self, ptr: Any, ms: int, token: Any) -> Any:
        rows = new_bytes()
        missed = ffi.new("uint64_t *")
        err = error_slot()
        status = self._counted(lambda: lib.net_model_watch_next(ptr, ms, rows, missed, token, err))
        if status == lib.NET_OK:
            return [self._row(r) for r in _take_json(rows)]
        lib.net_bytes_free(rows)
        if status == lib.NET_LAGGED:
            return WatchLagged(int(missed[0]))
        if status == lib.NET_END:
            return END
        if status == lib.NET_TIMEOUT:
            return None
        raise call_error(status, err)

    def close(self) -> None:
        """Ends and frees the watch. Idempotent; wakes a blocked ``next`` or
        iteration (which then ends)."""
        super().close()


# -- models ---------------------------------------------------------------------------

_M = TypeVar("_M", bound="Model[Any]")


class Model(_Handle, Generic[Row]):
    """A CortEX model of any kind (``net_model_t``): opening, fold progress,
    waits, queries, watches, snapshots, deletes and closing, the same for
    every kind. :class:`Tasks` and :class:`Memories` are its typed kinds
    (rows as dataclasses, typed filters, the kind's own writes); the base
    class opens any kind with rows as plain dicts and filters as dicts
    (or anything with ``to_json()``)::

        with Model(redex, origin, kind=ModelKind.TASKS) as model:
            model.find_many({"status": "pending"})     # [{"id": 1, "title": ...}, ...]

    Configuration (keyword arguments, also of :meth:`restore`): the RedEX
    file keys of :meth:`Redex.open_file` (``persistent``, ``fsync``,
    ``max_events``, ``max_bytes``, ``max_age``, ``repair``) plus ``policy``
    (``"stop"`` or ``"log_and_continue"``), ``start`` (``"beginning"``,
    ``"live"`` or a sequence number) and ``changes_capacity``.
    """

    __slots__ = ("_origin_hash", "_model_kind", "_lender")
    _kind = "Model"
    _free = staticmethod(lib.net_model_free)
    #: The kind a subclass always opens (None: given as ``kind=``).
    KIND: ClassVar[Optional[ModelKind]] = None
    #: The typed filter a subclass takes besides dicts (None: any ``to_json()``).
    FILTER: ClassVar[Optional[type]] = None

    @staticmethod
    def _row(row: Dict[str, Any]) -> Any:
        return row

    def __init__(
        self,
        redex: Redex,
        origin_hash: int,
        *,
        kind: Optional[int] = None,
        persistent: bool = False,
        fsync: FsyncPolicy = None,
        max_events: Optional[int] = None,
        max_bytes: Optional[int] = None,
        max_age: Optional[Seconds] = None,
        repair: bool = False,
        policy: Optional[ErrorPolicy] = None,
        start: Optional[StartPosition] = None,
        changes_capacity: Optional[int] = None,
        _snapshot: Optional[Snapshot] = None,
    ) -> None:
        self._lender: Any = None
        self._lock = threading.Lock()
        self._ptr = None
        self._model_kind = self._resolve_kind(kind)
        if not isinstance(redex, Redex):
            raise TypeError(f"redex must be a Redex, not {type(redex).__name__}")
        self._origin_hash = _check_query_u64(origin_hash, "origin_hash")
        config = model_config_json(
            persistent=persistent,
            fsync=fsync,
            max_events=max_events,
            max_bytes=max_bytes,
            max_age=max_age,
            repair=repair,
            policy=policy,
            start=start,
            changes_capacity=changes_capacity,
        ).encode()
        cfg = config if config else ffi.NULL
        out = ffi.new("net_model_t **")
        manager = redex._handle()
        kind_code = int(self._model_kind)
        if _snapshot is None:
            check(lib.net_model_open(manager, kind_code, self._origin_hash, cfg, len(config), out))
        else:
            if not isinstance(_snapshot, Snapshot):
                raise TypeError(f"snapshot must be a Snapshot, not {type(_snapshot).__name__}")
            data, n = buf(_snapshot.data, "snapshot.data")
            last = _snapshot.last_seq
            check(
                lib.net_model_restore(
                    manager,
                    kind_code,
                    self._origin_hash,
                    cfg,
                    len(config),
                    data,
                    n,
                    0 if last is None else _check_query_u64(last, "snapshot.last_seq"),
                    last is not None,
                    out,
                )
            )
        self._ptr = out[0]

    @classmethod
    def _lent(cls: Type[_M], ptr: Any, lender: Any, origin_hash: int) -> _M:
        """The model ``ptr`` that ``lender`` (a NetDB) owns and frees."""
        model = cls.__new__(cls)
        model._lender = lender
        model._lock = threading.Lock()
        model._ptr = ptr
        model._origin_hash = origin_hash
        model._model_kind = cls._resolve_kind(None)
        return model

    @classmethod
    def _resolve_kind(cls, kind: Optional[int]) -> ModelKind:
        fixed = cls.KIND
        if fixed is not None:
            if kind is not None and int(kind) != int(fixed):
                raise ValueError(f"{cls.__name__} is the {fixed.name.lower()} model; kind={kind!r}")
            return fixed
        if kind is None:
            raise TypeError("Model needs kind= (a ModelKind); or use Tasks / Memories")
        if isinstance(kind, bool) or not isinstance(kind, int):
            raise TypeError(f"kind must be a ModelKind, not {type(kind).__name__}")
        try:
            return ModelKind(kind)
        except ValueError:
            raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(k.name for k in ModelKind)})") from None

    @property
    def origin_hash(self) -> int:
        """The writer origin stamped on this model's events."""
        return self._origin_hash

    @property
    def kind(self) -> ModelKind:
        """The model's kind, as libnet reports it."""
        out = ffi.new("uint32_t *")
        check(lib.net_model_kind(self._handle(), out))
        return ModelKind(int(out[0]))

    def _filter(self, flt: Any) -> bytes:
        if flt is None:
            return b""
        typed = self.FILTER
        if typed is not None and isinstance(flt, typed):
            return flt.to_json().encode()  # type: ignore[no-any-return,attr-defined]
        if isinstance(flt, dict):
            return json.dumps(flt, separators=(",", ":")).encode()
        if typed is None and hasattr(flt, "to_json"):
            return flt.to_json().encode()  # type: ignore[no-any-return]
        wanted = f"a {typed.__name__} or a dict" if typed is not None else "a dict or a filter"
        raise TypeError(f"filter must be {wanted}, not {type(flt).__name__}")

    # -- waiting and progress ----------------------------------------------------

    def _wait_raw(self, handle: Any, target: int, ms: int, token: Any) -> Optional[bool]:
        err = error_slot()
        status = lib.net_model_wait_for_seq(handle, target, ms, token, err)
        if status == lib.NET_TIMEOUT:
            return None
        check_call(status, err)
        return True

    def wait_for_seq(
        self, seq: int, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> bool:
        """Waits until the fold has attempted RedEX sequence ``seq`` (True),
        or ``timeout`` seconds passed (False). Raises CortexHaltedError at
        once when the fold stopped short of it, ShuttingDownError when the
        model is closed meanwhile, CancelledError when ``cancel`` is
        cancelled."""
        handle, target = self._handle(), _check_query_u64(seq, "seq")
        done = pull(
            lambda ms, token: self._wait_raw(handle, target, ms, token), timeout_ms(timeout), cancel
        )
        return done is not None

    async def wait_for_seq_async(
        self, seq: int, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> bool:
        """:meth:`wait_for_seq` for asyncio."""
        handle, target = self._handle(), _check_query_u64(seq, "seq")
        done = await pull_async(
            lambda ms, token: self._wait_raw(handle, target, ms, token), timeout_ms(timeout), cancel
        )
        return done is not None

    def progress(self) -> Progress:
        """The fold's watermarks and health."""
        p = _json_call(lib.net_model_progress, self._handle())
        return Progress(
            applied_through_seq=p["applied_through_seq"],
            folded_through_seq=p["folded_through_seq"],
            running=p["running"],
            errors=p["errors"],
            last_error=p["last_error"],
            app_seq=p["app_seq"],
        )

    # -- queries -------------------------------------------------------------------

    def find_unique(self, id: int) -> Optional[Row]:
        """The row with ``id``, or None."""
        out = new_bytes()
        found = ffi.new("bool *")
        status = lib.net_model_find_unique(self._handle(), _id(id), out, found)
        if status != lib.NET_OK:
            lib.net_bytes_free(out)
            check(status)
        if not found[0]:
            lib.net_bytes_free(out)
            return None
        return self._row(_take_json(out))  # type: ignore[no-any-return]

    def find_many(self, filter: Any = None) -> List[Row]:
        """The rows matching ``filter`` (all rows when None), ordered and
        paged as the filter says."""
        flt = self._filter(filter)
        rows = _json_call(lib.net_model_find_many, self._handle(), flt or ffi.NULL, len(flt))
        return [self._row(r) for r in rows]

    def count_where(self, filter: Any = None) -> int:
        """How many rows match (offset/limit ignored)."""
        flt = self._filter(filter)
        out = ffi.new("uint64_t *")
        check(lib.net_model_count_where(self._handle(), flt or ffi.NULL, len(flt), out))
        return int(out[0])

    def exists_where(self, filter: Any = None) -> bool:
        """Whether any row matches."""
        flt = self._filter(filter)
        out = ffi.new("bool *")
        check(lib.net_model_exists_where(self._handle(), flt or ffi.NULL, len(flt), out))
        return bool(out[0])

    def __len__(self) -> int:
        return self.count_where()

    def __bool__(self) -> bool:
        return True

    # -- watches -------------------------------------------------------------------

    def watch(self, filter: Any = None, *, cancel: Optional[Cancel] = None) -> Watch[Row]:
        """A :class:`Watch` of the rows matching ``filter``; its first update
        is the current result. ``cancel``: the token iterating it waits with."""
        _check_cancel(cancel)
        flt = self._filter(filter)
        out = ffi.new("net_model_watch_t **")
        check(lib.net_model_watch(self._handle(), flt or ffi.NULL, len(flt), out))
        return Watch(out[0], self._row, self, cancel)

    def snapshot_and_watch(
        self, filter: Any = None, *, cancel: Optional[Cancel] = None
    ) -> Tuple[List[Row], Watch[Row]]:
        """The current rows now, and a :class:`Watch` that yields only later
        changes (nothing lost in between)."""
        _check_cancel(cancel)
        flt = self._filter(filter)
        current = new_bytes()
        out = ffi.new("net_model_watch_t **")
        status = lib.net_model_snapshot_and_watch(self._handle(), flt or ffi.NULL, len(flt), current, out)
        if status != lib.NET_OK:
            lib.net_bytes_free(current)
            check(status)
        rows = [self._row(r) for r in _take_json(current)]
        return rows, Watch(out[0], self._row, self, cancel)

    # -- snapshots -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The state as of the applied watermark, for :meth:`restore`."""
        out = new_bytes()
        last = ffi.new("uint64_t *")
        has_last = ffi.new("bool *")
        status = lib.net_model_snapshot(self._handle(), out, last, has_last)
        if status != lib.NET_OK:
            lib.net_bytes_free(out)
            check(status)
        return Snapshot(take_bytes(out), int(last[0]) if has_last[0] else None)

    @classmethod
    def restore(cls: Type[_M], redex: Redex, origin_hash: int, snapshot: Snapshot, **config: Any) -> _M:
        """Opens the model from ``snapshot`` (state and app seq), replaying
        only the events after ``snapshot.last_seq``. ``config`` as for the
        constructor (``kind=`` too, for the base class). CortexSnapshotError
        when the bytes do not decode as the kind's state."""
        return cls(redex, origin_hash, _snapshot=snapshot, **config)

    # -- writes ----------------------------------------------------------------------

    def _write(self, fn: Any, *args: Any) -> int:
        out = ffi.new("uint64_t *")
        check(fn(self._handle(), *args, out))
        return int(out[0])

    def delete(self, id: int) -> int:
        """Deletes row ``id`` (no effect if absent); returns the event's
        RedEX seq."""
        return self._write(lib.net_model_delete, _id(id))

    # -- lifetime ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stops the fold and closes the model's RedEX file (syncing it) but
        keeps the handle (``net_model_close``): later writes raise
        CortexHaltedError (or a RedEX error), a waiting ``wait_for_seq``
        raises CortexHaltedError, watches end; queries keep answering from
        the last state until :meth:`close`. Raises the close error (e.g. a
        failed final fsync)."""
        status = lib.net_model_close(self._handle())
        if status not in (lib.NET_OK, lib.NET_ERR_REDEX_CLOSED):
            check(status)

    def close(self) -> None:
        """Frees the model (``net_model_free``): wakes a blocked
        ``wait_for_seq`` (ShuttingDownError) and ends its watches, waits for
        calls in flight, stops the fold and closes the RedEX file.
        Idempotent and thread-safe; writes racing it either land or raise
        ShuttingDownError. Raises BusyError if calls were still running
        after 5 s or closing the file failed (the message says which).

        A model lent by a :class:`~netmesh.NetDB` is the NetDB's: closing it
        only lets go of it (later calls raise ShuttingDownError); the
        NetDB's own close frees it."""
        if self._lender is not None:
            self._take()
            return
        super().close()

    def __del__(self) -> None:
        if getattr(self, "_lender", None) is None:
            super().__del__()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        kind = getattr(self, "_model_kind", None)
        name = type(self).__name__ if type(self) is not Model else f"Model {kind.name.lower() if kind else '?'}"
        return f"<{name} origin={self._origin_hash:#018x}{state}>"


class Tasks(Model[Task]):
    """The tasks model (channel ``cortex/tasks``): a :class:`Model` of kind
    ``TASKS`` with :class:`Task` rows, :class:`TaskFilter` filters and the
    writes of its own, :meth:`create`, :meth:`rename` and :meth:`complete`
    (``delete`` is every model's). ``Tasks(redex, origin_hash,
    persistent=..., fsync=..., policy=..., start=..., changes_capacity=...)``."""

    __slots__ = ()
    _kind = "Tasks"
    KIND = ModelKind.TASKS
    FILTER = TaskFilter
    _row = staticmethod(Task._from_json)

    def create(self, id: int, title: Union[str, bytes]) -> int:
        """Creates task ``id`` (pending); returns the event's RedEX seq."""
        raw = _text(title, "title")
        return self._write(lib.net_tasks_create, _id(id), raw, len(raw))

    def rename(self, id: int, title: Union[str, bytes]) -> int:
        """Renames task ``id``; returns the event's RedEX seq."""
        raw = _text(title, "title")
        return self._write(lib.net_tasks_rename, _id(id), raw, len(raw))

    def complete(self, id: int) -> int:
        """Marks task ``id`` completed; returns the event's RedEX seq."""
        return self._write(lib.net_tasks_complete, _id(id))


def _tag_slices(tags: Iterable[str]) -> Tuple[Any, int, List[Any]]:
    if isinstance(tags, (str, bytes)):
        raise TypeError("tags must be a sequence of str, not a single string")
    return slice_array([_text(t, "tags[]") for t in tags], "tags")


class Memories(Model[Memory]):
    """The memories model (channel ``cortex/memories``): a :class:`Model`
    of kind ``MEMORIES`` with :class:`Memory` rows, :class:`MemoryFilter`
    filters and the writes of its own (:meth:`store`, :meth:`retag`,
    :meth:`pin`, :meth:`unpin`); configuration as :class:`Tasks`."""

    __slots__ = ()
    _kind = "Memories"
    KIND = ModelKind.MEMORIES
    FILTER = MemoryFilter
    _row = staticmethod(Memory._from_json)

    def store(
        self,
        id: int,
        content: Union[str, bytes],
        tags: Iterable[str] = (),
        source: Union[str, bytes] = "",
    ) -> int:
        """Stores memory ``id``; returns the event's RedEX seq."""
        raw = _text(content, "content")
        src = _text(source, "source")
        slices, count, _keep = _tag_slices(tags)
        return self._write(lib.net_memories_store, _id(id), raw, len(raw), slices, count, src, len(src))

    def retag(self, id: int, tags: Iterable[str]) -> int:
        """Replaces the tags of memory ``id``; returns the event's RedEX seq."""
        slices, count, _keep = _tag_slices(tags)
        return self._write(lib.net_memories_retag, _id(id), slices, count)

    def pin(self, id: int) -> int:
        """Pins memory ``id``; returns the event's RedEX seq."""
        return self._write(lib.net_memories_pin, _id(id))

    def unpin(self, id: int) -> int:
        """Unpins memory ``id``; returns the event's RedEX seq."""
        return self._write(lib.net_memories_unpin, _id(id))
