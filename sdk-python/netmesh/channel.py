"""Channel names and their 16-bit hashes."""

from __future__ import annotations

from typing import Union

from ._ffi import check, ffi, lib
from .errors import ChannelNameError

__all__ = ["channel_hash", "validate_channel", "is_valid_channel"]


def _name_bytes(name: Union[str, bytes]) -> bytes:
    if isinstance(name, str):
        # surrogatepass: a lone surrogate reaches libnet as invalid UTF-8 and
        # is refused there with InvalidArgumentError, like any non-UTF-8 bytes.
        return name.encode("utf-8", "surrogatepass")
    if isinstance(name, (bytes, bytearray, memoryview)):
        return bytes(name)
    raise TypeError(f"channel name must be str or bytes, not {type(name).__name__}")


def validate_channel(name: Union[str, bytes]) -> None:
    """Raises ChannelNameError (naming the rule broken) unless ``name`` is a
    valid channel name; InvalidArgumentError if bytes that are not UTF-8."""
    raw = _name_bytes(name)
    check(lib.net_channel_validate(raw, len(raw)))


def is_valid_channel(name: Union[str, bytes]) -> bool:
    """Whether ``name`` is a valid channel name."""
    try:
        validate_channel(name)
    except ChannelNameError:
        return False
    return True


def channel_hash(name: Union[str, bytes]) -> int:
    """The 16-bit hash of a valid channel name (low 16 bits of XXH3-64).

    Raises ChannelNameError for an invalid name.
    """
    raw = _name_bytes(name)
    out = ffi.new("uint16_t *")
    check(lib.net_channel_hash(raw, len(raw), out))
    return int(out[0])
