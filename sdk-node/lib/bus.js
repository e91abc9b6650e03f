'use strict';
// The event bus: Bus (net_bus_t) spreads ingested events over shards,
// batches them into a durable adapter (embedded RedEX by default, NATS
// JetStream or Redis Streams) and polls them back through one opaque
// cursor; RedisStreamDedup (net_redis_dedup_t) drops the repeats a retried
// Redis pipeline can leave.
//
// Ingest is synchronous (it only queues); ingestBatch packs the events
// into one buffer so a whole batch is one FFI crossing. Polls and flushes
// can wait on a server: each is one libnet call on libuv's threadpool (a
// koffi async call, lib/async.js), cancelled by its AbortSignal and woken
// by close(). The shutdown drains, on the worker pool.

const util = require('node:util');
const { STATUS, fns } = require('./native');
const calls = require('./calls');
const args = require('./args');
const pool = require('./pool');
const asyncCalls = require('./async');
const { leakRegistry } = require('./finalize');
const { parseJsonBigInt } = require('./json');
const { ShuttingDownError, BusConfigError } = require('./errors');

const kConstruct = Symbol('netmesh.Bus.construct');
const busFinalizer = leakRegistry('Bus', 'net_bus_free');
const dedupFinalizer = leakRegistry('RedisStreamDedup', 'net_redis_dedup_free');

function closedError(what) {
  return new ShuttingDownError(`${what} is closed`, STATUS.NET_ERR_SHUTTING_DOWN);
}

function utf8(text) {
  return Buffer.from(text, 'utf8');
}

/** Decodes net_bus_poll's records: shard u16 | ts u64 | id | dedup id | payload. */
function decodeEvents(raw) {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const text = (at, n) => Buffer.from(raw.buffer, raw.byteOffset + at, n).toString('utf8');
  const events = [];
  let at = 0;
  while (at < raw.byteLength) {
    const shard = view.getUint16(at, true);
    const timestampNs = view.getBigUint64(at + 2, true);
    let n = view.getUint16(at + 10, true);
    at += 12;
    const id = text(at, n);
    at += n;
    n = view.getUint16(at, true);
    at += 2;
    const dedupId = n ? text(at, n) : null;
    at += n;
    n = view.getUint32(at, true);
    at += 4;
    const payload = Buffer.from(raw.buffer, raw.byteOffset + at, n);
    at += n;
    events.push({ shard, timestampNs, id, dedupId, payload });
  }
  return events;
}

const BIGINT_MARK = '__netmesh_bigint__';

