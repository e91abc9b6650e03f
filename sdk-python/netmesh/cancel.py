"""Cancellation of blocking calls, and how netmesh waits without polling.

Every blocking call (``RedexTail.next``, ``Watch.next``, ``wait_for_seq``,
``Mesh.recv`` / ``recv_batch`` / ``accept`` / ``connect``,
``MeshStream.send_blocking``, ``Bus.flush`` / ``poll``) takes ``cancel=``, a
:class:`Cancel`. Cancelling it from any thread makes the call raise
:class:`~netmesh.CancelledError` promptly (libnet's ``net_cancel_t``)::

    from netmesh import Cancel, CancelledError

    stop = Cancel()
    threading.Timer(30, stop.cancel).start()        # or any other thread, any time
    try:
        for item in file.tail(0, cancel=stop):      # iteration raises when cancelled
            ...
    except CancelledError:
        ...
    finally:
        stop.close()

How a call waits:

* On a thread other than the main one it calls libnet directly, with the
  whole timeout (``NET_WAIT_FOREVER`` for none) and the GIL released.
* On the main thread, where Python runs signal handlers, it first asks
  libnet without waiting; if it has to wait, the libnet call runs on a
  helper thread while the main thread waits for it in a way signals
  interrupt. Ctrl-C (``KeyboardInterrupt``, or any exception a signal
  handler raises) cancels the libnet call through a ``net_cancel_t`` of its
  own, waits the moment it takes to return, and is re-raised. An item a
  pull call had already taken when the signal came is kept for the next
  call (nothing is lost).
* The ``*_async`` methods do the same for asyncio: the libnet call runs on a
  helper thread and cancelling the task cancels it (``asyncio.CancelledError``
  is re-raised; an item already taken is kept for the next call).

Helper threads are daemon threads, kept for reuse, and never keep the
process alive.
"""

from __future__ import annotations

import _thread
import asyncio
import collections
import os
import queue
import threading
from types import TracebackType
from typing import Any, Awaitable, Callable, Deque, Optional, Set, Type, TypeVar

from ._ffi import check, ffi, lib
from .errors import CancelledError, ShuttingDownError

__all__ = ["Cancel"]

T = TypeVar("T")


class Cancel:
    """A cancellation token (``net_cancel_t``) for blocking calls.

    Pass it as ``cancel=`` to any blocking call (one token may serve many
    calls, on any threads). :meth:`cancel` — callable from any thread, any
    number of times — makes every call using it, now or later, raise
    :class:`~netmesh.CancelledError`; the message says whether the call was
    cancelled while it waited or was given a token already cancelled.

    ``with Cancel() as c:`` closes (frees) the token at the end of the block;
    :meth:`close` frees it explicitly. Closing never waits: a call still
    using the token keeps it alive, and it is freed when the last such call
    returns. A closed token cannot be passed to new calls
    (``ShuttingDownError``); ``cancel()`` on it does nothing. A token left to
    the garbage collector is freed then (it holds no resources worth a
    warning).
    """

    __slots__ = ("_ptr", "_lock", "_users", "_closing", "_cancelled", "_children", "__weakref__")

    def __init__(self) -> None:
        # Reentrant: cancel() may be called from a signal handler that
        # interrupted this same thread inside another method.
        self._lock = threading.RLock()
        self._ptr: Any = None
        self._users = 0
        self._closing = False
        self._cancelled = False
        self._children: Optional[Set["Cancel"]] = None
        out = ffi.new("net_cancel_t **")
        check(lib.net_cancel_new(out))
        self._ptr = out[0]

    def cancel(self) -> None:
        """Cancels every call using this token, now or later. Idempotent;
        thread-safe; a no-op once the token is closed."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            if self._ptr is not None:
                lib.net_cancel_cancel(self._ptr)
            children = list(self._children) if self._children else []
        for child in children:
            child.cancel()

    @property
    def cancelled(self) -> bool:
        """Whether the token has been cancelled (asked of libnet while the
        token is alive)."""
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                return self._cancelled
            out = ffi.new("bool *")
            if lib.net_cancel_is_cancelled(ptr, out) != lib.NET_OK:
                return self._cancelled
            return bool(out[0])

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closing

    def close(self) -> None:
        """Frees the token (now, or when the last call using it returns).
        Idempotent and thread-safe; never waits, and does not cancel calls
        using it."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self._users:
                return  # the last call using it frees it
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.net_cancel_free(ptr)

    def __enter__(self) -> "Cancel":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Unreachable, so no call is using it: freeing is instant.
        ptr = getattr(self, "_ptr", None)
        if ptr is not None:
            self._ptr = None
            try:
                lib.net_cancel_free(ptr)
            except Exception:  # interpreter shutdown
                pass

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "not cancelled"
        return f"<Cancel {state}{' closed' if self._closing else ''}>"

    # -- internal: use by calls, links -------------------------------------------

    def _acquire(self) -> Any:
        """The C pointer, for one call; the token stays alive until
        :meth:`_release`."""
        with self._lock:
            if self._closing or self._ptr is None:
                raise ShuttingDownError(lib.NET_ERR_SHUTTING_DOWN, "the Cancel is closed")
            self._users += 1
            return self._ptr

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users or not self._closing:
                return
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.net_cancel_free(ptr)

    def _link(self, child: "Cancel") -> None:
        """Cancels ``child`` whenever this token is cancelled (now included).
        ShuttingDownError once this token is closed (it takes no new calls)."""
        with self._lock:
            if self._closing:
                raise ShuttingDownError(lib.NET_ERR_SHUTTING_DOWN, "the Cancel is closed")
            if not self._cancelled:
                if self._children is None:
                    self._children = set()
                self._children.add(child)
                return
        child.cancel()

    def _unlink(self, child: "Cancel") -> None:
        with self._lock:
            if self._children is not None:
                self._children.discard(child)


