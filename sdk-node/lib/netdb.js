'use strict';
// NetDB: the tasks and memories models of one Redex behind one handle
// (net_netdb_*), opened together (failure-atomic: when one model cannot
// open, nothing stays open), bundled together (one snapshot point for both)
// and closed together. Its models are the ordinary Tasks and Memories
// classes, lent by the NetDB: every query, watch and write is theirs.

const util = require('node:util');
const { fns, CONSTANTS, STATUS } = require('./native');
const calls = require('./calls');
const args = require('./args');
const pool = require('./pool');
const { leakRegistry } = require('./finalize');
const { Redex, rawRedexHandle } = require('./redex');
const { Tasks, Memories, lendModel } = require('./cortex');
const { ShuttingDownError, InvalidArgumentError, CortexInvalidConfigError } = require('./errors');

const kConstruct = Symbol('netmesh.netdb.construct');
const OPTION_KEYS = ['withTasks', 'withMemories', 'persistent', 'policy'];

const configErr = (m) => new CortexInvalidConfigError(m, STATUS.NET_ERR_CORTEX_INVALID_CONFIG);

/** net_netdb_open's configuration JSON for `{ withTasks, withMemories, persistent, policy }`. */
function netdbConfigJson(options) {
  const o = options ?? {};
  if (typeof o !== 'object' || Array.isArray(o)) {
    throw new TypeError('options must be an object { withTasks?, withMemories?, persistent?, policy? }');
  }
  for (const key of Object.keys(o)) {
    if (!OPTION_KEYS.includes(key)) throw configErr(`unknown option ${key} (known: ${OPTION_KEYS.join(', ')})`);
  }
  const config = {};
  for (const [key, json] of [['withTasks', 'with_tasks'], ['withMemories', 'with_memories'], ['persistent', 'persistent']]) {
    const value = o[key] ?? false;
    if (typeof value !== 'boolean') throw configErr(`${key}: expected true or false, got ${util.inspect(value)}`);
    config[json] = value;
  }
  if (o.policy != null) {
    if (o.policy !== 'stop' && o.policy !== 'log_and_continue') {
      throw configErr(`policy: expected 'stop' or 'log_and_continue', got ${util.inspect(o.policy)}`);
    }
    config.policy = o.policy;
  }
  return Buffer.from(JSON.stringify(config), 'utf8');
}

function openArgs(redex, originHash, options, bundle) {
  if (!(redex instanceof Redex)) throw new TypeError('redex must be a Redex');
  const manager = rawRedexHandle(redex);
  if (manager === null) throw new ShuttingDownError('Redex has been closed', STATUS.NET_ERR_SHUTTING_DOWN);
  const origin = args.u64(originHash, 'originHash');
  const config = netdbConfigJson(options);
  const data = bundle == null ? null : args.bytes(bundle, 'bundle');
  return [manager, origin, config, data];
}

const netdbFinalizer = leakRegistry('NetDB', 'net_netdb_free');

/**
 * The tasks and memories models of one Redex (net_netdb_t). Open it with
 * NetDB.open / openAsync / openFromBundle; its models are `tasks` and
 * `memories`; `snapshotBundle()` cuts both at one point; `close()` frees it
 * and its models.
 */
class NetDB {
  #handle;
  #tasks = null;
  #memories = null;

