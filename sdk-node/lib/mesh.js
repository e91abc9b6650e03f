'use strict';
// The encrypted UDP mesh: Mesh (one node: a UDP socket, Noise sessions with
// its peers) and MeshStream (one stream to one peer). Between two Net nodes,
// reliable streams retransmit and deliver in order exactly once, and
// sessions are bound to the peers' ed25519 identities.
//
// Everything that can block — connect, accept, sendBlocking, receiving —
// runs on the async pool (receiving in slices of at most POLL_MS, like
// RedEX tails), so the event loop never blocks. Node ids and stream ids are
// bigints.

const util = require('node:util');
const { performance } = require('node:perf_hooks');
const { STATUS, fns } = require('./native');
const calls = require('./calls');
const args = require('./args');
const pool = require('./pool');
const { ShuttingDownError, MeshConfigError } = require('./errors');

const POLL_MS = 50;
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

function timeoutArg(timeoutMs) {
  if (timeoutMs === undefined || timeoutMs === Infinity) return Infinity;
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
};
const PLAIN = {
  bind: 'bind',
  handshakeRetries: 'handshake_retries',
  numShards: 'num_shards',
  shardCapacity: 'shard_capacity',
  window: 'window',
  recvBuffer: 'recv_buffer',
  sendBuffer: 'send_buffer',
  maxStreams: 'max_streams',
  connectForm: 'connect_form',
  requireIdentity: 'require_identity',
  maxPendingHandshakes: 'max_pending_handshakes',
  loopbackDepth: 'loopback_depth',
};
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

const meshFinalizer = new FinalizationRegistry((handle) => fns.net_mesh_free(handle));
const streamFinalizer = new FinalizationRegistry((handle) => fns.net_mesh_stream_free(handle));
let meshHandle;
let streamHandle;

/**
 * A mesh node. `Mesh.open(options)`; options (all optional): bind, psk (32
 * bytes or hex), identitySeed, staticSecret, heartbeatIntervalMs,
 * sessionTimeoutMs, handshakeTimeoutMs, handshakeRetries, numShards,
 * shardCapacity, window, recvBuffer, sendBuffer, maxStreams,
 * streamIdleTimeoutMs, connectForm ('routed' | 'direct'), helloTimeoutMs,
 * requireIdentity, maxPendingHandshakes, loopbackDepth.
 */
class Mesh {
  #handle;
  #chain = Promise.resolve();

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

  /** Handshakes with `nodeId` at `addr` (its static X25519 `publicKey`), on the pool. */
  connect(addr, publicKey, nodeId) {
    return pooled(() => {
      const handle = this.#live();
      const a = Buffer.from(String(addr), 'utf8');
      const k = new Uint8Array(args.bytes(publicKey, 'publicKey'));
      return pool.getPool().run('meshConnect', [handle, a, k, args.u64(nodeId, 'nodeId')], [this]);
    });
  }

  /** Waits for `nodeId` to handshake in the direct form: its address, or null on timeout. */
  async accept(nodeId, timeoutMs) {
    const id = args.u64(nodeId, 'nodeId');
    const deadline = performance.now() + timeoutArg(timeoutMs);
    for (let first = true; ; first = false) {
      const handle = this.#live();
      const left = deadline - performance.now();
      if (!first && left <= 0) return null;
      const slice = Math.min(POLL_MS, Math.max(0, Math.ceil(left)));
      const addr = await pool.getPool().run('meshAccept', [handle, id, slice], [this]);
      if (addr !== null) return addr;
    }
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
   * Up to `max` received events `{ peer, streamId, data }`: resolves with at
   * least one, with [] when `timeoutMs` passed, or with null once the node is
   * shut down. Calls are served in order.
   */
  recv(max = 1024, timeoutMs) {
    let wait;
    try {
      wait = timeoutArg(timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    const result = this.#chain.then(() => this.#recv(max, wait));
    this.#chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #recv(max, timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    for (let first = true; ; first = false) {
      const handle = this.#handle;
      if (handle === null) return null;
      const left = deadline - performance.now();
      if (!first && left <= 0) return [];
      const slice = Math.min(POLL_MS, Math.max(0, Math.ceil(left)));
      let r;
      try {
        r = await pool.getPool().run('meshRecvBatch', [handle, Math.max(1, max), slice], [this]);
      } catch (err) {
        if (err instanceof ShuttingDownError) return null;
        throw err;
      }
      if (r.status === STATUS.NET_OK) {
        return r.records.map((e) => ({ peer: e.peer, streamId: e.streamId, data: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) }));
      }
      if (r.status === STATUS.NET_END) return null;
    }
  }

  /** One event without waiting (net_mesh_recv_next with a zero timeout), or null. */
  tryRecv() {
    const r = calls.meshRecvNext(this.#live(), 0);
    return r.status === STATUS.NET_OK ? r.event : null;
  }

  /** Events until the node shuts down. */
  async *[Symbol.asyncIterator]() {
    for (;;) {
      const events = await this.recv(1024);
      if (events === null) return;
      yield* events;
    }
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
    }));
  }

  /** The node's counters (numbers; node_id as bigint). */
  stats() {
    const raw = require('./json').parseJsonBigInt(calls.meshBytes(fns.net_mesh_stats, this.#live()).toString('utf8'));
    const out = {};
    for (const [k, v] of Object.entries(raw)) out[k] = k === 'node_id' ? v : Number(v);
    return out;
  }

  /** Stops the node without freeing it: blocked calls return. */
  shutdown() {
    const h = this.#handle;
    if (h !== null) fns.net_mesh_shutdown(h);
  }

  /** Shuts the node down and frees it (blocked calls return first). Idempotent. */
  close() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    meshFinalizer.unregister(this);
    calls.meshFree(h);
  }

  [Symbol.dispose]() {
    this.close();
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

  /** Sends the events, waiting for credit on the pool; resolves false when `timeoutMs` passed first. */
  sendBlocking(events, timeoutMs) {
    return pooled(() => {
      const handle = this.#live();
      const wait = timeoutArg(timeoutMs);
      const ms = wait === Infinity ? 0xffffffff : Math.min(Math.ceil(wait), 0xfffffffe);
      const keep = [this];
      const transfer = [];
      const list = events.map((e, i) => pool.input(args.bytesOrString(e, `events[${i}]`), keep, transfer));
      return pool.getPool().run('meshSendBlocking', [handle, list, ms], keep, transfer);
    });
  }

  /** Closes the stream and frees the handle. Idempotent. */
  close() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    streamFinalizer.unregister(this);
    calls.meshStreamFree(h);
  }

  [Symbol.dispose]() {
    this.close();
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

module.exports = { Mesh, MeshStream, rawMeshHandle, meshConfigJson, POLL_MS, DONE };
