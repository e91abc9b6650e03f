"""RedEX: Net's crash-safe append-only log, one file per channel.

::

    from netmesh import Redex, EveryN, Entry, Lagged

    with Redex("/var/lib/app/redex") as redex:           # Redex() = memory only
        with redex.open_file("sensors/lidar", persistent=True,
                             fsync=EveryN(1), max_events=10_000) as log:
            seq = log.append(b"hello")
            log.read(seq)                                 # b"hello"
            for item in log.tail(0):                      # backfill, then live
                if isinstance(item, Lagged):              # retention got there first
                    ...
                else:
                    seq, payload = item                   # an Entry

Three handle types, each with ``close()`` and ``with``:

* :class:`Redex` — the manager of the channels under one base directory;
* :class:`RedexFile` — one channel's log (appends, reads, retention, tails);
* :class:`RedexTail` — an iterator over a file from a sequence number on.

Like every netmesh handle they are thread-safe, never hold a lock across a
libnet call, and ``close()`` may race calls on other threads: libnet's handle
guard refuses calls that start afterwards (:class:`~netmesh.ShuttingDownError`)
and waits for the ones already inside.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import struct
import threading
from dataclasses import dataclass
from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Literal,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from ._ffi import (
    BytesLike,
    buf,
    call_error,
    check,
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
from .cancel import Cancel, _check_cancel
from .channel import _name_bytes
from .errors import (
    RedexInvalidConfigError,
    RedexTailEndedError,
    error_for_status,
)

__all__ = [
    "Redex",
    "RedexFile",
    "RedexTail",
    "Entry",
    "Lagged",
    "TailItem",
    "RecoveryReport",
    "DroppedRecord",
    "DropReason",
    "EveryN",
    "Interval",
    "IntervalOrBytes",
    "FsyncPolicy",
    "Seconds",
    "NET_WAIT_FOREVER",
]

#: ``timeout_ms`` value of ``net_redex_tail_next`` meaning "no limit".
NET_WAIT_FOREVER: int = lib.NET_WAIT_FOREVER

_U64_MAX = (1 << 64) - 1
_RECORD_HEADER = struct.Struct("<QI")  # read_range records: seq u64 LE | len u32 LE

#: A duration: seconds (``int`` or ``float``) or a :class:`datetime.timedelta`.
Seconds = Union[int, float, datetime.timedelta]


# -- items a tail delivers -----------------------------------------------------


class Entry(NamedTuple):
    """One log entry: its sequence number and its payload."""

    seq: int
    payload: bytes


@dataclass(frozen=True)
class Lagged:
    """Delivered by a tail in place of entries that retention removed before
    the tail reached them: ``missed_from <= seq < resume_at`` are gone, and
    the next item is the entry at ``resume_at`` or later.

    Deliberately not a tuple, so ``for seq, payload in tail`` fails loudly on
    a lag instead of unpacking the wrong fields.
    """

    missed_from: int
    resume_at: int

    @property
    def missed(self) -> int:
        """How many sequence numbers were skipped."""
        return self.resume_at - self.missed_from


#: What a tail yields.
TailItem = Union[Entry, Lagged]


# -- recovery reports -------------------------------------------------------------

#: Why recovery dropped a record: the payload does not match its checksum; it
#: ends past the end of ``dat`` (a torn append, a truncated or lost ``dat``,
#: a corrupt offset or length); its sequence number is at or above 2**63; or
#: its sequence number does not continue the run of its neighbours.
DropReason = Literal["checksum_mismatch", "payload_out_of_range", "seq_out_of_range", "seq_breaks_run"]


@dataclass(frozen=True)
class DroppedRecord:
    """One index record that opening a persistent file dropped."""

    #: The record's position in ``idx`` (0-based) as found.
    position: int
    #: The sequence number its slot keeps as a hole (never reused), or None
    #: when its position leaves no sequence number free for it.
    seq: Optional[int]
    #: The sequence number the record claimed (the same as ``seq`` unless the
    #: sequence number itself was the damage).
    stored_seq: int
    #: Why it was dropped.
    reason: DropReason


@dataclass(frozen=True)
class RecoveryReport:
    """What opening a persistent file found and did
    (:meth:`RedexFile.recovery_report`). Everything recovery dropped is in
    ``dropped``; nothing is dropped silently."""

    #: The live generation after the open.
    generation: int
    #: Whole index records found in ``idx``.
    records: int
    #: Entries recovered (readable).
    entries: int
    #: Hole records in the index after the open (sequence numbers known
    #: missing and never reused), including those this open made.
    holes: int
    #: The records this open dropped, with why.
    dropped: Tuple[DroppedRecord, ...]
    #: Bytes of a partial record cut from the end of ``idx`` (a torn write).
    torn_idx_bytes: int
    #: Bytes cut from the end of ``dat`` that no kept entry refers to.
    dat_truncated_bytes: int
    #: Entries (and holes) whose missing timestamp was set to the time of the open.
    timestamps_restored: int
    #: Whether ``idx`` and ``ts`` were rewritten (atomically) to record drops.
    index_rewritten: bool
    #: Whether the open was asked to repair (``repair=True``) and had to.
    repaired: bool
    #: Other findings, one sentence each.
    notes: Tuple[str, ...]
    #: True when the open found nothing to drop, cut or repair.
    clean: bool

    @classmethod
    def _from_json(cls, raw: Dict[str, Any]) -> "RecoveryReport":
        return cls(
            generation=int(raw["generation"]),
            records=int(raw["records"]),
            entries=int(raw["entries"]),
            holes=int(raw["holes"]),
            dropped=tuple(
                DroppedRecord(
                    position=int(d["position"]),
                    seq=None if d["seq"] is None else int(d["seq"]),
                    stored_seq=int(d["stored_seq"]),
                    reason=d["reason"],
                )
                for d in raw["dropped"]
            ),
            torn_idx_bytes=int(raw["torn_idx_bytes"]),
            dat_truncated_bytes=int(raw["dat_truncated_bytes"]),
            timestamps_restored=int(raw["timestamps_restored"]),
            index_rewritten=bool(raw["index_rewritten"]),
            repaired=bool(raw["repaired"]),
            notes=tuple(str(n) for n in raw["notes"]),
            clean=bool(raw["clean"]),
        )


# -- configuration ---------------------------------------------------------------


def _check_u64(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _U64_MAX:
        raise RedexInvalidConfigError(
            lib.NET_ERR_REDEX_INVALID_CONFIG,
            f"{key}: expected a non-negative integer below 2**64, got {value}",
        )
    return value


def _to_ms(value: Any, key: str) -> int:
    """Seconds (or a timedelta) as whole milliseconds; a positive duration
    never rounds down to 0."""
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"{key} must be seconds (int or float) or a timedelta, not {type(value).__name__}"
        )
    if math.isnan(seconds) or seconds < 0 or seconds * 1000 > _U64_MAX:
        raise RedexInvalidConfigError(
            lib.NET_ERR_REDEX_INVALID_CONFIG,
            f"{key}: expected a non-negative duration in seconds, got {value!r}",
        )
    ms = round(seconds * 1000)
    return 1 if ms == 0 and seconds > 0 else ms


@dataclass(frozen=True)
class EveryN:
    """fsync after every ``n`` appended entries (a batch counts each entry;
    ``n = 0`` means 1). With ``EveryN(1)`` a returned append is durable."""

    n: int

    def __post_init__(self) -> None:
        _check_u64(self.n, "fsync.every_n")

    def _json(self) -> Dict[str, int]:
        return {"every_n": self.n}


@dataclass(frozen=True)
class Interval:
    """fsync from a background thread every ``seconds`` (0: never)."""

    seconds: Seconds

    def __post_init__(self) -> None:
        _to_ms(self.seconds, "fsync.interval_ms")

    def _json(self) -> Dict[str, int]:
        return {"interval_ms": _to_ms(self.seconds, "fsync.interval_ms")}


@dataclass(frozen=True)
class IntervalOrBytes:
    """fsync every ``seconds`` (if non-zero) and, inline, whenever the bytes
    appended since the last sync reach ``max_bytes`` (if non-zero)."""

    seconds: Seconds
    max_bytes: int

    def __post_init__(self) -> None:
        _to_ms(self.seconds, "fsync.interval_ms")
        _check_u64(self.max_bytes, "fsync.max_bytes")

    def _json(self) -> Dict[str, int]:
        return {
            "interval_ms": _to_ms(self.seconds, "fsync.interval_ms"),
            "max_bytes": self.max_bytes,
        }


#: When appends are made durable. ``"never"`` (or ``None``) is the default:
#: appends survive a process crash but not a power loss until ``sync()`` or
#: ``close()``. Any other policy needs ``persistent=True``.
FsyncPolicy = Union[Literal["never"], EveryN, Interval, IntervalOrBytes, None]


def config_json(
    *,
    persistent: bool = False,
    fsync: FsyncPolicy = None,
    max_events: Optional[int] = None,
    max_bytes: Optional[int] = None,
    max_age: Optional[Seconds] = None,
    repair: bool = False,
) -> str:
    """The configuration JSON ``net_redex_open_file`` takes, for these
    :meth:`Redex.open_file` arguments ("" for the defaults)."""
    config: Dict[str, Any] = {}
    if persistent:
        config["persistent"] = True
    if not isinstance(repair, bool):
        raise TypeError(f"repair must be a bool, not {type(repair).__name__}")
    if repair:
        config["repair"] = True
    if fsync is None or fsync == "never":
        pass
    elif isinstance(fsync, (EveryN, Interval, IntervalOrBytes)):
        config["fsync"] = fsync._json()
    elif isinstance(fsync, str):
        raise RedexInvalidConfigError(
            lib.NET_ERR_REDEX_INVALID_CONFIG,
            f'fsync: unknown policy {fsync!r} (use "never", EveryN(n), '
            f"Interval(seconds) or IntervalOrBytes(seconds, max_bytes))",
        )
    else:
        raise TypeError(
            f'fsync must be "never", EveryN, Interval or IntervalOrBytes, '
            f"not {type(fsync).__name__}"
        )
    retention: Dict[str, int] = {}
    if max_events is not None:
        retention["max_events"] = _check_u64(max_events, "retention.max_events")
    if max_bytes is not None:
        retention["max_bytes"] = _check_u64(max_bytes, "retention.max_bytes")
    if max_age is not None:
        retention["max_age_ms"] = _to_ms(max_age, "retention.max_age_ms")
    if retention:
        config["retention"] = retention
    return json.dumps(config, separators=(",", ":")) if config else ""


def _out_u64() -> Any:
    return ffi.new("uint64_t *")


# -- the manager -----------------------------------------------------------------


class Redex(_Handle):
    """A RedEX manager: the channels under one base directory, or memory only.

    ``Redex(base_dir)`` stores persistent files under ``base_dir`` (one
    directory per channel, ``base_dir/sensors/lidar``); ``Redex()`` can only
    open memory files. Opening a channel this manager already has open returns
    another handle to the same file (closing either closes it).

    Files opened through a manager stay open after the manager is closed;
    close each one itself.
    """

    __slots__ = ("_base_dir",)
    _kind = "Redex"
    _free = staticmethod(lib.net_redex_free)

    def __init__(self, base_dir: Union[str, "os.PathLike[str]", None] = None) -> None:
        self._lock = threading.Lock()
        self._ptr = None
        self._base_dir: Optional[str] = None
        out = ffi.new("net_redex_t **")
        if base_dir is None:
            check(lib.net_redex_open(ffi.NULL, 0, out))
        else:
            raw = os.fsencode(base_dir)
            if not raw:
                raise ValueError("base_dir is empty (use None for a memory-only manager)")
            self._base_dir = os.fsdecode(raw)
            check(lib.net_redex_open(raw, len(raw), out))
        self._ptr = out[0]

    @property
    def base_dir(self) -> Optional[str]:
        """The base directory of persistent files (None: memory only)."""
        return self._base_dir

    def open_file(
        self,
        name: Union[str, bytes],
        *,
        persistent: bool = False,
        fsync: FsyncPolicy = None,
        max_events: Optional[int] = None,
        max_bytes: Optional[int] = None,
        max_age: Optional[Seconds] = None,
        repair: bool = False,
    ) -> "RedexFile":
        """Opens (creating, or recovering from disk) the file of channel ``name``.

        * ``persistent``: store it under the base directory (default: memory);
        * ``fsync``: ``"never"`` (default), :class:`EveryN`, :class:`Interval`
          or :class:`IntervalOrBytes` (persistent files only);
        * ``max_events``, ``max_bytes``, ``max_age`` (seconds or timedelta):
          retention limits, applied by :meth:`RedexFile.sweep_retention`;
        * ``repair``: when the live generation lost its ``idx`` or ``dat``,
          rebuild the channel from what can be proven instead of raising
          RedexCorruptError (persistent files only); the
          :meth:`RedexFile.recovery_report` lists what was lost.

        Raises ChannelNameError for a bad name, RedexInvalidConfigError naming
        the bad key, RedexNoPersistentDirError for a persistent file on a
        memory-only manager, RedexLockedError when another writer has the
        channel, RedexCorruptError when a file the channel needs is missing
        or damaged (the message names it; nothing was changed), RedexIoError
        when recovery fails. Recovery checksums the log, so opening a large
        persistent file takes a while (the GIL is released). What recovery
        dropped (a torn tail, records failing their checksum) is listed by
        :meth:`RedexFile.recovery_report`.
        """
        raw_name = _name_bytes(name)
        config = config_json(
            persistent=persistent,
            fsync=fsync,
            max_events=max_events,
            max_bytes=max_bytes,
            max_age=max_age,
            repair=repair,
        ).encode()
        handle = self._handle()
        out = ffi.new("net_redex_file_t **")
        check(
            lib.net_redex_open_file(
                handle,
                raw_name,
                len(raw_name),
                config if config else ffi.NULL,
                len(config),
                out,
            )
        )
        return RedexFile(out[0], raw_name.decode("utf-8"))

    def close(self) -> None:
        """Frees the manager. Idempotent and thread-safe; waits (up to 5 s,
        inside libnet) for calls in flight, such as an ``open_file`` still
        recovering (BusyError if one still ran after that). Files it opened
        stay open."""
        super().close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        where = repr(self._base_dir) if self._base_dir is not None else "memory"
        return f"<Redex {where}{state}>"


# -- files -----------------------------------------------------------------------


class RedexFile(_Handle):
    """One channel's append-only log. Get one from :meth:`Redex.open_file`.

    Sequence numbers start at 0, are consecutive and never reused. ``len(f)``
    is the number of live entries (retention removes the oldest); a file is
    always truthy, even when empty.

    ``close()`` syncs and closes the file, releases the channel directory for
    other writers, and ends its tails; later calls raise ShuttingDownError.
    """

    __slots__ = ("_name",)
    _kind = "RedexFile"
    _free = staticmethod(lib.net_redex_file_free)

    def __init__(self, _handle: Any, name: str) -> None:
        """Internal: use :meth:`Redex.open_file`."""
        if _handle is None or _handle == ffi.NULL:
            raise TypeError("use Redex.open_file() to open a RedexFile")
        super().__init__(_handle)
        self._name = name

    @property
    def name(self) -> str:
        """The channel name."""
        return self._name

    # -- appends -------------------------------------------------------------

    def append(self, payload: BytesLike) -> int:
        """Appends ``payload`` (any length); returns its sequence number.

        Raises RedexPoisonedError, RedexTooLargeError, RedexSeqExhaustedError
        or RedexIoError (nothing appended), RedexSyncFailedError (appended but its required fsync
        failed). The GIL is released while libnet writes.
        """
        handle = self._handle()
        ptr, n = buf(payload, "payload")
        out = _out_u64()
        check(lib.net_redex_file_append(handle, ptr, n, out))
        return int(out[0])

    def append_inline(self, payload: BytesLike) -> int:
        """Appends exactly 8 bytes, stored inside the index record (no payload
        file write). RedexInlineLengthError for any other length."""
        handle = self._handle()
        ptr, n = buf(payload, "payload")
        out = _out_u64()
        check(lib.net_redex_file_append_inline(handle, ptr, n, out))
        return int(out[0])

    def append_batch(self, payloads: Iterable[BytesLike]) -> Optional[int]:
        """Appends the payloads atomically on consecutive sequence numbers and
        returns the first one, or None when ``payloads`` is empty (nothing
        appended). On error nothing of the batch is appended."""
        handle = self._handle()
        slices, n, _keep = slice_array(list(payloads), "payloads")
        first = _out_u64()
        appended = ffi.new("bool *")
        check(
            lib.net_redex_file_append_batch(
                handle, slices, n, first, appended
            )
        )
        return int(first[0]) if appended[0] else None

    # -- reads -----------------------------------------------------------------

    def read(self, seq: int) -> Optional[bytes]:
        """The payload of entry ``seq``, or None if there is none (never
        appended, removed by retention, or dropped for a bad checksum)."""
        handle = self._handle()
        out = new_bytes()
        found = ffi.new("bool *")
        status = lib.net_redex_file_read(handle, _seq_arg(seq, "seq"), out, found)
        if status != lib.NET_OK:
            lib.net_bytes_free(out)
            check(status)
        payload = take_bytes(out)
        return payload if found[0] else None

    def read_range(self, start: int, stop: Optional[int] = None) -> List[Entry]:
        """The entries with ``start <= seq < stop`` (``stop=None``: to the
        end), in order, as ``(seq, payload)`` :class:`Entry` tuples; missing
        sequence numbers are skipped."""
        handle = self._handle()
        lo = _seq_arg(start, "start")
        hi = _U64_MAX if stop is None else _seq_arg(stop, "stop")
        out = new_bytes()
        status = lib.net_redex_file_read_range(handle, lo, hi, out)
        if status != lib.NET_OK:
            lib.net_bytes_free(out)
            check(status)
        try:
            return _unpack_records(out)
        finally:
            lib.net_bytes_free(out)

    @property
    def next_seq(self) -> int:
        """The sequence number the next append will get (never goes backwards)."""
        out = _out_u64()
        check(lib.net_redex_file_next_seq(self._handle(), out))
        return int(out[0])

    def __len__(self) -> int:
        """The number of live entries."""
        out = _out_u64()
        check(lib.net_redex_file_len(self._handle(), out))
        return int(out[0])

    def __bool__(self) -> bool:
        return True  # not "empty is false": a file object is always true

    def recovery_report(self) -> Optional[RecoveryReport]:
        """What opening this persistent file found and did (the records
        recovery dropped and why, holes, truncations, repairs), or None for a
        memory file."""
        out = new_bytes()
        check(lib.net_redex_file_recovery_report(self._handle(), out))
        raw = json.loads(take_bytes(out))
        return None if raw is None else RecoveryReport._from_json(raw)

    # -- durability and retention ------------------------------------------------

    def sync(self) -> None:
        """Makes every append so far durable (a no-op for memory files).
        RedexIoError if the fsync fails (the file is then poisoned)."""
        check(lib.net_redex_file_sync(self._handle()))

    def sweep_retention(self) -> int:
        """Applies the retention limits, removing the oldest entries they
        require (compacting a persistent file so the space is freed); returns
        how many were removed. Tails that had not read them get a
        :class:`Lagged`."""
        out = _out_u64()
        check(lib.net_redex_file_sweep_retention(self._handle(), out))
        return int(out[0])

    # -- tails -----------------------------------------------------------------

    def tail(self, from_seq: int = 0, *, cancel: Optional[Cancel] = None) -> "RedexTail":
        """A reader that yields every entry from ``from_seq`` on (backfill),
        then follows new appends, with no gap and no duplicate. Use
        ``file.tail(file.next_seq)`` for new appends only. The tail keeps
        this object alive; closing the file ends it.

        ``cancel`` is the token iterating the tail waits with (iteration
        raises CancelledError once it is cancelled); :meth:`RedexTail.next`
        takes its own."""
        _check_cancel(cancel)
        out = ffi.new("net_redex_tail_t **")
        check(lib.net_redex_file_tail(self._handle(), _seq_arg(from_seq, "from_seq"), out))
        return RedexTail(out[0], self, from_seq, cancel)

    # -- lifetime ------------------------------------------------------------------

    def shutdown(self) -> None:
        """Syncs and closes the file but keeps the handle (``net_redex_file_close``):
        the channel is released for other writers, its tails end, and later
        calls raise RedexClosedError until :meth:`close`. Idempotent.
        Raises RedexIoError if the sync failed."""
        status = lib.net_redex_file_close(self._handle())
        if status not in (lib.NET_OK, lib.NET_ERR_REDEX_CLOSED):
            check(status)

    def close(self) -> None:
        """Syncs and closes the file (whatever the fsync policy), releases
        the channel for other writers, ends its tails and frees the handle
        (``net_redex_file_free``). Idempotent and thread-safe.

        Calls in flight on other threads finish first (libnet waits up to
        5 s); later calls raise ShuttingDownError. Raises RedexIoError if the
        final fsync failed, BusyError if calls were still running after 5 s
        (the file is then leaked, never closed under them).
        """
        super().close()

    def __repr__(self) -> str:
        ptr = self._ptr
        if ptr is None:
            return f"<RedexFile {self._name!r} closed>"
        out = _out_u64()
        if lib.net_redex_file_next_seq(ptr, out) != lib.NET_OK:
            return f"<RedexFile {self._name!r} closed>"
        return f"<RedexFile {self._name!r} next_seq={int(out[0])}>"


def _seq_arg(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _U64_MAX:
        raise ValueError(f"{name} must be a sequence number in [0, 2**64), got {value}")
    return value


def _unpack_records(out: Any) -> List[Entry]:
    """Unpacks ``seq u64 LE | len u32 LE | payload`` records (one copy per payload)."""
    n = int(out.len)
    if n == 0:
        return []
    data = ffi.buffer(out.ptr, n)
    entries: List[Entry] = []
    pos = 0
    header = _RECORD_HEADER.size
    while pos < n:
        if pos + header > n:
            raise error_for_status(lib.NET_ERR_INTERNAL, "read_range: truncated record header")
        seq, length = _RECORD_HEADER.unpack_from(data, pos)
        pos += header
        if pos + length > n:
            raise error_for_status(lib.NET_ERR_INTERNAL, "read_range: truncated record payload")
        entries.append(Entry(seq, data[pos : pos + length]))
        pos += length
    return entries


# -- tails -----------------------------------------------------------------------


class RedexTail(_Stream[TailItem]):
    """A reader of a :class:`RedexFile`: an iterator that backfills from a
    sequence number, then blocks for new appends.

    ::

        for item in file.tail(0):
            if isinstance(item, Lagged):
                print("retention removed", item.missed_from, "..", item.resume_at)
                continue
            seq, payload = item

        async for item in file.tail(0):       # the same from asyncio
            ...

    It yields :class:`Entry` ``(seq, payload)`` tuples and, when retention
    removed entries before the tail reached them, a :class:`Lagged` item
    (then it carries on from ``resume_at``). Iteration ends when the file or
    the tail is closed, from any thread: ``close()`` wakes a blocked
    iteration at once. It raises CancelledError when the tail's ``cancel``
    token (:meth:`RedexFile.tail`) is cancelled. While it blocks the GIL is
    released; on the main thread Ctrl-C interrupts it (see
    :mod:`netmesh.cancel`).

    :meth:`next` / :meth:`next_async` are the one-item forms, with a
    timeout and a token of their own. A storage failure reading an entry
    raises RedexIoError.

    One consumer at a time is the intended use; several threads may pull
    from the same tail (each item goes to one of them), but
    :attr:`Lagged.missed_from` is then only as exact as :attr:`position`.
    """

    __slots__ = ("_file", "_position")
    _kind = "RedexTail"
    _free = staticmethod(lib.net_redex_tail_free)
    _ended_error = RedexTailEndedError
    _ended_message = "the tail has ended: its file or the tail itself was closed"

    def __init__(
        self, _handle: Any, file: Optional[RedexFile], from_seq: int, cancel: Optional[Cancel] = None
    ) -> None:
        """Internal: use :meth:`RedexFile.tail`."""
        if _handle is None or _handle == ffi.NULL:
            raise TypeError("use RedexFile.tail() to start a RedexTail")
        super().__init__(_handle, cancel)
        self._file = file  # keeps the file open while the tail is in use
        self._position = from_seq

    @property
    def position(self) -> int:
        """The sequence number this tail delivers (or reports missed) next."""
        return self._position

    def next(
        self, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[TailItem]:
        """Waits up to ``timeout`` (seconds or timedelta; None: no limit; 0:
        don't wait) for the next item: an :class:`Entry`, a :class:`Lagged`,
        or None when the timeout passed.

        Raises RedexTailEndedError when the tail has ended (the file was
        closed, or this tail was closed while waiting), ShuttingDownError if
        the tail was already closed, CancelledError when ``cancel`` is
        cancelled (nothing is consumed).
        """
        return self._ended(self._pull(timeout_ms(timeout), cancel, iterating=False))

    async def next_async(
        self, timeout: Optional[Seconds] = None, *, cancel: Optional[Cancel] = None
    ) -> Optional[TailItem]:
        """:meth:`next` for asyncio: waits on a helper thread, never on the
        event loop. Cancelling the awaiting task cancels the libnet call; an
        entry it had already taken is kept for the next call."""
        return self._ended(await self._pull_async(timeout_ms(timeout), cancel, iterating=False))

    def _next_raw(self, ptr: Any, ms: int, token: Any) -> Any:
        """One ``net_redex_tail_next``: an item, None on timeout, or END."""
        seq = _out_u64()
        payload = new_bytes()
        err = error_slot()
        status = self._counted(lambda: lib.net_redex_tail_next(ptr, ms, seq, payload, token, err))
        if status == lib.NET_OK:
            entry = Entry(int(seq[0]), take_bytes(payload))
            self._position = entry.seq + 1
            return entry
        if status == lib.NET_LAGGED:
            lib.net_bytes_free(payload)  # empty for a lag; free anyway
            lag = Lagged(self._position, int(seq[0]))
            self._position = lag.resume_at
            return lag
        if status == lib.NET_END:
            return END
        if status == lib.NET_TIMEOUT:
            return None
        raise call_error(status, err)

    def close(self) -> None:
        """Ends and frees the tail. Idempotent and thread-safe; a ``next`` or
        an iteration blocked on another thread wakes up and ends (the free
        returns once it has left libnet)."""
        super().close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        name = self._file.name if self._file is not None else "?"
        return f"<RedexTail {name!r} position={self._position}{state}>"
