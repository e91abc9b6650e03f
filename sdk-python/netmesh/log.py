"""libnet's log records, forwarded to Python's :mod:`logging`.

libnet never calls into Python. It queues its log records (a free that
could not finish, a failed fsync, a recovery that dropped entries, a bus
shutdown that lost events, ...) once a level is set, and netmesh pulls them
on a background daemon thread (``net_log_next``, waiting without polling)
and logs each one to the ``netmesh`` logger::

    import logging
    logging.getLogger("netmesh").setLevel(logging.INFO)   # what Python shows

    import netmesh
    netmesh.set_log_level("info")                          # what libnet sends

Importing netmesh enables warnings and errors (``LogLevel.WARN``). The
environment variable ``NETMESH_LOG_LEVEL`` (``off``, ``error``, ``warn``,
``info``, ``debug``, ``trace``) sets another level before the import;
:func:`set_log_level` changes it at any time. Each record's text is
``"target: message key=value ..."`` (the target also in the record's
``net_target`` attribute); levels map to ``logging.ERROR``, ``WARNING``,
``INFO``, ``DEBUG`` and 5 (trace). The puller thread never keeps the process
alive.
"""

from __future__ import annotations

import atexit
import enum
import logging
import os
import threading
from typing import Optional, Union

from ._ffi import call_error, check, error_slot, ffi, lib, new_bytes, take_bytes
from .cancel import Cancel

__all__ = ["LogLevel", "set_log_level", "log_level"]

logger = logging.getLogger("netmesh")


class LogLevel(enum.IntEnum):
    """libnet's log levels (``NET_LOG_*``): records at the level and above
    are sent to Python."""

    OFF = lib.NET_LOG_OFF
    ERROR = lib.NET_LOG_ERROR
    WARN = lib.NET_LOG_WARN
    INFO = lib.NET_LOG_INFO
    DEBUG = lib.NET_LOG_DEBUG
    TRACE = lib.NET_LOG_TRACE


#: The logging level of a trace record (below DEBUG).
TRACE = 5

_TO_LOGGING = {
    int(LogLevel.ERROR): logging.ERROR,
    int(LogLevel.WARN): logging.WARNING,
    int(LogLevel.INFO): logging.INFO,
    int(LogLevel.DEBUG): logging.DEBUG,
    int(LogLevel.TRACE): TRACE,
}

_NAMES = {
    "off": LogLevel.OFF,
    "none": LogLevel.OFF,
    "error": LogLevel.ERROR,
    "warn": LogLevel.WARN,
    "warning": LogLevel.WARN,
    "info": LogLevel.INFO,
    "debug": LogLevel.DEBUG,
    "trace": LogLevel.TRACE,
}


def _parse(level: Union[LogLevel, int, str]) -> LogLevel:
    if isinstance(level, str):
        try:
            return _NAMES[level.strip().lower()]
        except KeyError:
            raise ValueError(
                f"unknown log level {level!r} (use one of {', '.join(sorted(_NAMES))})"
            ) from None
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be a LogLevel, an int or a name, not {type(level).__name__}")
    try:
        return LogLevel(level)
    except ValueError:
        raise ValueError(f"log level {level} is not one of LogLevel.OFF..LogLevel.TRACE (0..5)") from None


class _Puller:
    """The daemon thread that pulls libnet's records into ``logging``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stop: Optional[Cancel] = None
        #: For the test suite: the error the last run ended with.
        self.ended_with: Optional[BaseException] = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            stop = Cancel()
            self.ended_with = None
            thread = threading.Thread(target=self._run, args=(stop,), name="netmesh-log", daemon=True)
            self._stop, self._thread = stop, thread
            thread.start()

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Cancels the pull and waits for the thread (True when it ended)."""
        with self._lock:
            stop, thread = self._stop, self._thread
            self._stop = self._thread = None
        if stop is None or thread is None:
            return True
        stop.cancel()
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self, stop: Cancel) -> None:
        token = stop._acquire()
        level = ffi.new("uint32_t *")
        try:
            while True:
                text = new_bytes()
                err = error_slot()
                status = lib.net_log_next(lib.NET_WAIT_FOREVER, level, text, token, err)
                if status == lib.NET_OK:
                    _emit(int(level[0]), take_bytes(text).decode("utf-8", "replace"))
                elif status != lib.NET_TIMEOUT:
                    self.ended_with = call_error(status, err)
                    return
        finally:
            stop._release()
            stop.close()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        running = self._thread is not None
        self._thread = self._stop = None
        if running:
            self.start()


def _emit(level: int, text: str) -> None:
    target, sep, _ = text.partition(": ")
    logger.log(
        _TO_LOGGING.get(level, logging.WARNING),
        "%s",
        text,
        extra={"net_target": target if sep else ""},
    )


_puller = _Puller()
_level = LogLevel.OFF


def set_log_level(level: Union[LogLevel, int, str]) -> None:
    """Sets the level from which libnet sends its log records to the
    ``netmesh`` logger: a :class:`LogLevel`, its number (0..5) or its name
    (``"off"``, ``"error"``, ``"warn"``, ``"info"``, ``"debug"``,
    ``"trace"``). ``"off"`` stops them (libnet then queues nothing).

    What Python shows is then up to the logger's own configuration
    (``logging.getLogger("netmesh").setLevel(...)``, handlers)."""
    global _level
    parsed = _parse(level)
    check(lib.net_log_set_level(int(parsed)))
    _level = parsed
    if parsed != LogLevel.OFF:
        _puller.start()


def log_level() -> LogLevel:
    """The level set with :func:`set_log_level` (``WARN`` by default)."""
    return _level


def _configure_at_import() -> None:
    configured = os.environ.get("NETMESH_LOG_LEVEL")
    try:
        set_log_level(configured if configured else LogLevel.WARN)
    except (TypeError, ValueError) as exc:
        logger.warning("netmesh: ignoring NETMESH_LOG_LEVEL: %s", exc)
        set_log_level(LogLevel.WARN)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_puller._after_fork_in_child)


def _drain() -> None:
    """Logs the records queued now, without waiting."""
    level = ffi.new("uint32_t *")
    while True:
        text = new_bytes()
        if lib.net_log_next(0, level, text, ffi.NULL, ffi.NULL) != lib.NET_OK:
            return
        _emit(int(level[0]), take_bytes(text).decode("utf-8", "replace"))


@atexit.register
def _stop_at_exit() -> None:
    # Registered before the other netmesh exit handlers, so it runs after
    # them (the frees they finish may log): stop the puller, then log what
    # is still queued.
    _puller.stop(1.0)
    try:
        _drain()
    except Exception:  # noqa: BLE001 - interpreter shutdown
        pass
