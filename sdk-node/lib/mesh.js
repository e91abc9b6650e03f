'use strict';
// The encrypted UDP mesh: Mesh (one node: a UDP socket, Noise sessions with
// its peers) and MeshStream (one stream to one peer). Between two Net nodes,
// reliable streams retransmit and deliver in order exactly once, and
// sessions are bound to the peers' ed25519 identities.
//
// Everything that can block — connect, accept, sendBlocking, receiving —
// runs as one libnet call on libuv's threadpool (a koffi async call, see
// lib/async.js) with the caller's timeout, cancelled by its AbortSignal and
// woken by close(); receiving first takes what is ready without waiting.
// The event loop never blocks. Node ids and stream ids are bigints.

const util = require('node:util');
const { STATUS, CONSTANTS, fns } = require('./native');
const calls = require('./calls');
const args = require('./args');
const caps = require('./capabilities');
const pool = require('./pool');
const asyncCalls = require('./async');
const { leakRegistry } = require('./finalize');
const { ShuttingDownError, MeshConfigError } = require('./errors');

/** recv() yields to the event loop after this many batches served without waiting. */
const RECV_BATCHES = 64;
const U64_MAX = (1n << 64n) - 1n;
const DONE = Object.freeze({ done: true, value: undefined });
const kConstruct = Symbol('netmesh.Mesh.construct');

function closedError(what) {
  return new ShuttingDownError(`${what} is closed`, STATUS.NET_ERR_SHUTTING_DOWN);
}

function pooled(fn) {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** A ChannelConfig (camelCase) as libnet's channel config JSON. */
function channelConfigJson(c) {
  const out = {};
  if (c.visibility !== undefined) out.visibility = c.visibility;
  if (c.publishCaps !== undefined) out.publish_caps = caps.filterToWire(c.publishCaps);
  if (c.subscribeCaps !== undefined) out.subscribe_caps = caps.filterToWire(c.subscribeCaps);
  if (c.requireToken !== undefined) out.require_token = c.requireToken;
  if (c.trustedIssuers !== undefined) {
    out.trusted_issuers =
      c.trustedIssuers === 'any' ? 'any' : c.trustedIssuers.map((id) => Buffer.from(args.bytes(id, 'trustedIssuers')).toString('hex'));
  }
  if (c.maxSubscribers !== undefined) out.max_subscribers = c.maxSubscribers;
  if (c.maxRatePps !== undefined) out.max_rate_pps = c.maxRatePps;
  if (c.reliable !== undefined) out.reliable = c.reliable;
  if (c.priority !== undefined) out.priority = c.priority;
  if (c.exportTo !== undefined) out.export_to = c.exportTo;
  for (const key of Object.keys(c)) {
    if (!CHANNEL_CONFIG_KEYS.has(key)) out[key] = c[key]; // libnet names the unknown key
  }
  return out;
}

const CHANNEL_CONFIG_KEYS = new Set([
  'visibility',
  'publishCaps',
  'subscribeCaps',
  'requireToken',
  'trustedIssuers',
  'maxSubscribers',
  'maxRatePps',
  'reliable',
  'priority',
  'exportTo',
]);

function timeoutArg(timeoutMs) {
  if (timeoutMs === undefined || timeoutMs === null || timeoutMs === Infinity) return Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new TypeError('timeoutMs must be a non-negative number (or omitted / Infinity to wait forever)');
  }
  return timeoutMs;
}

const DURATIONS = {
  heartbeatIntervalMs: 'heartbeat_interval_ms',
  sessionTimeoutMs: 'session_timeout_ms',
  handshakeTimeoutMs: 'handshake_timeout_ms',
  streamIdleTimeoutMs: 'stream_idle_timeout_ms',
  helloTimeoutMs: 'hello_timeout_ms',
  classifyPeriodMs: 'classify_period_ms',
  classifyDeadlineMs: 'classify_deadline_ms',
  pathProbeIntervalMs: 'path_probe_interval_ms',
  proofIntervalMs: 'proof_interval_ms',
};
const PLAIN = {
  bind: 'bind',
  handshakeRetries: 'handshake_retries',
  numShards: 'num_shards',
  shardCapacity: 'shard_capacity',
  window: 'window',
  maxWindow: 'max_window',
  windowBudget: 'window_budget',
  largeDatagrams: 'large_datagrams',
  recvBuffer: 'recv_buffer',
  sendBuffer: 'send_buffer',
  maxStreams: 'max_streams',
  connectForm: 'connect_form',
  requireIdentity: 'require_identity',
  gso: 'gso',
  gro: 'gro',
  aes: 'aes',
  continuity: 'continuity',
  maxPendingHandshakes: 'max_pending_handshakes',
  loopbackDepth: 'loopback_depth',
  natClassify: 'nat_classify',
  reflexOverride: 'reflex_override',
  portMapping: 'port_mapping',
  portMappingGateway: 'port_mapping_gateway',
  subnet: 'subnet',
  subnetPolicy: 'subnet_policy',
};
/** net_mesh_observe_chain_event's codes (NET_CHAIN_*), by value. */
const OBSERVATIONS = {
  [CONSTANTS.NET_CHAIN_EXTENDED]: 'extended',
  [CONSTANTS.NET_CHAIN_DUPLICATE]: 'duplicate',
  [CONSTANTS.NET_CHAIN_STALE]: 'stale',
  [CONSTANTS.NET_CHAIN_BROKE]: 'broke',
  [CONSTANTS.NET_CHAIN_IGNORED]: 'ignored',
};

