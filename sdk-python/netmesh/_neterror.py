"""NetError, the base class of every exception libnet failures raise, and
:func:`status_name`.

Its subclasses (one per ``NET_ERR_*`` status, a base per family of codes) are
generated from ``include/net.h`` into ``netmesh._errors_gen``;
:mod:`netmesh.errors` gathers them.
"""

from __future__ import annotations

from typing import Union

from ._ffi import ffi, lib
from ._status_gen import Status


def status_name(status: int) -> str:
    """The C name of a status code, e.g. ``"NET_ERR_TOKEN_EXPIRED"``, from
    libnet itself (``"NET_UNKNOWN_STATUS"`` for a code it does not define)."""
    raw: bytes = ffi.string(lib.net_status_name(status))
    return raw.decode()


class NetError(Exception):
    """A libnet call failed.

    ``status`` is the ``net_status_t`` code (a :class:`Status` when it is a
    known one, else a plain ``int``); ``message`` is libnet's detail for it.
    """

    status: Union[Status, int]
    message: str

    def __init__(self, status: int, message: str = "") -> None:
        try:
            status = Status(status)
        except ValueError:
            pass
        self.status = status
        self.message = message
        super().__init__(status, message)

    def __str__(self) -> str:
        name = status_name(int(self.status))
        return f"{self.message} [{name}]" if self.message else name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self.status)}, {self.message!r})"
