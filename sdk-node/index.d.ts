/// <reference types="node" />
// Type declarations of netmesh, the Node.js SDK of Net. Every u64 of the C ABI
// (origin hash, node id, token times, nonce) is a `bigint`.

import type { EventEmitter } from 'node:events';

/** Bytes accepted as input. Outputs are always `Buffer`. */
export type BytesLike = Uint8Array | ArrayBuffer | ArrayBufferView;
/** Bytes, or a string encoded as UTF-8. */
export type BytesOrString = BytesLike | string;
/** A u64 input: a bigint, or a non-negative safe-integer number. */
export type U64Like = bigint | number;
/** A channel: its 16-bit hash, or its name. */
export type ChannelLike = number | string;
/** A public key: 32 bytes, or an Identity (its public key is used). */
export type PublicKeyLike = BytesLike | Identity;

// ---------------------------------------------------------------------------
// Identity

/**
 * An entity identity: an ed25519 keypair, or only its public key
 * (read-only). Backed by a libnet handle: release it with `close()`, a
 * `using` declaration, or let the finalizer do it. Methods throw
 * `ShuttingDownError` once closed.
 */
export declare class Identity implements Disposable, AsyncDisposable {
  private constructor();
  /** A new identity from 32 bytes of OS randomness. */
  static generate(): Identity;
  /** The identity of a 32-byte ed25519 seed (RFC 8032 derivation). */
  static fromSeed(seed: BytesLike): Identity;
  /** A read-only identity (verify only) from a 32-byte ed25519 public key. */
  static fromPublicKey(publicKey: BytesLike): Identity;

  /** A new, independent Identity for the same keypair; close each separately. */
  clone(): Identity;

  /** The 32-byte ed25519 public key. */
  readonly publicKey: Buffer;
  /** The 32-byte entity id (the same bytes as the public key). */
  readonly entityId: Buffer;
  /** Whether this identity holds only a public key. */
  readonly isReadOnly: boolean;
  /** The 64-bit origin hash (application event origin). */
  readonly originHash: bigint;
  /** The 64-bit node id (mesh peer identity). */
  readonly nodeId: bigint;
  /** True once `close()` has been called. */
  readonly closed: boolean;

  /** The 32-byte seed (the secret). Throws `ReadOnlyError` for a read-only identity. */
  seed(): Buffer;
  /** Signs a message (deterministic ed25519): the 64-byte signature. */
  sign(message: BytesOrString): Buffer;
  /** `sign()` on a worker thread; the event loop keeps running. */
  signAsync(message: BytesOrString): Promise<Buffer>;
  /** Strictly verifies a 64-byte signature over a message. */
  verify(message: BytesOrString, signature: BytesLike): boolean;
  /** `verify()` on a worker thread. */
  verifyAsync(message: BytesOrString, signature: BytesLike): Promise<boolean>;

  /**
   * Releases the handle. Idempotent. Blocks (up to 5 s, inside libnet) until
   * calls in flight on other threads have finished.
   */
  close(): void;
  /** `close()` whose wait for in-flight calls happens on a worker thread. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

// ---------------------------------------------------------------------------
// Tokens

/** Scope bits of a permission token (`NET_SCOPE_*`). */
export declare const Scope: Readonly<{
  NONE: 0;
  PUBLISH: 1;
  SUBSCRIBE: 2;
  ADMIN: 4;
  DELEGATE: 8;
  WILDCARD: 16;
  ALL: 15;
}>;

export interface IssueOptions {
  /** Scope bits (`Scope.*`, OR-ed). */
  scope: number;
  /** Time to live in seconds from now; must not be 0. */
  ttlSecs: U64Like;
  /** The channel (hash or name); default 0 (for `Scope.WILDCARD` tokens). */
  channel?: ChannelLike;
  /** How many more times the token may be delegated; default 0. */
  delegationDepth?: number;
}

/** A parsed 159-byte permission token. */
export declare class Token {
  private constructor();
  /** Parses (copies) 159 bytes; does not verify. Throws `TokenInvalidFormatError`. */
  static fromBytes(bytes: BytesLike): Token;
  /** Issues a token from `issuer` to `subject`, valid `ttlSecs` from now, random nonce. */
  static issue(issuer: Identity, subject: PublicKeyLike, options: IssueOptions): Token;
  /** `issue()` on a worker thread. */
  static issueAsync(issuer: Identity, subject: PublicKeyLike, options: IssueOptions): Promise<Token>;

  /** A copy of the 159 bytes. */
  readonly bytes: Buffer;
  /** Public key of the signer. */
  readonly issuer: Buffer;
  /** Public key of the authorised entity. */
  readonly subject: Buffer;
  /** Scope bits. */
  readonly scope: number;
  /** Channel hash (ignored with `Scope.WILDCARD`). */
  readonly channelHash: number;
  /** Remaining delegation depth. */
  readonly delegationDepth: number;
  /** First live second (UNIX). */
  readonly notBefore: bigint;
  /** First expired second (UNIX). */
  readonly notAfter: bigint;
  /** Random nonce. */
  readonly nonce: bigint;

