'use strict';
// RedEX, Net's crash-safe append-only log: Redex (the channels under one base
// directory, or memory only), RedexFile (one channel's log) and RedexTail (a
// reader that backfills, then follows live appends). Each wraps a libnet
// handle with Identity's lifetime rules: close() / `using` / a
// FinalizationRegistry safety net, no JS-side lock around C calls, and
// libnet's HandleGuard making close-vs-call races safe.
//
// A tail's next() first takes what is ready without waiting (a timeout-0
// net_redex_tail_next on the main thread, up to a batch of entries); only
// when nothing is ready does it block, in one net_redex_tail_next run as a
// koffi async call (lib/async.js) with the caller's timeout, cancelled by its
// AbortSignal and woken by close(). See docs/sdk-node.md.

const util = require('node:util');
const { fns, STATUS } = require('./native');
const calls = require('./calls');
const args = require('./args');
const { ShuttingDownError, RedexInvalidConfigError } = require('./errors');
const pool = require('./pool');
const asyncCalls = require('./async');
const { leakRegistry } = require('./finalize');
const { parseJsonBigInt } = require('./json');

/** Once a tail has an item, it also takes what is ready, up to these limits, before yielding. */
const TAIL_BATCH_ITEMS = 256;
const TAIL_BATCH_BYTES = 1 << 20;

const U64_MAX = (1n << 64n) - 1n;
const kConstruct = Symbol('netmesh.Redex.construct');
const DONE = Object.freeze({ done: true, value: undefined });

function closedError(what) {
  return new ShuttingDownError(`${what} is closed`, STATUS.NET_ERR_SHUTTING_DOWN);
}

// ---- configuration ----------------------------------------------------------

function configError(message) {
  return new RedexInvalidConfigError(message, STATUS.NET_ERR_REDEX_INVALID_CONFIG);
}

function describe(value) {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function u64Config(value, path) {
  if (typeof value === 'bigint' && value >= 0n && value <= U64_MAX) return value.toString();
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  throw configError(
    `${path}: expected a non-negative integer (bigint or safe-integer number), got ${describe(value)}`,
  );
}

/**
 * An options object as JSON members, checking its keys against `known`
 * ({ jsKey: [jsonKey, encode(value, path)] }); undefined/null values are absent.
 */
function members(value, path, known) {
  const label = path === '' ? 'openFile options' : path;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw configError(`${label}: expected an object, got ${describe(value)}`);
  }
  const out = [];
  for (const [key, v] of Object.entries(value)) {
    const spec = known[key];
    if (!spec) {
      throw configError(
        `${label}: unknown key ${JSON.stringify(key)} (known: ${Object.keys(known).join(', ')})`,
      );
    }
    if (v === undefined || v === null) continue;
    out.push([spec[0], spec[1](v, path === '' ? key : `${path}.${key}`)]);
  }
  return out;
}

const FSYNC_FORMS = "'never', { everyN }, { intervalMs } or { intervalMs, maxBytes }";

const FSYNC_KEYS = {
  everyN: ['every_n', u64Config],
  intervalMs: ['interval_ms', u64Config],
  maxBytes: ['max_bytes', u64Config],
};

function fsyncJson(value, path) {
  if (value === 'never') return '"never"';
  if (typeof value === 'string') {
    throw configError(`${path}: unknown policy ${JSON.stringify(value)} (use ${FSYNC_FORMS})`);
  }
  const m = members(value, path, FSYNC_KEYS);
  const keys = m.map(([k]) => k).sort().join(',');
  if (!['every_n', 'interval_ms', 'interval_ms,max_bytes', 'max_bytes'].includes(keys)) {
    throw configError(
      `${path}: give exactly one of everyN, intervalMs, or intervalMs with maxBytes (use ${FSYNC_FORMS})`,
    );
  }
  return object(m);
}

const RETENTION_KEYS = {
  maxEvents: ['max_events', u64Config],
  maxBytes: ['max_bytes', u64Config],
  maxAgeMs: ['max_age_ms', u64Config],
};

function retentionJson(value, path) {
  return object(members(value, path, RETENTION_KEYS));
}

