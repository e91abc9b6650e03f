"""The exception hierarchy: one class per libnet error status (NET_ERR_*).

Every failing call raises a subclass of :class:`NetError` carrying the
``status`` code and the ``message`` libnet gave for it::

    NetError
    ├── InvalidArgumentError (also ValueError)
    ├── ShuttingDownError          the object was closed (or is closing)
    ├── PanicError                 a libnet bug; the call had no effect
    ├── InternalError
    ├── ReadOnlyError              a public-key-only identity cannot sign/seal
    ├── InvalidPublicKeyError (also ValueError)
    ├── InvalidSignatureError
    ├── TokenError
    │   ├── TokenInvalidSignatureError
    │   ├── TokenNotYetValidError
    │   ├── TokenExpiredError
    │   ├── TokenDelegationExhaustedError
    │   ├── TokenDelegationNotAllowedError
    │   ├── TokenNotAuthorizedError
    │   ├── TokenInvalidFormatError (also ValueError)
    │   └── TokenZeroTtlError (also ValueError)
    ├── EnvelopeError
    │   ├── EnvelopeUnknownVersionError
    │   ├── EnvelopeInvalidLengthError (also ValueError)
    │   ├── EnvelopeInvalidSignerKeyError
    │   ├── EnvelopeInvalidAttestationError
    │   ├── EnvelopeSealOpenFailedError
    │   └── EnvelopeOriginHashMismatchError
    ├── ChannelNameError (also ValueError)
    └── RedexError                 RedEX, the append-only log
        ├── RedexIoError
        ├── RedexPoisonedError
        ├── RedexSyncFailedError
        ├── RedexLockedError
        ├── RedexClosedError (also ShuttingDownError)
        ├── RedexInvalidConfigError (also ValueError)
        ├── RedexInlineLengthError (also ValueError)
        ├── RedexTooLargeError
        ├── RedexGenerationOverflowError
        ├── RedexNoPersistentDirError
        ├── RedexCorruptError      a file the channel needs is missing or damaged
        ├── RedexSeqExhaustedError no sequence numbers left (below 2**63)
        └── RedexTailEndedError    not a failure: a tail has nothing more (NET_END)
    ├── MeshError                  the encrypted UDP mesh
    │   ├── MeshConfigError
    │   ├── MeshIoError
    │   ├── MeshHandshakeTimeoutError
    │   ├── MeshSessionExistsError
    │   ├── MeshUnknownPeerError
    │   ├── MeshBackpressureError
    │   ├── MeshTooLargeError
    │   ├── MeshIdentityRefusedError
    │   ├── MeshHandshakeInProgressError
    │   └── MeshStreamClosedError
    └── CortexError                CortEX, folded state over RedEX
        ├── CortexHaltedError      the fold stopped (error under policy "stop", or closed)
        ├── CortexInvalidQueryError (also ValueError)
        ├── CortexInvalidConfigError (also ValueError)
        ├── CortexSnapshotError (also ValueError)
        └── CortexWatchEndedError  not a failure: a watch has nothing more (NET_END)
    └── BusError                   the event bus
        ├── BusConfigError (also ValueError)
        ├── BusBackpressureError   the shard is full: retry later
        ├── BusSampledError        decimated on purpose by the Sample policy
        ├── BusUnroutedError       no active shard (scaling in progress)
        ├── BusNotConnectedError   the adapter has no connection to its server
        ├── BusAdapterError        the adapter failed; a retry may heal it
        ├── BusAdapterFatalError   the adapter failed for good
        ├── BusInvalidRequestError (also ValueError)
        └── BusProducerStateError  the producer state file could not be read or written
"""

from __future__ import annotations

import enum
from typing import Dict, Type, Union

from ._ffi import ffi, lib