def _check_cancel(cancel: Any) -> Optional[Cancel]:
    if cancel is not None and not isinstance(cancel, Cancel):
        raise TypeError(f"cancel must be a netmesh.Cancel, not {type(cancel).__name__}")
    return cancel


# -- helper threads ------------------------------------------------------------------


class _Job:
    """One libnet call run on a helper thread: ``fn(token_ptr)``, with the
    token held for the call (the waiting thread may close it meanwhile: it
    is then freed when the call returns)."""

    __slots__ = ("fn", "token", "value", "error", "done", "queued", "finished", "callback")

    def __init__(self, fn: Callable[[Any], Any], token: Optional[Cancel]) -> None:
        self.fn = fn
        self.token = token
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.done = _thread.allocate_lock()
        self.done.acquire()
        self.queued = False
        self.finished = False
        self.callback: Optional[Callable[[], None]] = None

    def run(self) -> None:
        token = self.token
        try:
            if token is None:
                self.value = self.fn(None)
            else:
                ptr = token._acquire()  # ShuttingDownError if abandoned before it ran
                try:
                    self.value = self.fn(ptr)
                finally:
                    token._release()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self.error = exc
        finally:
            self.fn = self.token = None  # type: ignore[assignment]
            callback = self.callback
            self.finished = True
            self.done.release()
            if callback is not None:
                callback()

    def result(self) -> Any:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.value


_MAX_IDLE = 8
_idle: Deque["_Helper"] = collections.deque()
_idle_lock = threading.Lock()


class _Helper(threading.Thread):
    """A daemon thread that runs jobs, parked between them for reuse."""

    def __init__(self) -> None:
        super().__init__(name="netmesh-call", daemon=True)
        self.jobs: "queue.SimpleQueue[_Job]" = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            job.run()
            del job
            with _idle_lock:
                if len(_idle) >= _MAX_IDLE:
                    return
                _idle.append(self)


def _submit(job: _Job) -> None:
    with _idle_lock:
        helper = _idle.pop() if _idle else None
    if helper is None:
        helper = _Helper()
        helper.start()
    helper.jobs.put(job)
    job.queued = True


def _after_fork_in_child() -> None:
    # The parked helpers do not exist in a forked child.
    global _idle_lock
    _idle.clear()
    _idle_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _wait_regardless(job: _Job) -> None:
    """Waits for ``job`` even if signal handlers raise meanwhile (it was
    cancelled and returns promptly). A signal handler may also raise just
    after an acquire succeeded: ``finished`` (set before the release) tells."""
    while not job.finished:
        try:
            job.done.acquire()
            return
        except BaseException:  # noqa: BLE001 - a second Ctrl-C: keep waiting
            continue


#: For the test suite: the outcome of the last call abandoned to a signal or
#: a task cancellation (its value, or the exception it ended with).
_last_abandoned: Any = None
#: For the test suite: how many main-thread waits are in progress.
_main_waits = 0


def _abandoned(job: _Job, keep: Optional[Callable[[Any], None]]) -> None:
    global _last_abandoned
    if job.error is None:
        _last_abandoned = job.value
        if keep is not None:
            keep(job.value)
    else:
        _last_abandoned = job.error
        job.error = None


def call_direct(fn: Callable[[Any], T], cancel: Optional[Cancel]) -> T:
    """``fn(token)`` on this thread, with the caller's token (or NULL)."""
    if cancel is None:
        return fn(ffi.NULL)
    ptr = cancel._acquire()
    try:
        return fn(ptr)
    finally:
        cancel._release()


