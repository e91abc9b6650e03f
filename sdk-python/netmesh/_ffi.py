"""Loads libnet through cffi (ABI mode) and holds the low-level helpers.

The library is the copy bundled in the wheel (``netmesh/_native/libnet.so``)
unless the ``NET_LIBRARY_PATH`` environment variable names another one (for
development against a freshly built libnet). The cdef (``netmesh/_cdef.py``)
is generated from ``include/net.h`` by ``scripts/gen-sdk-bindings.py`` (``make
header``) and committed; ``make header-check`` fails when it is stale.

Nothing here is public API; use the classes in :mod:`netmesh`.
"""

from __future__ import annotations

import os
import datetime
import math
from array import array
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from cffi import FFI  # type: ignore[import-untyped,unused-ignore]

from ._cdef import CDEF

#: The libnet ABI version this SDK was written against.
SDK_ABI_VERSION = 2

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
BUNDLED_LIBRARY_PATH = os.path.join(_PACKAGE_DIR, "_native", "libnet.so")

BytesLike = Union[bytes, bytearray, memoryview]


def _library_path() -> str:
    override = os.environ.get("NET_LIBRARY_PATH")
    if override:
        return override
    return BUNDLED_LIBRARY_PATH


def check_abi_version(found: int, header_version: int, path: str) -> None:
    """Raises ImportError unless libnet (and the header the binding was
    generated from) implement the ABI version this SDK was written for."""
    if found != SDK_ABI_VERSION:
        raise ImportError(
            f"netmesh was written for libnet ABI version {SDK_ABI_VERSION}, but "
            f"the library at {path} implements ABI version {found}; install a "
            f"netmesh release built for that library"
        )
    if header_version != SDK_ABI_VERSION:
        raise ImportError(
            f"netmesh was written for libnet ABI version {SDK_ABI_VERSION}, but "
            f"its binding was generated from a net.h declaring NET_ABI_VERSION "
            f"{header_version}; regenerate the bindings (make header) from a matching header"
        )


ffi = FFI()
ffi.cdef(CDEF)

library_path = _library_path()
if library_path == BUNDLED_LIBRARY_PATH and not os.path.isfile(library_path):
    raise ImportError(
        f"netmesh: no bundled libnet at {library_path}: this looks like a source "
        f"checkout; install the netmesh wheel (make -C sdk-python install) or set "
        f"NET_LIBRARY_PATH to a libnet.so"
    )
try:
    lib: Any = ffi.dlopen(library_path)
except OSError as exc:
    raise ImportError(
        f"netmesh: cannot load libnet from {library_path}: {exc}"
        + (
            " (set by NET_LIBRARY_PATH)"
            if os.environ.get("NET_LIBRARY_PATH")
            else " (the wheel should bundle it; reinstall netmesh)"
        )
    ) from exc

check_abi_version(int(lib.net_abi_version()), int(lib.NET_ABI_VERSION), library_path)


# -- helpers ---------------------------------------------------------------


def last_error_message() -> str:
    """The calling thread's last failure detail (call right after the failure)."""
    raw: bytes = ffi.string(lib.net_last_error_message())
    return raw.decode("utf-8", "replace")


def check(status: int) -> None:
    """Raises the NetError subclass for a failed status (anything but NET_OK).

    The message is read at once, on this thread, so it belongs to this call.
    """
    if status != lib.NET_OK:
        from .errors import error_for_status

        raise error_for_status(status, last_error_message())


def new_bytes() -> Any:
    """A zeroed ``net_bytes_t`` out-parameter."""
    return ffi.new("net_bytes_t *")


def take_bytes(out: Any) -> bytes:
    """Copies a ``net_bytes_t`` filled by libnet and releases it."""
    try:
        if out.len == 0:
            return b""
        data: bytes = ffi.buffer(out.ptr, out.len)[:]
        return data
    finally:
        lib.net_bytes_free(out)


def call_bytes(fn: Any, *args: Any) -> bytes:
    """Calls ``fn(*args, net_bytes_t *out)``, checks the status, returns the bytes."""
    out = new_bytes()
    status = fn(*args, out)
    if status != lib.NET_OK:
        lib.net_bytes_free(out)  # never filled on failure; free is a no-op then
        check(status)
    return take_bytes(out)


