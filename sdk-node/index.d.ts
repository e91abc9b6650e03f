/// <reference types="node" />
// Type declarations of netmesh, the Node.js SDK of Net. Every u64 of the C ABI
// (origin hash, node id, token times, nonce, RedEX sequence numbers and
// counts) is a `bigint`.

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

/**
 * The option every blocking call takes: an AbortSignal. Aborting it cancels
 * the libnet call (through its `net_cancel_t`) and rejects the promise with
 * `signal.reason`; a call that completed anyway resolves.
 */
export interface SignalOptions {
  signal?: AbortSignal | null;
}

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
   * calls in flight on other threads have finished; throws `BusyError` if
   * some were still running then.
   */
  close(): void;
  /** `close()` whose wait for in-flight calls happens on a worker thread; rejects with `BusyError`. */
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
/** The first causal link of chain `origin` (32 bytes). */
export declare function genesisLink(origin: U64Like): Buffer;
/** The causal link after `prev` whose event carried `prevPayload`. */
export declare function nextCausalLink(prev: BytesLike, prevPayload?: BytesLike, horizon?: U64Like): Buffer;
/** One event of a causal stream: u32 LE (32 + payload length) ‖ link ‖ payload. */
export declare function causalFrame(link: BytesLike, payload?: BytesLike): Buffer;

// ---------------------------------------------------------------------------
// Channels

/** The 16-bit hash of a valid channel name. Throws `ChannelNameError`. */
export declare function channelHash(name: BytesOrString): number;
/** Throws `ChannelNameError` (naming the rule broken) unless the name is valid. */
export declare function validateChannel(name: BytesOrString): void;
/** Whether a channel name is valid. */
export declare function isValidChannel(name: BytesOrString): boolean;

// ---------------------------------------------------------------------------
// RedEX

/** When a persistent file fsyncs: never, every N appends, every interval, or interval-or-bytes. */
export type RedexFsync =
  | 'never'
  | { everyN: U64Like }
  | { intervalMs: U64Like }
  | { intervalMs: U64Like; maxBytes: U64Like };

/** Limits applied by `sweepRetention()` (oldest entries go first). */
export interface RedexRetention {
  maxEvents?: U64Like;
  maxBytes?: U64Like;
  maxAgeMs?: U64Like;
}

/**
 * Options of `openFile`, marshalled to libnet's configuration JSON. An
 * unknown key or a bad value throws `RedexInvalidConfigError` naming it.
 */
export interface RedexFileOptions {
  /** Keep the log on disk under the manager's base directory (default false: memory). */
  persistent?: boolean;
  /** Default 'never'; other policies need `persistent: true`. */
  fsync?: RedexFsync;
  retention?: RedexRetention;
  /**
   * Persistent files only (default false): when the live generation lost its
   * `idx` or `dat`, rebuild the channel from what can be proven instead of
   * throwing `RedexCorruptError`; `recoveryReport()` then lists what was lost.
   */
  repair?: boolean;
}

/** Why recovery dropped an index record. */
export type RedexDropReason =
  | 'checksum_mismatch'
  | 'payload_out_of_range'
  | 'seq_out_of_range'
  | 'seq_breaks_run';

/** One index record that opening a persistent file dropped. */
export interface RedexDroppedRecord {
  /** The record's position in `idx` (0-based) as found. */
  position: bigint;
  /** The seq its slot keeps as a hole (never reused), or null when no seq was free for it. */
  seq: bigint | null;
  /** The seq the record claimed (the same as `seq` unless the seq was the damage). */
  storedSeq: bigint;
  reason: RedexDropReason;
}

/** What opening a persistent file found and did (`RedexFile.recoveryReport()`). */
export interface RedexRecoveryReport {
  /** The live generation after the open. */
  generation: number;
  /** Whole index records found in `idx`. */
  records: bigint;
  /** Entries recovered (readable). */
  entries: bigint;
  /** Hole records (seqs known missing, never reused) after the open. */
  holes: bigint;
  /** The records this open dropped, with why. */
  dropped: RedexDroppedRecord[];
  /** Bytes of a partial record cut from the end of `idx`. */
  tornIdxBytes: bigint;
  /** Bytes cut from the end of `dat` that no kept entry refers to. */
  datTruncatedBytes: bigint;
  /** Entries (and holes) whose missing timestamp was set to the time of the open. */
  timestampsRestored: bigint;
  /** Whether `idx` and `ts` were rewritten (atomically) to record drops. */
  indexRewritten: boolean;
  /** Whether the open was asked to repair and had to. */
  repaired: boolean;
  /** Other findings, one sentence each. */
  notes: string[];
  /** True when the open found nothing to drop, cut or repair. */
  clean: boolean;
}

/** One entry of `readRange`. */
export interface RedexRecord {
  seq: bigint;
  payload: Buffer;
}

/** An entry delivered by a tail. */
export interface RedexTailEntry extends RedexRecord {
  lagged: false;
}

/**
 * Retention removed entries `[missedFrom, resumeAt)` before the tail read
 * them; the tail goes on at `resumeAt`.
 */
export interface RedexLagged {
  lagged: true;
  missedFrom: bigint;
  resumeAt: bigint;
}

/** What a tail yields; tell the two apart with `item.lagged`. */
export type RedexTailItem = RedexTailEntry | RedexLagged;

/**
 * A RedEX manager: the channels under one base directory (persistent and
 * memory files), or memory files only when `baseDir` is omitted.
 */
export declare class Redex implements Disposable, AsyncDisposable {
  constructor(baseDir?: string);
  /** `new Redex(baseDir)`. */
  static open(baseDir?: string): Redex;
  /** The base directory, or null for a memory-only manager. */
  readonly baseDir: string | null;
  /** True once `close()` has been called. */
  readonly closed: boolean;
  /**
   * Opens (creating or recovering) channel `name`. Options: an object, or a
   * configuration JSON string passed to libnet as is. Throws
   * `ChannelNameError`, `RedexInvalidConfigError`, `RedexNoPersistentDirError`,
   * `RedexLockedError` (another writer has the channel), `RedexCorruptError`
   * (a file the channel needs is missing; the message names it, nothing was
   * changed: restore it or pass `repair: true`), `RedexIoError`.
   */
  openFile(name: BytesOrString, options?: RedexFileOptions | string | null): RedexFile;
  /** `openFile()` on a worker thread (recovering a big persistent file takes a while). */
  openFileAsync(name: BytesOrString, options?: RedexFileOptions | string | null): Promise<RedexFile>;
  /** Frees the manager (idempotent); its files stay open until closed. Throws `BusyError`. */
  close(): void;
  /** `close()` whose wait for in-flight calls happens on a worker thread; rejects with `BusyError`. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** One channel's append-only log. Methods throw `ShuttingDownError` once closed. */
export declare class RedexFile implements Disposable, AsyncDisposable {
  private constructor();
  /** The channel name. */
  readonly name: string;
  /** True once `close()` has been called. */
  readonly closed: boolean;
  /** The sequence number the next append will get. */
  readonly nextSeq: bigint;
  /** The number of live entries. */
  readonly length: bigint;

  /** Appends a payload (a string is UTF-8); returns its sequence number. */
  append(payload: BytesOrString): bigint;
  /** `append()` on a worker thread. */
  appendAsync(payload: BytesOrString): Promise<bigint>;
  /** Appends exactly 8 bytes (stored in the index); `RedexInlineLengthError` otherwise. */
  appendInline(payload: BytesOrString): bigint;
  /** Appends payloads atomically on consecutive seqs: the first, or null for an empty batch. */
  appendBatch(payloads: Iterable<BytesOrString>): bigint | null;
  /** `appendBatch()` on a worker thread. */
  appendBatchAsync(payloads: Iterable<BytesOrString>): Promise<bigint | null>;
  /** The payload of entry `seq`, or null when there is none. */
  read(seq: U64Like): Buffer | null;
  /** `read()` on a worker thread. */
  readAsync(seq: U64Like): Promise<Buffer | null>;
  /** The entries with `fromSeq <= seq < toSeq`, in order. */
  readRange(fromSeq: U64Like, toSeq: U64Like): RedexRecord[];
  /** `readRange()` on a worker thread. */
  readRangeAsync(fromSeq: U64Like, toSeq: U64Like): Promise<RedexRecord[]>;
  /** What opening this persistent file found and did; null for a memory file. */
  recoveryReport(): RedexRecoveryReport | null;
  /** Makes every append so far durable. */
  sync(): void;
  /** `sync()` on a worker thread. */
  syncAsync(): Promise<void>;
  /** Applies the retention limits now; returns how many entries were removed. */
  sweepRetention(): bigint;
  /** `sweepRetention()` on a worker thread. */
  sweepRetentionAsync(): Promise<bigint>;
  /**
   * A reader from `fromSeq` (default 0n): backfill, then live appends. With
   * `{ signal }`, aborting it closes the tail and rejects a pending `next()`
   * (so a `for await` loop throws the signal's reason).
   */
  tail(fromSeq?: U64Like, options?: SignalOptions): RedexTail;

