'use strict';
// NetError and its subclasses: one class per family, one per token and
// envelope code, built from a status code and libnet's detail message.

const { STATUS, fns } = require('./native');

/** Status code -> name (e.g. -22 -> 'NET_ERR_TOKEN_EXPIRED'). */
const STATUS_NAMES = Object.freeze(
  Object.fromEntries(Object.entries(STATUS).map(([name, code]) => [code, name])),
);

/**
 * The name of a status code. Codes newer than this SDK are named by libnet
 * (net_status_name); a code libnet does not define is `NET_UNKNOWN_STATUS(<code>)`.
 */
function statusName(status) {
  const known = STATUS_NAMES[status];
  if (known !== undefined) return known;
  const name = fns.net_status_name(status);
  return name === 'NET_UNKNOWN_STATUS' ? `${name}(${status})` : name;
}

/** Base class of every error coming out of libnet. */
class NetError extends Error {
  /**
   * @param {string} message libnet's detail (net_last_error_message) or a description
   * @param {number} status the net_status_t code
   */
  constructor(message, status) {
    const code = statusName(status);
    super(message || code);
    this.status = status;
    this.code = code;
  }

  get name() {
    return this.constructor.name;
  }
}

/** NULL/misaligned pointer, wrong length, non-UTF-8 string or wrong handle type. */
class InvalidArgumentError extends NetError {}
/** The handle has been closed (or is being closed). */
class ShuttingDownError extends NetError {}
/** A bug in libnet panicked; the call had no effect. */
class PanicError extends NetError {}
/** An internal invariant of libnet failed. */
class InternalError extends NetError {}
/** The identity holds only a public key and cannot sign, issue or seal. */
class ReadOnlyError extends NetError {}
/** 32 bytes that are not a valid ed25519 public key. */
class InvalidPublicKeyError extends NetError {}
/** A signature did not verify (where a boolean answer is not offered). */
class InvalidSignatureError extends NetError {}

/** Base class of the permission-token errors. */
class TokenError extends NetError {}
class TokenInvalidSignatureError extends TokenError {}
class TokenNotYetValidError extends TokenError {}
class TokenExpiredError extends TokenError {}
class TokenDelegationExhaustedError extends TokenError {}
class TokenDelegationNotAllowedError extends TokenError {}
class TokenNotAuthorizedError extends TokenError {}
class TokenInvalidFormatError extends TokenError {}
class TokenZeroTtlError extends TokenError {}

/** Base class of the identity-envelope errors. */
class EnvelopeError extends NetError {}
class EnvelopeUnknownVersionError extends EnvelopeError {}
class EnvelopeInvalidLengthError extends EnvelopeError {}
class EnvelopeInvalidSignerKeyError extends EnvelopeError {}
class EnvelopeInvalidAttestationError extends EnvelopeError {}
class EnvelopeSealOpenFailedError extends EnvelopeError {}
class EnvelopeOriginHashMismatchError extends EnvelopeError {}

/** A channel name breaks the naming rules; the message says which. */
class ChannelNameError extends NetError {}

/** Base class of the RedEX errors (NET_ERR_REDEX_*). */
class RedexError extends NetError {}
/** A storage operation failed (nothing appended); a failed sync also poisons the file. */
class RedexIoError extends RedexError {}
/** The file refuses appends after a failed fsync or partial write: close and reopen it. */
class RedexPoisonedError extends RedexError {}
/** The append landed but its required fsync failed; the file is now poisoned. */
class RedexSyncFailedError extends RedexError {}
/** Another writer (manager or process) holds the channel directory. */
class RedexLockedError extends RedexError {}
/** The file has been closed (through another handle of the same channel). */
class RedexClosedError extends RedexError {}
/** The file configuration is invalid; the message names the key. */
class RedexInvalidConfigError extends RedexError {}
/** appendInline needs exactly 8 bytes. */
class RedexInlineLengthError extends RedexError {}
/** The append would exceed the file's size limits (4 GiB offsets, 3 GiB heap). */
class RedexTooLargeError extends RedexError {}
/** The generation counter is exhausted; no further compaction. */
class RedexGenerationOverflowError extends RedexError {}
/** A persistent file needs a manager opened with a base directory. */
class RedexNoPersistentDirError extends RedexError {}
/**
 * A file the channel needs (say the live generation's dat) is missing or
 * damaged beyond what recovery may decide alone. Nothing was changed; the
 * message names the file. Restore it, or open with `repair: true`.
 */
