'use strict';
// CortEX: folded, queryable state over RedEX logs. One generic path over the
// model-generic C ABI (net_model_*): Model owns a net_model_t of some kind
// and does everything kinds share — opening, restoring, queries, watches,
// waits, snapshots, deletes, closing; Tasks and Memories are thin
// definitions on top of it (their kind, row shape, filter keys and their own
// writes). Writes append an event and return its RedEX sequence number (a
// bigint); a fold thread inside libnet applies events to the in-memory state
// that queries read.
//
// Queries are synchronous (in-memory, fast). Writes have sync and *Async
// forms (an append may fsync; *Async runs on the worker pool). waitForSeq
// and watch iteration first answer from what is ready without waiting; only
// then do they block, in one libnet call run as a koffi async call
// (lib/async.js) with the caller's timeout, cancelled by its AbortSignal and
// woken by close(). Integers in rows (ids, timestamps, sequence numbers,
// counters) are bigints.

const util = require('node:util');
const { STATUS, CONSTANTS, fns } = require('./native');
const calls = require('./calls');
const args = require('./args');
const pool = require('./pool');
const asyncCalls = require('./async');
const { leakRegistry } = require('./finalize');
const { parseJsonBigInt } = require('./json');
const { Redex, configJson, rawRedexHandle } = require('./redex');
const { ShuttingDownError, CortexInvalidConfigError, CortexInvalidQueryError } = require('./errors');

const kConstruct = Symbol('netmesh.cortex.construct');
const DONE = Object.freeze({ done: true, value: undefined });
/** A watch yields to the event loop after this many updates served without waiting. */
const WATCH_BATCH = 256;

/** The kinds of model (NET_MODEL_*). */
const ModelKind = Object.freeze({
  TASKS: CONSTANTS.NET_MODEL_TASKS,
  MEMORIES: CONSTANTS.NET_MODEL_MEMORIES,
});

function closedError(what) {
  return new ShuttingDownError(`${what} is closed`, STATUS.NET_ERR_SHUTTING_DOWN);
}

function describe(value) {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function pooled(fn) {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

function timeoutArg(timeoutMs) {
  if (timeoutMs === undefined || timeoutMs === null || timeoutMs === Infinity) return Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new TypeError('timeoutMs must be a non-negative number (or omitted / Infinity to wait forever)');
  }
  return timeoutMs;
}

// ---- configuration and filters ------------------------------------------------

function u64Text(value, path, ErrorClass, status) {
  if (typeof value === 'bigint' && value >= 0n && value < 1n << 64n) return value.toString();
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  throw new ErrorClass(
    `${path}: expected a non-negative integer (bigint or safe-integer number), got ${describe(value)}`,
    status,
  );
}

const configErr = (m) => new CortexInvalidConfigError(m, STATUS.NET_ERR_CORTEX_INVALID_CONFIG);
const queryErr = (m) => new CortexInvalidQueryError(m, STATUS.NET_ERR_CORTEX_INVALID_QUERY);

/**
 * The model configuration JSON: openFile's options (persistent, fsync,
 * retention, repair) plus policy ('stop' | 'log_and_continue'), start ('beginning' |
 * 'live' | a sequence number) and changesCapacity.
 */
function modelConfigJson(options) {
  if (options == null) return null;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('options must be an object');
  }
  const fileOptions = {};
  const extra = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    switch (key) {
      case 'persistent':
      case 'fsync':
      case 'retention':
      case 'repair':
        fileOptions[key] = value;
        break;
      case 'policy':
        if (value !== 'stop' && value !== 'log_and_continue') {
          throw configErr(`policy: expected 'stop' or 'log_and_continue', got ${describe(value)}`);
        }
        extra.push(`"policy":"${value}"`);
        break;
      case 'start':
        if (value === 'beginning' || value === 'live') extra.push(`"start":"${value}"`);
        else if (typeof value === 'bigint' || typeof value === 'number') {
          extra.push(`"start":{"from_seq":${u64Text(value, 'start', CortexInvalidConfigError, STATUS.NET_ERR_CORTEX_INVALID_CONFIG)}}`);
        } else {
          throw configErr(`start: expected 'beginning', 'live' or a sequence number, got ${describe(value)}`);
        }
        break;
      case 'changesCapacity':
        extra.push(
          `"changes_capacity":${u64Text(value, 'changesCapacity', CortexInvalidConfigError, STATUS.NET_ERR_CORTEX_INVALID_CONFIG)}`,
        );
        break;
      default:
        throw configErr(
          `unknown key ${JSON.stringify(key)} (known: persistent, fsync, retention, repair, policy, start, changesCapacity)`,
        );
    }
  }
  const file = configJson(fileOptions);
  const fileText = file === null ? '' : file.toString('utf8').slice(1, -1);
  const members = [fileText, ...extra].filter((m) => m !== '');
  return members.length === 0 ? null : Buffer.from(`{${members.join(',')}}`, 'utf8');
}

