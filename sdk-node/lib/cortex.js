'use strict';
// CortEX: folded, queryable state over RedEX logs. Tasks and Memories (the
// two Net v0.11 models) open on a Redex manager; writes append an event and
// return its RedEX sequence number (a bigint); a fold thread inside libnet
// applies events to the in-memory state that queries read.
//
// Queries are synchronous (in-memory, fast). Writes have sync and *Async
// forms (an append may fsync). Everything that blocks — waitForSeq, watch
// iteration, closeAsync — runs on the shared async pool in slices of at most
// POLL_MS, like RedEX tails, so it never blocks the event loop and never
// monopolises a pool worker. Integers in rows (ids, timestamps, sequence
// numbers, counters) are bigints.

const util = require('node:util');
const { performance } = require('node:perf_hooks');
const { STATUS } = require('./native');
const calls = require('./calls');
const args = require('./args');
const pool = require('./pool');
const { parseJsonBigInt } = require('./json');
const { Redex, configJson, rawRedexHandle } = require('./redex');
const { ShuttingDownError, CortexInvalidConfigError, CortexInvalidQueryError } = require('./errors');

/** Longest single wait of a waitForSeq / watch poll on a pool worker (ms). */
const POLL_MS = 50;
const kConstruct = Symbol('netmesh.cortex.construct');
const DONE = Object.freeze({ done: true, value: undefined });

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
  if (timeoutMs === undefined || timeoutMs === Infinity) return Infinity;
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

const watchFinalizer = new FinalizationRegistry(({ kind, handle }) => calls.cortexWatchFree(kind, handle));
let watchHandle;

/**
 * A live query: an async iterator of `{ lagged: false, rows }` (the current
 * rows first, then the new rows after each change) and `{ lagged: true,
 * missed }` when this reader fell behind (the next rows include everything
 * it missed). Ends when the model is closed, its fold halts, or the watch is
 * closed.
 */
class Watch {
  #kind;
  #handle;
  #model;
  #row;
  #chain = Promise.resolve();