  /** @private Use NetDB.open(). */
  constructor(token, handle, origin, options) {
    if (token !== kConstruct) throw new TypeError('use NetDB.open()');
    this.#handle = handle;
    netdbFinalizer.register(this, handle, this);
    try {
      if (options?.withTasks) {
        this.#tasks = lendModel(Tasks, calls.netdbModel(handle, CONSTANTS.NET_MODEL_TASKS), origin, this);
      }
      if (options?.withMemories) {
        this.#memories = lendModel(Memories, calls.netdbModel(handle, CONSTANTS.NET_MODEL_MEMORIES), origin, this);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /**
   * Opens the models `options` enables (`{ withTasks, withMemories,
   * persistent, policy }`) on `redex` as writer `originHash`, tasks first,
   * each replaying its log before this returns. Throws
   * CortexInvalidConfigError, RedexNoPersistentDirError, RedexLockedError,
   * CortexHaltedError (a fold stopped while replaying); on an error nothing
   * stays open.
   */
  static open(redex, originHash, options) {
    const a = openArgs(redex, originHash, options, null);
    return new NetDB(kConstruct, calls.netdbOpen(...a), a[1], options);
  }

  /** open() on the worker pool (persistent models replay their logs). */
  static openAsync(redex, originHash, options) {
    try {
      const a = openArgs(redex, originHash, options, null);
      return pool
        .getPool()
        .run('netdbOpen', a, [redex])
        .then((h) => new NetDB(kConstruct, h, a[1], options));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Opens from a bundle (snapshotBundle()): each model in it is restored
   * and folds the events its log has after the bundle's cut; each enabled
   * model not in it opens fresh. Throws CortexSnapshotError when the bundle
   * does not decode or holds a model `options` does not enable.
   */
  static openFromBundle(redex, originHash, bundle, options) {
    const a = openArgs(redex, originHash, options, bundle);
    return new NetDB(kConstruct, calls.netdbOpen(...a), a[1], options);
  }

  #live() {
    const h = this.#handle;
    if (h === null) throw new ShuttingDownError('NetDB has been closed', STATUS.NET_ERR_SHUTTING_DOWN);
    return h;
  }

  /** True once closed. */
  get closed() {
    return this.#handle === null;
  }

  /** The tasks model (the same object every time); InvalidArgumentError when not enabled. */
  get tasks() {
    if (this.#tasks === null) {
      throw new InvalidArgumentError('this NetDB was opened without the tasks model (withTasks: true)', STATUS.NET_ERR_INVALID_ARGUMENT);
    }
    return this.#tasks;
  }

  /** The memories model, as `tasks` is the tasks model. */
  get memories() {
    if (this.#memories === null) {
      throw new InvalidArgumentError('this NetDB was opened without the memories model (withMemories: true)', STATUS.NET_ERR_INVALID_ARGUMENT);
    }
    return this.#memories;
  }

  /**
   * Both models cut at one point (STORAGE.md §12 bytes, a Buffer): every
   * write that returned before the call is in it, and a write in it comes
   * with every write, to either model, that returned before that write began.
   */
  snapshotBundle() {
    return calls.netdbSnapshot(this.#live());
  }

  /** snapshotBundle() on the worker pool. */
  snapshotBundleAsync() {
    try {
      return pool
        .getPool()
        .run('netdbSnapshot', [this.#live()], [this])
        .then((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Stops both folds and closes the models' RedEX files, syncing them
   * (net_netdb_close), tasks first; throws the first failure. Queries keep
   * answering from the last state; writes fail. Idempotent. close() still
   * frees the NetDB.
   */
  shutdown() {
    calls.check(fns.net_netdb_close(this.#live()));
  }

  #detach() {
    const handle = this.#handle;
    if (handle === null) return null;
    this.#handle = null;
    netdbFinalizer.unregister(this);
    this.#tasks?.close();
    this.#memories?.close();
    return handle;
  }

  /**
   * Frees the NetDB and its models (net_netdb_free): later calls on it or on
   * its `tasks` / `memories` throw ShuttingDownError; calls waiting on the
   * models wake. Idempotent. Throws BusyError when calls were still running
   * after 5 s or closing a model failed.
   */
  close() {
    const handle = this.#detach();
    if (handle !== null) calls.free('net_netdb_free', handle);
  }

  /** close() on the worker pool; rejects as close() throws. */
  closeAsync() {
    const handle = this.#detach();
    if (handle === null) return Promise.resolve();
    return pool
      .getPool()
      .run('free', ['net_netdb_free', handle])
      .then(() => undefined);
  }

  [Symbol.dispose]() {
    this.close();
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    const models = [this.#tasks && 'tasks', this.#memories && 'memories'].filter(Boolean);
    return `NetDB <${models.join('+') || 'no models'}${this.closed ? ' closed' : ''}>`;
  }
}

module.exports = { NetDB, netdbConfigJson };