class RedexCorruptError extends RedexError {}
/** The file has no sequence numbers left below 2^63; nothing was appended. */
class RedexSeqExhaustedError extends RedexError {}

/** Base class of the mesh errors (NET_ERR_MESH_*). */
class MeshError extends NetError {}
/** The mesh configuration is invalid; the message names the key. */
class MeshConfigError extends MeshError {}
/** A socket operation failed. */
class MeshIoError extends MeshError {}
/** No valid handshake answer in time (wrong address, key, node id or PSK, or the peer is down). */
class MeshHandshakeTimeoutError extends MeshError {}
/** A live session with that node exists (re-keying is refused while it is live). */
class MeshSessionExistsError extends MeshError {}
/** No session with that node. */
class MeshUnknownPeerError extends MeshError {}
/** The stream's send window is spent: retry later or use sendBlocking. */
class MeshBackpressureError extends MeshError {}
/** An event too large for a packet, or a batch larger than the whole window. */
class MeshTooLargeError extends MeshError {}
/** The peer failed identity binding. */
class MeshIdentityRefusedError extends MeshError {}
/** Another connect to the same node is in flight. */
class MeshHandshakeInProgressError extends MeshError {}
/** The stream was closed while the call waited. */
class MeshStreamClosedError extends MeshError {}

/** Base class of the CortEX errors (NET_ERR_CORTEX_*). */
class CortexError extends NetError {}
/** The model's fold has stopped (an event failed under policy "stop", or the model closed). */
class CortexHaltedError extends CortexError {}
/** A query filter was rejected; the message names the key. */
class CortexInvalidQueryError extends CortexError {}
/** A model configuration was rejected; the message names the key. */
class CortexInvalidConfigError extends CortexError {}
/** Snapshot bytes that do not decode. */
class CortexSnapshotError extends CortexError {}

/** Base class of the event-bus errors (NET_ERR_BUS_*). */
class BusError extends NetError {}
/** The bus configuration is invalid; the message names the key. */
class BusConfigError extends BusError {}
/** The shard is full: the event was not queued (retry later). */
class BusBackpressureError extends BusError {}
/** The Sample backpressure policy decimated the event on purpose. */
class BusSampledError extends BusError {}
/** No shard is active to take the event (scaling in progress). */
class BusUnroutedError extends BusError {}
/** The adapter has no connection to its server. */
class BusNotConnectedError extends BusError {}
/** The adapter failed in a way a retry may heal; the message carries the cause. */
class BusAdapterError extends BusError {}
/** The adapter failed for good (malformed remote data, a closed log). */
class BusAdapterFatalError extends BusError {}
/** A poll request is invalid (JSON, cursor, filter or limit). */
class BusInvalidRequestError extends BusError {}
/** The producer state file could not be read or written. */
class BusProducerStateError extends BusError {}

