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

Two models, byte-compatible with Net v0.11: :class:`Tasks` (create, rename,
complete, delete) and :class:`Memories` (store, retag, pin, unpin, delete).
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

import datetime
import json
import math
import threading
import time
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from ._ffi import buf, check, ffi, last_error_message, lib, new_bytes, slice_array, take_bytes
from .errors import (
    CortexInvalidConfigError,
    CortexWatchEndedError,
    _closed,
    error_for_status,
)
from .redex import (
    NET_WAIT_FOREVER,
    FsyncPolicy,
    Redex,
    Seconds,
    _check_u64,
    _Handle,
    _to_ms,
    config_json,
)

__all__ = [
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
_MAIN_THREAD_SLICE_MS = 100

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


def _filter_bytes(flt: Any, expected: type) -> bytes:
    if flt is None:
        return b""
    if not isinstance(flt, expected):
        raise TypeError(f"filter must be a {expected.__name__}, not {type(flt).__name__}")
    return flt.to_json().encode()


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
    """The configuration JSON of ``net_tasks_open`` / ``net_memories_open``."""
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


def _timeout_ms(timeout: Optional[Seconds]) -> Optional[float]:
    """Seconds (None: no limit) as a float, validated."""
    if timeout is None:
        return None
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be seconds or a timedelta, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("timeout must be a non-negative number of seconds")
    return None if math.isinf(timeout) else float(timeout)


def _wait_loop(call: Callable[[int], int], timeout: Optional[Seconds]) -> int:
    """Calls ``call(ms)`` until it returns something other than NET_TIMEOUT
    or the deadline passes; on the main thread each wait is at most 100 ms so
    Ctrl-C gets through. Returns the last status."""
    seconds = _timeout_ms(timeout)
    sliced = threading.current_thread() is threading.main_thread()
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        if deadline is None:
            ms = _MAIN_THREAD_SLICE_MS if sliced else NET_WAIT_FOREVER
        else:
            remaining = deadline - time.monotonic()
            ms = min(max(0, math.ceil(remaining * 1000)), NET_WAIT_FOREVER - 1)
            if sliced:
                ms = min(ms, _MAIN_THREAD_SLICE_MS)
        status = call(ms)
        if status != lib.NET_TIMEOUT:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            return status


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


# -- watches --------------------------------------------------------------------------

Row = TypeVar("Row", Task, Memory)
_END = object()


class Watch(_Handle, Generic[Row]):
    """A live query: iterating yields the current rows (a list) first, then
    the new rows after each change, or a :class:`WatchLagged` when this
    reader fell behind (the next rows include everything it missed).

    Iteration ends when the model is closed, its fold halts, or the watch is
    closed from another thread (``close()`` wakes a blocked iteration).
    :meth:`next` is the non-iterator form with a timeout.
    """

    __slots__ = ("_next_fn", "_free_fn", "_row", "_model")
    _kind = "Watch"

    def __init__(
        self,
        handle: Any,
        next_fn: Any,
        free_fn: Any,
        row: Callable[[Dict[str, Any]], Row],
        model: Any,
    ) -> None:
        super().__init__(handle)
        self._next_fn = next_fn
        self._free_fn = free_fn
        self._row = row
        self._model = model  # keeps the model object alive while watched

    def __iter__(self) -> Iterator[Union[List[Row], WatchLagged]]:
        return self

    def __next__(self) -> Union[List[Row], WatchLagged]:
        item = self._pull(None, iterating=True)
        if item is _END or item is None:
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def next(self, timeout: Optional[Seconds] = None) -> Union[List[Row], WatchLagged, None]:
        """Waits up to ``timeout`` seconds (None: no limit) for the next
        update: a list of rows, a :class:`WatchLagged`, or None on timeout.
        Raises CortexWatchEndedError once the watch has ended."""
        item = self._pull(timeout, iterating=False)
        if item is _END:
            raise CortexWatchEndedError(
                lib.NET_END, "the watch has ended: its model closed or halted, or it was closed"
            )
        return item  # type: ignore[no-any-return]

    def _pull(self, timeout: Optional[Seconds], iterating: bool) -> Any:
        ptr = self._ptr
        if ptr is None:
            if iterating:
                return _END
            raise _closed(self._kind)
        rows = new_bytes()
        missed = ffi.new("uint64_t *")
        status = _wait_loop(lambda ms: self._next_fn(ptr, ms, rows, missed), timeout)
        if status == lib.NET_OK:
            return [self._row(r) for r in _take_json(rows)]
        lib.net_bytes_free(rows)
        if status == lib.NET_LAGGED:
            return WatchLagged(int(missed[0]))
        if status == lib.NET_END:
            return _END
        if status == lib.NET_TIMEOUT:
            return None
        if status == lib.NET_ERR_SHUTTING_DOWN and iterating:
            return _END
        check(status)
        return None  # unreachable

    def close(self) -> None:
        """Ends and frees the watch. Idempotent; wakes a blocked ``next``."""
        ptr = self._take()
        if ptr is not None:
            self._free_fn(ptr)


# -- models ---------------------------------------------------------------------------


class _Model(_Handle, Generic[Row]):
    """What Tasks and Memories share: opening, progress, queries, watches,
    snapshots and closing. ``_api`` maps operation names to libnet calls."""

    __slots__ = ("_origin_hash",)
    _api: Dict[str, Any] = {}
    _filter_type: type = object
    _row: Callable[[Dict[str, Any]], Row]
    _handle_type = ""

    def __init__(
        self,
        redex: Redex,
        origin_hash: int,
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
        _snapshot: Optional[Snapshot] = None,
    ) -> None:
        self._lock = threading.Lock()
        self._ptr = None
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
        out = ffi.new(f"{self._handle_type} **")
        manager = redex._handle()
        if _snapshot is None:
            check(self._api["open"](manager, self._origin_hash, cfg, len(config), out))
        else:
            if not isinstance(_snapshot, Snapshot):
                raise TypeError(f"snapshot must be a Snapshot, not {type(_snapshot).__name__}")
            data, n = buf(_snapshot.data, "snapshot.data")
            last = _snapshot.last_seq
            check(
                self._api["restore"](
                    manager,
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

    @property
    def origin_hash(self) -> int:
        """The writer origin stamped on this model's events."""
        return self._origin_hash

    # -- waiting and progress ----------------------------------------------------

    def wait_for_seq(self, seq: int, timeout: Optional[Seconds] = None) -> bool:
        """Waits until the fold has attempted RedEX sequence ``seq`` (True),
        or ``timeout`` seconds passed (False). Raises CortexHaltedError at
        once when the fold stopped short of it."""
        handle = self._handle()
        target = _check_query_u64(seq, "seq")
        status = _wait_loop(lambda ms: self._api["wait_for_seq"](handle, target, ms), timeout)
        if status == lib.NET_TIMEOUT:
            return False
        check(status)
        return True

    def progress(self) -> Progress:
        """The fold's watermarks and health."""
        p = _json_call(self._api["progress"], self._handle())
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
        status = self._api["find_unique"](self._handle(), _id(id), out, found)
        if status != lib.NET_OK:
            lib.net_bytes_free(out)
            check(status)
        if not found[0]:
            lib.net_bytes_free(out)
            return None
        return self._row(_take_json(out))

    def find_many(self, filter: Any = None) -> List[Row]:
        """The rows matching ``filter`` (all rows when None), ordered and
        paged as the filter says."""
        flt = _filter_bytes(filter, self._filter_type)
        rows = _json_call(self._api["find_many"], self._handle(), flt or ffi.NULL, len(flt))
        return [self._row(r) for r in rows]

    def count_where(self, filter: Any = None) -> int:
        """How many rows match (offset/limit ignored)."""
        flt = _filter_bytes(filter, self._filter_type)
        out = ffi.new("uint64_t *")
        check(self._api["count_where"](self._handle(), flt or ffi.NULL, len(flt), out))
        return int(out[0])

    def exists_where(self, filter: Any = None) -> bool:
        """Whether any row matches."""
        flt = _filter_bytes(filter, self._filter_type)
        out = ffi.new("bool *")
        check(self._api["exists_where"](self._handle(), flt or ffi.NULL, len(flt), out))
        return bool(out[0])

    def __len__(self) -> int:
        return self.count_where()

    def __bool__(self) -> bool:
        return True

    # -- watches -------------------------------------------------------------------

    def _watch_type(self) -> str:
        return self._handle_type.replace("adapter", "watch")

    def watch(self, filter: Any = None) -> Watch[Row]:
        """A :class:`Watch` of the rows matching ``filter``; its first update
        is the current result."""
        flt = _filter_bytes(filter, self._filter_type)
        out = ffi.new(f"{self._watch_type()} **")
        check(self._api["watch"](self._handle(), flt or ffi.NULL, len(flt), out))
        return Watch(out[0], self._api["watch_next"], self._api["watch_free"], self._row, self)

    def snapshot_and_watch(self, filter: Any = None) -> Tuple[List[Row], Watch[Row]]:
        """The current rows now, and a :class:`Watch` that yields only later
        changes (nothing lost in between)."""
        flt = _filter_bytes(filter, self._filter_type)
        current = new_bytes()
        out = ffi.new(f"{self._watch_type()} **")
        status = self._api["snapshot_and_watch"](
            self._handle(), flt or ffi.NULL, len(flt), current, out
        )
        if status != lib.NET_OK:
            lib.net_bytes_free(current)
            check(status)
        rows = [self._row(r) for r in _take_json(current)]
        return rows, Watch(out[0], self._api["watch_next"], self._api["watch_free"], self._row, self)

    # -- snapshots -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The state as of the applied watermark, for :meth:`restore`."""
        out = new_bytes()
        last = ffi.new("uint64_t *")
        has_last = ffi.new("bool *")
        status = self._api["snapshot"](self._handle(), out, last, has_last)
        if status != lib.NET_OK:
            lib.net_bytes_free(out)
            check(status)
        return Snapshot(take_bytes(out), int(last[0]) if has_last[0] else None)

    @classmethod
    def restore(cls, redex: Redex, origin_hash: int, snapshot: Snapshot, **config: Any) -> Any:
        """Opens the model from ``snapshot`` (state and app seq), replaying
        only the events after ``snapshot.last_seq``. ``config`` as for the
        constructor. CortexSnapshotError when the bytes do not decode."""
        return cls(redex, origin_hash, _snapshot=snapshot, **config)

    # -- writes ----------------------------------------------------------------------

    def _write(self, name: str, *args: Any) -> int:
        out = ffi.new("uint64_t *")
        check(self._api[name](self._handle(), *args, out))
        return int(out[0])

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        """Stops the fold, closes the model's RedEX file and frees the
        handle. Idempotent and thread-safe; writes racing it either land or
        fail with ShuttingDownError. Raises the close error (e.g. a failed
        final fsync) after freeing."""
        ptr = self._take()
        if ptr is None:
            return
        message = ""
        try:
            status = self._api["close"](ptr)
            if status != lib.NET_OK:
                message = last_error_message()
        finally:
            self._api["free"](ptr)
        if status not in (lib.NET_OK, lib.NET_ERR_REDEX_CLOSED, lib.NET_ERR_SHUTTING_DOWN):
            raise error_for_status(status, message)

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<{type(self).__name__} origin={self._origin_hash:#018x}{state}>"


class Tasks(_Model[Task]):
    """The tasks model (channel ``cortex/tasks``). ``Tasks(redex,
    origin_hash, persistent=..., fsync=..., policy=..., start=...,
    changes_capacity=...)``; retention keys and ``repair`` as
    :meth:`Redex.open_file`."""

    __slots__ = ()
    _kind = "Tasks"
    _handle_type = "net_tasks_adapter_t"
    _filter_type = TaskFilter
    _row = staticmethod(Task._from_json)  # type: ignore[assignment]
    _api = {
        "open": lib.net_tasks_open,
        "restore": lib.net_tasks_restore,
        "close": lib.net_tasks_close,
        "free": lib.net_tasks_free,
        "wait_for_seq": lib.net_tasks_wait_for_seq,
        "progress": lib.net_tasks_progress,
        "find_unique": lib.net_tasks_find_unique,
        "find_many": lib.net_tasks_find_many,
        "count_where": lib.net_tasks_count_where,
        "exists_where": lib.net_tasks_exists_where,
        "watch": lib.net_tasks_watch,
        "snapshot_and_watch": lib.net_tasks_snapshot_and_watch,
        "watch_next": lib.net_tasks_watch_next,
        "watch_free": lib.net_tasks_watch_free,
        "snapshot": lib.net_tasks_snapshot,
        "create": lib.net_tasks_create,
        "rename": lib.net_tasks_rename,
        "complete": lib.net_tasks_complete,
        "delete": lib.net_tasks_delete,
    }

    def create(self, id: int, title: Union[str, bytes]) -> int:
        """Creates task ``id`` (pending); returns the event's RedEX seq."""
        raw = _text(title, "title")
        return self._write("create", _id(id), raw, len(raw))

    def rename(self, id: int, title: Union[str, bytes]) -> int:
        """Renames task ``id``; returns the event's RedEX seq."""
        raw = _text(title, "title")
        return self._write("rename", _id(id), raw, len(raw))

    def complete(self, id: int) -> int:
        """Marks task ``id`` completed; returns the event's RedEX seq."""
        return self._write("complete", _id(id))

    def delete(self, id: int) -> int:
        """Deletes task ``id``; returns the event's RedEX seq."""
        return self._write("delete", _id(id))


def _tag_slices(tags: Iterable[str]) -> Tuple[Any, int, List[Any]]:
    if isinstance(tags, (str, bytes)):
        raise TypeError("tags must be a sequence of str, not a single string")
    return slice_array([_text(t, "tags[]") for t in tags], "tags")


class Memories(_Model[Memory]):
    """The memories model (channel ``cortex/memories``); configuration as
    :class:`Tasks`."""

    __slots__ = ()
    _kind = "Memories"
    _handle_type = "net_memories_adapter_t"
    _filter_type = MemoryFilter
    _row = staticmethod(Memory._from_json)  # type: ignore[assignment]
    _api = {
        "open": lib.net_memories_open,
        "restore": lib.net_memories_restore,
        "close": lib.net_memories_close,
        "free": lib.net_memories_free,
        "wait_for_seq": lib.net_memories_wait_for_seq,
        "progress": lib.net_memories_progress,
        "find_unique": lib.net_memories_find_unique,
        "find_many": lib.net_memories_find_many,
        "count_where": lib.net_memories_count_where,
        "exists_where": lib.net_memories_exists_where,
        "watch": lib.net_memories_watch,
        "snapshot_and_watch": lib.net_memories_snapshot_and_watch,
        "watch_next": lib.net_memories_watch_next,
        "watch_free": lib.net_memories_watch_free,
        "snapshot": lib.net_memories_snapshot,
        "store": lib.net_memories_store,
        "retag": lib.net_memories_retag,
        "pin": lib.net_memories_pin,
        "unpin": lib.net_memories_unpin,
        "delete": lib.net_memories_delete,
    }

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
        return self._write("store", _id(id), raw, len(raw), slices, count, src, len(src))

    def retag(self, id: int, tags: Iterable[str]) -> int:
        """Replaces the tags of memory ``id``; returns the event's RedEX seq."""
        slices, count, _keep = _tag_slices(tags)
        return self._write("retag", _id(id), slices, count)

    def pin(self, id: int) -> int:
        """Pins memory ``id``; returns the event's RedEX seq."""
        return self._write("pin", _id(id))

    def unpin(self, id: int) -> int:
        """Unpins memory ``id``; returns the event's RedEX seq."""
        return self._write("unpin", _id(id))

    def delete(self, id: int) -> int:
        """Deletes memory ``id``; returns the event's RedEX seq."""
        return self._write("delete", _id(id))