class Status(enum.IntEnum):
    """Every ``net_status_t`` code of the C ABI."""

    OK = lib.NET_OK
    TIMEOUT = lib.NET_TIMEOUT
    END = lib.NET_END
    LAGGED = lib.NET_LAGGED
    ERR_INVALID_ARGUMENT = lib.NET_ERR_INVALID_ARGUMENT
    ERR_SHUTTING_DOWN = lib.NET_ERR_SHUTTING_DOWN
    ERR_PANIC = lib.NET_ERR_PANIC
    ERR_INTERNAL = lib.NET_ERR_INTERNAL
    ERR_READ_ONLY = lib.NET_ERR_READ_ONLY
    ERR_INVALID_PUBLIC_KEY = lib.NET_ERR_INVALID_PUBLIC_KEY
    ERR_INVALID_SIGNATURE = lib.NET_ERR_INVALID_SIGNATURE
    ERR_TOKEN_INVALID_SIGNATURE = lib.NET_ERR_TOKEN_INVALID_SIGNATURE
    ERR_TOKEN_NOT_YET_VALID = lib.NET_ERR_TOKEN_NOT_YET_VALID
    ERR_TOKEN_EXPIRED = lib.NET_ERR_TOKEN_EXPIRED
    ERR_TOKEN_DELEGATION_EXHAUSTED = lib.NET_ERR_TOKEN_DELEGATION_EXHAUSTED
    ERR_TOKEN_DELEGATION_NOT_ALLOWED = lib.NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED
    ERR_TOKEN_NOT_AUTHORIZED = lib.NET_ERR_TOKEN_NOT_AUTHORIZED
    ERR_TOKEN_INVALID_FORMAT = lib.NET_ERR_TOKEN_INVALID_FORMAT
    ERR_TOKEN_ZERO_TTL = lib.NET_ERR_TOKEN_ZERO_TTL
    ERR_ENVELOPE_UNKNOWN_VERSION = lib.NET_ERR_ENVELOPE_UNKNOWN_VERSION
    ERR_ENVELOPE_INVALID_LENGTH = lib.NET_ERR_ENVELOPE_INVALID_LENGTH
    ERR_ENVELOPE_INVALID_SIGNER_KEY = lib.NET_ERR_ENVELOPE_INVALID_SIGNER_KEY
    ERR_ENVELOPE_INVALID_ATTESTATION = lib.NET_ERR_ENVELOPE_INVALID_ATTESTATION
    ERR_ENVELOPE_SEAL_OPEN_FAILED = lib.NET_ERR_ENVELOPE_SEAL_OPEN_FAILED
    ERR_ENVELOPE_ORIGIN_HASH_MISMATCH = lib.NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH
    ERR_CHANNEL_INVALID_NAME = lib.NET_ERR_CHANNEL_INVALID_NAME
    ERR_REDEX_IO = lib.NET_ERR_REDEX_IO
    ERR_REDEX_POISONED = lib.NET_ERR_REDEX_POISONED
    ERR_REDEX_SYNC_FAILED = lib.NET_ERR_REDEX_SYNC_FAILED
    ERR_REDEX_LOCKED = lib.NET_ERR_REDEX_LOCKED
    ERR_REDEX_CLOSED = lib.NET_ERR_REDEX_CLOSED
    ERR_REDEX_INVALID_CONFIG = lib.NET_ERR_REDEX_INVALID_CONFIG
    ERR_REDEX_INLINE_LENGTH = lib.NET_ERR_REDEX_INLINE_LENGTH
    ERR_REDEX_TOO_LARGE = lib.NET_ERR_REDEX_TOO_LARGE
    ERR_REDEX_GENERATION_OVERFLOW = lib.NET_ERR_REDEX_GENERATION_OVERFLOW
    ERR_REDEX_NO_PERSISTENT_DIR = lib.NET_ERR_REDEX_NO_PERSISTENT_DIR
    ERR_REDEX_CORRUPT = lib.NET_ERR_REDEX_CORRUPT
    ERR_REDEX_SEQ_EXHAUSTED = lib.NET_ERR_REDEX_SEQ_EXHAUSTED
    ERR_MESH_CONFIG = lib.NET_ERR_MESH_CONFIG
    ERR_MESH_IO = lib.NET_ERR_MESH_IO
    ERR_MESH_HANDSHAKE_TIMEOUT = lib.NET_ERR_MESH_HANDSHAKE_TIMEOUT
    ERR_MESH_SESSION_EXISTS = lib.NET_ERR_MESH_SESSION_EXISTS
    ERR_MESH_UNKNOWN_PEER = lib.NET_ERR_MESH_UNKNOWN_PEER
    ERR_MESH_BACKPRESSURE = lib.NET_ERR_MESH_BACKPRESSURE
    ERR_MESH_TOO_LARGE = lib.NET_ERR_MESH_TOO_LARGE
    ERR_MESH_IDENTITY_REFUSED = lib.NET_ERR_MESH_IDENTITY_REFUSED
    ERR_MESH_HANDSHAKE_IN_PROGRESS = lib.NET_ERR_MESH_HANDSHAKE_IN_PROGRESS
    ERR_MESH_STREAM_CLOSED = lib.NET_ERR_MESH_STREAM_CLOSED
    ERR_CORTEX_HALTED = lib.NET_ERR_CORTEX_HALTED
    ERR_CORTEX_INVALID_QUERY = lib.NET_ERR_CORTEX_INVALID_QUERY
    ERR_CORTEX_INVALID_CONFIG = lib.NET_ERR_CORTEX_INVALID_CONFIG
    ERR_CORTEX_SNAPSHOT = lib.NET_ERR_CORTEX_SNAPSHOT
    ERR_BUS_CONFIG = lib.NET_ERR_BUS_CONFIG
    ERR_BUS_BACKPRESSURE = lib.NET_ERR_BUS_BACKPRESSURE
    ERR_BUS_SAMPLED = lib.NET_ERR_BUS_SAMPLED
    ERR_BUS_UNROUTED = lib.NET_ERR_BUS_UNROUTED
    ERR_BUS_NOT_CONNECTED = lib.NET_ERR_BUS_NOT_CONNECTED
    ERR_BUS_ADAPTER = lib.NET_ERR_BUS_ADAPTER
    ERR_BUS_ADAPTER_FATAL = lib.NET_ERR_BUS_ADAPTER_FATAL
    ERR_BUS_INVALID_REQUEST = lib.NET_ERR_BUS_INVALID_REQUEST
    ERR_BUS_PRODUCER_STATE = lib.NET_ERR_BUS_PRODUCER_STATE


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