const CLASS_BY_STATUS = new Map([
  [STATUS.NET_ERR_INVALID_ARGUMENT, InvalidArgumentError],
  [STATUS.NET_ERR_SHUTTING_DOWN, ShuttingDownError],
  [STATUS.NET_ERR_PANIC, PanicError],
  [STATUS.NET_ERR_INTERNAL, InternalError],
  [STATUS.NET_ERR_READ_ONLY, ReadOnlyError],
  [STATUS.NET_ERR_INVALID_PUBLIC_KEY, InvalidPublicKeyError],
  [STATUS.NET_ERR_INVALID_SIGNATURE, InvalidSignatureError],
  [STATUS.NET_ERR_TOKEN_INVALID_SIGNATURE, TokenInvalidSignatureError],
  [STATUS.NET_ERR_TOKEN_NOT_YET_VALID, TokenNotYetValidError],
  [STATUS.NET_ERR_TOKEN_EXPIRED, TokenExpiredError],
  [STATUS.NET_ERR_TOKEN_DELEGATION_EXHAUSTED, TokenDelegationExhaustedError],
  [STATUS.NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED, TokenDelegationNotAllowedError],
  [STATUS.NET_ERR_TOKEN_NOT_AUTHORIZED, TokenNotAuthorizedError],
  [STATUS.NET_ERR_TOKEN_INVALID_FORMAT, TokenInvalidFormatError],
  [STATUS.NET_ERR_TOKEN_ZERO_TTL, TokenZeroTtlError],
  [STATUS.NET_ERR_ENVELOPE_UNKNOWN_VERSION, EnvelopeUnknownVersionError],
  [STATUS.NET_ERR_ENVELOPE_INVALID_LENGTH, EnvelopeInvalidLengthError],
  [STATUS.NET_ERR_ENVELOPE_INVALID_SIGNER_KEY, EnvelopeInvalidSignerKeyError],
  [STATUS.NET_ERR_ENVELOPE_INVALID_ATTESTATION, EnvelopeInvalidAttestationError],
  [STATUS.NET_ERR_ENVELOPE_SEAL_OPEN_FAILED, EnvelopeSealOpenFailedError],
  [STATUS.NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH, EnvelopeOriginHashMismatchError],
  [STATUS.NET_ERR_CHANNEL_INVALID_NAME, ChannelNameError],
  [STATUS.NET_ERR_REDEX_IO, RedexIoError],
  [STATUS.NET_ERR_REDEX_POISONED, RedexPoisonedError],
  [STATUS.NET_ERR_REDEX_SYNC_FAILED, RedexSyncFailedError],
  [STATUS.NET_ERR_REDEX_LOCKED, RedexLockedError],
  [STATUS.NET_ERR_REDEX_CLOSED, RedexClosedError],
  [STATUS.NET_ERR_REDEX_INVALID_CONFIG, RedexInvalidConfigError],
  [STATUS.NET_ERR_REDEX_INLINE_LENGTH, RedexInlineLengthError],
  [STATUS.NET_ERR_REDEX_TOO_LARGE, RedexTooLargeError],
  [STATUS.NET_ERR_REDEX_GENERATION_OVERFLOW, RedexGenerationOverflowError],
  [STATUS.NET_ERR_REDEX_NO_PERSISTENT_DIR, RedexNoPersistentDirError],
  [STATUS.NET_ERR_REDEX_CORRUPT, RedexCorruptError],
  [STATUS.NET_ERR_REDEX_SEQ_EXHAUSTED, RedexSeqExhaustedError],
  [STATUS.NET_ERR_MESH_CONFIG, MeshConfigError],
  [STATUS.NET_ERR_MESH_IO, MeshIoError],
  [STATUS.NET_ERR_MESH_HANDSHAKE_TIMEOUT, MeshHandshakeTimeoutError],
  [STATUS.NET_ERR_MESH_SESSION_EXISTS, MeshSessionExistsError],
  [STATUS.NET_ERR_MESH_UNKNOWN_PEER, MeshUnknownPeerError],
  [STATUS.NET_ERR_MESH_BACKPRESSURE, MeshBackpressureError],
  [STATUS.NET_ERR_MESH_TOO_LARGE, MeshTooLargeError],
  [STATUS.NET_ERR_MESH_IDENTITY_REFUSED, MeshIdentityRefusedError],
  [STATUS.NET_ERR_MESH_HANDSHAKE_IN_PROGRESS, MeshHandshakeInProgressError],
  [STATUS.NET_ERR_MESH_STREAM_CLOSED, MeshStreamClosedError],
  [STATUS.NET_ERR_CORTEX_HALTED, CortexHaltedError],
  [STATUS.NET_ERR_CORTEX_INVALID_QUERY, CortexInvalidQueryError],
  [STATUS.NET_ERR_CORTEX_INVALID_CONFIG, CortexInvalidConfigError],
  [STATUS.NET_ERR_CORTEX_SNAPSHOT, CortexSnapshotError],
  [STATUS.NET_ERR_BUS_CONFIG, BusConfigError],
  [STATUS.NET_ERR_BUS_BACKPRESSURE, BusBackpressureError],
  [STATUS.NET_ERR_BUS_SAMPLED, BusSampledError],
  [STATUS.NET_ERR_BUS_UNROUTED, BusUnroutedError],
  [STATUS.NET_ERR_BUS_NOT_CONNECTED, BusNotConnectedError],
  [STATUS.NET_ERR_BUS_ADAPTER, BusAdapterError],
  [STATUS.NET_ERR_BUS_ADAPTER_FATAL, BusAdapterFatalError],
  [STATUS.NET_ERR_BUS_INVALID_REQUEST, BusInvalidRequestError],
  [STATUS.NET_ERR_BUS_PRODUCER_STATE, BusProducerStateError],
]);