  /**
   * Syncs, closes and frees the file (idempotent); its tails end. Throws
   * `RedexIoError` if the final sync failed, `BusyError` if calls were still
   * running after libnet's 5 s deadline (the handle is released anyway).
   */
  close(): void;
  /** `close()` on a worker thread; rejects as `close()` throws. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A reader of a RedexFile, used with `for await`: entries and lagged markers,
 * ending when the tail or its file is closed. Leaving the loop early
 * (`break`, `throw`) closes it.
 */
export declare class RedexTail implements AsyncIterable<RedexTailItem>, Disposable, AsyncDisposable {
  private constructor();
  /** The file this tail reads. */
  readonly file: RedexFile;
  /** The next sequence number this reader will deliver (or report missed). */
  readonly position: bigint;
  /** True once closed or ended with nothing left to deliver. */
  readonly closed: boolean;
  /** Waits as long as it takes for the next item (the async-iterator protocol). */
  next(): Promise<IteratorResult<RedexTailItem, undefined>>;
  /** As `next()`, cancelled by `options.signal` (rejecting with its reason; nothing is consumed). */
  next(timeoutMs: undefined, options?: SignalOptions): Promise<IteratorResult<RedexTailItem, undefined>>;
  /** Waits up to `timeoutMs` (0: only what is ready; Infinity: no limit); null on timeout. */
  next(timeoutMs: number, options?: SignalOptions): Promise<IteratorResult<RedexTailItem, undefined> | null>;
  /** Closes the tail (what `for await` calls on `break`). */
  return(): Promise<IteratorReturnResult<undefined>>;
  /** The tail itself, as a plain async iterator (for `for await`). */
  [Symbol.asyncIterator](): AsyncIterableIterator<RedexTailItem>;
  /**
   * Ends the tail: pending and later `next()` calls resolve `{ done: true }`
   * (libnet wakes a blocked one). Idempotent. Throws `BusyError`.
   */
  close(): void;
  /** `close()` with the free on a worker thread; rejects with `BusyError`. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** `Constants.NET_WAIT_FOREVER`: the C ABI's "no timeout" value (the SDK's is `Infinity`). */
export declare const WAIT_FOREVER: 4294967295;

// ---- mesh ----------------------------------------------------------------------------

/** Mesh node options (all optional). Durations in ms; keys as 32 bytes or hex. */
export interface MeshOptions {
  bind?: string;
  psk?: BytesLike | string;
  identitySeed?: BytesLike | string;
  staticSecret?: BytesLike | string;
  heartbeatIntervalMs?: number;
  sessionTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  handshakeRetries?: number;
  numShards?: number;
  shardCapacity?: number;
  window?: U64Like;
  /** How far a default window widens between Net nodes while its sender is
   * held back and the reader keeps up (default 4 MiB; at most `window`
   * turns it off). */
  maxWindow?: U64Like;
  /** What widened streams of the node may hold beyond the default (default 64 MiB). */
  windowBudget?: U64Like;
  /** Up to 65 000-byte datagrams between Net nodes where the route carries
   * them unfragmented and a probe gets through (default true). */
  largeDatagrams?: boolean;
  pathProbeIntervalMs?: number;
  recvBuffer?: number;
  sendBuffer?: number;
  maxStreams?: number;
  streamIdleTimeoutMs?: number;
  connectForm?: 'routed' | 'direct';
  helloTimeoutMs?: number;
  requireIdentity?: boolean;
  /** Linux UDP GSO sends (default true; turns itself off if the kernel refuses). */
  gso?: boolean;
  /** Linux UDP GRO receives (default true). */
  gro?: boolean;
  /** Offer AES-256-GCM to Net peers when the CPU has AES instructions
   * (default true; used when both sides offer it). */
  aes?: boolean;
  /** Run the continuity plane (partition records, heal exchange, reconciliation); default true. */
  continuity?: boolean;
  /** How often a chain heard on a causal stream is proved against the peer
   * it came from (default 10 000; 0: never). */
  proofIntervalMs?: number;
  maxPendingHandshakes?: number;
  loopbackDepth?: number;
  /** The node classifies its NAT by itself (default true). */
  natClassify?: boolean;
  classifyPeriodMs?: number;
  classifyDeadlineMs?: number;
  /** 'IP:port', a public address: class Open with that reflex. */
  reflexOverride?: string;
  /** Ask the gateway for a port mapping (PCP, NAT-PMP, UPnP IGD); default false. */
  portMapping?: boolean;
  /** The PCP / NAT-PMP gateway (IPv4); default the default route's. */
  portMappingGateway?: string;
  /** This node's subnet: 'global' or one to four dotted levels ('3.7.2').
   * Unset: from `subnetPolicy` over the tags it announces, else global. */
  subnet?: string;
  /** Rules mapping capability tags to subnet levels: this node's subnet
   * when `subnet` is unset, and that of peers announcing no `subnet:` tag. */
  subnetPolicy?: SubnetRule[];
}

/** One rule of `MeshOptions.subnetPolicy`: the first tag starting with
 * `prefix` whose remainder is a key of `values` sets subnet level `level`
 * (0-3, 0 the top) to that value (1-255); a later rule for the same level
 * overwrites. */
export interface SubnetRule {
  prefix: string;
  level: number;
  values: Record<string, number>;
}

/** One partition record (`Mesh.partitions()`). */
export interface PartitionRecord {
  id: bigint;
  phase: 'suspected' | 'confirmed' | 'healing' | 'healed';
  ourSide: bigint[];
  otherSide: bigint[];
  returned: bigint[];
  cause: { kind: 'subnet' | 'broad_outage' | 'unknown'; subnet?: string; share?: number };
  horizonAtSplit: [bigint, bigint][];
  detectedAtMs: bigint;
  confirmedAtMs: bigint | null;
  healedAtMs: bigint | null;
  partitionKey: bigint | null;
}

/** A point on a chain. */
export interface ChainPoint {
  origin: bigint;
  seq: bigint;
  hash: bigint;
}

/** A fork a losing branch became. */
export interface ForkInfo {
  originalOrigin: bigint;
  forkedOrigin: bigint;
  forkSeq: bigint;
  /** The 65-byte fork record, hex. */
  bytes: string;
}

/** One followed chain (`Mesh.continuityStatus()`). */
export interface ChainStatus {
  origin: bigint;
  head: ChainPoint;
  held: bigint;
  broken: { reason: 'chain_break' | 'conflicting_chains'; lastVerifiedSeq: bigint; detectedAtMs: bigint } | null;
  forks: ForkInfo[];
  /** The peer its events last came from on a causal stream (the one the node proves it against). */
  source: bigint | null;
  /** The last sequence the node's own proofs settled. */
  provedTo: bigint;
  /** A proof conflicted (no more until the chain is reconciled). */
  proofConflicted: boolean;
}

/** One continuity event (`Mesh.continuityNext()`); fields by `type`. */
export interface ContinuityEvent {
  type: 'detected' | 'extended' | 'confirmed' | 'healing' | 'healed' | 'agreed' | 'reconciled' | 'fork_adopted' | 'proof_checked' | 'chain_broken';
  record?: bigint;
  progress?: number;
  peer?: bigint;
  partitionKey?: bigint | null;
  origin?: bigint;
  head?: ChainPoint;
  outcome?: 'converged' | 'caught_up' | 'diverged';
  appended?: bigint;
  weWon?: boolean;
  fork?: ForkInfo;
  reason?: string;
  /** proof_checked: the span asked, the verdict and its details. */
  fromSeq?: bigint;
  toSeq?: bigint;
  verdict?: 'consistent' | 'conflicts' | 'unknown' | 'unavailable' | 'unanswered';
  seq?: bigint;
  ours?: bigint;
  theirs?: bigint;
  theirHead?: ChainPoint;
}

/** Where a node's NAT stands (`Mesh.nat()`). */
export interface NatStatus {
  /** What the `nat:*` capability tag says. */
  class: 'open' | 'cone' | 'symmetric' | 'unknown';
  /** 'IP:port' peers can reach us at (never private, loopback or wildcard). */
  reflex: string | null;
  /** RFC 4787 mapping of the last round ('EndpointIndependent', …). */
  mapping: string;
  /** RFC 4787 filtering of the last round. */
  filtering: string;
  portPreserving: boolean;
  override: string | null;
  /** Classification rounds committed. */
  rounds: number;
  classify: boolean;
  /** Introduces received for punches this node asked for. */
  punchesAttempted: number;
  /** Direct paths after a punch. */
  punchesSucceeded: number;
  /** connectDirect calls that ended relayed. */
  relayFallbacks: number;
}

/** One received event. */
export interface MeshEvent {
  peer: bigint;
  streamId: bigint;
  data: Buffer;
  /** Events of this stream dropped just before this one because the inbound queue was full (only senders that do not wait for credit cause drops). */
  droppedBefore: bigint;
  /** The channel the event was published on ('' for an ordinary stream). */
  channel: string;
}

/** A GPU vendor by its binding name (any case is accepted on input; output is lowercase). */
export type GpuVendor = 'unknown' | 'nvidia' | 'amd' | 'intel' | 'apple' | 'qualcomm';
/** A non-GPU accelerator kind by its binding name. */
export type AcceleratorType = 'unknown' | 'tpu' | 'npu' | 'fpga' | 'asic' | 'dsp';
/** A model modality by its binding name (`tool_use` and `tooluse` are read as `tool-use`). */
export type Modality = 'text' | 'image' | 'audio' | 'video' | 'code' | 'embedding' | 'tool-use';

/** One GPU. */
export interface GpuInfo {
  vendor?: GpuVendor;
  model?: string;
  /** MiB. */
  vramMb?: number;
  computeUnits?: number;
  tensorCores?: number;
  /** FP16 TFLOPS × 10, truncated. */
  fp16TflopsX10?: number;
}

/** One non-GPU accelerator. */
export interface AcceleratorInfo {
  accelType?: AcceleratorType;
  model?: string;
  /** MiB. */
  memoryMb?: number;
  /** TOPS × 10, truncated. */
  topsX10?: number;
}

/** A node's hardware. */
export interface Hardware {
  cpuCores?: number;
  cpuThreads?: number;
  /** MiB. */
  memoryMb?: number;
  /** The primary GPU (null: none); only it satisfies `requireGpu`. */
  gpu?: GpuInfo | null;
  /** Further GPUs (count towards the total VRAM only). */
  additionalGpus?: GpuInfo[];
  /** MiB. */
  storageMb?: number;
  /** Mbit/s. */
  networkMbps?: number;
  accelerators?: AcceleratorInfo[];
}

/** A node's software; runtimes, frameworks and drivers are `[name, version]` pairs. */
export interface Software {
  os?: string;
  osVersion?: string;
  runtimes?: [string, string][];
  frameworks?: [string, string][];
  /** null: no CUDA. */
  cudaVersion?: string | null;
  drivers?: [string, string][];
}

/** A model the node can serve. */
export interface ModelInfo {
  /** What `requireModels` matches. */
  modelId?: string;
  family?: string;
  /** Billions of parameters × 10, truncated. */
  parametersBX10?: number;
  /** Tokens. */
  contextLength?: number;
  quantization?: string | null;
  modalities?: Modality[];
  tokensPerSec?: number;
  /** Loaded now. */
  loaded?: boolean;
}

/** A tool the node can run. */
export interface ToolInfo {
  /** What `requireTools` matches. */
  toolId?: string;
  name?: string;
  version?: string;
  /** JSON schema of the input (null: unpublished). */
  inputSchema?: string | null;
  outputSchema?: string | null;
  requires?: string[];
  estimatedTimeMs?: number;
  /** Calls are independent. */
  stateless?: boolean;
}

/** Service limits (0: unspecified). */
export interface Limits {
  maxConcurrentRequests?: number;
  maxTokensPerRequest?: number;
  rateLimitRpm?: number;
  maxBatchSize?: number;
  maxInputBytes?: number;
  maxOutputBytes?: number;
}

/**
 * What a node announces (WIRE.md §10.4): omitted members take their
 * defaults. `announce` also takes libnet's snake_case keys.
 */
export interface Capabilities {
  hardware?: Hardware;
  software?: Software;
  models?: ModelInfo[];
  tools?: ToolInfo[];
  /** Free-form; the prefixes `nat:`, `scope:` and `subprotocol:` are reserved. */
  tags?: string[];
  limits?: Limits;
}

/** Every member filled in, as the index returns a set. */
export type FullCapabilities = {
  hardware: Required<Omit<Hardware, 'gpu' | 'additionalGpus' | 'accelerators'>> & {
    gpu: Required<GpuInfo> | null;
    additionalGpus: Required<GpuInfo>[];
    accelerators: Required<AcceleratorInfo>[];
  };
  software: Required<Software>;
  models: Required<ModelInfo>[];
  tools: Required<ToolInfo>[];
  tags: string[];
  limits: Required<Limits>;
};

/**
 * Constraints on announced capabilities; empty ones constrain nothing.
 * libnet's snake_case keys (`require_tags`, …) are accepted too.
 */
export interface CapabilityFilter {
  /** All present. */
  requireTags?: string[];
  /** Any one present. */
  requireModels?: string[];
  /** Any one present. */
  requireTools?: string[];
  minMemoryMb?: number;
  /** A primary GPU. */
  requireGpu?: boolean;
  /** The primary GPU's vendor. */
  gpuVendor?: GpuVendor;
  /** MiB over every GPU. */
  minVramMb?: number;
  /** Of some model. */
  minContextLength?: number;
  /** Each offered by some model. */
  requireModalities?: Modality[];
}

/** A channel's policy; `{}` is an open, global channel. */
export interface ChannelConfig {
  visibility?: 'global' | 'subnet_local' | 'parent_visible' | 'exported';
  publishCaps?: CapabilityFilter | null;
  subscribeCaps?: CapabilityFilter | null;
  /** Subscribers present a token for the channel chained to a trusted issuer. */
  requireToken?: boolean;
  /** Entity ids (32 bytes) that may root a token chain besides this node, or 'any' (v0.11's rule). */
  trustedIssuers?: BytesLike[] | 'any';
  maxSubscribers?: number | null;
  maxRatePps?: number | null;
  reliable?: boolean;
  priority?: number;
  /** The subnets ('3.8') whose peers, and those of the subnets below them,
   * may see an 'exported' channel (none without it). */
  exportTo?: string[];
}

/** What a publish did. */
export interface PublishReport {
  attempted: number;
  delivered: number;
  evicted: number;
  errors: { peer: bigint; status: string; code: number; message: string }[];
}

/** A capability query: `filter`, `scope` ('any' | 'global_only' | 'same_subnet'), and for findBestNode `weights`. */
export interface NodeQuery {
  filter?: CapabilityFilter;
  scope?: 'any' | 'global_only' | 'same_subnet' | { tenants: string[] } | { regions: string[] };
  weights?: { memory?: number; vram?: number; speed?: number; loaded?: number };
}

/** One indexed node. */
export interface NodeCapabilities {
  nodeId: bigint;
  version: bigint;
  timestampNs: bigint;
  expiresAtNs: bigint;
  hopCount: number;
  reflexAddr: string | null;
  /** The announced set, every member filled in. */
  capabilities: FullCapabilities;
}

/** One connected peer. */
export interface MeshPeer {
  nodeId: bigint;
  addr: string;
  sessionId: bigint;
  health: 'alive' | 'suspected' | 'failed';
  identity: 'net' | 'legacy' | 'pending';
  entity: string | null;
  streams: number;
  idleMs: number;
  /** What data packets to the peer are sealed with. */
  cipher: 'chacha20-poly1305' | 'aes-256-gcm';
  /** Events from the peer dropped for want of queue room, not yet reported on a later event. */
  droppedUnreported: bigint;
  /** The node_id of the relay a relayed session goes through; null for a direct peer. */
  relay: bigint | null;
  /** The largest datagram sent to the peer: 8192 (v0.11's), or up to 65 000
   * between Net nodes once a large-datagram probe got through. */
  maxDatagram: number;
  /** The peer's subnet as this node knows it ('global' or dotted levels);
   * null when unknown. */
  subnet: string | null;
}

/** The route in use to one destination (Mesh.routes). */
export interface MeshRoute {
  destination: bigint;
  /** The direct peer packets to the destination go to. */
  nextHop: bigint;
  /** Links to the destination. */
  hops: number;
  /** `relayed`: a relayed session's pinned route; `learned`: from pingwaves. */
  kind: 'direct' | 'relayed' | 'learned';
  /** Milliseconds since the route was last confirmed. */
  ageMs: number;
  /** No news for the expiry time: kept only for want of a fresher route. */
  stale: boolean;
  /** Other usable next hops, ready if this one fails. */
  alternates: number;
}

/** A node's routing table and routing counters (Mesh.routes). */
export interface MeshRoutes {
  nodeId: bigint;
  /** One per reachable destination, in id order. */
  routes: MeshRoute[];
  /** Routed datagrams `forwarded` as a relay, `delivered` to us, `dropped_*` by reason. */
  forwarding: Record<string, number>;
  /** Pingwaves `sent`, `accepted`, `relayed`, `duplicate`, `dropped_*` by reason. */
  pingwaves: Record<string, number>;
}

/** A mesh node: one UDP socket, Noise sessions with its peers. */
/** One polled bus event. */
export interface BusEvent {
  shard: number;
  timestampNs: bigint;
  /** The event's position in its shard (adapter-specific text). */
  id: string;
  /** `nonce:shard:sequence:index` where the adapter keeps it (JetStream, Redis), else null. */
  dedupId: string | null;
  payload: Buffer;
}

/** What an ingestBatch did: events from `taken` on were refused by backpressure. */
export interface IngestReport {
  queued: number;
  sampled: number;
  taken: number;
}

/** A page of polled events and where to continue. */
export interface PollResult {
  events: BusEvent[];
  nextCursor: string;
  hasMore: boolean;
  truncatedAtPerShardCap: boolean;
  stalledShards: number[];
}

/** What a poll asks for. */
export interface PollOptions extends SignalOptions {
  cursor?: string;
  limit?: number;
  perShardLimit?: number;
  shards?: number[];
  /** The JSON predicate language; bigints are written as exact integers. */
  filter?: Record<string, unknown>;
}

/** The libnet bus configuration, with its JSON keys (snake_case). */
export type BusConfig = Record<string, unknown>;

/** An event bus (`net_bus_t`). */
export declare class Bus implements Disposable, AsyncDisposable {
  private constructor();
  static open(config?: BusConfig | null): Bus;
  readonly closed: boolean;
  readonly numShards: number;
  ingest(event: Uint8Array | ArrayBuffer): void;
  ingestBatch(events: Array<Uint8Array | ArrayBuffer>): IngestReport;
  ingestBatchInPlace(events: Array<Uint8Array | ArrayBuffer>): IngestReport;
  /** Off the event loop; `signal` cancels it. */
  poll(options?: PollOptions): Promise<PollResult>;
  /** Resolves once everything ingested so far is stored; `signal` ends the wait; close() rejects it. */
  flush(options?: SignalOptions): Promise<void>;
  stats(): Record<string, number | string | number[] | null>;
  /** Drains and shuts down (`net_bus_close`): the report. The bus still needs `close()`. */
  shutdown(): Promise<Record<string, number | boolean | string | null>>;
  /**
   * Shuts down (draining, on the calling thread) and frees; idempotent.
   * Throws `BusyError` when calls were still running after 5 s or the
   * shutdown lost events.
   */
  close(): void;
  /** `close()` on a worker thread; rejects as `close()` throws. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A bounded FIFO set of recently seen dedup ids (`net_redis_dedup_t`). */
export declare class RedisStreamDedup implements Disposable, AsyncDisposable {
  constructor(capacity?: number);
  readonly closed: boolean;
  readonly size: number;
  readonly capacity: number;
  readonly duplicates: number;
  isDuplicate(id: string): boolean;
  checkBatch(ids: string[]): boolean[];
  clear(): void;
  /** Frees the set (idempotent); throws `BusyError`. */
  close(): void;
  /** `close()` on a worker thread; rejects with `BusyError`. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** An event a daemon processes (`Daemon.process`). */
export interface DaemonEvent {
  /** The producer's origin hash. */
  producer: bigint;
  /** The event's sequence in its producer's chain. */
  sequence: bigint;
  payload: Buffer;
  /** The daemon's own origin hash. */
  daemon: bigint;
}

/** An output a daemon emitted (`Compute.nextOutput`). */
export interface DaemonOutput {
  daemon: bigint;
  /** Its sequence in the daemon's causal chain. */
  sequence: bigint;
  payload: Buffer;
}

/** What `Compute.deliver` did with an event. */
export declare const Delivery: Readonly<{ PROCESSED: number; BUFFERED: number; FORWARDED: number; DUPLICATE: number }>;

/** Where a migration orchestrated by this node stands. */
export interface MigrationStatus {
  state: 'running' | 'completed' | 'failed';
  phase: 'snapshot' | 'transfer' | 'restore' | 'replay' | 'cutover' | 'complete' | null;
  /** The v0.11 failure code, once failed. */
  code: number | null;
  /** "factory-not-found", "state-failed: ...", once failed. */
  reason: string | null;
}

export interface DaemonStats {
  origin: bigint;
  name: string;
  eventsProcessed: bigint;
  eventsEmitted: bigint;
  errors: bigint;
  headSequence: bigint;
  /** The daemon's channel subscriptions (Compute.subscribeChannel). */
  channels: { publisher: bigint; channel: string }[];
}

export interface ComputeOptions {
  retryIntervalMs?: number;
  stepTimeoutMs?: number;
  sourceTimeoutMs?: number;
  /** How long a daemon call waits for the JS daemon (default 30 000). */
  workTimeoutMs?: number;
  /** Send the Net snapshot extension to Net targets (default true; it never goes to a v0.11 target); false: never. */
  sendExtension?: boolean;
  outputCapacity?: number;
  /** Bytes per second at which snapshot chunks leave for another node (default 268 435 456; 0: unpaced). */
  transferRate?: number;
}

/** A daemon written in JavaScript: extend it; methods must be synchronous. */
export declare class Daemon {
  /** Applies one event and returns its outputs; throw to refuse it. */
  process(event: DaemonEvent): Iterable<BytesLike>;
  snapshot(): BytesLike;
  restore(state: Buffer): void;
}

/** A node's compute runtime (one per mesh node); daemons run on the main thread. */
export declare class Compute implements AsyncDisposable {
  private constructor();
  static open(mesh: Mesh, options?: ComputeOptions | null): Compute;
  readonly closed: boolean;
  register(kind: string, factory: () => Daemon, stateful?: boolean): void;
  spawn(kind: string, seed: BytesLike, daemon?: Daemon): bigint;
  expect(kind: string, seed: BytesLike): bigint;
  /** Expects daemon `origin` whose identity travels with its migration (no seed needed here). */
  expectOrigin(kind: string, origin: U64Like): void;
  stop(origin: U64Like): Promise<void>;
  /**
   * Subscribes daemon `origin` to `channel` at `publisher`; the
   * subscription follows the daemon when it migrates, and the node's ends
   * when the last of its daemons lets go.
   */
  subscribeChannel(origin: U64Like, publisher: U64Like, channel: string, options?: SignalOptions & { token?: BytesLike | null }): Promise<void>;
  unsubscribeChannel(origin: U64Like, publisher: U64Like, channel: string, options?: SignalOptions): Promise<void>;
  daemon(origin: U64Like): Daemon | null;
  daemons(): { origin: bigint; name: string }[];
  stats(origin: U64Like): Promise<DaemonStats>;
  deliver(origin: U64Like, producer: U64Like, sequence: U64Like, payload?: BytesLike | null): Promise<number>;
  /**
   * Delivers `payloads` at sequences `firstSequence`, `firstSequence + 1n`,
   * … in order, as one call and one work item (the daemon's process() still
   * runs per event). Resolves with each event's Delivery, or null when the
   * daemon did not take the batch up within `timeoutMs` (nothing
   * delivered). Rejects when an event fails; the error carries `delivered`
   * (events delivered before it) and their `outcomes`. Without a signal, a
   * batch for a daemon of this Compute that is free is lent to the call:
   * process() runs synchronously before deliverBatch() returns.
   */
  deliverBatch(
    origin: U64Like,
    producer: U64Like,
    firstSequence: U64Like,
    payloads: BytesLike[],
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<number[] | null>;
  nextOutput(timeoutMs?: number, options?: SignalOptions): Promise<DaemonOutput | null>;
  /**
   * The least loaded node that announces it takes migrations and matches
   * the daemon's requirements (ComputeNoTargetError when none does).
   */
  placeMigration(origin: U64Like): bigint;
  /**
   * `options.transportIdentity` (default true): seal the daemon's identity
   * to the target when this node is the source (rejects with
   * ComputeIdentityTransportError when the target's key is unknown here).
   */
  startMigration(
    origin: U64Like,
    source: U64Like,
    target: U64Like,
    options?: { transportIdentity?: boolean } | null,
  ): Promise<void>;
  migrationStatus(origin: U64Like): Promise<MigrationStatus>;
  waitMigration(origin: U64Like, timeoutMs?: number, options?: SignalOptions): Promise<MigrationStatus | null>;
  /** Resolves with the stats once `origin` has processed `count` events here (null after `timeoutMs`). */
  waitProcessed(origin: U64Like, count: U64Like, timeoutMs?: number, options?: SignalOptions): Promise<DaemonStats | null>;
  close(): void;
  closeAsync(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Where `ComputeGroup.route` delivered an event. */
export interface Routed {
  index: number;
  origin: bigint;
  node: bigint;
  /** A `Delivery` value. */
  outcome: number;
}

export interface GroupMember {
  index: number;
  origin: bigint;
  node: bigint;
  healthy: boolean;
  generation: number;
  /** Standby groups: the active's chain sequence this standby last synced to (null: the active, or unsynced). */
  syncedThrough?: bigint | null;
}

export interface GroupStatus {
  kind: 'replica' | 'fork' | 'standby';
  daemonKind: string;
  nodes: bigint[];
  health: 'healthy' | 'degraded' | 'dead';
  healthy: number;
  total: number;
  members: GroupMember[];
  /** Replica groups. */
  groupId?: number;
  /** Fork groups: the parent, the fork point, whether every ForkRecord verifies, the records (hex). */
  parentOrigin?: bigint;
  forkSeq?: bigint;
  lineageVerified?: boolean;
  records?: string[];
  /** Standby groups: the one origin, the active's index, events logged for the standbys. */
  origin?: bigint;
  active?: number;
  logged?: number;
}

export interface SyncReport {
  throughSeq: bigint;
  synced: number[];
  failed: { index: number; error: string }[];
}

export interface GroupOptions {
  /** The load balancer's configuration, e.g. `{ strategy: 'round_robin' }`. */
  lb?: Record<string, unknown> | string | null;
}

/** A replica, fork or standby group over Computes of this process; its members are Daemons built by each node's kind factory. */
export declare class ComputeGroup implements AsyncDisposable {
  private constructor();
  static replica(nodes: Compute[], kind: string, seed: BytesLike, count: number, options?: GroupOptions): Promise<ComputeGroup>;
  static fork(nodes: Compute[], kind: string, parentNode: U64Like, parentOrigin: U64Like, count: number, options?: GroupOptions): Promise<ComputeGroup>;
  static standby(nodes: Compute[], kind: string, seed: BytesLike, count: number): Promise<ComputeGroup>;
  readonly closed: boolean;
  route(producer: U64Like, sequence: U64Like, payload?: BytesLike | null, options?: { key?: string }): Promise<Routed>;
  scale(count: number): Promise<void>;
  /** Moves member `index` (a replica or fork, or the standby group's active) to `node` with the migration protocol. */
  migrate(index: number, node: U64Like): Promise<void>;
  nodeFailed(node: U64Like): Promise<number[]>;
  /** Reports node `node` back: an unhealthy member still running there takes traffic again; resolves with the indices restored. */
  nodeRecovered(node: U64Like): Promise<number[]>;
  /** Follows `observer`'s failure detector every `everyMs`: a node seen alive that fails (or is gone) is handled as by nodeFailed, once, and as by nodeRecovered when it is back. A second call replaces the watch. */
  watchFailures(observer: Compute, everyMs: number): Promise<void>;
  /** Ends watchFailures (nothing to do without one). */
  unwatchFailures(): Promise<void>;
  sync(): Promise<SyncReport>;
  promote(): Promise<number>;
  status(): Promise<GroupStatus>;
  closeAsync(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export declare class Mesh implements AsyncIterable<MeshEvent>, Disposable, AsyncDisposable {
  private constructor();
  static open(options?: MeshOptions | null): Mesh;
  readonly closed: boolean;
  readonly nodeId: bigint;
  readonly publicKey: Buffer;
  readonly entityId: Buffer;
  readonly localAddr: string;
  start(): void;
  /** Handshakes off the event loop; `signal` cancels it; close() rejects it with `ShuttingDownError`. */
  connect(addr: string, publicKey: BytesLike, nodeId: U64Like, options?: SignalOptions): Promise<void>;
  /** Handshakes with `nodeId` through `relay`, a direct peer (a relayed session); rejects with `MeshNoRouteError` when `relay` is no direct peer. */
  connectVia(relay: U64Like, publicKey: BytesLike, nodeId: U64Like, options?: SignalOptions): Promise<void>;
  /** `connectVia` through the next hop of the best learned route; rejects with `MeshNoRouteError` when none is known. */
  connectRouted(publicKey: BytesLike, nodeId: U64Like, options?: SignalOptions): Promise<void>;
  /** The peer's address, or null on timeout (omitted: no limit). */
  accept(nodeId: U64Like, timeoutMs?: number | null, options?: SignalOptions): Promise<string | null>;
  openStream(peer: U64Like, streamId: U64Like, options?: { reliable?: boolean; window?: U64Like }): MeshStream;
  /** A causal stream (subprotocol 0x0400): each event is causal frames (`causalFrame`); receivers following the chain check and prove it. */
  openCausalStream(peer: U64Like, streamId: U64Like, options?: { reliable?: boolean; window?: U64Like }): MeshStream;
  /** Events ([] on timeout, null once shut down); `signal` aborts the wait (nothing taken). */
  recv(max?: number, timeoutMs?: number | null, options?: SignalOptions): Promise<MeshEvent[] | null>;
  tryRecv(): MeshEvent | null;
  /** Events until the node shuts down; with `signal`, the loop throws its reason on abort. */
  events(options?: SignalOptions): AsyncGenerator<MeshEvent, void, undefined>;
  [Symbol.asyncIterator](): AsyncIterator<MeshEvent>;
  peers(): MeshPeer[];
  /** The routing table (`net_mesh_routes`). */
  routes(): MeshRoutes;
  stats(): Record<string, number | bigint>;
  /** The node's NAT (`net_mesh_nat`). */
  nat(): NatStatus;
  /** The partition records (`net_mesh_partitions`), camelCase, integers as bigints. */
  partitions(): PartitionRecord[];
  /** The chains this node follows (`net_mesh_continuity_status`). */
  continuityStatus(): ChainStatus[];
  /** Follows chain `origin` from its genesis (`net_mesh_follow_chain`). */
  followChain(origin: U64Like): void;
  /** Asks `peer` to prove a span of a followed chain (`net_mesh_request_continuity_proof`); the verdict arrives as a 'proof_checked' event. */
  requestContinuityProof(peer: U64Like, origin: U64Like, fromSeq: U64Like, toSeq: U64Like): void;
  /** Hands the node the next event of a followed chain (`net_mesh_observe_chain_event`). */
  observeChainEvent(link: Uint8Array | ArrayBuffer, payload?: Uint8Array | ArrayBuffer): 'extended' | 'duplicate' | 'stale' | 'broke' | 'ignored';
  /** The next continuity event (`net_mesh_continuity_next`); null on timeout or shutdown. */
  continuityNext(timeoutMs?: number, options?: { signal?: AbortSignal }): Promise<ContinuityEvent | null>;
  /** Hole punching through `coordinator`; a relayed session moves to the direct path. */
  connectDirect(
    nodeId: U64Like,
    publicKey: BytesLike,
    coordinator: U64Like,
    options?: SignalOptions,
  ): Promise<'direct' | 'skip-punch' | 'no-introduce' | 'no-ack' | 'path-failed'>;
  /** Sets ('IP:port') or clears (null) the reflex override; throws `InvalidArgumentError`. */
  setReflexOverride(addr: string | null): void;
  /** Starts a NAT classification round now. */
  reclassifyNat(): void;
  /** Registers (or reconfigures) a channel; the subscribers evicted. Throws `ChannelConfigError` naming the key. */
  registerChannel(name: string, config?: ChannelConfig): number;
  /** Removes a channel; the subscribers evicted. */
  deregisterChannel(name: string): number;
  /** Keeps a token (a delegation parent) for this node's channel checks. */
  installChannelToken(token: BytesLike): void;
  /** Subscribes at `publisher` off the event loop; rejects with the refusal (`ChannelUnauthorizedError`, `ChannelUnknownError`, …). */
  subscribe(publisher: U64Like, name: string, options?: SignalOptions & { token?: BytesLike | null }): Promise<void>;
  unsubscribe(publisher: U64Like, name: string, options?: SignalOptions): Promise<void>;
  /** Publishes to every authorized subscriber; never waits. */
  publish(name: string, events: (BytesLike | string)[], options?: { reliable?: boolean }): PublishReport;
  /** `{ channels, subscriptions, counters }` (`net_mesh_channels`). */
  channels(): Record<string, unknown>;
  /** Announces this node's capabilities (omitted members default); throws `MeshCapabilitiesError` naming a bad key or name. */
  announce(capabilities: Capabilities): void;
  findNodes(query?: NodeQuery): bigint[];
  findBestNode(query?: NodeQuery): { nodeId: bigint; score: number } | null;
  capabilities(): NodeCapabilities[];
  /** Stops the node without freeing it (`net_mesh_close`): blocked calls return. */
  shutdown(): void;
  /** Shuts down and frees (blocked calls return first); idempotent; throws `BusyError`. */
  close(): void;
  /** `close()` on a worker thread; rejects with `BusyError`. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** One stream to one peer. */
export declare class MeshStream implements Disposable, AsyncDisposable {
  private constructor();
  readonly peer: bigint;
  readonly streamId: bigint;
  readonly closed: boolean;
  readonly mesh: Mesh;
  send(...events: BytesOrString[]): void;
  send(events: BytesOrString[]): void;
  /**
   * Waits for credit off the event loop: true once sent, false when the
   * timeout passed first (omitted: no limit). `signal` cancels it; close()
   * rejects it with `MeshStreamClosedError`.
   */
  sendBlocking(events: BytesOrString[], timeoutMs?: number | null, options?: SignalOptions): Promise<boolean>;
  /** Closes the stream (a pending sendBlocking rejects); idempotent; throws `BusyError`. */
  close(): void;
  /** `close()` on a worker thread; rejects with `BusyError`. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

// ---- CortEX ------------------------------------------------------------------------

/** A model's configuration: the RedEX file options plus the fold's. */
export interface ModelOptions extends RedexFileOptions {
  /** What the fold does when an event fails to apply (default 'stop'). */
  policy?: 'stop' | 'log_and_continue';
  /** Where the fold starts: the whole log (default), new events only, or a sequence number. */
  start?: 'beginning' | 'live' | U64Like;
  /** How many changes a watch may fall behind before it is told it lagged (default 4096). */
  changesCapacity?: U64Like;
}

/** A task row; integers are bigints. */
export interface Task {
  id: bigint;
  title: string;
  status: 'pending' | 'completed';
  createdNs: bigint;
  updatedNs: bigint;
}

/** A memory row. */
export interface Memory {
  id: bigint;
  content: string;
  tags: string[];
  source: string;
  createdNs: bigint;
  updatedNs: bigint;
  pinned: boolean;
}

interface CommonFilter {
  ids?: U64Like[];
  createdAfter?: U64Like;
  createdBefore?: U64Like;
  updatedAfter?: U64Like;
  updatedBefore?: U64Like;
  offset?: U64Like;
  limit?: U64Like;
}

/** Which tasks a query or watch covers; every set key must match. */
export interface TaskFilter extends CommonFilter {
  status?: 'pending' | 'completed';
  titleContains?: string;
  orderBy?: 'id_asc' | 'id_desc' | 'created_asc' | 'created_desc' | 'updated_asc' | 'updated_desc' | 'title_asc' | 'title_desc';
}

/** Which memories a query or watch covers. */
export interface MemoryFilter extends CommonFilter {
  tagsAny?: string[];
  tagsAll?: string[];
  source?: string;
  pinned?: boolean;
  contentContains?: string;
  orderBy?: 'id_asc' | 'id_desc' | 'created_asc' | 'created_desc' | 'updated_asc' | 'updated_desc';
}

/** Where a model's fold is. */
export interface Progress {
  /** Every event up to it applied (the read-your-writes watermark). */
  appliedThroughSeq: bigint | null;
  /** The last event the fold attempted. */
  foldedThroughSeq: bigint | null;
  running: boolean;
  errors: bigint;
  lastError: string | null;
  /** The sequence the next write carries in its EventMeta. */
  appSeq: bigint;
}

/** A model snapshot (Net v0.11's postcard form). */
export interface ModelSnapshot {
  data: Buffer;
  lastSeq: bigint | null;
}

/** One update of a watch. */
export type WatchUpdate<Row> = { lagged: false; rows: Row[] } | { lagged: true; missed: bigint };

/** The kinds of CortEX model (`NET_MODEL_*`). */
export declare const ModelKind: Readonly<{ TASKS: 1; MEMORIES: 2 }>;

/** A live query; see `Model.watch`. */
export declare class Watch<Row> implements AsyncIterable<WatchUpdate<Row>>, Disposable, AsyncDisposable {
  private constructor();
  readonly model: Model<Row, unknown>;
  readonly closed: boolean;
  /** The next update, or `{ done: true }` once the watch ended. */
  next(): Promise<IteratorResult<WatchUpdate<Row>, undefined>>;
  /** As next(), cancelled by `options.signal` (rejecting with its reason; the watch stays usable). */
  next(timeoutMs: undefined, options?: SignalOptions): Promise<IteratorResult<WatchUpdate<Row>, undefined>>;
  /** As next(), or null when `timeoutMs` passed first (0: only what is ready). */
  next(timeoutMs: number, options?: SignalOptions): Promise<IteratorResult<WatchUpdate<Row>, undefined> | null>;
  /** Ends the watch (libnet wakes a pending next(), which resolves done); throws `BusyError`. */
  close(): void;
  /** `close()` with the free on a worker thread; rejects with `BusyError`. */
  closeAsync(): Promise<void>;
  return(): Promise<IteratorResult<WatchUpdate<Row>, undefined>>;
  [Symbol.asyncIterator](): AsyncIterableIterator<WatchUpdate<Row>>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A CortEX model (`net_model_t`): what every kind shares. Open one through
 * a kind (`Tasks.open`, `Memories.open`, `restore`, `openAsync`).
 */
export declare abstract class Model<Row, Filter> implements Disposable, AsyncDisposable {
  protected constructor();
  readonly originHash: bigint;
  /** The kind libnet opened (`ModelKind.*`). */
  readonly kind: number;
  readonly closed: boolean;
  /**
   * true once the fold attempted `seq`; false on timeout (omitted: no limit);
   * rejects with `CortexHaltedError` if it stopped short, `ShuttingDownError`
   * if the model is closed meanwhile, `signal.reason` on abort.
   */
  waitForSeq(seq: U64Like, timeoutMs?: number | null, options?: SignalOptions): Promise<boolean>;
  progress(): Progress;
  findUnique(id: U64Like): Row | null;
  findMany(filter?: Filter | null): Row[];
  countWhere(filter?: Filter | null): bigint;
  existsWhere(filter?: Filter | null): boolean;
  /** A live query; with `signal`, aborting it closes the watch. */
  watch(filter?: Filter | null, options?: SignalOptions): Watch<Row>;
  snapshotAndWatch(filter?: Filter | null, options?: SignalOptions): { rows: Row[]; watch: Watch<Row> };
  snapshot(): ModelSnapshot;
  /** Deletes row `id` (no effect if absent): the event's RedEX seq. */
  delete(id: U64Like): bigint;
  deleteAsync(id: U64Like): Promise<bigint>;
  /**
   * Stops the fold and closes the file without freeing (`net_model_close`):
   * throws its error (`RedexIoError` for a failed sync); writes then fail
   * with `CortexHaltedError`, watches end, queries keep answering.
   */
  shutdown(): void;
  /** `shutdown()` on a worker thread. */
  shutdownAsync(): Promise<void>;
  /**
   * Frees the model (`net_model_free`): wakes a blocked waitForSeq (it
   * rejects with `ShuttingDownError`), ends watches, stops the fold, closes
   * the file; idempotent. Throws `BusyError` when calls were still running
   * after 5 s or closing the file failed.
   */
  close(): void;
  /** `close()` on a worker thread; rejects as `close()` throws. */
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The tasks model (channel cortex/tasks). Writes return the event's RedEX seq. */
export declare class Tasks extends Model<Task, TaskFilter> {
  private constructor();
  static readonly kind: 1;
  static open(redex: Redex, originHash: U64Like, options?: ModelOptions | null): Tasks;
  static openAsync(redex: Redex, originHash: U64Like, options?: ModelOptions | null): Promise<Tasks>;
  static restore(redex: Redex, originHash: U64Like, snapshot: { data: BytesLike; lastSeq: U64Like | null }, options?: ModelOptions | null): Tasks;
  create(id: U64Like, title: BytesOrString): bigint;
  createAsync(id: U64Like, title: BytesOrString): Promise<bigint>;
  rename(id: U64Like, title: BytesOrString): bigint;
  renameAsync(id: U64Like, title: BytesOrString): Promise<bigint>;
  complete(id: U64Like): bigint;
  completeAsync(id: U64Like): Promise<bigint>;
}

/** The memories model (channel cortex/memories). */
export declare class Memories extends Model<Memory, MemoryFilter> {
  private constructor();
  static readonly kind: 2;
  static open(redex: Redex, originHash: U64Like, options?: ModelOptions | null): Memories;
  static openAsync(redex: Redex, originHash: U64Like, options?: ModelOptions | null): Promise<Memories>;
  static restore(redex: Redex, originHash: U64Like, snapshot: { data: BytesLike; lastSeq: U64Like | null }, options?: ModelOptions | null): Memories;
  store(id: U64Like, content: BytesOrString, tags?: BytesOrString[], source?: BytesOrString): bigint;
  storeAsync(id: U64Like, content: BytesOrString, tags?: BytesOrString[], source?: BytesOrString): Promise<bigint>;
  retag(id: U64Like, tags: BytesOrString[]): bigint;
  retagAsync(id: U64Like, tags: BytesOrString[]): Promise<bigint>;
  pin(id: U64Like): bigint;
  pinAsync(id: U64Like): Promise<bigint>;
  unpin(id: U64Like): bigint;
  unpinAsync(id: U64Like): Promise<bigint>;
}

/** Which models a NetDB opens, and how (all optional; no model by default). */
export interface NetDBOptions {
  /** Open the tasks model (channel cortex/tasks). */
  withTasks?: boolean;
  /** Open the memories model (channel cortex/memories). */
  withMemories?: boolean;
  /** Keep the models' logs on disk (the Redex needs a directory). */
  persistent?: boolean;
  /** Both folds' error policy (default 'stop'). */
  policy?: 'stop' | 'log_and_continue';
}

/**
 * The tasks and memories models of one Redex behind one handle: opened
 * together (failure-atomic), bundled together (one cut), closed together.
 */
export declare class NetDB implements Disposable, AsyncDisposable {
  private constructor();
  /** Throws `CortexInvalidConfigError`, `RedexNoPersistentDirError`, `RedexLockedError`, `CortexHaltedError`; on an error nothing stays open. */
  static open(redex: Redex, originHash: U64Like, options?: NetDBOptions | null): NetDB;
  static openAsync(redex: Redex, originHash: U64Like, options?: NetDBOptions | null): Promise<NetDB>;
  /** Throws `CortexSnapshotError` when the bundle does not decode or holds a model `options` does not enable. */
  static openFromBundle(redex: Redex, originHash: U64Like, bundle: BytesLike, options?: NetDBOptions | null): NetDB;
  readonly closed: boolean;
  /** The lent tasks model; `InvalidArgumentError` when not enabled. Its close() only lets go of it. */
  readonly tasks: Tasks;
  /** The lent memories model; `InvalidArgumentError` when not enabled. */
  readonly memories: Memories;
  /** Both models cut at one point (STORAGE.md §12 bytes). */
  snapshotBundle(): Buffer;
  snapshotBundleAsync(): Promise<Buffer>;
  /** Stops both folds and closes their files (`net_netdb_close`); idempotent. */
  shutdown(): void;
  /** Frees the NetDB and its models; idempotent; throws `BusyError`. */
  close(): void;
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

// ---------------------------------------------------------------------------
// libnet's log

/** A level of libnet's log, lowest (`'off'`) to most verbose (`'trace'`). */
export type LogLevel = 'off' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** One record of libnet's log, as the log hook gets it. */
export interface LogRecord {
  level: Exclude<LogLevel, 'off'>;
  /** `Constants.NET_LOG_*`. */
  levelNumber: number;
  /** Where it comes from (`net::redex::recovery`), or ''. */
  target: string;
  /** The message with its `key=value` fields. */
  message: string;
  /** The whole record, `target: message key=value ...`. */
  text: string;
}

/** The level names, in order (index = `NET_LOG_*` number). */
export declare const LOG_LEVELS: readonly LogLevel[];
/**
 * Sets the level from which libnet's records reach the log hook (default
 * `'warn'`, or `NETMESH_LOG_LEVEL`); `'off'` stops the background puller.
 * Returns the previous level.
 */
export declare function setLogLevel(level: LogLevel | number): LogLevel;
/** The current level. */
export declare function getLogLevel(): LogLevel;
/**
 * Replaces the hook every record goes to (on the main thread); `null`
 * restores the default. Returns the previous hook.
 */
export declare function setLogHook(hook: ((record: LogRecord) => void) | null): (record: LogRecord) => void;
/** The default hook: `process.emitWarning` (type `'NetmeshWarning'`) for warnings and errors. */
export declare function defaultLogHook(record: LogRecord): void;

// ---------------------------------------------------------------------------
// Versions and constants

/** The libnet version, "MAJOR.MINOR.PATCH". */
export declare function version(): string;
/** The ABI version of the loaded libnet. */
export declare function abiVersion(): number;
/** The ABI version this SDK was written for (checked at load). */
export declare const ABI_VERSION: 2;

export declare const SEED_LEN: 32;
export declare const PUBLIC_KEY_LEN: 32;
export declare const SIGNATURE_LEN: 64;
export declare const TOKEN_SIZE: 159;
export declare const ENVELOPE_SIZE: 209;
export declare const CHAIN_LINK_LEN: 32;
export declare const X25519_KEY_LEN: 32;

/** The names of `net_status_t` and of the `#define NET_*` constants (generated from include/net.h). */
export type { StatusName, ConstantName } from './lib/native.gen';
import type { StatusName, CONSTANTS } from './lib/native.gen';

/** Every status code of include/net.h by name (e.g. `Status.NET_ERR_TOKEN_EXPIRED === -22`). */
export declare const Status: Readonly<Record<StatusName, number>>;

/** Every `#define NET_*` of include/net.h by name. */
export declare const Constants: typeof CONSTANTS;

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

/**
 * One NetError subclass per `NET_ERR_*` code (`TokenExpiredError`,
 * `RedexCorruptError`, ...) and a base class per family of codes (`TokenError`,
 * `RedexError`, `MeshError`, `CortexError`, `BusError`, ...), generated from
 * include/net.h.
 */
export * from './lib/errors.gen';

// ---------------------------------------------------------------------------
// Internals (tests, benchmarks, debugging; not a stable API)

/** One attempt of a blocking call (koffi async), as `internal.callEvents` emits it. */
export interface CallEvent {
  /** The C call, without `net_` (`redex_tail_next`, `model_wait_for_seq`, ...). */
  op: string;
  /** What it returned. */
  status: number;
  /** Its `net_error_t` message ('' unless it failed). */
  message: string;
  /** Whether the SDK cancelled it to give its thread to another wait (it is then re-issued). */
  preempted: boolean;
  /** performance.now() when it was issued and when it returned. */
  startedAt: number;
  finishedAt: number;
}

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
  /** The NetError subclass instance libnet's status code maps to. */
  errorFor(status: number, message: string): NetError;
  /** The bigint pointer behind a handle-owning object, or null once closed. */
  rawHandle(
    value: Identity | Redex | RedexFile | RedexTail | Model<unknown, unknown> | Watch<unknown> | Mesh | MeshStream | Bus | RedisStreamDedup,
  ): bigint | null;
  /** The configuration JSON Mesh.open would pass to libnet for these options. */
  meshConfigJson(options?: MeshOptions | null): string | null;
  /** The configuration JSON a model open would pass to libnet for these options. */
  cortexConfigJson(options?: ModelOptions | null): string | null;
  /** The configuration JSON `openFile` would pass to libnet for these options. */
  redexConfigJson(options?: RedexFileOptions | string | null): string | null;
  /** Emits 'job' (PoolJobEvent) after each call run on the worker pool. */
  readonly poolEvents: EventEmitter;
  /** Worker threads in the worker pool (NETMESH_THREADS, default min(4, cores)). */
  poolSize(): number;
  /** Emits 'call' (CallEvent) after each attempt of a blocking call. */
  readonly callEvents: EventEmitter;
  /** The blocking calls now: in flight, holding a thread within the wait budget, queued for one. */
  waits(): { live: number; holding: number; queued: number; inFlight: number; backlog: number; budget: number };
  /** How many resumable waits may hold libuv threads at once (default UV_THREADPOOL_SIZE - 1). */
  waitBudget(): number;
  /** Sets it; returns the old one. */
  setWaitBudget(n: number): number;
  /** Frees `handle` with C function `name` (say 'net_identity_free') as close() does: throws `BusyError`. */
  free(name: string, handle: bigint): void;
  /** `free()` on the worker pool, as closeAsync() does. */
  freeAsync(name: string, handle: bigint): Promise<void>;
  /** The finalizer's counters: leaks noticed by class, background frees done and failed. */
  leaks(): { leaked: Record<string, number>; freed: number; failed: number; inFlight: number };
  /** Whether the log puller thread is running. */
  logPullerRunning(): boolean;
  /** Resolves with how the running puller's pull returned once it stops (null if none runs). */
  logPullerStopped(): Promise<{ status: number | null; message: string } | null>;
  /** Resolves true once the running puller is about to make its first pull. */
  logPullerPulling(): Promise<boolean>;
};

// ---- behavior plane ----------------------------------------------------------

/** JSON given as an object (serialized) or as JSON text. */
export type JsonInput = object | string;

/** What one matching rule gave. */
export interface RuleOutcome {
  rule_id: string;
  name: string;
  /** The released action, or null when suppressed. */
  action: Record<string, unknown> | null;
  suppressed: null | 'cooldown' | 'rate_limited';
  stop_processing: boolean;
}

/** The result of one walk over the rules. */
export interface RuleEvaluation {
  visited: bigint;
  outcomes: RuleOutcome[];
}

/** A rule's counters since it was added. */
export interface RuleStats {
  evaluations: bigint;
  matches: bigint;
  executions: bigint;
  suppressed_cooldown: bigint;
  suppressed_rate_limit: bigint;
  last_match_ms: bigint | null;
}

/** A rules engine (net_rules_t): rules evaluated against JSON contexts; actions are returned, never run. */
export declare class Rules implements Disposable, AsyncDisposable {
  /** An engine holding the rules of a rule set `{ name, rules: [...] }` (omitted: empty). */
  constructor(ruleSet?: JsonInput | null);
  load(ruleSet: JsonInput): void;
  remove(ruleId: string): void;
  evaluate(context: JsonInput, tag?: string | null): RuleEvaluation;
  stats(ruleId: string): RuleStats;
  toJSON(): { name: string; rules: Record<string, unknown>[] };
  readonly closed: boolean;
  close(): void;
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A request as the safety envelope sees it. */
export interface SafetyRequestOptions {
  content?: string | null;
  tokens?: number;
  memoryMb?: number;
  costCents?: number;
}

/** An admission's details. */
export interface PermitInfo {
  warnings: string[];
  redacted: string | null;
  deadline_ms: bigint;
  unaccounted: boolean;
}

/** An admitted request's claims (net_safety_permit_t), released by release() / close() / `using`. */
export declare class Permit implements Disposable, AsyncDisposable {
  private constructor();
  info(): PermitInfo;
  consume(tokens?: U64Like, costCents?: U64Like): void;
  release(): void;
  readonly closed: boolean;
  close(): void;
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A safety envelope's usage. */
export interface SafetyUsage {
  concurrent: bigint;
  memory_mb: bigint;
  requests_last_minute: bigint;
  tokens_last_minute: bigint;
  cost_last_hour_cents: bigint;
  sources: bigint;
  kill_switch: boolean;
  mode: 'enforce' | 'audit_only' | 'disabled';
}

/** One audit entry. */
export interface SafetyAuditEntry {
  at_ms: bigint;
  source: string;
  kind: 'blocked' | 'warning' | 'error' | 'success';
  detail: string;
}

/** A safety envelope (net_safety_t): kill switch, exact caps, rate limits, content policies, audit. */
export declare class Safety implements Disposable, AsyncDisposable {
  /** An envelope from `{ mode, limits, policies, audit }` (omitted: the defaults). */
  constructor(config?: JsonInput | null);
  acquire(source: string, options?: SafetyRequestOptions): Permit;
  check(source: string, options?: SafetyRequestOptions): { warnings: string[]; redacted: string | null };
  readonly limits: Record<string, bigint | number>;
  setLimits(limits: JsonInput): void;
  kill(reason: string, autoResetMs?: U64Like): void;
  resetKillSwitch(): void;
  usage(): SafetyUsage;
  audit(clear?: boolean): SafetyAuditEntry[];
  readonly closed: boolean;
  close(): void;
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** An endpoint's options. */
export interface EndpointOptions {
  weight?: number;
  health?: 'healthy' | 'degraded' | 'unhealthy' | 'unknown';
  tags?: string[];
  zone?: string | null;
  enabled?: boolean;
  priority?: number;
  metrics?: { cpu?: number; memory?: number; response_ms?: number; error_rate?: number };
}

/** What a selection asks for. */
export interface SelectRequest {
  routing_key?: string | null;
  session_id?: string | null;
  request_id?: string | null;
  required_tags?: string[];
  zone?: string | null;
}

/** An endpoint as LoadBalancer.endpoints() reports it. */
export interface EndpointInfo {
  id: string;
  weight: bigint;
  health: string;
  enabled: boolean;
  zone: string | null;
  tags: string[];
  priority: bigint;
  connections: bigint;
  circuit_open: boolean;
}

/** A selected endpoint with a reserved connection slot (net_lb_selection_t). */
export declare class Selection implements Disposable, AsyncDisposable {
  private constructor();
  readonly id: Buffer;
  readonly isProbe: boolean;
  /** Reports the outcome, releases the slot and closes the selection. */
  complete(ok?: boolean): void;
  readonly closed: boolean;
  close(): void;
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A load balancer over 32-byte endpoint ids (net_lb_t). */
export declare class LoadBalancer implements Disposable, AsyncDisposable {
  /** A balancer from `{ strategy, max_connections, ... }` (omitted: round robin). */
  constructor(config?: JsonInput | null);
  add(endpointId: BytesLike, options?: EndpointOptions): void;
  remove(endpointId: BytesLike): void;
  select(request?: SelectRequest): Selection;
  endpoints(): EndpointInfo[];
  readonly closed: boolean;
  close(): void;
  closeAsync(): Promise<void>;
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}
