'use strict';
// The status and constant tables of the SDK against include/net.h, parsed here.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const netmesh = require('netmesh');
const { NET_ROOT } = require('./helpers');

const header = fs.readFileSync(path.join(NET_ROOT, 'include', 'net.h'), 'utf8');

function headerStatus() {
  const body = /enum\s+net_status_t[^{]*\{([\s\S]*?)\};/.exec(header);
  assert.ok(body, 'enum net_status_t not found in net.h');
  const out = {};
  for (const m of body[1].matchAll(/^\s*(NET_[A-Z0-9_]+)\s*=\s*(-?\d+)\s*,?/gm)) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

function headerDefines() {
  const out = {};
  for (const m of header.matchAll(/^#define\s+(NET_[A-Z0-9_]+)\s+(\S+)/gm)) {
    if (m[1] === 'NET_H') continue;
    out[m[1]] = Number(m[2]);
  }
  return out;
}

function headerFunctions() {
  return [...new Set([...header.matchAll(/\b(net_[a-z0-9_]+)\s*\(/g)].map((m) => m[1]))];
}

test('Status equals the net_status_t enum of net.h (both ways)', () => {
  const fromHeader = headerStatus();
  assert.ok(Object.keys(fromHeader).length >= 25);
  assert.deepEqual({ ...netmesh.Status }, fromHeader);
});

test('Constants equal the #define NET_* of net.h (both ways)', () => {
  const fromHeader = headerDefines();
  for (const [name, value] of Object.entries(fromHeader)) {
    assert.ok(Number.isInteger(value), `${name} is not an integer literal in net.h`);
  }
  assert.deepEqual({ ...netmesh.Constants }, fromHeader);
});

test('every function of net.h is bound', () => {
  const names = headerFunctions();
  assert.ok(names.length >= 29);
  for (const name of names) {
    assert.equal(typeof netmesh.internal.fns[name], 'function', `${name} is not bound`);
  }
  assert.deepEqual(Object.keys(netmesh.internal.fns).sort(), names.sort());
});

test('Scope and sizes come from the constants', () => {
  const C = netmesh.Constants;
  assert.equal(netmesh.Scope.PUBLISH, C.NET_SCOPE_PUBLISH);
  assert.equal(netmesh.Scope.SUBSCRIBE, C.NET_SCOPE_SUBSCRIBE);
  assert.equal(netmesh.Scope.ADMIN, C.NET_SCOPE_ADMIN);
  assert.equal(netmesh.Scope.DELEGATE, C.NET_SCOPE_DELEGATE);
  assert.equal(netmesh.Scope.WILDCARD, C.NET_SCOPE_WILDCARD);
  assert.equal(netmesh.Scope.ALL, C.NET_SCOPE_ALL);
  assert.equal(netmesh.TOKEN_SIZE, C.NET_TOKEN_SIZE);
  assert.equal(netmesh.ENVELOPE_SIZE, C.NET_ENVELOPE_SIZE);
  assert.equal(netmesh.SEED_LEN, C.NET_SEED_LEN);
  assert.equal(netmesh.PUBLIC_KEY_LEN, C.NET_PUBLIC_KEY_LEN);
  assert.equal(netmesh.SIGNATURE_LEN, C.NET_SIGNATURE_LEN);
  assert.equal(netmesh.CHAIN_LINK_LEN, C.NET_CHAIN_LINK_LEN);
  assert.equal(netmesh.X25519_KEY_LEN, C.NET_X25519_KEY_LEN);
});

test('every error code maps to its error class', () => {
  const expected = {
    NET_ERR_INVALID_ARGUMENT: 'InvalidArgumentError',
    NET_ERR_SHUTTING_DOWN: 'ShuttingDownError',
    NET_ERR_PANIC: 'PanicError',
    NET_ERR_INTERNAL: 'InternalError',
    NET_ERR_CANCELLED: 'CancelledError',
    NET_ERR_BUSY: 'BusyError',
    NET_ERR_READ_ONLY: 'ReadOnlyError',
    NET_ERR_INVALID_PUBLIC_KEY: 'InvalidPublicKeyError',
    NET_ERR_INVALID_SIGNATURE: 'InvalidSignatureError',
    NET_ERR_TOKEN_INVALID_SIGNATURE: 'TokenInvalidSignatureError',
    NET_ERR_TOKEN_NOT_YET_VALID: 'TokenNotYetValidError',
    NET_ERR_TOKEN_EXPIRED: 'TokenExpiredError',
    NET_ERR_TOKEN_DELEGATION_EXHAUSTED: 'TokenDelegationExhaustedError',
    NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED: 'TokenDelegationNotAllowedError',
    NET_ERR_TOKEN_NOT_AUTHORIZED: 'TokenNotAuthorizedError',
    NET_ERR_TOKEN_INVALID_FORMAT: 'TokenInvalidFormatError',
    NET_ERR_TOKEN_ZERO_TTL: 'TokenZeroTtlError',
    NET_ERR_ENVELOPE_UNKNOWN_VERSION: 'EnvelopeUnknownVersionError',
    NET_ERR_ENVELOPE_INVALID_LENGTH: 'EnvelopeInvalidLengthError',
    NET_ERR_ENVELOPE_INVALID_SIGNER_KEY: 'EnvelopeInvalidSignerKeyError',
    NET_ERR_ENVELOPE_INVALID_ATTESTATION: 'EnvelopeInvalidAttestationError',
    NET_ERR_ENVELOPE_SEAL_OPEN_FAILED: 'EnvelopeSealOpenFailedError',
    NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH: 'EnvelopeOriginHashMismatchError',
    NET_ERR_CHANNEL_INVALID_NAME: 'ChannelNameError',
    NET_ERR_CHANNEL_UNAUTHORIZED: 'ChannelUnauthorizedError',
    NET_ERR_CHANNEL_UNKNOWN: 'ChannelUnknownError',
    NET_ERR_CHANNEL_RATE_LIMITED: 'ChannelRateLimitedError',
    NET_ERR_CHANNEL_FULL: 'ChannelFullError',
    NET_ERR_CHANNEL_HASH_COLLISION: 'ChannelHashCollisionError',
    NET_ERR_CHANNEL_TOO_MANY_PENDING: 'ChannelTooManyPendingError',
    NET_ERR_CHANNEL_CONFIG: 'ChannelConfigError',
    NET_ERR_CHANNEL_NO_ANSWER: 'ChannelNoAnswerError',
    NET_ERR_REDEX_IO: 'RedexIoError',
    NET_ERR_REDEX_POISONED: 'RedexPoisonedError',
    NET_ERR_REDEX_SYNC_FAILED: 'RedexSyncFailedError',
    NET_ERR_REDEX_LOCKED: 'RedexLockedError',
    NET_ERR_REDEX_CLOSED: 'RedexClosedError',
    NET_ERR_REDEX_INVALID_CONFIG: 'RedexInvalidConfigError',
    NET_ERR_REDEX_INLINE_LENGTH: 'RedexInlineLengthError',
    NET_ERR_REDEX_TOO_LARGE: 'RedexTooLargeError',
    NET_ERR_REDEX_GENERATION_OVERFLOW: 'RedexGenerationOverflowError',
    NET_ERR_REDEX_NO_PERSISTENT_DIR: 'RedexNoPersistentDirError',
    NET_ERR_REDEX_CORRUPT: 'RedexCorruptError',
    NET_ERR_REDEX_SEQ_EXHAUSTED: 'RedexSeqExhaustedError',
    NET_ERR_MESH_CONFIG: 'MeshConfigError',
    NET_ERR_MESH_IO: 'MeshIoError',
    NET_ERR_MESH_HANDSHAKE_TIMEOUT: 'MeshHandshakeTimeoutError',
    NET_ERR_MESH_SESSION_EXISTS: 'MeshSessionExistsError',
    NET_ERR_MESH_UNKNOWN_PEER: 'MeshUnknownPeerError',
    NET_ERR_MESH_BACKPRESSURE: 'MeshBackpressureError',
    NET_ERR_MESH_TOO_LARGE: 'MeshTooLargeError',
    NET_ERR_MESH_IDENTITY_REFUSED: 'MeshIdentityRefusedError',
    NET_ERR_MESH_HANDSHAKE_IN_PROGRESS: 'MeshHandshakeInProgressError',
    NET_ERR_MESH_STREAM_CLOSED: 'MeshStreamClosedError',
    NET_ERR_MESH_NO_ROUTE: 'MeshNoRouteError',
    NET_ERR_MESH_CAPABILITIES: 'MeshCapabilitiesError',
    NET_ERR_CORTEX_HALTED: 'CortexHaltedError',
    NET_ERR_CORTEX_INVALID_QUERY: 'CortexInvalidQueryError',
    NET_ERR_CORTEX_INVALID_CONFIG: 'CortexInvalidConfigError',
    NET_ERR_CORTEX_SNAPSHOT: 'CortexSnapshotError',
    NET_ERR_BUS_CONFIG: 'BusConfigError',
    NET_ERR_BUS_BACKPRESSURE: 'BusBackpressureError',
    NET_ERR_BUS_SAMPLED: 'BusSampledError',
    NET_ERR_BUS_UNROUTED: 'BusUnroutedError',
    NET_ERR_BUS_NOT_CONNECTED: 'BusNotConnectedError',
    NET_ERR_BUS_ADAPTER: 'BusAdapterError',
    NET_ERR_BUS_ADAPTER_FATAL: 'BusAdapterFatalError',
    NET_ERR_BUS_INVALID_REQUEST: 'BusInvalidRequestError',
    NET_ERR_BUS_PRODUCER_STATE: 'BusProducerStateError',
    NET_ERR_RULES_INVALID: 'RulesInvalidError',
    NET_ERR_RULES_UNKNOWN_RULE: 'RulesUnknownRuleError',
    NET_ERR_SAFETY_CONFIG: 'SafetyConfigError',
    NET_ERR_SAFETY_KILL_SWITCH: 'SafetyKillSwitchError',
    NET_ERR_SAFETY_LIMIT: 'SafetyLimitError',
    NET_ERR_SAFETY_RATE_LIMITED: 'SafetyRateLimitedError',
    NET_ERR_SAFETY_CONTENT: 'SafetyContentError',
    NET_ERR_COMPUTE_NOT_FOUND: 'ComputeNotFoundError',
    NET_ERR_COMPUTE_STALE: 'ComputeStaleError',
    NET_ERR_COMPUTE_ALREADY_REGISTERED: 'ComputeAlreadyRegisteredError',
    NET_ERR_COMPUTE_DAEMON: 'ComputeDaemonError',
    NET_ERR_COMPUTE_UNKNOWN_KIND: 'ComputeUnknownKindError',
    NET_ERR_COMPUTE_ALREADY_MIGRATING: 'ComputeAlreadyMigratingError',
    NET_ERR_COMPUTE_NO_MIGRATION: 'ComputeNoMigrationError',
    NET_ERR_COMPUTE_TRANSPORT: 'ComputeTransportError',
    NET_ERR_COMPUTE_BUFFER_FULL: 'ComputeBufferFullError',
    NET_ERR_COMPUTE_CONFIG: 'ComputeConfigError',
    NET_ERR_COMPUTE_WORK_EXPIRED: 'ComputeWorkExpiredError',
    NET_ERR_COMPUTE_GROUP_PLACEMENT: 'ComputeGroupPlacementError',
    NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER: 'ComputeGroupNoHealthyMemberError',
    NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE: 'ComputeGroupUnknownNodeError',
    NET_ERR_COMPUTE_GROUP_STATELESS: 'ComputeGroupStatelessError',
    NET_ERR_COMPUTE_GROUP_REPLAY: 'ComputeGroupReplayError',
    NET_ERR_COMPUTE_GROUP_WRONG_KIND: 'ComputeGroupWrongKindError',
    NET_ERR_COMPUTE_IDENTITY_TRANSPORT: 'ComputeIdentityTransportError',
    NET_ERR_COMPUTE_GROUP_MIGRATION: 'ComputeGroupMigrationError',
    NET_ERR_COMPUTE_NO_TARGET: 'ComputeNoTargetError',
    NET_ERR_LB_CONFIG: 'LbConfigError',
    NET_ERR_LB_NO_ENDPOINT: 'LbNoEndpointError',
    NET_ERR_LB_DUPLICATE_ENDPOINT: 'LbDuplicateEndpointError',
    NET_ERR_LB_UNKNOWN_ENDPOINT: 'LbUnknownEndpointError',
  };
  for (const [name, status] of Object.entries(netmesh.Status)) {
    assert.equal(netmesh.statusName(status), name);
    if (status >= 0) continue;
    const className = expected[name];
    assert.ok(className, `no error class expected for ${name}: update this test and lib/errors.js`);
    const Class = netmesh[className];
    assert.equal(typeof Class, 'function', `${className} is exported`);
    assert.ok(Class.prototype instanceof netmesh.NetError);
    // errorFor builds exactly that class for the code.
    const err = netmesh.internal.errorFor(status, 'detail');
    assert.equal(err.constructor, Class, name);
    assert.equal(err.code, name);
    if (name.startsWith('NET_ERR_REDEX_')) assert.ok(err instanceof netmesh.RedexError, name);
    if (name.startsWith('NET_ERR_BUS_')) assert.ok(err instanceof netmesh.BusError, name);
  }
  assert.equal(netmesh.Status.NET_ERR_REDEX_CORRUPT, -110);
  assert.equal(netmesh.Status.NET_ERR_REDEX_SEQ_EXHAUSTED, -111);
  assert.equal(netmesh.statusName(-110), 'NET_ERR_REDEX_CORRUPT');
  assert.equal(netmesh.statusName(-111), 'NET_ERR_REDEX_SEQ_EXHAUSTED');
  // Codes newer than the SDK fall back to their family's base class.
  assert.equal(netmesh.internal.errorFor(-150, 'x').constructor, netmesh.RedexError);
  assert.equal(netmesh.internal.errorFor(-450, 'x').constructor, netmesh.BusError);
  assert.ok(netmesh.TokenExpiredError.prototype instanceof netmesh.TokenError);
  assert.ok(netmesh.EnvelopeSealOpenFailedError.prototype instanceof netmesh.EnvelopeError);
  assert.ok(netmesh.RedexLockedError.prototype instanceof netmesh.RedexError);
  assert.equal(netmesh.statusName(netmesh.Status.NET_LAGGED), 'NET_LAGGED');
  assert.equal(netmesh.WAIT_FOREVER, netmesh.Constants.NET_WAIT_FOREVER);
  assert.equal(netmesh.WAIT_FOREVER, 0xffffffff);
  assert.equal(netmesh.statusName(-999), 'NET_UNKNOWN_STATUS(-999)');
});
