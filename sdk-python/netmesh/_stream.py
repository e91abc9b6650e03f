"""What a RedEX tail and a CortEX watch share: a handle whose items are
pulled one at a time, by iteration (``for`` / ``async for``, which ends when
the handle ends) or by ``next`` / ``next_async`` (with a timeout and a token
of their own), keeping the items an abandoned pull had already taken for the
next one.

A stream makes one libnet call in ``_next_raw(ptr, ms, token)``: an item,
None on timeout, or :data:`END` once the stream has ended (``NET_END``). It
wraps that call in :meth:`_Stream._counted`, so that a pull knows whether
another is already inside libnet (which serves them one at a time).

Nothing here is public API.
"""

from __future__ import annotations

import collections
from typing import Any, AsyncIterator, Callable, Deque, Generic, Iterator, Optional, Tuple, Type, TypeVar

from ._ffi import lib
from ._handle import _Handle
from .cancel import Cancel, pull, pull_async
from .errors import NetError, ShuttingDownError, _closed

Item = TypeVar("Item")
T = TypeVar("T")

#: What ``_next_raw`` returns once the stream has ended.
END = object()


class _Stream(_Handle, Generic[Item]):
    """A handle pulled item by item (see the module)."""

    __slots__ = ("_pending", "_cancel", "_calls")
    #: What ``next`` raises once the stream has ended, and its message.
    _ended_error: Type[NetError]
    _ended_message: str

    def __init__(self, handle: Any, cancel: Optional[Cancel]) -> None:
        super().__init__(handle)
        # Items taken by a call that a signal or a task cancellation
        # abandoned, delivered first.
        self._pending: Deque[Any] = collections.deque()
        self._cancel = cancel
        self._calls = 0  # calls inside libnet (which serves them one at a time)

    def _next_raw(self, ptr: Any, ms: int, token: Any) -> Any:  # pragma: no cover - every stream sets it
        raise NotImplementedError

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        item = self._pull(lib.NET_WAIT_FOREVER, self._cancel, iterating=True)
        if item is END or item is None:
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[Item]:
        return self

    async def __anext__(self) -> Item:
        item = await self._pull_async(lib.NET_WAIT_FOREVER, self._cancel, iterating=True)
        if item is END or item is None:
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    def _ended(self, item: Any) -> Optional[Item]:
        """What ``next`` returns for a pulled item; raises once ended."""
        if item is END:
            raise self._ended_error(lib.NET_END, self._ended_message)
        return item  # type: ignore[no-any-return]

    def _start(self, iterating: bool) -> Tuple[Any, Any]:
        """A pending item, or the pointer to call (or END)."""
        try:
            return self._pending.popleft(), None
        except IndexError:
            pass
        ptr = self._ptr
        if ptr is None:
            if iterating:
                return END, None
            raise _closed(self._kind)
        return None, ptr

    def _pull(self, ms: int, cancel: Optional[Cancel], iterating: bool) -> Any:
        """One item, None on timeout, or END."""
        item, ptr = self._start(iterating)
        if ptr is None:
            return item
        try:
            return pull(
                lambda ms, token: self._next_raw(ptr, ms, token), ms, cancel, self._keep, self._calls > 0
            )
        except ShuttingDownError:
            if iterating:
                return END  # the handle was freed between our check and the call
            raise

    async def _pull_async(self, ms: int, cancel: Optional[Cancel], iterating: bool) -> Any:
        item, ptr = self._start(iterating)
        if ptr is None:
            return item
        try:
            return await pull_async(
                lambda ms, token: self._next_raw(ptr, ms, token), ms, cancel, self._keep, self._calls > 0
            )
        except ShuttingDownError:
            if iterating:
                return END
            raise

    def _keep(self, item: Any) -> None:
        if item is not None and item is not END:
            self._pending.append(item)

    def _counted(self, call: Callable[[], T]) -> T:
        """``call()``, the libnet call of ``_next_raw``, counted in
        ``_calls`` while it runs."""
        with self._lock:
            self._calls += 1
        try:
            return call()
        finally:
            with self._lock:
                self._calls -= 1