function booleanJson(value, path) {
  if (typeof value !== 'boolean') throw configError(`${path}: expected a boolean, got ${describe(value)}`);
  return String(value);
}

const OPTION_KEYS = {
  persistent: ['persistent', booleanJson],
  fsync: ['fsync', fsyncJson],
  retention: ['retention', retentionJson],
  repair: ['repair', booleanJson],
};

function object(m) {
  return `{${m.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

/**
 * The configuration JSON libnet takes, from openFile's options (camelCase
 * keys, u64 values as bigint or safe-integer numbers), or a JSON string passed
 * through as is. Null for the defaults (a memory file).
 */
function configJson(options) {
  if (options == null) return null;
  if (typeof options === 'string') return Buffer.from(options, 'utf8');
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('options must be an object { persistent?, fsync?, retention?, repair? } or a JSON string');
  }
  const m = members(options, '', OPTION_KEYS);
  return m.length === 0 ? null : Buffer.from(object(m), 'utf8');
}

// ---- handles ----------------------------------------------------------------

const managerFinalizer = leakRegistry('Redex', 'net_redex_free');
const fileFinalizer = leakRegistry('RedexFile', 'net_redex_file_free');
const tailFinalizer = leakRegistry('RedexTail', 'net_redex_tail_free');

let managerHandle;
let fileHandle;
let tailHandle;

function fileArgs(name, options) {
  const n = args.bytesOrString(name, 'name');
  return [n, configJson(options), typeof name === 'string' ? name : Buffer.from(n).toString('utf8')];
}

/** Runs `op` on the pool, turning a synchronous throw into a rejection. */
function pooled(fn) {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * A RedEX manager: the channels under one base directory (persistent and
 * memory files), or memory files only. Opening a channel that is already open
 * through this manager returns a handle to the same file.
 */
class Redex {
  /** @type {bigint | null} */
  #handle;
  #baseDir;

  /** @param {string} [baseDir] where persistent channels live; omit for memory only */
  constructor(baseDir) {
    let dir = null;
    if (baseDir != null) {
      if (typeof baseDir !== 'string' || baseDir.length === 0) {
        throw new TypeError('baseDir must be a non-empty string (or omitted for memory-only files)');
      }
      dir = Buffer.from(baseDir, 'utf8');
    }
    this.#handle = calls.redexOpen(dir);
    this.#baseDir = baseDir ?? null;
    managerFinalizer.register(this, this.#handle, this);
  }

  static {
    managerHandle = (redex) => redex.#handle;
  }

  /** `new Redex(baseDir)`. */
  static open(baseDir) {
    return new Redex(baseDir);
  }

  /** The base directory, or null for a memory-only manager. */
  get baseDir() {
    return this.#baseDir;
  }

  /** True once close() has been called. */
  get closed() {
    return this.#handle === null;
  }

  #live() {
    const handle = this.#handle;
    if (handle === null) throw closedError('Redex');
    return handle;
  }

  /**
   * Opens (creating or recovering) channel `name`. Options: `persistent`
   * (needs a base directory), `fsync` ('never' | { everyN } | { intervalMs }
   * | { intervalMs, maxBytes }), `retention` ({ maxEvents, maxBytes, maxAgeMs }),
   * `repair` (persistent only: when the live generation lost its idx or dat,
   * rebuild the channel from what can be proven instead of throwing
   * RedexCorruptError; file.recoveryReport() lists what was lost).
   * Recovering a big persistent channel takes a while: see openFileAsync.
   * What recovery dropped is in file.recoveryReport().
   */
  openFile(name, options) {
    const [n, config, display] = fileArgs(name, options);
    return new RedexFile(kConstruct, calls.redexOpenFile(this.#live(), n, config), display);
  }

  /** openFile() on a worker thread (recovery checksums every entry). */
  openFileAsync(name, options) {
    return pooled(() => {
      const [n, config, display] = fileArgs(name, options);
      const handle = this.#live();
      return pool
        .getPool()
        .run('redexOpenFile', [handle, n, config], [this])
        .then((file) => new RedexFile(kConstruct, file, display));
    });
  }

  /**
   * Frees the manager. Idempotent. Files opened through it stay open until
   * their own close(). Blocks (up to 5 s, inside libnet) for an openFile in
   * flight on another thread; throws BusyError if it was still running then.
   */
  close() {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    managerFinalizer.unregister(this);
    calls.redexFree(handle);
  }

  /** close() whose wait for in-flight calls happens on a worker thread; rejects with BusyError. */
  closeAsync() {
    const handle = this.#handle;
    if (handle === null) return Promise.resolve();
    this.#handle = null;
    managerFinalizer.unregister(this);
    return pool
      .getPool()
      .run('free', ['net_redex_free', handle])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    if (this.#handle === null) return 'Redex <closed>';
    return `Redex <${this.#baseDir === null ? 'memory only' : this.#baseDir}>`;
  }
}