class InvalidArgumentError(NetError, ValueError):
    """A NULL pointer, a wrong length, a non-UTF-8 string, a wrong handle type."""


class ShuttingDownError(NetError):
    """The object has been closed (or is being closed on another thread)."""


class PanicError(NetError):
    """libnet hit a bug and panicked; the call had no effect. Please report it."""


class InternalError(NetError):
    """An internal invariant of libnet failed."""


class ReadOnlyError(NetError):
    """The identity holds only a public key: it cannot sign, issue or be sealed."""


class InvalidPublicKeyError(NetError, ValueError):
    """32 bytes that are not a valid ed25519 public key."""


class InvalidSignatureError(NetError):
    """A signature did not verify."""


class TokenError(NetError):
    """Base class of the permission-token errors."""


class TokenInvalidSignatureError(TokenError):
    """The token's signature does not verify under its issuer."""


class TokenNotYetValidError(TokenError):
    """The token is not live yet (``now < not_before``)."""


class TokenExpiredError(TokenError):
    """The token has expired (``now >= not_after``)."""


class TokenDelegationExhaustedError(TokenError):
    """The token's delegation depth is 0."""


class TokenDelegationNotAllowedError(TokenError):
    """The token's scope lacks DELEGATE."""


class TokenNotAuthorizedError(TokenError):
    """The signer is not the token's subject."""


class TokenInvalidFormatError(TokenError, ValueError):
    """The bytes are not a 159-byte token."""


class TokenZeroTtlError(TokenError, ValueError):
    """A token was requested with a zero time-to-live."""


class EnvelopeError(NetError):
    """Base class of the identity-envelope errors."""


class EnvelopeUnknownVersionError(EnvelopeError):
    """The envelope's leading version byte is not 1."""


