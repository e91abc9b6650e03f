"""What every netmesh handle shares: the pointer swap at close, ``close()``
raising the free's status, ``with`` / ``async with``, and a finalizer that
never blocks.

A handle's ``_free`` is its libnet ``net_<thing>_free``: it wakes every call
blocked on the handle, waits (up to 5 s, inside libnet) for calls in flight,
releases the resources and returns ``NET_OK``, ``NET_ERR_BUSY`` (calls were
still running, or a close lost something: the message says which) or a
close error such as a failed final fsync. ``close()`` raises that status.

``__del__`` never calls libnet: a handle the program forgot to close emits
a ``ResourceWarning`` and its free runs on a background daemon thread (the
"reaper"), whose failures go to the ``netmesh`` logger. Frees still queued
when the interpreter exits get a few seconds to finish (``atexit``); handles
still unclosed when the interpreter finalizes are not freed (no thread can
run then: the process exits).

Nothing here is public API.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sys
import threading
import warnings
from types import TracebackType
from typing import Any, Callable, Optional, Type, TypeVar

from ._ffi import last_error_message, lib
from .errors import _closed, error_for_status

_H = TypeVar("_H", bound="_Handle")

_logger = logging.getLogger("netmesh")


def check_free(status: int, message: Optional[str] = None) -> None:
    """Raises the error of a free (or close) that did not return NET_OK."""
    if status != lib.NET_OK:
        raise error_for_status(status, last_error_message() if message is None else message)


class _Reaper:
    """A daemon thread that frees the handles finalizers hand it, in order."""

    def __init__(self) -> None:
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None

    def submit(self, free: Callable[[Any], int], ptr: Any, what: str) -> None:
        if sys.is_finalizing():
            # No thread can start (or run) any more; the process is exiting
            # and the operating system takes the rest back.
            return
        # SimpleQueue.put is reentrant: safe from __del__ on any thread.
        self._queue.put((free, ptr, what))
        thread = self._thread
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=self._run, name="netmesh-reaper", daemon=True)
            self._thread = thread
            thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            free, ptr, what = item
            del item
            try:
                status = free(ptr)
                if status != lib.NET_OK:
                    error = error_for_status(status, last_error_message())
                    _logger.warning("netmesh: freeing a %s left unclosed failed: %s", what, error)
            except Exception:  # noqa: BLE001 - a reaper that dies frees nothing more
                _logger.exception("netmesh: freeing a %s left unclosed raised", what)

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Waits until every free submitted so far has run (True), or
        ``timeout`` seconds passed (False)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._queue.empty()
        marker = threading.Event()
        self._queue.put(marker)
        return marker.wait(timeout)

    def _after_fork_in_child(self) -> None:
        self._queue = queue.SimpleQueue()
        self._thread = None


_reaper = _Reaper()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reaper._after_fork_in_child)


@atexit.register
def _drain_at_exit() -> None:
    # Frees handed over by finalizers (final fsyncs, bus drains) get a few
    # seconds; the daemon thread is not waited for beyond that.
    _reaper.wait_idle(5.0)


class _Handle:
    """A libnet handle. ``_ptr`` is swapped out under a tiny lock at close
    (never held across a libnet call); libnet's guard does the rest."""

    __slots__ = ("_ptr", "_lock", "__weakref__")
    _kind = "handle"

    @staticmethod
    def _free(ptr: Any) -> int:  # pragma: no cover - every handle type sets it
        raise NotImplementedError

    def __init__(self, ptr: Any) -> None:
        self._lock = threading.Lock()
        self._ptr: Optional[Any] = ptr

    def _handle(self) -> Any:
        ptr = self._ptr
        if ptr is None:
            raise _closed(self._kind)
        return ptr

    def _take(self) -> Optional[Any]:
        """Swaps the pointer out; returns it to the one caller that frees it."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ did not get that far
            return None
        with lock:
            ptr, self._ptr = self._ptr, None
        return ptr

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return getattr(self, "_ptr", None) is None

    def close(self) -> None:
        """Frees the handle: wakes the calls blocked on it, waits (up to 5 s)
        for calls in flight on other threads, releases its resources.
        Idempotent and thread-safe; later calls raise ShuttingDownError.

        Raises what the free returned: :class:`~netmesh.BusyError` when
        calls were still running after 5 s (the resources are then leaked
        rather than freed under them) or the close lost something, or the
        close's own error (such as a failed final fsync)."""
        ptr = self._take()
        if ptr is not None:
            check_free(type(self)._free(ptr))

    async def aclose(self) -> None:
        """:meth:`close` on a helper thread, for asyncio code (a free may
        wait for calls in flight, a final fsync or a drain)."""
        from .cancel import run_in_helper

        await run_in_helper(self.close)

    def __enter__(self: _H) -> _H:
        self._handle()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    async def __aenter__(self: _H) -> _H:
        self._handle()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr is None:
            return
        self._ptr = None
        try:
            warnings.warn(
                f"netmesh {self._kind} was never closed; call close() or use `with` "
                f"(freeing it on a background thread)",
                ResourceWarning,
            )
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
        try:
            _reaper.submit(type(self)._free, ptr, self._kind)
        except Exception:  # noqa: BLE001 - interpreter shutdown: the process exits anyway
            pass

