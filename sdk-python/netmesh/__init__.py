"""netmesh: the Python SDK of Net.

A thin, typed layer over libnet's C ABI (``net.h``), loaded with cffi from
the copy bundled in the wheel::

    from netmesh import Identity, Token, Scope, channel_hash

    with Identity.generate() as alice, Identity.generate() as bob:
        token = Token.issue(alice, bob.public_key, Scope.SUBSCRIBE,
                            channel_hash("sensors/lidar"), ttl_secs=3600)
        token.validate()

    with Redex() as redex, redex.open_file("sensors/lidar") as log:
        seq = log.append(b"scan 1")
        for item in log.tail(0):            # Entry(seq, payload) or Lagged(...)
            ...

Failures raise subclasses of :class:`NetError` (see :mod:`netmesh.errors`).
Blocking calls take ``cancel=`` (a :class:`Cancel`, see :mod:`netmesh.cancel`)
and have ``*_async`` forms; libnet's log records go to the ``netmesh``
logger (see :mod:`netmesh.log`).
"""

from __future__ import annotations

from ._ffi import SDK_ABI_VERSION, ffi, lib

# First, so that its exit handler runs after the others (see netmesh.log).
from . import log as _log
from .log import LogLevel, log_level, set_log_level
from .cancel import Cancel
from ._version import __version__
from .channel import channel_hash, is_valid_channel, validate_channel
from .envelope import (
    NET_CHAIN_LINK_LEN,
    NET_ENVELOPE_SIZE,
    NET_X25519_KEY_LEN,
    open_envelope,
    seal_envelope,
    x25519_public_key,
)
from .cortex import (
    Memories,
    Memory,
    MemoryFilter,
    Model,
    ModelKind,
    Progress,
    Snapshot,
    Task,
    TaskFilter,
    Tasks,
    Watch,
    WatchLagged,
)
from .netdb import NetDB
from .behavior import LoadBalancer, Permit, Rules, Safety, Selection
from .bus import Bus, BusEvent, IngestReport, PollResult, RedisStreamDedup
from .compute import Compute, ComputeGroup, Daemon, DaemonEvent, DaemonOutput, Delivery, MigrationStatus, Routed
from . import capabilities as _capabilities
from .capabilities import (
    AcceleratorInfo,
    AcceleratorType,
    Capabilities,
    GpuInfo,
    GpuVendor,
    Hardware,
    IndexedNode,
    Limits,
    Modality,
    ModelInfo,
    Software,
    ToolInfo,
)
from .mesh import (
    CapabilityFilter,
    ChannelConfig,
    Mesh,
    MeshEvent,
    MeshStream,
    NatStatus,
    PublishFailure,
    PublishReport,
    Route,
    Routes,
    causal_frame,
    genesis_link,
    next_causal_link,
)
from . import errors
from .errors import *  # noqa: F401,F403  (NetError, Status, status_name and every error class)
from .identity import NET_PUBLIC_KEY_LEN, NET_SEED_LEN, NET_SIGNATURE_LEN, Identity
from .redex import (
    NET_WAIT_FOREVER,
    DropReason,
    DroppedRecord,
    Entry,
    EveryN,
    FsyncPolicy,
    Interval,
    IntervalOrBytes,
    Lagged,
    RecoveryReport,
    Redex,
    RedexFile,
    RedexTail,
    TailItem,
)
from .token import NET_TOKEN_SIZE, Scope, Token, TokenInfo

#: The libnet ABI version this SDK was written for (checked at import).
NET_ABI_VERSION: int = SDK_ABI_VERSION

#: The libnet version of the header this SDK was built from: NET_VERSION is
#: MAJOR * 1_000_000 + MINOR * 1_000 + PATCH (the loaded library's own is
#: :func:`version`).
NET_VERSION_MAJOR: int = lib.NET_VERSION_MAJOR
NET_VERSION_MINOR: int = lib.NET_VERSION_MINOR
NET_VERSION_PATCH: int = lib.NET_VERSION_PATCH
NET_VERSION: int = lib.NET_VERSION


def version() -> str:
    """The version of the loaded libnet ("MAJOR.MINOR.PATCH")."""
    raw: bytes = ffi.string(lib.net_version())
    return raw.decode("ascii")


def abi_version() -> int:
    """The ABI version of the loaded libnet."""
    return int(lib.net_abi_version())


__all__ = [
    # behavior
    "LoadBalancer",
    "Permit",
    "Rules",
    "Safety",
    "Selection",
    # bus
    "Bus",
    "BusEvent",
    "IngestReport",
    "PollResult",
    "RedisStreamDedup",
    # compute
    "Compute",
    "ComputeGroup",
    "Daemon",
    "DaemonEvent",
    "DaemonOutput",
    "Delivery",
    "MigrationStatus",
    "Routed",
    "__version__",
    "version",
    "abi_version",
    "NET_ABI_VERSION",
    "NET_VERSION",
    "NET_VERSION_MAJOR",
    "NET_VERSION_MINOR",
    "NET_VERSION_PATCH",
    # identity
    "Identity",
    "NET_SEED_LEN",
    "NET_PUBLIC_KEY_LEN",
    "NET_SIGNATURE_LEN",
    # tokens
    "Token",
    "TokenInfo",
    "Scope",
    "NET_TOKEN_SIZE",
    # envelopes
    "seal_envelope",
    "open_envelope",
    "x25519_public_key",
    "NET_ENVELOPE_SIZE",
    "NET_CHAIN_LINK_LEN",
    "NET_X25519_KEY_LEN",
    # channels
    "channel_hash",
    "validate_channel",
    "is_valid_channel",
    # mesh
    "Mesh",
    "MeshStream",
    "MeshEvent",
    "CapabilityFilter",
    "ChannelConfig",
    "causal_frame",
    "genesis_link",
    "next_causal_link",
    # capability sets
    *_capabilities.__all__,
    "PublishFailure",
    "PublishReport",
    "Route",
    "Routes",
    "NatStatus",
    # cancellation and logging
    "Cancel",
    "LogLevel",
    "set_log_level",
    "log_level",
    # CortEX
    "Model",
    "ModelKind",
    "Tasks",
    "Memories",
    "Task",
    "Memory",
    "TaskFilter",
    "MemoryFilter",
    "Progress",
    "Snapshot",
    "Watch",
    "WatchLagged",
    "NetDB",
    # RedEX
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
    "NET_WAIT_FOREVER",
]
# errors: NetError, Status, status_name and one class per NET_ERR_* status and
# family, generated from include/net.h (see netmesh.errors).
__all__ += errors.__all__

_log._configure_at_import()
