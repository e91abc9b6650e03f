'use strict';
// Identity: an ed25519 keypair (or only its public key) behind a libnet
// handle. Lifetime: close() / `using` / `await using`, with a
// FinalizationRegistry as a safety net (lib/finalize.js: it warns and frees
// in the background, never on the event loop).
//
// No JS-side lock: close() only nulls the field and frees the old pointer.
// Calls already running on other threads (async pool) keep the raw pointer;
// libnet's HandleGuard makes net_identity_free wait for them, and any call
// that starts after the free gets NET_ERR_SHUTTING_DOWN.

const util = require('node:util');
const { fns, STATUS } = require('./native');
const calls = require('./calls');
const args = require('./args');
const { ShuttingDownError } = require('./errors');
const pool = require('./pool');
const { leakRegistry } = require('./finalize');

const kConstruct = Symbol('netmesh.Identity.construct');

// Frees handles whose Identity was garbage-collected without close().
const finalizer = leakRegistry('Identity', 'net_identity_free');

let handleOf; // (identity) => bigint | null, set in the class's static block

class Identity {
  /** @type {bigint | null} */
  #handle;

  /** @private Use Identity.generate / fromSeed / fromPublicKey / openEnvelope. */
  constructor(token, handle) {
    if (token !== kConstruct) {
      throw new TypeError(
        'Identity has no public constructor: use Identity.generate(), Identity.fromSeed() or Identity.fromPublicKey()',
      );
    }
    this.#handle = handle;
    finalizer.register(this, handle, this);
  }

  static {
    handleOf = (identity) => identity.#handle;
  }

  /** @internal Wraps a handle returned by libnet (takes ownership). */
  static _fromHandle(handle) {
    return new Identity(kConstruct, handle);
  }

  /** A new identity from 32 bytes of OS randomness. */
  static generate() {
    return new Identity(kConstruct, calls.identityGenerate());
  }

  /** The identity of a 32-byte ed25519 seed (RFC 8032 derivation). */
  static fromSeed(seed) {
    return new Identity(kConstruct, calls.identityFromSeed(args.bytes(seed, 'seed')));
  }

  /** A read-only identity (verify only) from a 32-byte ed25519 public key. */
  static fromPublicKey(publicKey) {
    return new Identity(
      kConstruct,
      calls.identityFromPublicKey(args.bytes(publicKey, 'publicKey')),
    );
  }

  #live() {
    const handle = this.#handle;
    if (handle === null) {
      throw new ShuttingDownError('Identity is closed', STATUS.NET_ERR_SHUTTING_DOWN);
    }
    return handle;
  }

  /** The 32-byte ed25519 public key. */
  get publicKey() {
    return calls.identityBytes(fns.net_identity_public_key, this.#live());
  }

  /** The 32-byte entity id (the same bytes as the public key). */
  get entityId() {
    return calls.identityBytes(fns.net_identity_entity_id, this.#live());
  }

  /**
   * A new, independent Identity for the same keypair (close each one
   * separately): hands an identity to another owner without copying the
   * seed through JS memory.
   */
  clone() {
    return new Identity(kConstruct, calls.identityClone(this.#live()));
  }

  /** The 32-byte seed (the secret). Throws ReadOnlyError for a public-key-only identity. */
  seed() {
    return calls.identityBytes(fns.net_identity_seed, this.#live());
  }

  /** Whether this identity holds only a public key. */
  get isReadOnly() {
    return calls.identityIsReadOnly(this.#live());
  }

  /** The 64-bit origin hash (application event origin). */
  get originHash() {
    return calls.identityU64(fns.net_identity_origin_hash, this.#live());
  }

  /** The 64-bit node id (mesh peer identity). */
  get nodeId() {
    return calls.identityU64(fns.net_identity_node_id, this.#live());
  }

  /** True once close() has been called. */
  get closed() {
    return this.#handle === null;
  }

  /** Signs a message (deterministic ed25519); returns the 64-byte signature. */
  sign(message) {
    return calls.sign(this.#live(), args.bytesOrString(message, 'message'));
  }

  /** sign() on a worker thread: the event loop keeps running meanwhile. */
  signAsync(message) {
    try {
      const handle = this.#live();
      const keep = [this];
      const transfer = [];
      const msg = pool.input(args.bytesOrString(message, 'message'), keep, transfer);
      return pool.getPool().run('sign', [handle, msg], keep, transfer);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Strictly verifies a 64-byte signature over a message: true or false. */
  verify(message, signature) {
    return calls.verify(
      this.#live(),
      args.bytesOrString(message, 'message'),
      args.bytes(signature, 'signature'),
    );
  }

  /** verify() on a worker thread. */
  verifyAsync(message, signature) {
    try {
      const handle = this.#live();
      const keep = [this];
      const transfer = [];
      const msg = pool.input(args.bytesOrString(message, 'message'), keep, transfer);
      const sig = pool.input(args.bytes(signature, 'signature'), keep, transfer);
      return pool.getPool().run('verify', [handle, msg, sig], keep, transfer);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Releases the handle. Idempotent. Waits (up to 5 s, inside libnet) for
   * calls in flight on other threads; later calls throw ShuttingDownError.
   * Throws BusyError when calls were still running at that deadline (libnet
   * then leaks the key rather than free it under them).
   */
  close() {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    finalizer.unregister(this);
    calls.identityFree(handle);
  }

  /** close() whose wait for in-flight calls happens on a worker thread; rejects with BusyError. */
  closeAsync() {
    const handle = this.#handle;
    if (handle === null) return Promise.resolve();
    this.#handle = null;
    finalizer.unregister(this);
    return pool
      .getPool()
      .run('free', ['net_identity_free', handle])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    if (this.#handle === null) return 'Identity <closed>';
    try {
      const ro = this.isReadOnly ? ' read-only' : '';
      return `Identity <${this.entityId.toString('hex')}${ro}>`;
    } catch {
      return 'Identity <closed>';
    }
  }
}

/** The raw handle (bigint pointer) of an identity, or null once closed. Test/debug only. */
function rawHandle(identity) {
  if (!(identity instanceof Identity)) throw new TypeError('expected an Identity, Redex, RedexFile or RedexTail');
  return handleOf(identity);
}

/** Internal: the live handle of an Identity argument (throws if closed). */
function liveHandle(identity, name) {
  if (!(identity instanceof Identity)) throw new TypeError(`${name} must be an Identity`);
  const handle = handleOf(identity);
  if (handle === null) {
    throw new ShuttingDownError(`${name} (Identity) is closed`, STATUS.NET_ERR_SHUTTING_DOWN);
  }
  return handle;
}

/** Internal: a public key given as bytes or as an Identity. */
function publicKeyArg(value, name) {
  if (value instanceof Identity) return value.publicKey;
  return args.bytes(value, name);
}

module.exports = { Identity, rawHandle, liveHandle, publicKeyArg };