  /** A copy of the 159 bytes. */
  toBuffer(): Buffer;
  /** Whether the signature verifies under the issuer (no time check). */
  verify(): boolean;
  /**
   * Signature, then `notBefore <= now < notAfter` (now: the current time, or
   * `now` in UNIX seconds). Throws `TokenInvalidSignatureError`,
   * `TokenNotYetValidError` or `TokenExpiredError`.
   */
  assertValid(now?: U64Like): void;
  /** `assertValid()` as a boolean. */
  isValid(now?: U64Like): boolean;
  /** Whether the token has expired now; no signature check. */
  /** At `now` (UNIX seconds), or the current time. */
  isExpired(now?: U64Like): boolean;
  /** Whether the scope covers `action` (Scope bits) on `channel`. */
  authorizes(action: number, channel: ChannelLike): boolean;
  /**
   * Delegates to `newSubject` with `scope` narrowed by this token's scope,
   * signed by `signer`, who must be this token's subject.
   */
  delegate(signer: Identity, newSubject: PublicKeyLike, scope: number): Token;
  /** `delegate()` on a worker thread. */
  delegateAsync(signer: Identity, newSubject: PublicKeyLike, scope: number): Promise<Token>;
  /** Whether two tokens have the same bytes. */
  equals(other: Token): boolean;
}

// ---------------------------------------------------------------------------
// Envelopes

/**
 * Seals `source`'s seed to the recipient's X25519 public key, bound to the
 * 32-byte `chainLink`: the 209-byte envelope. Throws `ReadOnlyError` for a
 * read-only source.
 */
export declare function sealEnvelope(source: Identity, targetPublicKey: BytesLike, chainLink: BytesLike): Buffer;
/** `sealEnvelope()` on a worker thread. */
export declare function sealEnvelopeAsync(
  source: Identity,
  targetPublicKey: BytesLike,
  chainLink: BytesLike,
): Promise<Buffer>;
/**
 * Opens an envelope with the recipient's X25519 secret and the chain link;
 * returns the sealed identity (which the caller must close). With
 * `expectedSigner` the envelope must come from it.
 */
export declare function openEnvelope(
  envelope: BytesLike,
  targetSecretKey: BytesLike,
  chainLink: BytesLike,
  expectedSigner?: PublicKeyLike | null,
): Identity;
/** `openEnvelope()` on a worker thread. */
export declare function openEnvelopeAsync(
  envelope: BytesLike,
  targetSecretKey: BytesLike,
  chainLink: BytesLike,
  expectedSigner?: PublicKeyLike | null,
): Promise<Identity>;
/** The X25519 public key of a 32-byte X25519 secret. */
export declare function x25519PublicKey(secretKey: BytesLike): Buffer;

// ---------------------------------------------------------------------------
// Channels

/** The 16-bit hash of a valid channel name. Throws `ChannelNameError`. */
export declare function channelHash(name: BytesOrString): number;
/** Throws `ChannelNameError` (naming the rule broken) unless the name is valid. */
export declare function validateChannel(name: BytesOrString): void;
/** Whether a channel name is valid. */
export declare function isValidChannel(name: BytesOrString): boolean;

// ---------------------------------------------------------------------------
// Versions and constants

/** The libnet version, "MAJOR.MINOR.PATCH". */
export declare function version(): string;
/** The ABI version of the loaded libnet. */
export declare function abiVersion(): number;
/** The ABI version this SDK was written for (checked at load). */
export declare const ABI_VERSION: 1;

export declare const SEED_LEN: 32;
export declare const PUBLIC_KEY_LEN: 32;
export declare const SIGNATURE_LEN: 64;
export declare const TOKEN_SIZE: 159;
export declare const ENVELOPE_SIZE: 209;
export declare const CHAIN_LINK_LEN: 32;
export declare const X25519_KEY_LEN: 32;

/** The names of `net_status_t`. */
export type StatusName =
  | 'NET_OK'
  | 'NET_TIMEOUT'
  | 'NET_END'
  | 'NET_ERR_INVALID_ARGUMENT'
  | 'NET_ERR_SHUTTING_DOWN'
  | 'NET_ERR_PANIC'
  | 'NET_ERR_INTERNAL'
  | 'NET_ERR_READ_ONLY'
  | 'NET_ERR_INVALID_PUBLIC_KEY'
  | 'NET_ERR_INVALID_SIGNATURE'
  | 'NET_ERR_TOKEN_INVALID_SIGNATURE'
  | 'NET_ERR_TOKEN_NOT_YET_VALID'
  | 'NET_ERR_TOKEN_EXPIRED'
  | 'NET_ERR_TOKEN_DELEGATION_EXHAUSTED'
  | 'NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED'
  | 'NET_ERR_TOKEN_NOT_AUTHORIZED'
  | 'NET_ERR_TOKEN_INVALID_FORMAT'
  | 'NET_ERR_TOKEN_ZERO_TTL'
  | 'NET_ERR_ENVELOPE_UNKNOWN_VERSION'
  | 'NET_ERR_ENVELOPE_INVALID_LENGTH'
  | 'NET_ERR_ENVELOPE_INVALID_SIGNER_KEY'
  | 'NET_ERR_ENVELOPE_INVALID_ATTESTATION'
  | 'NET_ERR_ENVELOPE_SEAL_OPEN_FAILED'
  | 'NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH'
  | 'NET_ERR_CHANNEL_INVALID_NAME';

/** Every status code of include/net.h by name (e.g. `Status.NET_ERR_TOKEN_EXPIRED === -22`). */
export declare const Status: Readonly<Record<StatusName, number>>;

/** The names of the `#define NET_*` constants. */
export type ConstantName =
  | 'NET_ENVELOPE_SIZE'
  | 'NET_CHAIN_LINK_LEN'
  | 'NET_X25519_KEY_LEN'
  | 'NET_SEED_LEN'
  | 'NET_PUBLIC_KEY_LEN'
  | 'NET_SIGNATURE_LEN'
  | 'NET_TOKEN_SIZE'
  | 'NET_SCOPE_PUBLISH'
  | 'NET_SCOPE_SUBSCRIBE'
  | 'NET_SCOPE_ADMIN'
  | 'NET_SCOPE_DELEGATE'
  | 'NET_SCOPE_WILDCARD'
  | 'NET_SCOPE_ALL'
  | 'NET_ABI_VERSION';

/** Every `#define NET_*` of include/net.h by name. */
export declare const Constants: Readonly<Record<ConstantName, number>>;

/** The name of a status code (`NET_UNKNOWN_STATUS(<n>)` for one libnet does not define). */
export declare function statusName(status: number): string;

// ---------------------------------------------------------------------------
// Errors

/** Base class of every libnet error. */
export declare class NetError extends Error {
  constructor(message: string, status: number);
  /** The `net_status_t` code (negative). */
  readonly status: number;
  /** Its name, e.g. `'NET_ERR_TOKEN_EXPIRED'`. */
  readonly code: StatusName | string;
}
export declare class InvalidArgumentError extends NetError {}
export declare class ShuttingDownError extends NetError {}
export declare class PanicError extends NetError {}
export declare class InternalError extends NetError {}
export declare class ReadOnlyError extends NetError {}
export declare class InvalidPublicKeyError extends NetError {}
export declare class InvalidSignatureError extends NetError {}

export declare class TokenError extends NetError {}
export declare class TokenInvalidSignatureError extends TokenError {}
export declare class TokenNotYetValidError extends TokenError {}
export declare class TokenExpiredError extends TokenError {}
export declare class TokenDelegationExhaustedError extends TokenError {}
export declare class TokenDelegationNotAllowedError extends TokenError {}
export declare class TokenNotAuthorizedError extends TokenError {}
export declare class TokenInvalidFormatError extends TokenError {}
export declare class TokenZeroTtlError extends TokenError {}

export declare class EnvelopeError extends NetError {}
export declare class EnvelopeUnknownVersionError extends EnvelopeError {}
export declare class EnvelopeInvalidLengthError extends EnvelopeError {}
export declare class EnvelopeInvalidSignerKeyError extends EnvelopeError {}
export declare class EnvelopeInvalidAttestationError extends EnvelopeError {}
export declare class EnvelopeSealOpenFailedError extends EnvelopeError {}
export declare class EnvelopeOriginHashMismatchError extends EnvelopeError {}

export declare class ChannelNameError extends NetError {}

// ---------------------------------------------------------------------------
// Internals (tests, benchmarks, debugging; not a stable API)

export interface PoolJobEvent {
  op: string;
  ok: boolean;
  status: number | null;
  /** process.hrtime.bigint() on the worker, before and after the C call. */
  startedAt: bigint;
  finishedAt: bigint;
  threadId: number;
}

export declare const internal: {
  /** The koffi module netmesh uses. */
  readonly koffi: unknown;
  /** The raw koffi functions, by C name; pointers are bigints. */
  readonly fns: Readonly<Record<string, (...args: any[]) => any>>;
  /** The libnet that was loaded. */
  readonly libraryPath: string;
  /** Where the bundled libnet lives inside the package. */
  readonly bundledLibraryPath: string;
  /** net_last_error_message() on the calling thread. */
  lastErrorMessage(): string;
  /** The bigint pointer behind an Identity, or null once closed. */
  rawHandle(identity: Identity): bigint | null;
  /** Emits 'job' (PoolJobEvent) after each call run on the async pool. */
  readonly poolEvents: EventEmitter;
  /** Worker threads in the async pool (NETMESH_THREADS, default min(4, cores)). */
  poolSize(): number;
};