/** The error object for a failed status and its detail message. */
function errorFor(status, message) {
  let Class = CLASS_BY_STATUS.get(status);
  if (!Class) {
    if (status <= -20 && status > -30) Class = TokenError;
    else if (status <= -30 && status > -40) Class = EnvelopeError;
    else if (status <= -100 && status > -200) Class = RedexError;
    else if (status <= -200 && status > -300) Class = MeshError;
    else if (status <= -300 && status > -400) Class = CortexError;
    else if (status <= -400 && status > -500) Class = BusError;
    else Class = NetError;
  }
  return new Class(message, status);
}

module.exports = {
  BusError,
  BusConfigError,
  BusBackpressureError,
  BusSampledError,
  BusUnroutedError,
  BusNotConnectedError,
  BusAdapterError,
  BusAdapterFatalError,
  BusInvalidRequestError,
  BusProducerStateError,
  STATUS_NAMES,
  statusName,
  errorFor,
  NetError,
  InvalidArgumentError,
  ShuttingDownError,
  PanicError,
  InternalError,
  ReadOnlyError,
  InvalidPublicKeyError,
  InvalidSignatureError,
  TokenError,
  TokenInvalidSignatureError,
  TokenNotYetValidError,
  TokenExpiredError,
  TokenDelegationExhaustedError,
  TokenDelegationNotAllowedError,
  TokenNotAuthorizedError,
  TokenInvalidFormatError,
  TokenZeroTtlError,
  EnvelopeError,
  EnvelopeUnknownVersionError,
  EnvelopeInvalidLengthError,
  EnvelopeInvalidSignerKeyError,
  EnvelopeInvalidAttestationError,
  EnvelopeSealOpenFailedError,
  EnvelopeOriginHashMismatchError,
  ChannelNameError,
  RedexError,
  RedexIoError,
  RedexPoisonedError,
  RedexSyncFailedError,
  RedexLockedError,
  RedexClosedError,
  RedexInvalidConfigError,
  RedexInlineLengthError,
  RedexTooLargeError,
  RedexGenerationOverflowError,
  RedexNoPersistentDirError,
  RedexCorruptError,
  RedexSeqExhaustedError,
  MeshError,
  MeshConfigError,
  MeshIoError,
  MeshHandshakeTimeoutError,
  MeshSessionExistsError,
  MeshUnknownPeerError,
  MeshBackpressureError,
  MeshTooLargeError,
  MeshIdentityRefusedError,
  MeshHandshakeInProgressError,
  MeshStreamClosedError,
  CortexError,
  CortexHaltedError,
  CortexInvalidQueryError,
  CortexInvalidConfigError,
  CortexSnapshotError,
};
