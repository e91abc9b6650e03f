"""The exception hierarchy: one class per libnet error status (NET_ERR_*).

Every failing call raises a subclass of :class:`NetError` carrying the
``status`` code and the ``message`` libnet gave for it. The classes, their
docstrings and the status -> class map are generated from ``include/net.h``
(``netmesh._errors_gen``): a family of codes (``NET_ERR_REDEX_*``, ...) shares
a base class, which also catches codes of that family this SDK does not know
yet; statuses that mean "the input was wrong" are also ``ValueError``, and
``RedexClosedError`` is also a :class:`ShuttingDownError`. Two classes are
written here: :class:`RedexTailEndedError` and :class:`CortexWatchEndedError`
(a tail or watch that has nothing more: ``NET_END``, not a failure).

The generated classes::

"""

from __future__ import annotations

from typing import List, Type

from ._errors_gen import *  # noqa: F401,F403  (every generated class, in __all__)
from ._errors_gen import __all__ as _generated_names
from ._errors_gen import ERROR_CLASSES, ERROR_FAMILIES, HIERARCHY, CortexError, RedexError, ShuttingDownError
from ._ffi import lib
from ._neterror import NetError, status_name
from ._status_gen import Status

if __doc__ is not None:  # not under python -OO
    __doc__ += "".join(f"    {line}\n" for line in HIERARCHY.splitlines())

__all__: List[str] = [
    "NetError",
    "Status",
    "status_name",
    "RedexTailEndedError",
    "CortexWatchEndedError",
] + [n for n in _generated_names if n.endswith("Error")]


class RedexTailEndedError(RedexError):
    """Raised by :meth:`RedexTail.next` when the tail has nothing more and
    never will: its file was closed, or the tail was closed while the call
    waited (status ``NET_END``; not a failure). Iterating a tail simply
    stops instead."""


class CortexWatchEndedError(CortexError):
    """Raised by :meth:`Watch.next` when the watch has nothing more and never
    will (status ``NET_END``; not a failure). Iterating simply stops."""


def error_for_status(status: int, message: str = "") -> NetError:
    """The exception for a non-OK status: its generated class; for a code this
    SDK does not know yet, its family's base class (say :class:`RedexError`
    for a new ``NET_ERR_REDEX_*`` code), else a plain NetError (also for a
    non-error outcome such as NET_TIMEOUT where none was expected)."""
    cls: Type[NetError] = ERROR_CLASSES.get(status, NetError)
    if cls is NetError:
        for lowest, highest, base in ERROR_FAMILIES:
            if lowest <= status <= highest:
                cls = base
                break
    if cls is NetError and not message and status > 0:
        message = "unexpected non-error status from libnet"
    return cls(status, message)


def _closed(what: str) -> ShuttingDownError:
    return ShuttingDownError(lib.NET_ERR_SHUTTING_DOWN, f"{what} is closed")