const COMMON_FILTER = {
  ids: ['ids', (v, p) => {
    if (!Array.isArray(v)) throw queryErr(`${p}: expected an array of ids`);
    return `[${v.map((id, i) => u64Text(id, `${p}[${i}]`, CortexInvalidQueryError, STATUS.NET_ERR_CORTEX_INVALID_QUERY)).join(',')}]`;
  }],
  createdAfter: ['created_after', u64Filter],
  createdBefore: ['created_before', u64Filter],
  updatedAfter: ['updated_after', u64Filter],
  updatedBefore: ['updated_before', u64Filter],
  orderBy: ['order_by', stringFilter],
  offset: ['offset', u64Filter],
  limit: ['limit', u64Filter],
};

function u64Filter(v, p) {
  return u64Text(v, p, CortexInvalidQueryError, STATUS.NET_ERR_CORTEX_INVALID_QUERY);
}

function stringFilter(v, p) {
  if (typeof v !== 'string') throw queryErr(`${p}: expected a string, got ${describe(v)}`);
  return JSON.stringify(v);
}

function stringsFilter(v, p) {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw queryErr(`${p}: expected an array of strings`);
  }
  return JSON.stringify(v);
}

const TASK_FILTER = {
  ...COMMON_FILTER,
  status: ['status', stringFilter],
  titleContains: ['title_contains', stringFilter],
};

const MEMORY_FILTER = {
  ...COMMON_FILTER,
  tagsAny: ['tags_any', stringsFilter],
  tagsAll: ['tags_all', stringsFilter],
  source: ['source', stringFilter],
  pinned: ['pinned', (v, p) => {
    if (typeof v !== 'boolean') throw queryErr(`${p}: expected a boolean, got ${describe(v)}`);
    return String(v);
  }],
  contentContains: ['content_contains', stringFilter],
};

/** A filter object (camelCase keys) as libnet's filter JSON, or null for "all". */
function filterJson(filter, known) {
  if (filter == null) return null;
  if (typeof filter !== 'object' || Array.isArray(filter)) throw new TypeError('filter must be an object');
  const members = [];
  for (const [key, value] of Object.entries(filter)) {
    const spec = known[key];
    if (!spec) {
      throw queryErr(`unknown filter key ${JSON.stringify(key)} (known: ${Object.keys(known).join(', ')})`);
    }
    if (value === undefined || value === null) continue;
    members.push(`${JSON.stringify(spec[0])}:${spec[1](value, key)}`);
  }
  return members.length === 0 ? null : Buffer.from(`{${members.join(',')}}`, 'utf8');
}

// ---- rows -----------------------------------------------------------------------

function taskRow(r) {
  return { id: r.id, title: r.title, status: r.status, createdNs: r.created_ns, updatedNs: r.updated_ns };
}

function memoryRow(r) {
  return {
    id: r.id,
    content: r.content,
    tags: r.tags,
    source: r.source,
    createdNs: r.created_ns,
    updatedNs: r.updated_ns,
    pinned: r.pinned,
  };
}

function progressOf(p) {
  return {
    appliedThroughSeq: p.applied_through_seq,
    foldedThroughSeq: p.folded_through_seq,
    running: p.running,
    errors: p.errors,
    lastError: p.last_error,
    appSeq: p.app_seq,
  };
}