/** libnet's snake_case JSON keys as camelCase, deeply. */
function camel(value) {
  if (Array.isArray(value)) return value.map(camel);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c) => c.toUpperCase()), camel(v)]),
  );
}

/** net_mesh_connect_direct's outcome codes, by value. */
const DIRECT_OUTCOMES = ['direct', 'skip-punch', 'no-introduce', 'no-ack', 'path-failed'];
const KEYS = { psk: 'psk_hex', identitySeed: 'identity_seed_hex', staticSecret: 'static_secret_hex' };

/** The configuration JSON of net_mesh_new for Mesh options (camelCase). */
function meshConfigJson(options) {
  if (options == null) return null;
  if (typeof options !== 'object' || Array.isArray(options)) throw new TypeError('options must be an object');
  const parts = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    let jsonKey;
    let text;
    if (KEYS[key]) {
      jsonKey = KEYS[key];
      text = JSON.stringify(typeof value === 'string' ? value : Buffer.from(args.bytes(value, key)).toString('hex'));
    } else if (DURATIONS[key] || PLAIN[key]) {
      jsonKey = DURATIONS[key] || PLAIN[key];
      text = typeof value === 'bigint' ? value.toString() : JSON.stringify(value);
    } else {
      throw new MeshConfigError(
        `unknown option ${JSON.stringify(key)} (known: ${[...Object.keys(KEYS), ...Object.keys(DURATIONS), ...Object.keys(PLAIN)].join(', ')})`,
        STATUS.NET_ERR_MESH_CONFIG,
      );
    }
    parts.push(`${JSON.stringify(jsonKey)}:${text}`);
  }
  return parts.length ? Buffer.from(`{${parts.join(',')}}`, 'utf8') : null;
}

const meshFinalizer = leakRegistry('Mesh', 'net_mesh_free');
const streamFinalizer = leakRegistry('MeshStream', 'net_mesh_stream_free');
let meshHandle;
let streamHandle;

/**
 * A mesh node. `Mesh.open(options)`; options (all optional): bind, psk (32
 * bytes or hex), identitySeed, staticSecret, heartbeatIntervalMs,
 * sessionTimeoutMs, handshakeTimeoutMs, handshakeRetries, numShards,
 * shardCapacity, window, recvBuffer, sendBuffer, maxStreams,
 * streamIdleTimeoutMs, connectForm ('routed' | 'direct'), helloTimeoutMs,
 * requireIdentity, maxPendingHandshakes, loopbackDepth, maxWindow,
 * windowBudget, largeDatagrams, pathProbeIntervalMs, subnet ('global' or
 * dotted levels such as '3.7.2'), subnetPolicy ([{ prefix, level, values }]).
 */
class Mesh {
  #handle;
  #chain = Promise.resolve();
  #served = 0;

  /** @private Use Mesh.open(). */
  constructor(token, handle) {
    if (token !== kConstruct) throw new TypeError('use Mesh.open()');
    this.#handle = handle;
    meshFinalizer.register(this, handle, this);
  }

  static {
    meshHandle = (m) => m.#handle;
  }

  /** Creates a node; its socket is bound and it accepts handshakes at once. */
  static open(options) {
    return new Mesh(kConstruct, calls.meshNew(meshConfigJson(options)));
  }