#: The array typecode of a C uint32_t.
U32 = "I" if array("I").itemsize == 4 else "L"


def pack_bytes(items: Sequence[BytesLike], name: str) -> Tuple[bytes, "array[int]"]:
    """``items`` back to back and each one's length in bytes (a uint32
    ``array``), for the packed batch calls. TypeError names the first item
    that is not bytes-like."""
    try:
        # join takes any bytes-like object and refuses str: the fast path.
        data = b"".join(items)
    except TypeError:
        bad = next(i for i, e in enumerate(items) if not isinstance(e, (bytes, bytearray, memoryview)))
        raise TypeError(f"{name}[{bad}] must be bytes-like, not {type(items[bad]).__name__}") from None
    lengths = array(U32, map(len, items))
    if sum(lengths) != len(data):
        # A memoryview whose items are wider than a byte: count bytes.
        lengths = array(U32, (memoryview(e).nbytes for e in items))
    return data, lengths


def buf(data: BytesLike, name: str = "data") -> Tuple[Any, int]:
    """A zero-copy ``(uint8_t *, len)`` view of a bytes-like object."""
    if isinstance(data, str):
        raise TypeError(f"{name} must be bytes-like, not str")
    try:
        view = ffi.from_buffer("uint8_t[]", data)
    except TypeError:
        raise TypeError(
            f"{name} must be bytes-like (bytes, bytearray, memoryview), "
            f"not {type(data).__name__}"
        ) from None
    return view, len(view)


def slice_array(items: Iterable[BytesLike], name: str) -> Tuple[Any, int, List[Any]]:
    """A ``net_slice_t[]`` viewing each bytes-like item in place, for the
    batch calls: ``(array, count, views)`` — the array is NULL when empty,
    and ``views`` must stay referenced until the call returns."""
    views = [buf(item, f"{name}[{i}]") for i, item in enumerate(items)]
    if not views:
        return ffi.NULL, 0, views
    slices = ffi.new("net_slice_t[]", len(views))
    for i, (ptr, n) in enumerate(views):
        slices[i].ptr = ptr
        slices[i].len = n
    return slices, len(views), views


def opt_buf(data: Optional[BytesLike], name: str = "data") -> Tuple[Any, int]:
    """Like :func:`buf`, but ``None`` becomes ``(NULL, 0)``."""
    if data is None:
        return ffi.NULL, 0
    return buf(data, name)


# -- blocking calls ----------------------------------------------------------


def error_slot() -> Any:
    """A zeroed ``net_error_t`` for a blocking call: libnet writes the
    call's status and message to it on failure, so the detail is right
    whichever thread made the call."""
    return ffi.new("net_error_t *")


def call_error(status: int, err: Any) -> Exception:
    """The exception for a blocking call that returned ``status`` (an error)
    with ``err`` (its ``net_error_t``, released here)."""
    from .errors import error_for_status

    try:
        message = ""
        if err.message.len:
            message = ffi.buffer(err.message.ptr, err.message.len)[:].decode("utf-8", "replace")
        code = int(err.status) if err.status else int(status)
    finally:
        lib.net_error_clear(err)
    return error_for_status(code, message)


def check_call(status: int, err: Any) -> None:
    """Raises the error of a failed blocking call (anything below NET_OK)."""
    if status < 0:
        raise call_error(status, err)


def timeout_ms(timeout: Any, what: str = "timeout") -> int:
    """Seconds (int, float or timedelta; None or infinity: no limit) as a
    libnet ``timeout_ms``. A positive timeout never rounds down to 0."""
    if timeout is None:
        return int(lib.NET_WAIT_FOREVER)
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{what} must be seconds or a timedelta, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{what} must be a non-negative number of seconds")
    if math.isinf(timeout):
        return int(lib.NET_WAIT_FOREVER)
    ms = math.ceil(timeout * 1000)
    return min(ms, int(lib.NET_WAIT_FOREVER) - 1)