  /** @private Use model.watch() / model.snapshotAndWatch(). */
  constructor(token, kind, handle, model, row) {
    if (token !== kConstruct) throw new TypeError('Watch has no public constructor: use model.watch()');
    this.#kind = kind;
    this.#handle = handle;
    this.#model = model;
    this.#row = row;
    watchFinalizer.register(this, { kind, handle }, this);
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
   * ended, or null when `timeoutMs` passed first (omitted: no limit). Calls
   * are served in order.
   */
  next(timeoutMs) {
    let wait;
    try {
      wait = timeoutArg(timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    const result = this.#chain.then(() => this.#next(wait));
    this.#chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #next(timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    for (let first = true; ; first = false) {
      const handle = this.#handle;
      if (handle === null) return DONE;
      const left = deadline - performance.now();
      if (!first && left <= 0) return null;
      const slice = Math.min(POLL_MS, Math.max(0, Math.ceil(left)));
      let r;
      try {
        r = await pool.getPool().run('cortexWatchNext', [this.#kind, handle, slice], [this]);
      } catch (err) {
        if (this.#handle !== handle || err instanceof ShuttingDownError) return DONE;
        throw err;
      }
      if (this.#handle !== handle) return DONE;
      if (r.status === STATUS.NET_OK) {
        return { done: false, value: { lagged: false, rows: parseJsonBigInt(r.rows).map(this.#row) } };
      }
      if (r.status === STATUS.NET_LAGGED) return { done: false, value: { lagged: true, missed: r.missed } };
      if (r.status === STATUS.NET_END) {
        this.close();
        return DONE;
      }
    }
  }

  /** Ends the watch; a pending next() resolves `{ done: true }`. Idempotent. */
  close() {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    watchFinalizer.unregister(this);
    calls.cortexWatchFree(this.#kind, handle);
  }

  /** Called by `for await` on break/throw: closes the watch. */
  return() {
    this.close();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    this.close();
    return Promise.resolve();
  }

  [util.inspect.custom]() {
    return `Watch <${this.#kind}${this.closed ? ' closed' : ''}>`;
  }
}

// ---- models -------------------------------------------------------------------------

const modelFinalizer = new FinalizationRegistry(({ kind, handle }) => calls.cortexCloseFree(kind, handle));
let modelHandle;

/** What Tasks and Memories share. */
class Model {
  #kind;
  #handle;
  #origin;

  /** @private Use Tasks.open / Memories.open. */
  constructor(token, kind, handle, origin) {
    if (token !== kConstruct) throw new TypeError(`use ${this.constructor.name}.open()`);
    this.#kind = kind;
    this.#handle = handle;
    this.#origin = origin;
    modelFinalizer.register(this, { kind, handle }, this);
  }

  static {
    modelHandle = (m) => m.#handle;
  }

  static _openArgs(redex, originHash, options, snapshot) {
    if (!(redex instanceof Redex)) throw new TypeError('redex must be a Redex');
    const manager = rawRedexHandle(redex);
    if (manager === null) throw closedError('Redex');
    const origin = args.u64(originHash, 'originHash');
    const config = modelConfigJson(options);
    if (snapshot == null) return [manager, origin, config, null, 0n, false];
    if (typeof snapshot !== 'object') throw new TypeError('snapshot must be { data, lastSeq }');
    const data = args.bytes(snapshot.data, 'snapshot.data');
    const last = snapshot.lastSeq == null ? null : args.u64(snapshot.lastSeq, 'snapshot.lastSeq');
    return [manager, origin, config, data, last ?? 0n, last !== null];
  }

  /** The writer origin stamped on this model's events. */
  get originHash() {
    return this.#origin;
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

  _kind() {
    return this.#kind;
  }

  _write(op, id, ...rest) {
    return calls.cortexWrite(this.#kind, op, this._live(), args.u64(id, 'id'), ...rest);
  }

  _writeAsync(op, id, ...rest) {
    return pooled(() => {
      const handle = this._live();
      const keep = [this];
      const transfer = [];
      const conv = rest.map((r) =>
        Array.isArray(r) ? r.map((t) => pool.input(t, keep, transfer)) : pool.input(r, keep, transfer),
      );
      return pool.getPool().run('cortexWrite', [this.#kind, op, handle, args.u64(id, 'id'), ...conv], keep, transfer);
    });
  }

  /**
   * Resolves true once the fold has attempted RedEX sequence `seq`, false
   * when `timeoutMs` passed first (omitted: no limit); rejects with
   * CortexHaltedError at once when the fold stopped short of it.
   */
  async waitForSeq(seq, timeoutMs) {
    const target = args.u64(seq, 'seq');
    const wait = timeoutArg(timeoutMs);
    const deadline = performance.now() + wait;
    for (let first = true; ; first = false) {
      const handle = this._live();
      const left = deadline - performance.now();
      if (!first && left <= 0) return false;
      const slice = Math.min(POLL_MS, Math.max(0, Math.ceil(left)));
      const status = await pool.getPool().run('cortexWaitForSeq', [this.#kind, handle, target, slice], [this]);
      if (status === STATUS.NET_OK) return true;
    }
  }

  /** The fold's watermarks and health: { appliedThroughSeq, foldedThroughSeq, running, errors, lastError, appSeq }. */
  progress() {
    return progressOf(parseJsonBigInt(calls.cortexJson(this.#kind, 'progress', this._live(), null)));
  }

  /** The row with `id`, or null. */
  findUnique(id) {
    const text = calls.cortexFindUnique(this.#kind, this._live(), args.u64(id, 'id'));
    return text === null ? null : this._row(parseJsonBigInt(text));
  }

  /** The rows matching `filter` (omitted: all), ordered and paged as it says. */
  findMany(filter) {
    const f = filterJson(filter, this._filterKeys());
    return parseJsonBigInt(calls.cortexJson(this.#kind, 'find_many', this._live(), f)).map((r) => this._row(r));
  }

  /** How many rows match (offset/limit ignored), as a bigint. */
  countWhere(filter) {
    return calls.cortexCountWhere(this.#kind, this._live(), filterJson(filter, this._filterKeys()));
  }

  /** Whether any row matches. */
  existsWhere(filter) {
    return calls.cortexExistsWhere(this.#kind, this._live(), filterJson(filter, this._filterKeys()));
  }

  /** A Watch of the rows matching `filter`; its first update is the current rows. */
  watch(filter) {
    const handle = calls.cortexWatch(this.#kind, this._live(), filterJson(filter, this._filterKeys()), false);
    return new Watch(kConstruct, this.#kind, handle, this, (r) => this._row(r));
  }

  /** `{ rows, watch }`: the current rows now, and a Watch of later changes only. */
  snapshotAndWatch(filter) {
    const r = calls.cortexWatch(this.#kind, this._live(), filterJson(filter, this._filterKeys()), true);
    const watch = new Watch(kConstruct, this.#kind, r.watch, this, (row) => this._row(row));
    return { rows: parseJsonBigInt(r.current).map((row) => this._row(row)), watch };
  }

  /** `{ data: Buffer, lastSeq: bigint | null }`: the state as of the applied watermark. */
  snapshot() {
    return calls.cortexSnapshot(this.#kind, this._live());
  }

  /**
   * Stops the fold, closes the model's RedEX file and frees the handle.
   * Idempotent. A write in flight on the pool finishes first (libnet waits up
   * to 5 s), so prefer closeAsync() where that may take long. Throws the close
   * error (e.g. a failed final fsync) after freeing.
   */
  close() {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    modelFinalizer.unregister(this);
    calls.cortexCloseFree(this.#kind, handle);
  }

  /** close() on the async pool. */
  closeAsync() {
    const handle = this.#handle;
    if (handle === null) return Promise.resolve();
    this.#handle = null;
    modelFinalizer.unregister(this);
    return pool.getPool().run('cortexCloseFree', [this.#kind, handle]);
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

/** The tasks model (channel cortex/tasks). */
class Tasks extends Model {
  /** Opens the model on `redex` for the writer `originHash`; options as modelConfigJson. */
  static open(redex, originHash, options) {
    const a = Model._openArgs(redex, originHash, options, null);
    return new Tasks(kConstruct, 'tasks', calls.cortexOpen('tasks', ...a), a[1]);
  }

  /** open() on the async pool (a persistent model replays its log). */
  static openAsync(redex, originHash, options) {
    return pooled(() => {
      const a = Model._openArgs(redex, originHash, options, null);
      return pool.getPool().run('cortexOpen', ['tasks', ...a], [redex]).then((h) => new Tasks(kConstruct, 'tasks', h, a[1]));
    });
  }

  /** Opens from `snapshot` ({ data, lastSeq }), replaying only later events. */
  static restore(redex, originHash, snapshot, options) {
    const a = Model._openArgs(redex, originHash, options, snapshot);
    return new Tasks(kConstruct, 'tasks', calls.cortexOpen('tasks', ...a), a[1]);
  }

  _row(r) {
    return taskRow(r);
  }

  _filterKeys() {
    return TASK_FILTER;
  }

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

  /** Deletes task `id`. */
  delete(id) {
    return this._write('delete', id);
  }

  deleteAsync(id) {
    return this._writeAsync('delete', id);
  }
}

/** The memories model (channel cortex/memories). */
class Memories extends Model {
  static open(redex, originHash, options) {
    const a = Model._openArgs(redex, originHash, options, null);
    return new Memories(kConstruct, 'memories', calls.cortexOpen('memories', ...a), a[1]);
  }

  static openAsync(redex, originHash, options) {
    return pooled(() => {
      const a = Model._openArgs(redex, originHash, options, null);
      return pool
        .getPool()
        .run('cortexOpen', ['memories', ...a], [redex])
        .then((h) => new Memories(kConstruct, 'memories', h, a[1]));
    });
  }

  static restore(redex, originHash, snapshot, options) {
    const a = Model._openArgs(redex, originHash, options, snapshot);
    return new Memories(kConstruct, 'memories', calls.cortexOpen('memories', ...a), a[1]);
  }

  _row(r) {
    return memoryRow(r);
  }

  _filterKeys() {
    return MEMORY_FILTER;
  }

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

  delete(id) {
    return this._write('delete', id);
  }

  deleteAsync(id) {
    return this._writeAsync('delete', id);
  }
}

/** The raw handle (bigint pointer) of a model or watch, or null once closed. */
function rawCortexHandle(value) {
  if (value instanceof Model) return modelHandle(value);
  if (value instanceof Watch) return watchHandle(value);
  return undefined;
}

module.exports = { Tasks, Memories, Watch, rawCortexHandle, modelConfigJson, filterJson, toBuffer, POLL_MS };