def call_blocking(
    fn: Callable[[Any], T],
    cancel: Optional[Cancel],
    keep: Optional[Callable[[Any], None]] = None,
) -> T:
    """Runs ``fn(token)``, a libnet call that may wait, so that it can be
    cancelled: directly off the main thread; on the main thread on a helper
    thread, cancelled (and its completed value given to ``keep``) when a
    signal handler raises while it waits."""
    _check_cancel(cancel)
    if threading.current_thread() is not threading.main_thread():
        return call_direct(fn, cancel)
    global _main_waits
    token = Cancel()
    job = _Job(fn, token)
    _main_waits += 1
    try:
        if cancel is not None:
            cancel._link(token)
        try:
            _submit(job)
            job.done.acquire()
        except BaseException:
            # A signal handler raised (Ctrl-C): cancel the call, wait the
            # moment it takes to return, keep what it took, re-raise.
            token.cancel()
            if job.queued:
                _wait_regardless(job)
                _abandoned(job, keep)
            raise
        return job.result()  # type: ignore[no-any-return]
    finally:
        _main_waits -= 1
        if cancel is not None:
            cancel._unlink(token)
        token.close()  # freed now, or when the call returns


def _completion(loop: asyncio.AbstractEventLoop, job: _Job) -> "asyncio.Future[None]":
    """A future of ``loop`` that the helper thread running ``job`` resolves
    when the job has finished (submit the job after this)."""
    future: "asyncio.Future[None]" = loop.create_future()

    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(resolve)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    job.callback = wake
    return future


async def call_async(
    fn: Callable[[Any], T],
    cancel: Optional[Cancel],
    keep: Optional[Callable[[Any], None]] = None,
) -> T:
    """Awaits ``fn(token)`` run on a helper thread; cancelling the awaiting
    task cancels the libnet call (its completed value goes to ``keep``)."""
    _check_cancel(cancel)
    loop = asyncio.get_running_loop()
    token = Cancel()
    try:
        if cancel is not None:
            cancel._link(token)
        job = _Job(fn, token)
        future = _completion(loop, job)
        _submit(job)
        try:
            await asyncio.shield(future)
        except BaseException:
            token.cancel()
            while not future.done():
                try:
                    await asyncio.shield(future)
                except BaseException:  # noqa: BLE001 - cancelled again: keep waiting
                    continue
            _abandoned(job, keep)
            raise
        return job.result()  # type: ignore[no-any-return]
    finally:
        if cancel is not None:
            cancel._unlink(token)
        token.close()  # freed now, or when the call returns


def run_in_helper(fn: Callable[[], T]) -> Awaitable[T]:
    """Awaits ``fn()`` run on a helper thread (for ``aclose``); a cancelled
    task stops waiting, the call still completes."""

    async def run() -> T:
        job = _Job(lambda _: fn(), None)
        future = _completion(asyncio.get_running_loop(), job)
        _submit(job)
        await asyncio.shield(future)
        return job.result()  # type: ignore[no-any-return]

    return run()


def pull(
    fn: Callable[[int, Any], Any],
    ms: int,
    cancel: Optional[Cancel],
    keep: Optional[Callable[[Any], None]] = None,
    shared: bool = False,
) -> Any:
    """A pull call ``fn(timeout_ms, token)`` (None on timeout). On the main
    thread it first asks without waiting, and waits (on a helper thread)
    only if it must. ``shared``: another call is in flight on the same
    handle, which libnet serves one at a time — even a call that does not
    wait may then wait for it, so the main thread never makes it itself."""
    _check_cancel(cancel)
    if threading.current_thread() is not threading.main_thread():
        return call_direct(lambda token: fn(ms, token), cancel)
    if not shared:
        value = call_direct(lambda token: fn(0, token), cancel)
        if value is not None or ms == 0:
            return value
    return call_blocking(lambda token: fn(ms, token), cancel, keep)


async def pull_async(
    fn: Callable[[int, Any], Any],
    ms: int,
    cancel: Optional[Cancel],
    keep: Optional[Callable[[Any], None]] = None,
    shared: bool = False,
) -> Any:
    """:func:`pull` for asyncio: asks without waiting on the event loop's
    thread (unless ``shared``), then waits on a helper thread if it must."""
    _check_cancel(cancel)
    if not shared:
        value = call_direct(lambda token: fn(0, token), cancel)
        if value is not None or ms == 0:
            return value
    return await call_async(lambda token: fn(ms, token), cancel, keep)


def cancelled_error(message: str) -> CancelledError:
    """A CancelledError raised on the Python side."""
    return CancelledError(lib.NET_ERR_CANCELLED, message)