  #live() {
    const h = this.#handle;
    if (h === null) throw closedError('Mesh');
    return h;
  }

  get closed() {
    return this.#handle === null;
  }

  /** This node's node_id (bigint). */
  get nodeId() {
    const out = [0n];
    calls.check(fns.net_mesh_node_id(this.#live(), out));
    return BigInt(out[0]);
  }

  /** The static X25519 public key initiators need for connect. */
  get publicKey() {
    return calls.meshBytes(fns.net_mesh_public_key, this.#live());
  }

  /** This node's ed25519 entity id. */
  get entityId() {
    return calls.meshBytes(fns.net_mesh_entity_id, this.#live());
  }

  /** The bound "IP:port". */
  get localAddr() {
    return calls.meshBytes(fns.net_mesh_local_addr, this.#live()).toString('utf8');
  }

  /** Starts heartbeats and failure detection (idempotent). */
  start() {
    calls.check(fns.net_mesh_start(this.#live()));
  }

  /**
   * Handshakes with `nodeId` at `addr` (its static X25519 `publicKey`), off
   * the event loop; `{ signal }` cancels it (it rejects with the signal's
   * reason). Rejects with ShuttingDownError when the node is closed meanwhile.
   */
  connect(addr, publicKey, nodeId, options) {
    return pooled(() => {
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      const a = Buffer.from(String(addr), 'utf8');
      const k = new Uint8Array(args.bytes(publicKey, 'publicKey'));
      return asyncCalls
        .blocking({
          op: 'mesh_connect',
          attempt: calls.meshConnectAttempt(handle, a, k, args.u64(nodeId, 'nodeId')),
          resumable: false,
          signal,
        })
        .then((r) => {
          asyncCalls.check(r);
        });
    });
  }

  /**
   * Handshakes with `nodeId` (its static X25519 `publicKey`) through
   * `relay`, one of this node's direct peers, off the event loop. The
   * session is relayed: its packets travel routed towards the best route
   * (the relay, or another path if it fails); the peer needs no accept.
   * Rejects with MeshNoRouteError when `relay` is not a direct peer;
   * otherwise as connect().
   */
  connectVia(relay, publicKey, nodeId, options) {
    return this.#connectThrough('mesh_connect_via', args.u64(relay, 'relay'), publicKey, nodeId, options);
  }

  /**
   * connectVia() through the next hop of the best route to `nodeId` learned
   * from pingwaves (see routes(); the nodes on the path must be started).
   * Rejects with MeshNoRouteError when no route is known.
   */
  connectRouted(publicKey, nodeId, options) {
    return this.#connectThrough('mesh_connect_routed', null, publicKey, nodeId, options);
  }

  /**
   * Reaches `nodeId` on a direct path with `coordinator` (a direct peer
   * holding sessions with both) for the hole punch; a session relayed
   * already moves to the punched path with nothing lost or repeated.
   * Resolves to 'direct' or the reason the session stays relayed:
   * 'skip-punch', 'no-introduce', 'no-ack', 'path-failed'. Rejects with
   * MeshNoRouteError when `coordinator` is not a direct peer.
   */
  connectDirect(nodeId, publicKey, coordinator, options) {
    return pooled(() => {
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      const k = new Uint8Array(args.bytes(publicKey, 'publicKey'));
      return asyncCalls
        .blocking({
          op: 'mesh_connect_direct',
          attempt: calls.meshConnectDirectAttempt(handle, args.u64(nodeId, 'nodeId'), k, args.u64(coordinator, 'coordinator')),
          resumable: false,
          signal,
        })
        .then((r) => DIRECT_OUTCOMES[asyncCalls.check(r)] ?? 'path-failed');
    });
  }

  #connectThrough(op, relay, publicKey, nodeId, options) {
    return pooled(() => {
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      const k = new Uint8Array(args.bytes(publicKey, 'publicKey'));
      return asyncCalls
        .blocking({
          op,
          attempt: calls.meshConnectViaAttempt(handle, relay, k, args.u64(nodeId, 'nodeId')),
          resumable: false,
          signal,
        })
        .then((r) => {
          asyncCalls.check(r);
        });
    });
  }

  /**
   * Waits for `nodeId` to handshake in the direct form: its address, or null
   * on timeout (omitted: no limit). `{ signal }` cancels the wait; closing the
   * node rejects it with ShuttingDownError.
   */
  accept(nodeId, timeoutMs, options) {
    return pooled(() => {
      const id = args.u64(nodeId, 'nodeId');
      const wait = timeoutArg(timeoutMs);
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      return asyncCalls
        .blocking({
          op: 'mesh_accept',
          attempt: calls.meshAcceptAttempt(handle, id),
          resumable: false, // a handshake arriving between two attempts would find no accept
          timeoutMs: wait,
          signal,
        })
        .then((r) => (asyncCalls.check(r) === STATUS.NET_OK ? r.value : null));
    });
  }

  /** Opens stream `streamId` to `peer`: `{ reliable?, window? }` (window: bytes, 0 = unlimited). */
  openStream(peer, streamId, options = {}) {
    const p = args.u64(peer, 'peer');
    const s = args.u64(streamId, 'streamId');
    const window = options.window == null ? U64_MAX : args.u64(options.window, 'window');
    const handle = calls.meshOpenStream(this.#live(), p, s, Boolean(options.reliable), window);
    return new MeshStream(kConstruct, handle, this, p, s);
  }

  /**
   * Opens a stream as openStream() does, as a causal stream: its packets
   * carry subprotocol 0x0400, so each event is read as causal frames
   * (causalFrame()). A Net receiver checks the frames of every chain it
   * follows (followChain()) as they arrive, in stream order on a reliable
   * stream, and proves the chain against this node every `proofIntervalMs`;
   * this node checks the frames it sends for the chains it follows. The
   * receiving application gets the events as on any stream.
   */
  openCausalStream(peer, streamId, options = {}) {
    const p = args.u64(peer, 'peer');
    const s = args.u64(streamId, 'streamId');
    const window = options.window == null ? U64_MAX : args.u64(options.window, 'window');
    const handle = calls.meshOpenCausalStream(this.#live(), p, s, Boolean(options.reliable), window);
    return new MeshStream(kConstruct, handle, this, p, s);
  }

  /**
   * Up to `max` received events `{ peer, streamId, data }`: resolves with at
   * least one, with [] when `timeoutMs` passed (omitted: no limit; 0: only
   * what is ready), or with null once the node is shut down. `{ signal }`
   * aborts the wait (nothing is taken). Calls are served in order.
   */
  recv(max = 1024, timeoutMs, options) {
    let wait;
    let signal;
    try {
      wait = timeoutArg(timeoutMs);
      signal = asyncCalls.signalArg(options);
      if (!Number.isSafeInteger(max) || max < 0) throw new TypeError('max must be a non-negative integer');
    } catch (err) {
      return Promise.reject(err);
    }
    const result = this.#chain.then(() => this.#recv(Math.max(1, max), wait, signal));
    this.#chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #recv(max, timeoutMs, signal) {
    signal?.throwIfAborted();
    const handle = this.#handle;
    if (handle === null) return null;
    if (this.#served >= RECV_BATCHES) {
      this.#served = 0;
      await asyncCalls.yieldToLoop();
      if (this.#handle !== handle) return null;
    }
    let r;
    try {
      r = calls.meshTryRecvBatch(handle, max);
    } catch (err) {
      if (err instanceof ShuttingDownError) return null;
      throw err;
    }
    if (r.status === STATUS.NET_OK) {
      this.#served++;
      return r.records;
    }
    if (r.status === STATUS.NET_END) return null;
    if (timeoutMs === 0) return [];
    this.#served = 0;
    const b = await asyncCalls.blocking({
      op: 'mesh_recv_batch',
      attempt: calls.meshRecvBatchAttempt(handle, max),
      resumable: true,
      timeoutMs,
      signal,
    });
    if (b.status === STATUS.NET_OK) return b.value;
    if (b.status === STATUS.NET_END || b.status === STATUS.NET_ERR_SHUTTING_DOWN) {
      signal?.throwIfAborted();
      return null;
    }
    asyncCalls.check(b);
    return []; // NET_TIMEOUT
  }

  /** One event without waiting (net_mesh_recv_next with a zero timeout), or null. */
  tryRecv() {
    const r = calls.meshRecvNext(this.#live());
    return r.status === STATUS.NET_OK ? r.event : null;
  }

  /**
   * Events until the node shuts down (or `{ signal }` aborts: the loop then
   * throws the signal's reason).
   */
  async *events(options) {
    const signal = asyncCalls.signalArg(options);
    for (;;) {
      const events = await this.recv(1024, undefined, { signal });
      if (events === null) return;
      yield* events;
    }
  }

  /** Events until the node shuts down: `for await (const e of mesh)`. */
  [Symbol.asyncIterator]() {
    return this.events();
  }

  /** The peers (ids as bigints). */
  peers() {
    const text = calls.meshBytes(fns.net_mesh_peers, this.#live()).toString('utf8');
    return require('./json').parseJsonBigInt(text).map((p) => ({
      nodeId: p.node_id,
      addr: p.addr,
      sessionId: p.session_id,
      health: p.health,
      identity: p.identity,
      entity: p.entity,
      streams: Number(p.streams),
      idleMs: Number(p.idle_ms),
      cipher: p.cipher,
      droppedUnreported: BigInt(p.dropped_unreported),
      relay: p.relay ?? null,
      maxDatagram: Number(p.max_datagram),
      subnet: p.subnet ?? null,
    }));
  }

  /**
   * The routing table: `{ nodeId, routes, forwarding, pingwaves }`, one
   * route per reachable destination in id order (`{ destination, nextHop,
   * hops, kind: 'direct' | 'relayed' | 'learned', ageMs, stale, alternates }`,
   * ids as bigints) and the counters (numbers).
   */
  routes() {
    const raw = require('./json').parseJsonBigInt(calls.meshBytes(fns.net_mesh_routes, this.#live()).toString('utf8'));
    const counters = (c) => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Number(v)]));
    return {
      nodeId: raw.node_id,
      routes: raw.routes.map((r) => ({
        destination: r.destination,
        nextHop: r.next_hop,
        hops: Number(r.hops),
        kind: r.kind,
        ageMs: Number(r.age_ms),
        stale: r.stale,
        alternates: Number(r.alternates),
      })),
      forwarding: counters(raw.forwarding),
      pingwaves: counters(raw.pingwaves),
    };
  }

  /**
   * Where this node's NAT stands: `{ class: 'open' | 'cone' | 'symmetric' |
   * 'unknown' (the nat:* capability tag), reflex ('IP:port' peers can reach
   * us at, or null), mapping, filtering (RFC 4787 names), portPreserving,
   * override, rounds, classify }`.
   */
  nat() {
    const raw = JSON.parse(calls.meshBytes(fns.net_mesh_nat, this.#live()).toString('utf8'));
    return {
      class: raw.class,
      reflex: raw.reflex,
      mapping: raw.mapping,
      filtering: raw.filtering,
      portPreserving: raw.port_preserving,
      override: raw.override,
      rounds: Number(raw.rounds),
      classify: raw.classify,
      punchesAttempted: Number(raw.punches_attempted),
      punchesSucceeded: Number(raw.punches_succeeded),
      relayFallbacks: Number(raw.relay_fallbacks),
    };
  }

  /**
   * Sets the operator's reflex override ('IP:port', a public address: class
   * Open with that reflex, classification paused), or clears it with null.
   * Throws InvalidArgumentError for a malformed, private, loopback or
   * wildcard address.
   */
  setReflexOverride(addr) {
    if (addr === null || addr === undefined) {
      calls.check(fns.net_mesh_set_reflex_override(this.#live(), null, 0));
      return;
    }
    if (typeof addr !== 'string') throw new TypeError('addr must be a string or null');
    const a = Buffer.from(addr, 'utf8');
    calls.check(fns.net_mesh_set_reflex_override(this.#live(), a, a.byteLength));
  }

  /** Starts a NAT classification round now; `nat().rounds` counts the rounds committed. */
  reclassifyNat() {
    calls.check(fns.net_mesh_reclassify_nat(this.#live()));
  }

  /** The node's counters (numbers; node_id as bigint). */
  stats() {
    const raw = require('./json').parseJsonBigInt(calls.meshBytes(fns.net_mesh_stats, this.#live()).toString('utf8'));
    const out = {};
    for (const [k, v] of Object.entries(raw)) out[k] = k === 'node_id' ? v : Number(v);
    return out;
  }

  // -- continuity and partitions ---------------------------------------------

  /**
   * The partition records, oldest first, as libnet's JSON with camelCase
   * keys and integers as bigints: `{ id, phase: 'suspected' | 'confirmed' |
   * 'healing' | 'healed', ourSide, otherSide, returned, cause, horizonAtSplit,
   * detectedAtMs, confirmedAtMs, healedAtMs, partitionKey }` (null until agreed).
   */
  partitions() {
    return camel(require('./json').parseJsonBigInt(calls.meshBytes(fns.net_mesh_partitions, this.#live()).toString('utf8')));
  }

  /**
   * The chains this node follows: `{ origin, head: { origin, seq, hash }, held,
   * broken (null or { reason, lastVerifiedSeq, detectedAtMs }), forks }`.
   */
  continuityStatus() {
    return camel(
      require('./json').parseJsonBigInt(calls.meshBytes(fns.net_mesh_continuity_status, this.#live()).toString('utf8')),
    );
  }

  /** Follows chain `origin` from its genesis (idempotent); InvalidArgumentError with continuity off. */
  followChain(origin) {
    calls.check(fns.net_mesh_follow_chain(this.#live(), args.u64(origin, 'origin')));
  }

  /**
   * Asks `peer` to prove `fromSeq..=toSeq` of the followed chain `origin`;
   * the verdict arrives as a 'proof_checked' event of continuityNext()
   * ('consistent' | 'conflicts' (seq, ours, theirs) | 'unknown' |
   * 'unavailable' (theirHead) | 'unanswered'). InvalidArgumentError when
   * continuity is off, the chain is not followed, fromSeq > toSeq or the
   * span is 100 000 events or more, or `peer` is not a connected
   * continuity peer.
   */
  requestContinuityProof(peer, origin, fromSeq, toSeq) {
    calls.check(
      fns.net_mesh_request_continuity_proof(
        this.#live(),
        args.u64(peer, 'peer'),
        args.u64(origin, 'origin'),
        args.u64(fromSeq, 'fromSeq'),
        args.u64(toSeq, 'toSeq'),
      ),
    );
  }

  /**
   * Hands the node the next event of a followed chain (its 32-byte causal
   * link and payload): 'extended' | 'duplicate' | 'stale' | 'broke' (a
   * 'chain_broken' event follows) | 'ignored' (already broken).
   */
  observeChainEvent(link, payload = new Uint8Array(0)) {
    const l = args.bytes(link, 'link');
    const p = args.bytes(payload, 'payload');
    const code = [0];
    calls.check(fns.net_mesh_observe_chain_event(this.#live(), l, l.byteLength, p, p.byteLength, code));
    return OBSERVATIONS[Number(code[0])] ?? 'ignored';
  }

  /**
   * The next continuity event (`{ type: 'detected' | 'extended' | 'confirmed'
   * | 'healing' | 'healed' | 'agreed' | 'reconciled' | 'fork_adopted' |
   * 'chain_broken', ... }`, camelCase, integers as bigints), waiting up to
   * `timeoutMs` (omitted: no limit); null on timeout or once the node is shut
   * down. `{ signal }` aborts the wait (nothing is taken).
   */
  async continuityNext(timeoutMs, options) {
    const wait = timeoutArg(timeoutMs);
    const signal = asyncCalls.signalArg(options);
    signal?.throwIfAborted();
    const b = await asyncCalls.blocking({
      op: 'mesh_continuity_next',
      attempt: calls.meshContinuityNextAttempt(this.#live()),
      resumable: true,
      timeoutMs: wait,
      signal,
    });
    if (b.status === STATUS.NET_OK) return camel(require('./json').parseJsonBigInt(b.value));
    if (b.status === STATUS.NET_END || b.status === STATUS.NET_ERR_SHUTTING_DOWN) {
      signal?.throwIfAborted();
      return null;
    }
    asyncCalls.check(b);
    return null; // NET_TIMEOUT
  }

  // -- channels and capabilities ---------------------------------------------

  /**
   * Registers the channel `name` on this node with `config` (omitted: an
   * open, global channel), or replaces its config; returns the number of
   * subscribers evicted because they no longer qualify. Throws
   * ChannelConfigError naming the key, ChannelNameError,
   * ChannelHashCollisionError.
   */
  registerChannel(name, config) {
    const n = Buffer.from(String(name), 'utf8');
    const c = Buffer.from(JSON.stringify(channelConfigJson(config ?? {})), 'utf8');
    const out = [0n];
    calls.check(fns.net_mesh_register_channel(this.#live(), n, n.byteLength, c, c.byteLength, out));
    return Number(out[0]);
  }

  /** Removes the channel `name`; returns the number of subscribers evicted. */
  deregisterChannel(name) {
    const n = Buffer.from(String(name), 'utf8');
    const out = [0n];
    calls.check(fns.net_mesh_deregister_channel(this.#live(), n, n.byteLength, out));
    return Number(out[0]);
  }

  /** Keeps a 159-byte token (typically a delegation parent subscribers' tokens chain through). */
  installChannelToken(token) {
    const t = new Uint8Array(args.bytes(token, 'token'));
    calls.check(fns.net_mesh_install_channel_token(this.#live(), t, t.byteLength));
  }

  /**
   * Subscribes to `name` at `publisher` (a direct or relayed peer), off the
   * event loop, presenting `options.token` if given; `{ signal }` cancels.
   * Rejects with the refusal (ChannelUnauthorizedError, ChannelUnknownError,
   * ChannelRateLimitedError, ChannelFullError), ChannelHashCollisionError,
   * MeshUnknownPeerError or ShuttingDownError. The channel's events then
   * arrive with `channel` set.
   */
  subscribe(publisher, name, options) {
    return this.#membership('mesh_subscribe', true, publisher, name, options);
  }

  /** Ends the subscription to `name` at `publisher`; its events stop arriving. */
  unsubscribe(publisher, name, options) {
    return this.#membership('mesh_unsubscribe', false, publisher, name, options);
  }

  #membership(op, subscribe, publisher, name, options) {
    return pooled(() => {
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      const p = args.u64(publisher, 'publisher');
      const n = Buffer.from(String(name), 'utf8');
      const token = options && options.token != null ? new Uint8Array(args.bytes(options.token, 'token')) : null;
      return asyncCalls
        .blocking({
          op,
          attempt: calls.meshMembershipAttempt(handle, subscribe, p, n, token),
          resumable: false,
          signal,
        })
        .then((r) => {
          asyncCalls.check(r);
        });
    });
  }

  /**
   * Publishes `events` on this node's registered channel `name` to every
   * authorized subscriber (`{ reliable }`); never waits. Returns the report
   * `{ attempted, delivered, evicted, errors: [{ peer, status, code, message }] }`.
   * Throws ChannelUnknownError, ChannelUnauthorizedError,
   * ChannelRateLimitedError, MeshTooLargeError.
   */
  publish(name, events, options) {
    const n = Buffer.from(String(name), 'utf8');
    const list = events.map((e, i) => args.bytesOrString(e, `events[${i}]`));
    const raw = require('./json').parseJsonBigInt(calls.meshPublish(this.#live(), n, list, Boolean(options?.reliable)));
    return {
      attempted: Number(raw.attempted),
      delivered: Number(raw.delivered),
      evicted: Number(raw.evicted),
      errors: raw.errors.map((e) => ({ peer: e.peer, status: e.status, code: Number(e.code), message: e.message })),
    };
  }

  /** The channels JSON: `{ channels, subscriptions, counters }` (u64s as bigints). */
  channels() {
    return require('./json').parseJsonBigInt(calls.meshBytes(fns.net_mesh_channels, this.#live()).toString('utf8'));
  }

  /**
   * Announces this node's capabilities: a set with `hardware`, `software`,
   * `models`, `tools`, `tags`, `limits` (camelCase keys; libnet's snake_case
   * ones are accepted too; omitted members take their defaults; GPU vendor,
   * accelerator type and modalities by their lowercase names). Throws
   * MeshCapabilitiesError naming a bad key or enumeration name.
   */
  announce(capabilities) {
    const c = Buffer.from(JSON.stringify(caps.capabilitiesToWire(capabilities)), 'utf8');
    calls.check(fns.net_mesh_announce(this.#live(), c, c.byteLength));
  }

  /** The indexed nodes matching `{ filter, scope }` (filter keys camelCase or snake_case), ids ascending (bigints). */
  findNodes(query) {
    const q = JSON.stringify(caps.queryToWire(query));
    const raw = require('./json').parseJsonBigInt(calls.meshQuery(fns.net_mesh_find_nodes, this.#live(), q));
    return raw.nodes.map((n) => BigInt(n));
  }

  /** The best-scoring node for `{ filter, scope, weights }`: `{ nodeId, score }`, or null. */
  findBestNode(query) {
    const q = JSON.stringify(caps.queryToWire(query));
    const raw = require('./json').parseJsonBigInt(calls.meshQuery(fns.net_mesh_find_best_node, this.#live(), q));
    return raw.node_id === null ? null : { nodeId: BigInt(raw.node_id), score: Number(raw.score) };
  }

  /**
   * Every live indexed node: `{ nodeId, version, timestampNs, expiresAtNs,
   * hopCount, reflexAddr, capabilities }`, the set in its camelCase form.
   */
  capabilities() {
    const raw = require('./json').parseJsonBigInt(calls.meshBytes(fns.net_mesh_capabilities, this.#live()).toString('utf8'));
    return raw.nodes.map((n) => ({
      nodeId: BigInt(n.node_id),
      version: BigInt(n.version),
      timestampNs: BigInt(n.timestamp_ns),
      expiresAtNs: BigInt(n.expires_at_ns),
      hopCount: Number(n.hop_count),
      reflexAddr: n.reflex_addr ?? null,
      capabilities: caps.capabilitiesFromWire(n.capabilities),
    }));
  }

  /**
   * Stops the node without freeing it (net_mesh_close): blocked calls return
   * (recv with null), later ones fail with ShuttingDownError. Idempotent.
   */
  shutdown() {
    const h = this.#handle;
    if (h !== null) calls.check(fns.net_mesh_close(h));
  }

  /**
   * Shuts the node down and frees it: libnet wakes every call blocked on it
   * and on its streams first (recv resolves null; connect, accept and
   * sendBlocking reject). Idempotent. Throws BusyError if calls were still
   * running after libnet's 5 s deadline.
   */
  close() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    meshFinalizer.unregister(this);
    calls.meshFree(h);
  }

  /** close() on the worker pool; rejects with BusyError. */
  closeAsync() {
    const h = this.#handle;
    if (h === null) return Promise.resolve();
    this.#handle = null;
    meshFinalizer.unregister(this);
    return pool
      .getPool()
      .run('free', ['net_mesh_free', h])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    return this.closed ? 'Mesh <closed>' : `Mesh <${this.nodeId} at ${this.localAddr}>`;
  }
}

/** One stream to one peer. Closing it closes the stream; a pending sendBlocking rejects with MeshStreamClosedError. */
class MeshStream {
  #handle;
  #mesh;

  /** @private Use mesh.openStream(). */
  constructor(token, handle, mesh, peer, streamId) {
    if (token !== kConstruct) throw new TypeError('use mesh.openStream()');
    this.#handle = handle;
    this.#mesh = mesh;
    this.peer = peer;
    this.streamId = streamId;
    streamFinalizer.register(this, handle, this);
  }

  static {
    streamHandle = (s) => s.#handle;
  }

  get closed() {
    return this.#handle === null;
  }

  get mesh() {
    return this.#mesh;
  }

  #live() {
    const h = this.#handle;
    if (h === null) throw closedError('MeshStream');
    return h;
  }

  /** Sends the events now, or none (MeshBackpressureError when the window cannot take them all). */
  send(...events) {
    if (events.length === 1 && Array.isArray(events[0])) events = events[0];
    calls.meshSend(this.#live(), events.map((e, i) => args.bytesOrString(e, `events[${i}]`)));
  }

  /**
   * Sends the events, waiting for credit packet by packet off the event loop;
   * resolves true once sent, false when `timeoutMs` passed first (omitted: no
   * limit; the packets before the one that timed out were sent). `{ signal }`
   * cancels the wait (it rejects with the signal's reason); closing the stream
   * rejects it with MeshStreamClosedError, closing the node with
   * ShuttingDownError. Either way no thread is held after that.
   */
  sendBlocking(events, timeoutMs, options) {
    return pooled(() => {
      const handle = this.#live();
      const wait = timeoutArg(timeoutMs);
      const signal = asyncCalls.signalArg(options);
      if (!Array.isArray(events)) throw new TypeError('events must be an array');
      const list = events.map((e, i) => args.bytesOrString(e, `events[${i}]`));
      return asyncCalls
        .blocking({
          op: 'mesh_stream_send_blocking',
          attempt: calls.meshSendBlockingAttempt(handle, list),
          resumable: false, // a cancel leaves part of the batch sent
          timeoutMs: wait,
          signal,
        })
        .then((r) => asyncCalls.check(r) === STATUS.NET_OK);
    });
  }

  /**
   * Closes the stream and frees the handle; a pending sendBlocking rejects
   * with MeshStreamClosedError. Idempotent. Throws BusyError if a call was
   * still on the handle after libnet's 5 s deadline.
   */
  close() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    streamFinalizer.unregister(this);
    calls.meshStreamFree(h);
  }

  /** close() on the worker pool; rejects with BusyError. */
  closeAsync() {
    const h = this.#handle;
    if (h === null) return Promise.resolve();
    this.#handle = null;
    streamFinalizer.unregister(this);
    return pool
      .getPool()
      .run('free', ['net_mesh_stream_free', h])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    return `MeshStream <peer=${this.peer} stream=${this.streamId}${this.closed ? ' closed' : ''}>`;
  }
}

function rawMeshHandle(value) {
  if (value instanceof Mesh) return meshHandle(value);
  if (value instanceof MeshStream) return streamHandle(value);
  return undefined;
}

module.exports = { Mesh, MeshStream, rawMeshHandle, meshConfigJson, DONE };