/** The payload of an append: bytes, or a string (UTF-8). */
function payloadArg(value, name) {
  return args.bytesOrString(value, name);
}

function payloadsArg(payloads) {
  if (payloads == null || typeof payloads[Symbol.iterator] !== 'function' || typeof payloads === 'string') {
    throw new TypeError('payloads must be an array (or iterable) of Buffers, Uint8Arrays or strings');
  }
  return Array.from(payloads, (p, i) => payloadArg(p, `payloads[${i}]`));
}

/**
 * One channel's log. Sequence numbers, counts and lengths are bigints.
 * Synchronous reads and appends wait for the file's lock, which a long append
 * in flight on another thread holds: use the *Async variants to keep the
 * event loop free then.
 */
class RedexFile {
  /** @type {bigint | null} */
  #handle;
  #name;

  /** @private Use redex.openFile(). */
  constructor(token, handle, name) {
    if (token !== kConstruct) {
      throw new TypeError('RedexFile has no public constructor: use redex.openFile()');
    }
    this.#handle = handle;
    this.#name = name;
    fileFinalizer.register(this, handle, this);
  }

  static {
    fileHandle = (file) => file.#handle;
  }

  /** The channel name. */
  get name() {
    return this.#name;
  }

  /** True once close() has been called. */
  get closed() {
    return this.#handle === null;
  }