class EnvelopeInvalidLengthError(EnvelopeError, ValueError):
    """The bytes are not a 209-byte envelope."""


class EnvelopeInvalidSignerKeyError(EnvelopeError):
    """The envelope's signer is not the expected one, or not a valid key."""


class EnvelopeInvalidAttestationError(EnvelopeError):
    """The attestation does not verify (tampered, or another chain link)."""


class EnvelopeSealOpenFailedError(EnvelopeError):
    """The envelope cannot be opened with this key, or was altered."""


class EnvelopeOriginHashMismatchError(EnvelopeError):
    """The opened identity's origin hash is not the expected one."""


class ChannelNameError(NetError, ValueError):
    """A channel name breaks the naming rules; the message says which."""


class RedexError(NetError):
    """Base class of the RedEX (append-only log) errors."""


class RedexIoError(RedexError):
    """A storage operation failed; nothing was appended. The message names
    the path and the OS error."""


class RedexPoisonedError(RedexError):
    """The file refuses appends after a failed fsync or an unrecoverable
    partial write; close it and open it again."""


class RedexSyncFailedError(RedexError):
    """The append landed but its required fsync failed: it is not durable,
    and the file is now poisoned."""


class RedexLockedError(RedexError):
    """Another writer (another manager, or another process) holds the
    channel's directory; it is free again once that file is closed."""


class RedexClosedError(RedexError, ShuttingDownError):
    """The file has been closed. Also a :class:`ShuttingDownError`, so one
    ``except ShuttingDownError`` covers every "used after close" outcome
    (a call racing ``close()`` can get either code)."""


class RedexInvalidConfigError(RedexError, ValueError):
    """The file configuration is invalid; the message names the key."""


class RedexInlineLengthError(RedexError, ValueError):
    """``append_inline`` needs exactly 8 bytes."""


class RedexTooLargeError(RedexError):
    """The append would exceed the file's size limits (4 GiB offsets, 3 GiB
    in memory)."""


class RedexGenerationOverflowError(RedexError):
    """The file's generation counter is exhausted: no further compaction."""


class RedexNoPersistentDirError(RedexError):
    """A persistent file was requested from a memory-only manager
    (``Redex()`` without a base directory)."""


class RedexCorruptError(RedexError):
    """A file the channel needs (say the live generation's ``dat``) is
    missing or damaged beyond what recovery may decide alone. Nothing was
    changed; the message names the file. Restore it, or open with
    ``repair=True`` to keep what can be proven (the
    :meth:`RedexFile.recovery_report` then lists what was lost)."""


class RedexSeqExhaustedError(RedexError):
    """The file has no sequence numbers left below 2**63; nothing was
    appended."""


class RedexTailEndedError(RedexError):
    """Raised by :meth:`RedexTail.next` when the tail has nothing more and
    never will: its file was closed, or the tail was closed while the call
    waited (status ``NET_END``; not a failure). Iterating a tail simply
    stops instead."""


class MeshError(NetError):
    """Base class of the mesh errors."""


class MeshConfigError(MeshError, ValueError):
    """An invalid mesh configuration (the message names the key)."""


class MeshIoError(MeshError):
    """A socket operation failed (bind, send)."""


class MeshHandshakeTimeoutError(MeshError):
    """No valid handshake answer in time: wrong address, key, node_id or PSK, or the peer is down."""


class MeshSessionExistsError(MeshError):
    """A live session with that node exists (re-keying is refused while it is live)."""


class MeshUnknownPeerError(MeshError):
    """No session with that node."""


class MeshBackpressureError(MeshError):
    """The stream's send window is spent; retry later or use send_blocking."""


class MeshTooLargeError(MeshError, ValueError):
    """An event too large for a packet, or a batch larger than the whole window."""


class MeshIdentityRefusedError(MeshError):
    """The peer failed identity binding."""


class MeshHandshakeInProgressError(MeshError):
    """Another connect to the same node is in flight."""


class MeshStreamClosedError(MeshError):
    """The stream was closed while the call waited."""


