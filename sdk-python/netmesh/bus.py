"""The event bus: sharded high-rate ingest into a durable adapter, read
back through one merged cursor.

::

    from netmesh import Bus

    with Bus(num_shards=4, adapter={"type": "redex", "dir": "/var/lib/app/bus"}) as bus:
        bus.ingest(b"one event")                       # or BusBackpressureError
        report = bus.ingest_batch([b"a", b"b", b"c"])  # one libnet call
        bus.flush()
        page = bus.poll(limit=1000)                    # PollResult
        for event in page.events:                      # BusEvent(shard, timestamp_ns, id, dedup_id, payload)
            ...
        page = bus.poll(cursor=page.next_cursor)       # continue where it ended

Adapters: ``{"type": "redex", "dir": D}`` (the default, embedded: one
RedEX file per shard; without ``dir`` the files live in memory),
``{"type": "jetstream", "url": "nats://..."}`` or ``{"type": "redis",
"url": "redis://..."}``. With
``producer_state_dir`` the producer's dedup nonce and sequences persist, so
a restarted producer never repeats a dedup id.

Redis has no server-side dedup: drop repeats of a retried pipeline with
:class:`RedisStreamDedup` keyed by :attr:`BusEvent.dedup_id`.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence

from ._ffi import (
    BytesLike, buf, call_error, check, check_call, error_slot, ffi, lib, new_bytes, pack_bytes, slice_array, take_bytes,
)
from ._handle import _Handle
from .cancel import Cancel, call_async, call_blocking
from .errors import BusConfigError

__all__ = ["Bus", "BusEvent", "IngestReport", "PollResult", "RedisStreamDedup"]

_HEAD = struct.Struct("<HQH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class BusEvent(NamedTuple):
    """One polled event."""

    shard: int
    timestamp_ns: int
    id: str
    #: ``nonce:shard:sequence:index`` where the adapter stores it (JetStream,
    #: Redis), else None.
    dedup_id: Optional[str]
    payload: bytes


class IngestReport(NamedTuple):
    """What :meth:`Bus.ingest_batch` did: events ``[0, taken)`` were dealt
    with (queued or sampled); the rest were refused by backpressure."""

    queued: int
    sampled: int
    taken: int


class PollResult(NamedTuple):
    """A page of events and where to continue."""

    events: List[BusEvent]
    next_cursor: str
    has_more: bool
    truncated_at_per_shard_cap: bool
    stalled_shards: List[int]


def _decode_events(data: bytes) -> List[BusEvent]:
    events: List[BusEvent] = []
    at, end = 0, len(data)
    while at < end:
        shard, ts, n = _HEAD.unpack_from(data, at)
        at += _HEAD.size
        event_id = data[at : at + n].decode()
        at += n
        (n,) = _U16.unpack_from(data, at)
        at += 2
        dedup = data[at : at + n].decode() if n else None
        at += n
        (n,) = _U32.unpack_from(data, at)
        at += 4
        events.append(BusEvent(shard, ts, event_id, dedup, data[at : at + n]))
        at += n
    return events


class Bus(_Handle):
    """An event bus (``net_bus_t``).

    Keyword options are the bus configuration (``num_shards``,
    ``shard_capacity``, ``backpressure`` — e.g. ``{"mode": "fail_producer"}``
    —, ``batch``, ``adapter_timeout_ms``, ``max_attempts``,
    ``retry_base_ms``, ``retry_max_ms``, ``shutdown_timeout_ms``,
    ``scaling``, ``adapter``, ``producer_state_dir``); libnet validates
    them and BusConfigError names a bad key. Closing shuts the bus down,
    draining what is buffered.

    :meth:`flush` and :meth:`poll` may wait (on the adapter): they take
    ``cancel=`` and have ``*_async`` forms; :meth:`close` wakes them.
    """

    __slots__ = ()
    _kind = "Bus"
    _free = staticmethod(lib.net_bus_free)

    def __init__(self, config: Optional[Dict[str, Any]] = None, **options: Any) -> None:
        self._ptr = None
        merged = dict(config or {})
        merged.update(options)
        try:
            raw = json.dumps(merged, separators=(",", ":")).encode() if merged else b""
        except (TypeError, ValueError) as exc:
            raise BusConfigError(lib.NET_ERR_BUS_CONFIG, f"configuration is not JSON: {exc}") from None
        out = ffi.new("net_bus_t **")
        check(lib.net_bus_new(raw if raw else ffi.NULL, len(raw), out))
        super().__init__(out[0])

    # -- ingest ----------------------------------------------------------------

    def ingest(self, event: BytesLike) -> None:
        """Queues one event. BusBackpressureError (full: retry later),
        BusSampledError (decimated by policy), BusUnroutedError."""
        data, n = buf(event, "event")
        check(lib.net_bus_ingest_raw(self._handle(), data, n))

    def ingest_batch(self, events: Sequence[BytesLike], *, copy: bool = True) -> IngestReport:
        """Queues a batch on one shard in one libnet call. Backpressure does
        not raise: events from ``report.taken`` on were refused — retry them
        later. With ``copy=True`` (the fast path for small events) the events
        are packed into one buffer first; with ``copy=False`` libnet reads
        each one in place (better for large events)."""
        items = events if isinstance(events, (list, tuple)) else list(events)
        if not copy:
            return self._ingest_in_place(items)
        data, lengths = pack_bytes(items, "events")
        report = ffi.new("net_bus_ingest_report_t *")
        check(
            lib.net_bus_ingest_raw_packed(
                self._handle(),
                ffi.from_buffer("uint8_t[]", data) if data else ffi.NULL,
                len(data),
                ffi.from_buffer("uint32_t[]", lengths) if lengths else ffi.NULL,
                len(lengths),
                report,
            )
        )
        return IngestReport(int(report.queued), int(report.sampled), int(report.taken))

    def _ingest_in_place(self, items: Sequence[BytesLike]) -> IngestReport:
        slices, n, _keep = slice_array(items, "events")
        report = ffi.new("net_bus_ingest_report_t *")
        check(lib.net_bus_ingest_raw_batch(self._handle(), slices, n, report))
        return IngestReport(int(report.queued), int(report.sampled), int(report.taken))

    # -- consume ---------------------------------------------------------------

    def _poll_call(
        self,
        cursor: Optional[str],
        limit: int,
        per_shard_limit: Optional[int],
        shards: Optional[Iterable[int]],
        filter: Optional[Dict[str, Any]],
    ) -> Any:
        request: Dict[str, Any] = {"limit": limit}
        if cursor is not None:
            request["cursor"] = cursor
        if per_shard_limit is not None:
            request["per_shard_limit"] = per_shard_limit
        if shards is not None:
            request["shards"] = list(shards)
        if filter is not None:
            request["filter"] = filter
        raw = json.dumps(request, separators=(",", ":")).encode()
        handle = self._handle()

        def call(token: Any) -> PollResult:
            events_out, meta_out = new_bytes(), new_bytes()
            err = error_slot()
            status = lib.net_bus_poll(handle, raw, len(raw), events_out, meta_out, token, err)
            if status != lib.NET_OK:
                lib.net_bytes_free(events_out)
                lib.net_bytes_free(meta_out)
                raise call_error(status, err)
            events = _decode_events(take_bytes(events_out))
            meta = json.loads(take_bytes(meta_out))
            return PollResult(
                events,
                meta["next_cursor"],
                bool(meta["has_more"]),
                bool(meta["truncated_at_per_shard_cap"]),
                list(meta["stalled_shards"]),
            )

        return call

    def poll(
        self,
        cursor: Optional[str] = None,
        limit: int = 1000,
        *,
        per_shard_limit: Optional[int] = None,
        shards: Optional[Iterable[int]] = None,
        filter: Optional[Dict[str, Any]] = None,
        cancel: Optional[Cancel] = None,
    ) -> PollResult:
        """Up to ``limit`` events after ``cursor`` (None: from the start),
        merged across shards in timestamp order. ``filter`` is the JSON
        predicate language (exact integer comparisons). Pass
        ``next_cursor`` to the next poll. A poll waits only on the adapter
        (a remote server); CancelledError when ``cancel`` is cancelled,
        ShuttingDownError when the bus is closed meanwhile."""
        call = self._poll_call(cursor, limit, per_shard_limit, shards, filter)
        return call_blocking(call, cancel)  # type: ignore[no-any-return]

    async def poll_async(
        self,
        cursor: Optional[str] = None,
        limit: int = 1000,
        *,
        per_shard_limit: Optional[int] = None,
        shards: Optional[Iterable[int]] = None,
        filter: Optional[Dict[str, Any]] = None,
        cancel: Optional[Cancel] = None,
    ) -> PollResult:
        """:meth:`poll` for asyncio."""
        call = self._poll_call(cursor, limit, per_shard_limit, shards, filter)
        return await call_async(call, cancel)

    # -- control ---------------------------------------------------------------

    def _flush_call(self) -> Any:
        handle = self._handle()

        def call(token: Any) -> None:
            err = error_slot()
            check_call(lib.net_bus_flush(handle, token, err), err)

        return call

    def flush(self, *, cancel: Optional[Cancel] = None) -> None:
        """Waits until everything ingested so far is stored (or counted
        lost), then flushes the adapter. CancelledError when ``cancel`` is
        cancelled (the events keep being dispatched; only the wait ends),
        ShuttingDownError when the bus is closed meanwhile."""
        call_blocking(self._flush_call(), cancel)

    async def flush_async(self, *, cancel: Optional[Cancel] = None) -> None:
        """:meth:`flush` for asyncio."""
        await call_async(self._flush_call(), cancel)

    def stats(self) -> Dict[str, Any]:
        """The bus's counters (events_ingested, events_dispatched,
        events_dropped, ..., adapter, producer_nonce)."""
        out = new_bytes()
        check(lib.net_bus_stats(self._handle(), out))
        result: Dict[str, Any] = json.loads(take_bytes(out))
        return result

    @property
    def num_shards(self) -> int:
        """Active shards."""
        out = ffi.new("uint16_t *")
        check(lib.net_bus_num_shards(self._handle(), out))
        return int(out[0])

    def shutdown(self) -> Dict[str, Any]:
        """Stops ingest, drains, flushes (``net_bus_close``); returns the
        report (events_dropped, events_stranded, shutdown_was_lossy,
        adapter_error). The bus still answers :meth:`stats` until closed;
        a second call returns the same report."""
        out = new_bytes()
        check(lib.net_bus_close(self._handle(), out))
        result: Dict[str, Any] = json.loads(take_bytes(out))
        return result

    def close(self) -> None:
        """Shuts the bus down (if not yet), draining what is buffered, and
        frees it (idempotent). A flush or poll blocked on it raises
        ShuttingDownError first. Raises BusyError when the shutdown lost
        events (the message has the counts; call :meth:`shutdown` first for
        the whole report) or calls were still running after 5 s."""
        super().close()

    def __repr__(self) -> str:
        return "<Bus closed>" if self._ptr is None else f"<Bus shards={self.num_shards}>"


class RedisStreamDedup(_Handle):
    """A bounded set of recently seen dedup ids (``net_redis_dedup_t``).
    Eviction is FIFO by first sight (not LRU); capacity is clamped to
    1..2**24."""

    __slots__ = ()
    _kind = "RedisStreamDedup"
    _free = staticmethod(lib.net_redis_dedup_free)

    def __init__(self, capacity: int = 65536) -> None:
        self._ptr = None
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity must be a non-negative int, got {capacity!r}")
        out = ffi.new("net_redis_dedup_t **")
        check(lib.net_redis_dedup_new(min(capacity, (1 << 64) - 1), out))
        super().__init__(out[0])

    def is_duplicate(self, dedup_id: str) -> bool:
        """True if ``dedup_id`` was seen (and is still remembered); else
        remembers it and returns False."""
        raw = dedup_id.encode()
        out = ffi.new("bool *")
        check(lib.net_redis_dedup_is_duplicate(self._handle(), raw, len(raw), out))
        return bool(out[0])

    def check_batch(self, dedup_ids: Sequence[str]) -> List[bool]:
        """:meth:`is_duplicate` for each id, in order, in one libnet call."""
        slices, n, _keep = slice_array([i.encode() for i in dedup_ids], "dedup_ids")
        out = ffi.new("bool[]", max(n, 1))
        check(lib.net_redis_dedup_check_batch(self._handle(), slices, n, out))
        return [bool(out[i]) for i in range(n)]

    def _info(self) -> "tuple[int, int, int]":
        length, capacity = ffi.new("size_t *"), ffi.new("size_t *")
        duplicates = ffi.new("uint64_t *")
        check(lib.net_redis_dedup_info(self._handle(), length, capacity, duplicates))
        return int(length[0]), int(capacity[0]), int(duplicates[0])

    def __len__(self) -> int:
        return self._info()[0]

    @property
    def capacity(self) -> int:
        """The effective capacity."""
        return self._info()[1]

    @property
    def duplicates(self) -> int:
        """Duplicates reported so far."""
        return self._info()[2]

    def clear(self) -> None:
        """Forgets every id."""
        check(lib.net_redis_dedup_clear(self._handle()))

    def close(self) -> None:
        """Frees the set (idempotent)."""
        super().close()