function toBuffer(v) {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

// ---- watches ----------------------------------------------------------------------

const watchFinalizer = leakRegistry('Watch', 'net_model_watch_free');
let watchHandle;

/**
 * A live query: an async iterator of `{ lagged: false, rows }` (the current
 * rows first, then the new rows after each change) and `{ lagged: true,
 * missed }` when this reader fell behind (the next rows include everything
 * it missed). Ends when the model is closed, its fold halts, or the watch is
 * closed. With a `signal` (model.watch(filter, { signal })), aborting it
 * closes the watch and rejects a pending next() with the signal's reason.
 */
class Watch {
  #handle;
  #model;
  #row;
  #chain = Promise.resolve();
  #signal;
  #onAbort = null;
  #served = 0;

  /** @private Use model.watch() / model.snapshotAndWatch(). */
  constructor(token, handle, model, row, signal) {
    if (token !== kConstruct) throw new TypeError('Watch has no public constructor: use model.watch()');
    this.#handle = handle;
    this.#model = model;
    this.#row = row;
    this.#signal = signal;
    watchFinalizer.register(this, handle, this);
    if (signal) {
      this.#onAbort = () => this.close();
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  static {
    watchHandle = (w) => w.#handle;
  }

  /** The model this watch observes. */
  get model() {
    return this.#model;
  }

  /** True once closed or ended. */
  get closed() {
    return this.#handle === null;
  }

  /**
   * The next update: `{ done: false, value }`, `{ done: true }` once the watch
   * ended, or null when `timeoutMs` passed first (omitted: no limit; 0: only
   * what is ready). With `{ signal }` an abort rejects the call with the
   * signal's reason (the watch stays usable). Calls are served in order.
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
    const handle = this.#handle;
    if (handle === null) return DONE;
    if (this.#served >= WATCH_BATCH) {
      this.#served = 0;
      await asyncCalls.yieldToLoop();
      if (this.#handle !== handle) return DONE;
    }
    let r;
    try {
      r = calls.watchTryNext(handle);
    } catch (err) {
      if (this.#handle !== handle || err instanceof ShuttingDownError) return DONE;
      throw err;
    }
    if (r.status === STATUS.NET_TIMEOUT && timeoutMs > 0) {
      this.#served = 0;
      const b = await asyncCalls.blocking({
        op: 'model_watch_next',
        attempt: calls.watchNextAttempt(handle),
        resumable: true,
        timeoutMs,
        signal,
      });
      if (this.#handle !== handle) {
        signal?.throwIfAborted();
        return DONE;
      }
      if (b.status === STATUS.NET_ERR_SHUTTING_DOWN) return DONE;
      asyncCalls.check(b);
      r = b;
    }
    if (r.status === STATUS.NET_OK) {
      this.#served++;
      return { done: false, value: { lagged: false, rows: parseJsonBigInt(r.value.rows).map(this.#row) } };
    }
    if (r.status === STATUS.NET_LAGGED) return { done: false, value: { lagged: true, missed: r.value.missed } };
    if (r.status === STATUS.NET_END) {
      this.close();
      return DONE;
    }
    return null; // NET_TIMEOUT
  }

  /**
   * Ends the watch; a pending next() resolves `{ done: true }` (libnet wakes
   * it). Idempotent. Throws BusyError if a call was still on the handle after
   * libnet's 5 s deadline.
   */
  close() {
    const handle = this.#detach();
    if (handle !== null) calls.free('net_model_watch_free', handle);
  }

  /** close() with the free on the worker pool; rejects with BusyError. */
  closeAsync() {
    const handle = this.#detach();
    if (handle === null) return Promise.resolve();
    return pool
      .getPool()
      .run('free', ['net_model_watch_free', handle])
      .then(() => undefined);
  }

  #detach() {
    const handle = this.#handle;
    if (handle === null) return null;
    this.#handle = null;
    watchFinalizer.unregister(this);
    if (this.#onAbort) {
      this.#signal.removeEventListener('abort', this.#onAbort);
      this.#onAbort = null;
    }
    return handle;
  }

  /** Called by `for await` on break/throw: closes the watch. */
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
    return `Watch <${this.#model.constructor.name}${this.closed ? ' closed' : ''}>`;
  }
}

// ---- models -------------------------------------------------------------------------

const modelFinalizer = leakRegistry('Model', 'net_model_free');
let modelHandle;

/**
 * A CortEX model: folded state of one kind over a RedEX channel. The
 * generic part of every kind — subclasses (Tasks, Memories) define `kind`,
 * `rowOf` (libnet's JSON row to a JS row), `filterKeys` and their writes.
 */
class Model {
  #handle;
  #origin;
  /** The NetDB that lent this model and frees it (null: the model's own). */
  #lender;

  /** @private Use Tasks.open / Memories.open (or restore / openAsync). */
  constructor(token, handle, origin, lender = null) {
    if (token !== kConstruct) throw new TypeError(`use ${new.target.name}.open()`);
    this.#handle = handle;
    this.#origin = origin;
    this.#lender = lender;
    if (lender === null) modelFinalizer.register(this, { handle, name: new.target.name }, this);
  }

  static {
    modelHandle = (m) => m.#handle;
  }

  /** The subclass's definition (throws on the abstract Model itself). */
  static #definition(Cls) {
    if (!Number.isInteger(Cls.kind) || typeof Cls.rowOf !== 'function' || !Cls.filterKeys) {
      throw new TypeError(`${Cls.name} is not a model kind: use Tasks or Memories (or a subclass defining kind, rowOf and filterKeys)`);
    }
    return Cls;
  }

  static #openArgs(Cls, redex, originHash, options, snapshot) {
    Model.#definition(Cls);
    if (!(redex instanceof Redex)) throw new TypeError('redex must be a Redex');
    const manager = rawRedexHandle(redex);
    if (manager === null) throw closedError('Redex');
    const origin = args.u64(originHash, 'originHash');
    const config = modelConfigJson(options);
    if (snapshot == null) return [manager, Cls.kind, origin, config, null, 0n, false];
    if (typeof snapshot !== 'object') throw new TypeError('snapshot must be { data, lastSeq }');
    const data = args.bytes(snapshot.data, 'snapshot.data');
    const last = snapshot.lastSeq == null ? null : args.u64(snapshot.lastSeq, 'snapshot.lastSeq');
    return [manager, Cls.kind, origin, config, data, last ?? 0n, last !== null];
  }

  /** Opens the model on `redex` as writer `originHash` (options: ModelOptions). */
  static open(redex, originHash, options) {
    const a = Model.#openArgs(this, redex, originHash, options, null);
    return new this(kConstruct, calls.modelOpen(...a), a[2]);
  }

  /** open() on the worker pool (a persistent model replays its log). */
  static openAsync(redex, originHash, options) {
    return pooled(() => {
      const a = Model.#openArgs(this, redex, originHash, options, null);
      return pool
        .getPool()
        .run('modelOpen', a, [redex])
        .then((h) => new this(kConstruct, h, a[2]));
    });
  }

  /** Opens from `snapshot` ({ data, lastSeq }), replaying only later events. */
  static restore(redex, originHash, snapshot, options) {
    const a = Model.#openArgs(this, redex, originHash, options, snapshot);
    return new this(kConstruct, calls.modelOpen(...a), a[2]);
  }

  /** The writer origin stamped on this model's events. */
  get originHash() {
    return this.#origin;
  }

  /** The kind libnet opened (ModelKind.TASKS, ModelKind.MEMORIES). */
  get kind() {
    return calls.modelKind(this._live());
  }

  /** True once closed. */
  get closed() {
    return this.#handle === null;
  }

  _live() {
    const h = this.#handle;
    if (h === null) throw closedError(this.constructor.name);
    return h;
  }

  #row(r) {
    return this.constructor.rowOf(r);
  }

  #filter(filter) {
    return filterJson(filter, this.constructor.filterKeys);
  }

  /** A write of this kind (`op` as in calls.modelWrite): its RedEX seq. */
  _write(op, id, ...rest) {
    return calls.modelWrite(op, this._live(), args.u64(id, 'id'), ...rest);
  }

  /** _write() on the worker pool. */
  _writeAsync(op, id, ...rest) {
    return pooled(() => {
      const handle = this._live();
      const keep = [this];
      const transfer = [];
      const conv = rest.map((r) =>
        Array.isArray(r) ? r.map((t) => pool.input(t, keep, transfer)) : pool.input(r, keep, transfer),
      );
      return pool.getPool().run('modelWrite', [op, handle, args.u64(id, 'id'), ...conv], keep, transfer);
    });
  }

  /** Deletes row `id` (no effect if absent); returns the event's RedEX seq. */
  delete(id) {
    return this._write('delete', id);
  }

  /** delete() on the worker pool. */
  deleteAsync(id) {
    return this._writeAsync('delete', id);
  }

  /**
   * Resolves true once the fold has attempted RedEX sequence `seq`, false
   * when `timeoutMs` passed first (omitted: no limit); rejects with
   * CortexHaltedError at once when the fold stopped short of it, with
   * ShuttingDownError when the model is closed meanwhile, and with the
   * signal's reason when `{ signal }` aborts.
   */
  async waitForSeq(seq, timeoutMs, options) {
    const target = args.u64(seq, 'seq');
    const wait = timeoutArg(timeoutMs);
    const signal = asyncCalls.signalArg(options);
    signal?.throwIfAborted();
    const handle = this._live();
    if (calls.check(fns.net_model_wait_for_seq(handle, target, 0, null, null)) === STATUS.NET_OK) return true;
    if (wait === 0) return false;
    const r = await asyncCalls.blocking({
      op: 'model_wait_for_seq',
      attempt: calls.waitForSeqAttempt(handle, target),
      resumable: true,
      timeoutMs: wait,
      signal,
    });
    return asyncCalls.check(r) === STATUS.NET_OK;
  }

  /** The fold's watermarks and health: { appliedThroughSeq, foldedThroughSeq, running, errors, lastError, appSeq }. */
  progress() {
    return progressOf(parseJsonBigInt(calls.modelProgress(this._live())));
  }

  /** The row with `id`, or null. */
  findUnique(id) {
    const text = calls.modelFindUnique(this._live(), args.u64(id, 'id'));
    return text === null ? null : this.#row(parseJsonBigInt(text));
  }

  /** The rows matching `filter` (omitted: all), ordered and paged as it says. */
  findMany(filter) {
    const f = this.#filter(filter);
    return parseJsonBigInt(calls.modelFindMany(this._live(), f)).map((r) => this.#row(r));
  }

  /** How many rows match (offset/limit ignored), as a bigint. */
  countWhere(filter) {
    return calls.modelCountWhere(this._live(), this.#filter(filter));
  }

  /** Whether any row matches. */
  existsWhere(filter) {
    return calls.modelExistsWhere(this._live(), this.#filter(filter));
  }

  /**
   * A Watch of the rows matching `filter`; its first update is the current
   * rows. With `{ signal }`, aborting it closes the watch.
   */
  watch(filter, options) {
    const f = this.#filter(filter);
    const signal = asyncCalls.signalArg(options);
    signal?.throwIfAborted();
    const handle = calls.modelWatch(this._live(), f, false);
    return new Watch(kConstruct, handle, this, (r) => this.#row(r), signal);
  }

  /** `{ rows, watch }`: the current rows now, and a Watch of later changes only. */
  snapshotAndWatch(filter, options) {
    const f = this.#filter(filter);
    const signal = asyncCalls.signalArg(options);
    signal?.throwIfAborted();
    const r = calls.modelWatch(this._live(), f, true);
    const watch = new Watch(kConstruct, r.watch, this, (row) => this.#row(row), signal);
    return { rows: parseJsonBigInt(r.current).map((row) => this.#row(row)), watch };
  }

  /** `{ data: Buffer, lastSeq: bigint | null }`: the state as of the applied watermark. */
  snapshot() {
    return calls.modelSnapshot(this._live());
  }

  /**
   * Stops the fold and closes the model's RedEX file (syncing it) without
   * freeing the handle (net_model_close): throws the close's error (say
   * RedexIoError for a failed final fsync); later writes fail with
   * CortexHaltedError, a pending waitForSeq rejects with it, watches end;
   * queries keep answering from the last state. close() still frees it.
   */
  shutdown() {
    calls.modelClose(this._live());
  }

  /** shutdown() on the worker pool. */
  shutdownAsync() {
    return pooled(() =>
      pool
        .getPool()
        .run('modelClose', [this._live()], [this])
        .then(() => undefined),
    );
  }

  /**
   * Frees the model (net_model_free): libnet wakes a waitForSeq blocked on
   * it (it rejects with ShuttingDownError), ends its watches, waits up to
   * 5 s for calls in flight (a write on the pool), then stops the fold and
   * closes the file. Idempotent. Throws BusyError when calls were still
   * running at that deadline or closing the file failed (the message says
   * which; shutdown() first reports a failed sync as its RedEX error).
   *
   * A model lent by a NetDB (db.tasks, db.memories) is the NetDB's: close()
   * only lets go of it (later calls throw ShuttingDownError), and the
   * NetDB's close() frees it.
   */
  close() {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    if (this.#lender !== null) return;
    modelFinalizer.unregister(this);
    calls.free('net_model_free', handle);
  }

  /** close() on the worker pool; rejects as close() throws. */
  closeAsync() {
    const handle = this.#handle;
    if (handle === null) return Promise.resolve();
    this.#handle = null;
    if (this.#lender !== null) return Promise.resolve();
    modelFinalizer.unregister(this);
    return pool
      .getPool()
      .run('free', ['net_model_free', handle])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    return `${this.constructor.name} <origin=${this.#origin}${this.closed ? ' closed' : ''}>`;
  }
}

function text(value, name) {
  return args.bytesOrString(value, name);
}

function tagList(tags) {
  if (tags == null) return [];
  if (!Array.isArray(tags)) throw new TypeError('tags must be an array of strings');
  return tags.map((t, i) => text(t, `tags[${i}]`));
}

/** The tasks model (channel cortex/tasks): rows, filter keys and the writes of its own. */
class Tasks extends Model {
  static kind = ModelKind.TASKS;
  static rowOf = taskRow;
  static filterKeys = TASK_FILTER;

  /** Creates task `id` (pending); returns the event's RedEX seq. */
  create(id, title) {
    return this._write('create', id, text(title, 'title'));
  }

  createAsync(id, title) {
    return pooled(() => this._writeAsync('create', id, text(title, 'title')));
  }

  /** Renames task `id`. */
  rename(id, title) {
    return this._write('rename', id, text(title, 'title'));
  }

  renameAsync(id, title) {
    return pooled(() => this._writeAsync('rename', id, text(title, 'title')));
  }

  /** Marks task `id` completed. */
  complete(id) {
    return this._write('complete', id);
  }

  completeAsync(id) {
    return this._writeAsync('complete', id);
  }
}

/** The memories model (channel cortex/memories): rows, filter keys and the writes of its own. */
class Memories extends Model {
  static kind = ModelKind.MEMORIES;
  static rowOf = memoryRow;
  static filterKeys = MEMORY_FILTER;

  /** Stores memory `id`; returns the event's RedEX seq. */
  store(id, content, tags = [], source = '') {
    return this._write('store', id, text(content, 'content'), tagList(tags), text(source, 'source'));
  }

  storeAsync(id, content, tags = [], source = '') {
    return pooled(() =>
      this._writeAsync('store', id, text(content, 'content'), tagList(tags), text(source, 'source')),
    );
  }

  /** Replaces the tags of memory `id`. */
  retag(id, tags) {
    return this._write('retag', id, tagList(tags));
  }

  retagAsync(id, tags) {
    return pooled(() => this._writeAsync('retag', id, tagList(tags)));
  }

  pin(id) {
    return this._write('pin', id);
  }

  pinAsync(id) {
    return this._writeAsync('pin', id);
  }

  unpin(id) {
    return this._write('unpin', id);
  }

  unpinAsync(id) {
    return this._writeAsync('unpin', id);
  }
}

/** The raw handle (bigint pointer) of a model or watch, or null once closed. */
function rawCortexHandle(value) {
  if (value instanceof Model) return modelHandle(value);
  if (value instanceof Watch) return watchHandle(value);
  return undefined;
}

/** A model of class `Cls` over `handle`, which `lender` (a NetDB) owns and frees. */
function lendModel(Cls, handle, origin, lender) {
  return new Cls(kConstruct, handle, origin, lender);
}

module.exports = { Model, ModelKind, Tasks, Memories, Watch, rawCortexHandle, modelConfigJson, filterJson, toBuffer, lendModel };