/** JSON text where bigints are written as exact integers (not strings). */
function jsonWithBigInts(value) {
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${BIGINT_MARK}${v}` : v));
  return text.replace(new RegExp(`"${BIGINT_MARK}(-?\\d+)"`, 'g'), '$1');
}

function counters(text) {
  const out = {};
  for (const [k, v] of Object.entries(parseJsonBigInt(text))) {
    out[k] = typeof v === 'bigint' ? Number(v) : v;
  }
  return out;
}

/**
 * An event bus. `Bus.open(config)`: the libnet bus configuration as an
 * object with its JSON keys (num_shards, shard_capacity, backpressure,
 * batch, adapter_timeout_ms, max_attempts, retry_base_ms, retry_max_ms,
 * shutdown_timeout_ms, scaling, adapter — {type: 'redex', dir} (default;
 * memory files without dir), {type: 'jetstream', url} or {type: 'redis', url}
 * —, producer_state_dir). A bad key throws BusConfigError naming it.
 */
let busHandle;
let dedupHandle;

class Bus {
  #handle;

  static {
    busHandle = (b) => b.#handle;
  }

  /** @private Use Bus.open(). */
  constructor(token, handle) {
    if (token !== kConstruct) throw new TypeError('use Bus.open()');
    this.#handle = handle;
    busFinalizer.register(this, handle, this);
  }

  /** Starts a bus (no config: every default, embedded adapter in memory). */
  static open(config) {
    let raw = null;
    if (config != null) {
      if (typeof config !== 'object' || Array.isArray(config)) throw new TypeError('config must be an object');
      let text;
      try {
        text = JSON.stringify(config);
      } catch (err) {
        throw new BusConfigError(`configuration is not JSON: ${err.message}`, STATUS.NET_ERR_BUS_CONFIG);
      }
      raw = utf8(text);
    }
    return new Bus(kConstruct, calls.busNew(raw));
  }

  #live() {
    const h = this.#handle;
    if (h === null) throw closedError('Bus');
    return h;
  }

  get closed() {
    return this.#handle === null;
  }

  /** Queues one event. BusBackpressureError: the shard is full, retry later. */
  ingest(event) {
    calls.busIngest(this.#live(), args.bytes(event, 'event'));
  }

  /**
   * Queues an array of events on one shard in one libnet call (packed into
   * one buffer first). Returns { queued, sampled, taken }: events from
   * `taken` on were refused by backpressure — retry them later.
   */
  ingestBatch(events) {
    if (!Array.isArray(events)) throw new TypeError('events must be an array of Uint8Arrays');
    const n = events.length;
    const lengths = new Uint32Array(n);
    let parts = events;
    for (let i = 0; i < n; i++) {
      const e = events[i];
      if (e instanceof Uint8Array) {
        lengths[i] = e.byteLength;
        continue;
      }
      // Not a Uint8Array (an ArrayBuffer or another view): convert a copy
      // of the array, or throw the TypeError naming it.
      if (parts === events) parts = events.slice();
      parts[i] = args.bytes(e, `events[${i}]`);
      lengths[i] = parts[i].byteLength;
    }
    return calls.busIngestPacked(this.#live(), Buffer.concat(parts), lengths);
  }

  /** As ingestBatch, passing the events in place (no copy; for large events). */
  ingestBatchInPlace(events) {
    if (!Array.isArray(events)) throw new TypeError('events must be an array of Uint8Arrays');
    const views = events.map((e, i) => args.bytes(e, `events[${i}]`));
    return calls.busIngestSlices(this.#live(), views);
  }

  /**
   * Up to `limit` events after `cursor` (none: from the beginning), merged
   * across shards in timestamp order, off the event loop: resolves to {
   * events: [{ shard, timestampNs, id, dedupId, payload }], nextCursor,
   * hasMore, truncatedAtPerShardCap, stalledShards }. `filter` is the JSON
   * predicate language; integers compare exactly (pass bigints as JSON text
   * values). `signal` cancels the poll (nothing is consumed: polls are
   * cursor-based).
   */
  async poll({ cursor, limit = 1000, perShardLimit, shards, filter, signal } = {}) {
    const sig = asyncCalls.signalArg({ signal });
    const request = { limit };
    if (cursor != null) request.cursor = cursor;
    if (perShardLimit != null) request.per_shard_limit = perShardLimit;
    if (shards != null) request.shards = shards;
    if (filter != null) request.filter = filter;
    const text = jsonWithBigInts(request);
    const r = await asyncCalls.blocking({
      op: 'bus_poll',
      attempt: calls.busPollAttempt(this.#live(), utf8(text)),
      resumable: false, // bounded: it answers with what there is
      signal: sig,
    });
    asyncCalls.check(r);
    const meta = JSON.parse(r.value.meta);
    return {
      events: decodeEvents(r.value.events),
      nextCursor: meta.next_cursor,
      hasMore: meta.has_more,
      truncatedAtPerShardCap: meta.truncated_at_per_shard_cap,
      stalledShards: meta.stalled_shards,
    };
  }

  /**
   * Resolves once everything ingested so far is stored (or counted lost).
   * `{ signal }` ends the wait (rejecting with the signal's reason; the
   * events keep being dispatched); closing the bus rejects it with
   * ShuttingDownError.
   */
  async flush(options) {
    const signal = asyncCalls.signalArg(options);
    const r = await asyncCalls.blocking({
      op: 'bus_flush',
      attempt: calls.busFlushAttempt(this.#live()),
      resumable: true,
      signal,
    });
    asyncCalls.check(r);
  }

  /** The bus's counters (events_ingested, events_dispatched, ..., adapter, producer_nonce). */
  stats() {
    return counters(calls.busBytes(fns.net_bus_stats, this.#live()).toString('utf8'));
  }

  /** Active shards. */
  get numShards() {
    const out = [0];
    calls.check(fns.net_bus_num_shards(this.#live(), out));
    return Number(out[0]);
  }

  /**
   * Stops ingest, drains and flushes (net_bus_close, on the worker pool);
   * resolves to the report { events_dropped, events_stranded,
   * shutdown_was_lossy, adapter_error }. A flush or poll blocked on the bus
   * returns first. The bus still needs close(), which then reports nothing
   * more.
   */
  async shutdown() {
    return counters(await pool.getPool().run('busClose', [this.#live()], [this]));
  }

  /**
   * Shuts the bus down (draining what is buffered, within the configured
   * shutdown timeout) and frees it, on the calling thread; a flush or poll
   * blocked on it rejects with ShuttingDownError first. Idempotent. Throws
   * BusyError when calls were still running after libnet's 5 s deadline, or
   * when the shutdown lost events (the message says how many). Prefer
   * closeAsync(), or shutdown() for the full report.
   */
  close() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    busFinalizer.unregister(this);
    calls.busFree(h);
  }

  /** close() on the worker pool (the drain never blocks the event loop); rejects as close() throws. */
  closeAsync() {
    const h = this.#handle;
    if (h === null) return Promise.resolve();
    this.#handle = null;
    busFinalizer.unregister(this);
    return pool
      .getPool()
      .run('free', ['net_bus_free', h])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    return this.closed ? 'Bus <closed>' : `Bus <${this.numShards} shards>`;
  }
}

/**
 * A bounded set of recently seen dedup ids: eviction is FIFO by first
 * sight (not LRU); capacity is clamped to 1..2^24.
 */
class RedisStreamDedup {
  #handle;

  static {
    dedupHandle = (d) => d.#handle;
  }

  constructor(capacity = 65536) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
    }
    const out = [null];
    calls.check(fns.net_redis_dedup_new(capacity, out));
    this.#handle = out[0];
    dedupFinalizer.register(this, this.#handle, this);
  }

  #live() {
    const h = this.#handle;
    if (h === null) throw closedError('RedisStreamDedup');
    return h;
  }

  get closed() {
    return this.#handle === null;
  }

  /** True if `id` was seen (and is still remembered); else remembers it. */
  isDuplicate(id) {
    const raw = utf8(String(id));
    const out = [false];
    calls.check(fns.net_redis_dedup_is_duplicate(this.#live(), raw, raw.byteLength, out));
    return Boolean(out[0]);
  }

  /** isDuplicate for each id, in order, in one libnet call. */
  checkBatch(ids) {
    if (!Array.isArray(ids)) throw new TypeError('ids must be an array of strings');
    if (ids.length === 0) return [];
    const slices = ids.map((id) => {
      const raw = utf8(String(id));
      return { ptr: raw.byteLength ? raw : null, len: raw.byteLength };
    });
    const out = new Uint8Array(ids.length);
    calls.check(fns.net_redis_dedup_check_batch(this.#live(), slices, slices.length, out));
    return Array.from(out, (b) => b !== 0);
  }

  #info() {
    const len = [0];
    const cap = [0];
    const dups = [0];
    calls.check(fns.net_redis_dedup_info(this.#live(), len, cap, dups));
    return { size: Number(len[0]), capacity: Number(cap[0]), duplicates: Number(dups[0]) };
  }

  /** Ids remembered now. */
  get size() {
    return this.#info().size;
  }

  /** The effective capacity. */
  get capacity() {
    return this.#info().capacity;
  }

  /** Duplicates reported so far. */
  get duplicates() {
    return this.#info().duplicates;
  }

  /** Forgets every id. */
  clear() {
    calls.check(fns.net_redis_dedup_clear(this.#live()));
  }

  /** Frees the set. Idempotent. Throws BusyError if a call was still on it after 5 s. */
  close() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    dedupFinalizer.unregister(this);
    calls.free('net_redis_dedup_free', h);
  }

  /** close() on the worker pool; rejects with BusyError. */
  closeAsync() {
    const h = this.#handle;
    if (h === null) return Promise.resolve();
    this.#handle = null;
    dedupFinalizer.unregister(this);
    return pool
      .getPool()
      .run('free', ['net_redis_dedup_free', h])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }
}

/** The raw pointer behind a Bus or RedisStreamDedup (tests), else undefined. */
function rawBusHandle(value) {
  if (value instanceof Bus) return busHandle(value);
  if (value instanceof RedisStreamDedup) return dedupHandle(value);
  return undefined;
}

module.exports = { Bus, RedisStreamDedup, decodeEvents, rawBusHandle };