  #live() {
    const handle = this.#handle;
    if (handle === null) throw closedError('RedexFile');
    return handle;
  }

  /** Appends a payload; returns its sequence number. */
  append(payload) {
    return calls.redexFileAppend(this.#live(), payloadArg(payload, 'payload'));
  }

  /** append() on a worker thread (large payloads, fsync policies). */
  appendAsync(payload) {
    return pooled(() => {
      const handle = this.#live();
      const keep = [this];
      const transfer = [];
      const p = pool.input(payloadArg(payload, 'payload'), keep, transfer);
      return pool.getPool().run('redexFileAppend', [handle, p], keep, transfer);
    });
  }

  /** Appends exactly 8 bytes stored inside the index record; RedexInlineLengthError otherwise. */
  appendInline(payload) {
    return calls.redexFileAppendInline(this.#live(), payloadArg(payload, 'payload'));
  }

  /**
   * Appends payloads atomically on consecutive sequence numbers; returns the
   * first one, or null for an empty batch (nothing appended).
   */
  appendBatch(payloads) {
    return calls.redexFileAppendBatch(this.#live(), payloadsArg(payloads));
  }

  /** appendBatch() on a worker thread. */
  appendBatchAsync(payloads) {
    return pooled(() => {
      const handle = this.#live();
      const keep = [this];
      const transfer = [];
      const ps = payloadsArg(payloads).map((p) => pool.input(p, keep, transfer));
      return pool.getPool().run('redexFileAppendBatch', [handle, ps], keep, transfer);
    });
  }

  /** The payload of entry `seq`, or null (never appended, removed by retention, or corrupt). */
  read(seq) {
    return calls.redexFileRead(this.#live(), args.u64(seq, 'seq'));
  }

  /** read() on a worker thread. */
  readAsync(seq) {
    return pooled(() =>
      pool.getPool().run('redexFileRead', [this.#live(), args.u64(seq, 'seq')], [this]),
    );
  }

  /** The entries with fromSeq <= seq < toSeq, in order: [{ seq, payload }]. */
  readRange(fromSeq, toSeq) {
    const from = args.u64(fromSeq, 'fromSeq');
    const to = args.u64(toSeq, 'toSeq');
    return calls.decodeRange(calls.redexFileReadRange(this.#live(), from, to));
  }

  /** readRange() on a worker thread. */
  readRangeAsync(fromSeq, toSeq) {
    return pooled(() => {
      const from = args.u64(fromSeq, 'fromSeq');
      const to = args.u64(toSeq, 'toSeq');
      return pool
        .getPool()
        .run('redexFileReadRange', [this.#live(), from, to], [this])
        .then(calls.decodeRange);
    });
  }

  /** The sequence number the next append will get (never goes backwards). */
  get nextSeq() {
    return calls.redexFileU64(fns.net_redex_file_next_seq, this.#live());
  }

  /** The number of live entries. */
  get length() {
    return calls.redexFileU64(fns.net_redex_file_len, this.#live());
  }

  /**
   * What opening this persistent file found and did, or null for a memory
   * file: `{ generation, records, entries, holes, dropped: [{ position, seq
   * (null when no seq was free for it), storedSeq, reason }], tornIdxBytes,
   * datTruncatedBytes, timestampsRestored, indexRewritten, repaired, notes,
   * clean }` (u64 counts and seqs as bigints). `reason` is 'checksum_mismatch',
   * 'payload_out_of_range', 'seq_out_of_range' or 'seq_breaks_run'.
   */
  recoveryReport() {
    return recoveryReport(calls.redexFileRecoveryReport(this.#live()));
  }

  /** Makes every append so far durable (a no-op for memory files). */
  sync() {
    calls.redexFileSync(this.#live());
  }

  /** sync() on a worker thread. */
  syncAsync() {
    return pooled(() =>
      pool
        .getPool()
        .run('redexFileSync', [this.#live()], [this])
        .then(() => undefined),
    );
  }

  /** Applies the retention limits now; returns how many entries were removed. */
  sweepRetention() {
    return calls.redexFileSweepRetention(this.#live());
  }

  /** sweepRetention() on a worker thread (a persistent file is compacted). */
  sweepRetentionAsync() {
    return pooled(() => pool.getPool().run('redexFileSweepRetention', [this.#live()], [this]));
  }

  /**
   * A reader from `fromSeq` (default 0n): every entry from there, then live
   * appends, as an async iterator. Close it (or break out of `for await`)
   * when done. With `{ signal }`, aborting the signal ends the tail: a
   * pending next() rejects with the signal's reason and the tail closes.
   */
  tail(fromSeq = 0n, options) {
    const from = args.u64(fromSeq, 'fromSeq');
    const signal = asyncCalls.signalArg(options);
    signal?.throwIfAborted();
    return new RedexTail(kConstruct, calls.redexFileTail(this.#live(), from), this, from, signal);
  }

  /**
   * Syncs and closes the file, then frees the handle. Idempotent. Tails of
   * the file end; other handles of the same channel get RedexClosedError;
   * this one throws ShuttingDownError from now on. Blocks (up to 5 s, inside
   * libnet) for calls in flight on other threads. Throws (RedexIoError) if
   * the final sync failed, or BusyError if calls were still running at the
   * deadline; the handle is released anyway.
   */
  close() {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    fileFinalizer.unregister(this);
    calls.redexFileCloseFree(handle);
  }

  /** close() on a worker thread; rejects as close() throws. */
  closeAsync() {
    const handle = this.#handle;
    if (handle === null) return Promise.resolve();
    this.#handle = null;
    fileFinalizer.unregister(this);
    return pool
      .getPool()
      .run('redexFileCloseFree', [handle])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    if (this.#handle === null) return `RedexFile <${this.#name} closed>`;
    try {
      return `RedexFile <${this.#name} length=${this.length} nextSeq=${this.nextSeq}>`;
    } catch {
      return `RedexFile <${this.#name}>`;
    }
  }
}

/** The recovery report from libnet's JSON (snake_case) in camelCase. */
function recoveryReport(text) {
  const r = parseJsonBigInt(text);
  if (r === null) return null;
  return {
    generation: Number(r.generation),
    records: r.records,
    entries: r.entries,
    holes: r.holes,
    dropped: r.dropped.map((d) => ({
      position: d.position,
      seq: d.seq,
      storedSeq: d.stored_seq,
      reason: d.reason,
    })),
    tornIdxBytes: r.torn_idx_bytes,
    datTruncatedBytes: r.dat_truncated_bytes,
    timestampsRestored: r.timestamps_restored,
    indexRewritten: r.index_rewritten,
    repaired: r.repaired,
    notes: r.notes,
    clean: r.clean,
  };
}

function toBuffer(v) {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function timeoutArg(timeoutMs) {
  if (timeoutMs === undefined || timeoutMs === null || timeoutMs === Infinity) return Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new TypeError('timeoutMs must be a non-negative number (or omitted / Infinity to wait forever)');
  }
  return timeoutMs;
}

/**
 * A reader of a RedexFile: an async iterator of
 * `{ lagged: false, seq, payload }` entries and, when retention removed
 * entries before this reader got to them, `{ lagged: true, missedFrom,
 * resumeAt }` markers (missed range [missedFrom, resumeAt); iteration goes on
 * at resumeAt). Ends when the tail or its file is closed.
 */
class RedexTail {
  /** @type {bigint | null} */
  #handle;
  /** Keeps the file (and so its handle) alive while the tail is in use. */
  #file;
  /** The next sequence number to deliver (or report missed). */
  #position;
  /** The position after the items fetched so far (for missedFrom). */
  #fetched;
  #buffer = [];
  #chain = Promise.resolve();
  /** The tail's own AbortSignal (from file.tail()), if any. */
  #signal;
  #onAbort = null;
  /** Items served without leaving the event loop since the last yield. */
  #served = 0;

  /** @private Use file.tail(). */
  constructor(token, handle, file, fromSeq, signal) {
    if (token !== kConstruct) throw new TypeError('RedexTail has no public constructor: use file.tail()');
    this.#handle = handle;
    this.#file = file;
    this.#position = fromSeq;
    this.#fetched = fromSeq;
    this.#signal = signal;
    tailFinalizer.register(this, handle, this);
    if (signal) {
      this.#onAbort = () => this.close();
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  static {
    tailHandle = (tail) => tail.#handle;
  }

  /** The file this tail reads. */
  get file() {
    return this.#file;
  }

  /** The next sequence number this reader will deliver (or report missed). */
  get position() {
    return this.#position;
  }

  /** True once the tail was closed or has ended (and nothing is left to deliver). */
  get closed() {
    return this.#handle === null && this.#buffer.length === 0;
  }

  /**
   * The next item: `{ done: false, value }`, `{ done: true }` once the tail or
   * its file is closed, or null when `timeoutMs` passed first (omitted or
   * Infinity: wait as long as it takes; 0: only what is ready). With
   * `{ signal }` (or the tail's own signal) an abort rejects the call with
   * the signal's reason; nothing is consumed. Calls are served in order.
   */
  next(timeoutMs, options) {
    let wait;
    let signal;
    try {
      wait = timeoutArg(timeoutMs);
      signal = asyncCalls.signalArg(options) ?? this.#signal;
    } catch (err) {
      return Promise.reject(err);
    }
    const result = this.#chain.then(() => this.#next(wait, signal));
    this.#chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #next(timeoutMs, signal) {
    signal?.throwIfAborted();
    if (this.#buffer.length === 0) {
      const handle = this.#handle;
      if (handle === null) return DONE;
      // What is ready, without waiting (a backfill never leaves the event loop
      // but yields to it once per batch).
      if (this.#served >= TAIL_BATCH_ITEMS) {
        this.#served = 0;
        await asyncCalls.yieldToLoop();
        if (this.#handle !== handle) return DONE;
      }
      if (!this.#takeReady(handle) && timeoutMs > 0) {
        // Nothing ready: block in libnet until an entry, the timeout, a
        // cancel (the signal) or close() wakes the call.
        this.#served = 0;
        const r = await asyncCalls.blocking({
          op: 'redex_tail_next',
          attempt: calls.redexTailNextAttempt(handle),
          resumable: true,
          timeoutMs,
          signal,
        });
        if (this.#handle !== handle) {
          // Closed while waiting (by close(), or by the tail's signal): drop what came.
          signal?.throwIfAborted();
          return DONE;
        }
        if (r.status === STATUS.NET_OK || r.status === STATUS.NET_LAGGED) {
          this.#buffer.push(this.#convert(r.status, r.value));
          this.#takeReady(handle);
        } else if (r.status === STATUS.NET_END) {
          this.#release();
        } else {
          asyncCalls.check(r);
        }
      }
    }
    if (this.#buffer.length > 0) {
      this.#served++;
      return { done: false, value: this.#deliver(this.#buffer.shift()) };
    }
    return this.#handle === null ? DONE : null;
  }

  /** Moves what is ready into the buffer (up to a batch); false when nothing was. */
  #takeReady(handle) {
    let bytes = 0;
    let got = false;
    while (this.#buffer.length < TAIL_BATCH_ITEMS && bytes < TAIL_BATCH_BYTES) {
      const r = calls.redexTailTryNext(handle);
      if (r.status === STATUS.NET_END) {
        this.#release();
        break;
      }
      if (r.status !== STATUS.NET_OK && r.status !== STATUS.NET_LAGGED) break;
      this.#buffer.push(this.#convert(r.status, r));
      bytes += r.payload.byteLength;
      got = true;
    }
    return got;
  }

  #convert(status, { seq, payload }) {
    if (status === STATUS.NET_LAGGED) {
      const item = { lagged: true, missedFrom: this.#fetched, resumeAt: seq };
      this.#fetched = seq;
      return item;
    }
    this.#fetched = seq + 1n;
    return { lagged: false, seq, payload: toBuffer(payload) };
  }

  #deliver(item) {
    this.#position = item.lagged ? item.resumeAt : item.seq + 1n;
    return item;
  }

  /** Detaches the handle (keeping any items already fetched): the caller frees it. */
  #detach() {
    const handle = this.#handle;
    if (handle === null) return null;
    this.#handle = null;
    tailFinalizer.unregister(this);
    if (this.#onAbort) {
      this.#signal.removeEventListener('abort', this.#onAbort);
      this.#onAbort = null;
    }
    return handle;
  }

  /** Frees the handle (keeping any items already fetched); throws BusyError. */
  #release() {
    const handle = this.#detach();
    if (handle !== null) calls.free('net_redex_tail_free', handle);
  }

  /**
   * Ends the tail: a pending next() resolves `{ done: true }`, and so do later
   * ones. Idempotent. Wakes a next() blocked in libnet and returns once it
   * has left the handle. Throws BusyError if a call was still on the handle
   * after libnet's 5 s deadline.
   */
  close() {
    this.#buffer.length = 0;
    this.#release();
  }

  /** close() with the free on the worker pool; rejects with BusyError. */
  closeAsync() {
    this.#buffer.length = 0;
    const handle = this.#detach();
    if (handle === null) return Promise.resolve();
    return pool
      .getPool()
      .run('free', ['net_redex_tail_free', handle])
      .then(() => undefined);
  }

  /** Called by `for await` on break/throw: closes the tail. */
  return() {
    try {
      this.close();
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    return `RedexTail <${this.#file.name} position=${this.#position}${this.closed ? ' closed' : ''}>`;
  }
}

/** The raw handle (bigint pointer) of a Redex, RedexFile or RedexTail, or null once closed. */
function rawRedexHandle(value) {
  if (value instanceof Redex) return managerHandle(value);
  if (value instanceof RedexFile) return fileHandle(value);
  if (value instanceof RedexTail) return tailHandle(value);
  return undefined;
}

module.exports = {
  Redex,
  RedexFile,
  RedexTail,
  rawRedexHandle,
  configJson,
};