class CortexError(NetError):
    """Base class of the CortEX (folded state) errors."""


class CortexHaltedError(CortexError):
    """The model's fold has stopped — an event failed to apply under
    ``policy="stop"``, or the model was closed — so the awaited sequence
    will never be applied and writes are refused."""


class CortexInvalidQueryError(CortexError, ValueError):
    """A query filter libnet rejected (the message names the key)."""


class CortexInvalidConfigError(CortexError, ValueError):
    """A model configuration libnet rejected (the message names the key)."""


class CortexSnapshotError(CortexError, ValueError):
    """Snapshot bytes that do not decode."""


class CortexWatchEndedError(CortexError):
    """Raised by :meth:`Watch.next` when the watch has nothing more and never
    will (status ``NET_END``; not a failure). Iterating simply stops."""


class BusError(NetError):
    """Base class of the event-bus errors."""


class BusConfigError(BusError, ValueError):
    """An invalid bus configuration (the message names the key)."""


class BusBackpressureError(BusError):
    """The shard's buffer is full: the event was not queued. Retry later."""


class BusSampledError(BusError):
    """The Sample backpressure policy decimated the event on purpose."""


class BusUnroutedError(BusError):
    """No shard is active to take the event (scaling in progress)."""


class BusNotConnectedError(BusError):
    """The adapter has no connection to its server."""


class BusAdapterError(BusError):
    """The adapter failed in a way a retry may heal (timeout, lost
    connection); the message carries the cause."""


class BusAdapterFatalError(BusError):
    """The adapter failed for good (malformed remote data, a closed log)."""


class BusInvalidRequestError(BusError, ValueError):
    """An invalid poll request (JSON, cursor, filter or limit)."""


class BusProducerStateError(BusError):
    """The producer state file could not be read or written."""


#: The class raised for each error status.
ERROR_CLASSES: Dict[int, Type[NetError]] = {
    lib.NET_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    lib.NET_ERR_SHUTTING_DOWN: ShuttingDownError,
    lib.NET_ERR_PANIC: PanicError,
    lib.NET_ERR_INTERNAL: InternalError,
    lib.NET_ERR_READ_ONLY: ReadOnlyError,
    lib.NET_ERR_INVALID_PUBLIC_KEY: InvalidPublicKeyError,
    lib.NET_ERR_INVALID_SIGNATURE: InvalidSignatureError,
    lib.NET_ERR_TOKEN_INVALID_SIGNATURE: TokenInvalidSignatureError,
    lib.NET_ERR_TOKEN_NOT_YET_VALID: TokenNotYetValidError,
    lib.NET_ERR_TOKEN_EXPIRED: TokenExpiredError,
    lib.NET_ERR_TOKEN_DELEGATION_EXHAUSTED: TokenDelegationExhaustedError,
    lib.NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED: TokenDelegationNotAllowedError,
    lib.NET_ERR_TOKEN_NOT_AUTHORIZED: TokenNotAuthorizedError,
    lib.NET_ERR_TOKEN_INVALID_FORMAT: TokenInvalidFormatError,
    lib.NET_ERR_TOKEN_ZERO_TTL: TokenZeroTtlError,
    lib.NET_ERR_ENVELOPE_UNKNOWN_VERSION: EnvelopeUnknownVersionError,
    lib.NET_ERR_ENVELOPE_INVALID_LENGTH: EnvelopeInvalidLengthError,
    lib.NET_ERR_ENVELOPE_INVALID_SIGNER_KEY: EnvelopeInvalidSignerKeyError,
    lib.NET_ERR_ENVELOPE_INVALID_ATTESTATION: EnvelopeInvalidAttestationError,
    lib.NET_ERR_ENVELOPE_SEAL_OPEN_FAILED: EnvelopeSealOpenFailedError,
    lib.NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH: EnvelopeOriginHashMismatchError,
    lib.NET_ERR_CHANNEL_INVALID_NAME: ChannelNameError,
    lib.NET_ERR_REDEX_IO: RedexIoError,
    lib.NET_ERR_REDEX_POISONED: RedexPoisonedError,
    lib.NET_ERR_REDEX_SYNC_FAILED: RedexSyncFailedError,
    lib.NET_ERR_REDEX_LOCKED: RedexLockedError,
    lib.NET_ERR_REDEX_CLOSED: RedexClosedError,
    lib.NET_ERR_REDEX_INVALID_CONFIG: RedexInvalidConfigError,
    lib.NET_ERR_REDEX_INLINE_LENGTH: RedexInlineLengthError,
    lib.NET_ERR_REDEX_TOO_LARGE: RedexTooLargeError,
    lib.NET_ERR_REDEX_GENERATION_OVERFLOW: RedexGenerationOverflowError,
    lib.NET_ERR_REDEX_NO_PERSISTENT_DIR: RedexNoPersistentDirError,
    lib.NET_ERR_REDEX_CORRUPT: RedexCorruptError,
    lib.NET_ERR_REDEX_SEQ_EXHAUSTED: RedexSeqExhaustedError,
    lib.NET_ERR_MESH_CONFIG: MeshConfigError,
    lib.NET_ERR_MESH_IO: MeshIoError,
    lib.NET_ERR_MESH_HANDSHAKE_TIMEOUT: MeshHandshakeTimeoutError,
    lib.NET_ERR_MESH_SESSION_EXISTS: MeshSessionExistsError,
    lib.NET_ERR_MESH_UNKNOWN_PEER: MeshUnknownPeerError,
    lib.NET_ERR_MESH_BACKPRESSURE: MeshBackpressureError,
    lib.NET_ERR_MESH_TOO_LARGE: MeshTooLargeError,
    lib.NET_ERR_MESH_IDENTITY_REFUSED: MeshIdentityRefusedError,
    lib.NET_ERR_MESH_HANDSHAKE_IN_PROGRESS: MeshHandshakeInProgressError,
    lib.NET_ERR_MESH_STREAM_CLOSED: MeshStreamClosedError,
    lib.NET_ERR_CORTEX_HALTED: CortexHaltedError,
    lib.NET_ERR_CORTEX_INVALID_QUERY: CortexInvalidQueryError,
    lib.NET_ERR_CORTEX_INVALID_CONFIG: CortexInvalidConfigError,
    lib.NET_ERR_CORTEX_SNAPSHOT: CortexSnapshotError,
    lib.NET_ERR_BUS_CONFIG: BusConfigError,
    lib.NET_ERR_BUS_BACKPRESSURE: BusBackpressureError,
    lib.NET_ERR_BUS_SAMPLED: BusSampledError,
    lib.NET_ERR_BUS_UNROUTED: BusUnroutedError,
    lib.NET_ERR_BUS_NOT_CONNECTED: BusNotConnectedError,
    lib.NET_ERR_BUS_ADAPTER: BusAdapterError,
    lib.NET_ERR_BUS_ADAPTER_FATAL: BusAdapterFatalError,
    lib.NET_ERR_BUS_INVALID_REQUEST: BusInvalidRequestError,
    lib.NET_ERR_BUS_PRODUCER_STATE: BusProducerStateError,
}


def status_name(status: int) -> str:
    """The C name of a status code, e.g. ``"NET_ERR_TOKEN_EXPIRED"``, from
    libnet itself (``"NET_UNKNOWN_STATUS"`` for a code it does not define)."""
    raw: bytes = ffi.string(lib.net_status_name(status))
    return raw.decode()


def error_for_status(status: int, message: str = "") -> NetError:
    """The exception for a non-OK status (a plain NetError for an unknown code
    or for a non-error outcome such as NET_TIMEOUT where none was expected)."""
    cls = ERROR_CLASSES.get(status, NetError)
    if cls is NetError and not message and status in (
        lib.NET_TIMEOUT,
        lib.NET_END,
        lib.NET_LAGGED,
    ):
        message = "unexpected non-error status from libnet"
    return cls(status, message)


def _closed(what: str) -> ShuttingDownError:
    return ShuttingDownError(lib.NET_ERR_SHUTTING_DOWN, f"{what} is closed")
