'use strict';
// Compute: stateful daemons written in JavaScript that migrate between
// nodes. A Compute is a node's compute runtime (net_compute_t), installed as
// the mesh node's migration handler (one per node).
//
// libnet never calls into JavaScript. Every call it makes on a daemon
// (process an event, snapshot, restore, build an object for a daemon
// arriving by migration, drop one) is a work item: the Compute keeps one
// net_compute_next waiting on libuv's threadpool (a resumable koffi async
// call, lib/async.js), runs the daemon method on the main thread when an
// item arrives, and answers with net_compute_complete_* / net_compute_fail
// (quick synchronous calls). deliver(), waitMigration() and nextOutput()
// run on the threadpool too, and stop(), stats(), startMigration() and
// migrationStatus() on the worker pool (they wait for locks a daemon call
// holds while it waits for the main thread), so the event loop stays free
// to run the daemon while libnet waits for it. Daemon methods must be synchronous.
// Like a listening server, an open Compute keeps the process alive (its
// pull waits on the threadpool): close it when done.

const util = require('node:util');
const { STATUS, CONSTANTS, fns, takeBytes, errorSlot, takeError } = require('./native');
const calls = require('./calls');
const args = require('./args');
const asyncCalls = require('./async');
const pool = require('./pool');
const { rawMeshHandle } = require('./mesh');
const { leakRegistry } = require('./finalize');
const { parseJsonBigInt } = require('./json');
const { errorFor, ShuttingDownError, ComputeConfigError, ComputeUnknownKindError } = require('./errors');

const computeFinalizer = leakRegistry('Compute', 'net_compute_free');
const kConstruct = Symbol('netmesh.Compute.construct');
let computeHandle;

/** What deliver() did with an event. */
const Delivery = Object.freeze({
  PROCESSED: CONSTANTS.NET_COMPUTE_PROCESSED,
  BUFFERED: CONSTANTS.NET_COMPUTE_BUFFERED,
  FORWARDED: CONSTANTS.NET_COMPUTE_FORWARDED,
  DUPLICATE: CONSTANTS.NET_COMPUTE_DUPLICATE,
});

/**
 * A daemon: extend it and override process(event) (and, for a stateful
 * daemon, snapshot() and restore(state)). `event` is `{ producer, sequence,
 * payload, daemon }` (bigints and a Buffer); process returns the outputs (an
 * array of Buffers / Uint8Arrays); throwing refuses the event (leave the
 * state unchanged). Methods must be synchronous.
 */
class Daemon {
  process(_event) {
    throw new Error(`${this.constructor.name} does not implement process()`);
  }

  snapshot() {
    return Buffer.alloc(0);
  }

  restore(state) {
    if (state.length > 0) throw new Error(`${this.constructor.name} is stateless but got ${state.length} bytes of state`);
  }
}

const DURATIONS = {
  retryIntervalMs: 'retry_interval_ms',
  stepTimeoutMs: 'step_timeout_ms',
  sourceTimeoutMs: 'source_timeout_ms',
  workTimeoutMs: 'work_timeout_ms',
};
const PLAIN = { sendExtension: 'send_extension', outputCapacity: 'output_capacity', transferRate: 'transfer_rate' };

function configJson(options = {}) {
  const out = {};
  for (const [key, value] of Object.entries(options ?? {})) {
    if (value === undefined) continue;
    if (key in DURATIONS) out[DURATIONS[key]] = value;
    else if (key in PLAIN) out[PLAIN[key]] = value;
    else {
      const known = [...Object.keys(DURATIONS), ...Object.keys(PLAIN)].sort().join(', ');
      throw new ComputeConfigError(`unknown option ${key} (known: ${known})`, STATUS.NET_ERR_COMPUTE_CONFIG);
    }
  }
  return Object.keys(out).length ? Buffer.from(JSON.stringify(out), 'utf8') : null;
}

function timeoutArg(timeoutMs) {
  if (timeoutMs === undefined || timeoutMs === null || timeoutMs === Infinity) return asyncCalls.FOREVER;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new TypeError('timeoutMs must be a non-negative number (or omitted / Infinity to wait forever)');
  }
  return Math.min(Math.ceil(timeoutMs), asyncCalls.MAX_TIMEOUT_MS);
}

function seedArg(seed) {
  const s = args.bytes(seed, 'seed');
  if (s.length !== 32) throw new RangeError(`seed must be 32 bytes, got ${s.length}`);
  return new Uint8Array(s);
}

function statusOf(buf) {
  const j = parseBig(buf);
  return { state: j.state, phase: j.phase ?? null, code: j.code === undefined ? null : Number(j.code), reason: j.reason ?? null };
}

/** A promise for `fn()`, rejected (not thrown) when it throws. */
function pooled(fn) {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** A call with a net_error_t and no token, on the threadpool; throws its error. */
async function offLoop(fn, argsOf) {
  const error = errorSlot();
  const status = await asyncCalls.runAsync(fn, argsOf(error));
  if (status < 0) throw errorFor(status, takeError(error));
  return status;
}

/**
 * A node's compute runtime. `Compute.open(mesh, options)`; options (all
 * optional): retryIntervalMs (200), stepTimeoutMs (10 000), sourceTimeoutMs
 * (30 000), workTimeoutMs (30 000: how long a daemon call waits for the JS
 * daemon), sendExtension (true: to Net targets only; false: never), outputCapacity (65 536), transferRate
 * (bytes/s at which snapshot chunks leave for another node; 268 435 456;
 * 0: unpaced). Origins, node ids
 * and sequences are bigints.
 */
class Compute {
  #handle;
  // Shared with the work loop, which holds it and the raw handle but not
  // the Compute: a Compute dropped without close() is collected, and its
  // finalizer's free ends the loop.
  #daemons = new Daemons();
  #loop;

  /** @private Use Compute.open(). */
  constructor(token, handle) {
    if (token !== kConstruct) throw new TypeError('use Compute.open()');
    this.#handle = handle;
    computeFinalizer.register(this, handle, this);
    this.#loop = serve(handle, this.#daemons);
  }

  static {
    computeHandle = (c) => c.#handle;
  }

  /** Creates the compute runtime of `mesh` and starts pulling its work. */
  static open(mesh, options) {
    const m = rawMeshHandle(mesh);
    if (m === undefined) throw new TypeError('mesh must be a Mesh');
    const json = configJson(options);
    const out = [null];
    calls.check(fns.net_compute_new(m, json, json === null ? 0 : json.length, out));
    return new Compute(kConstruct, out[0]);
  }

  #live() {
    const h = this.#handle;
    if (h === null) throw new ShuttingDownError('Compute is closed', STATUS.NET_ERR_SHUTTING_DOWN);
    return h;
  }

  get closed() {
    return this.#handle === null;
  }

  /**
   * Registers daemon kind `kind`: `factory()` builds a fresh Daemon (for
   * spawn() without one, and for a daemon arriving by migration).
   */
  register(kind, factory, stateful = true) {
    if (typeof factory !== 'function') throw new TypeError('factory must be a function returning a Daemon');
    const k = Buffer.from(String(kind), 'utf8');
    calls.check(fns.net_compute_register_kind(this.#live(), k, k.length, Boolean(stateful)));
    this.#daemons.factories.set(String(kind), factory);
  }

  /**
   * Runs `daemon` (omitted: one from the kind's factory) of kind `kind`
   * here under the identity of `seed` (32 bytes); returns its origin hash.
   */
  spawn(kind, seed, daemon) {
    const handle = this.#live();
    const s = seedArg(seed);
    const factory = this.#daemons.factories.get(String(kind));
    if (daemon === undefined && factory === undefined) {
      throw new ComputeUnknownKindError(`no daemon kind ${JSON.stringify(kind)} is registered`, STATUS.NET_ERR_COMPUTE_UNKNOWN_KIND);
    }
    const instance = this.#daemons.keep(daemon ?? factory());
    const k = Buffer.from(String(kind), 'utf8');
    const out = [0n];
    const status = fns.net_compute_spawn(handle, k, k.length, s, s.length, instance, out);
    if (status < 0) {
      this.#daemons.objects.delete(instance);
      calls.check(status);
    }
    const origin = BigInt(out[0]);
    this.#daemons.origins.set(origin, instance);
    return origin;
  }

  /** Lets the daemon of `kind` with the identity of `seed` arrive here by migration; returns its origin. */
  expect(kind, seed) {
    const s = seedArg(seed);
    const k = Buffer.from(String(kind), 'utf8');
    const out = [0n];
    calls.check(fns.net_compute_expect(this.#live(), k, k.length, s, s.length, out));
    return BigInt(out[0]);
  }

  /**
   * Lets daemon `origin` of `kind` arrive here by migration without its
   * seed: its identity travels with it, sealed to this node (see
   * startMigration's `transportIdentity`). A snapshot that comes without
   * one is refused (the migration fails with `identity-transport-failed`).
   */
  expectOrigin(kind, origin) {
    const k = Buffer.from(String(kind), 'utf8');
    calls.check(fns.net_compute_expect_origin(this.#live(), k, k.length, args.u64(origin, 'origin')));
  }

  /**
   * Stops daemon `origin` here (rejects with ComputeNotFoundError if it does
   * not run here). Off the event loop: it waits for a call in flight on the
   * daemon, which may be waiting for this thread.
   */
  stop(origin) {
    return pooled(() => pool.getPool().run('computeStop', [this.#live(), args.u64(origin, 'origin')], [this]).then(() => undefined));
  }

  /**
   * Subscribes daemon `origin` (running here) to `channel` at `publisher`,
   * presenting `options.token` if given, off the event loop; resolves once
   * the publisher answered (`options.signal` gives up the wait). The
   * subscription is the node's, recorded with the daemon: when it
   * migrates, its new node subscribes before the daemon is restored there
   * and the old node lets go at cut-over. Daemons of one node share its
   * subscription; it ends when the last lets go (unsubscribeChannel,
   * stop). The channel's events arrive through this node's Mesh.recv();
   * deliver them to the daemon. stats(origin).channels lists them.
   * Rejects with ComputeNotFoundError, or as Mesh.subscribe does.
   */
  subscribeChannel(origin, publisher, channel, options) {
    return this.#membership('compute_subscribe_channel', true, origin, publisher, channel, options);
  }

  /**
   * Ends daemon `origin`'s subscription to `channel` at `publisher`; the
   * node unsubscribes (waiting for the answer) once no daemon here holds
   * the channel. Rejects with ComputeNotFoundError, or as Mesh.unsubscribe.
   */
  unsubscribeChannel(origin, publisher, channel, options) {
    return this.#membership('compute_unsubscribe_channel', false, origin, publisher, channel, options);
  }

  #membership(op, subscribe, origin, publisher, channel, options) {
    return pooled(() => {
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      const o = args.u64(origin, 'origin');
      const p = args.u64(publisher, 'publisher');
      const n = Buffer.from(String(channel), 'utf8');
      const token = subscribe && options && options.token != null ? new Uint8Array(args.bytes(options.token, 'token')) : null;
      const attempt = (tok, error) => ({
        fn: subscribe ? fns.net_compute_subscribe_channel : fns.net_compute_unsubscribe_channel,
        args: subscribe
          ? [handle, o, p, n, n.byteLength, token, token === null ? 0 : token.byteLength, tok, error]
          : [handle, o, p, n, n.byteLength, tok, error],
        result: () => null,
      });
      return asyncCalls.blocking({ op, attempt, resumable: false, signal }).then((r) => {
        asyncCalls.check(r);
      });
    });
  }

  /** The Daemon object of `origin` if it runs here, else null. */
  daemon(origin) {
    const o = args.u64(origin, 'origin');
    if (!this.daemons().some((d) => d.origin === o)) return null;
    return this.#daemons.objects.get(this.#daemons.origins.get(o)) ?? null;
  }

  /** The daemons running here: [{ origin, name }]. */
  daemons() {
    const out = { ptr: null, len: 0 };
    calls.check(fns.net_compute_daemons(this.#live(), out));
    return parseBig(takeBytes(out)).map((d) => ({ origin: BigInt(d.origin), name: d.name }));
  }

  /**
   * Daemon `origin`'s counters: name, eventsProcessed, eventsEmitted,
   * errors, headSequence (bigints). Off the event loop (it waits for the
   * daemon's lock).
   */
  stats(origin) {
    return pooled(() =>
      pool
        .getPool()
        .run('computeStats', [this.#live(), args.u64(origin, 'origin')], [this])
        .then((raw) => statsOf(Buffer.from(raw))),
    );
  }

  /**
   * Resolves with daemon `origin`'s stats once it runs here having
   * processed at least `count` events (it may still be arriving by
   * migration), or null after `timeoutMs` (omitted: no limit); `{ signal }`
   * cancels the wait. The count is checked after every delivery here:
   * nothing polls.
   */
  waitProcessed(origin, count, timeoutMs, options) {
    return pooled(() => {
      const o = args.u64(origin, 'origin');
      const n = args.u64(count, 'count');
      const wait = timeoutArg(timeoutMs);
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      return asyncCalls
        .blocking({ op: 'compute_wait_processed', attempt: waitProcessedAttempt(handle, o, n), resumable: true, timeoutMs: waitMs(wait), signal })
        .then((r) => (asyncCalls.check(r) === STATUS.NET_OK ? r.value : null));
    });
  }

  /**
   * Delivers an event to daemon `origin` wherever it is (a producer's
   * sequences start at 1 and are contiguous per daemon), off the event
   * loop; resolves with a Delivery once it is processed, buffered or
   * forwarded. Rejects with ComputeDaemonError if the daemon refused it or
   * did not answer in time.
   */
  async deliver(origin, producer, sequence, payload) {
    const handle = this.#live();
    const o = args.u64(origin, 'origin');
    const p = new Uint8Array(args.bytes(payload ?? Buffer.alloc(0), 'payload'));
    const outcome = [0];
    const call = offLoop(fns.net_compute_deliver, (error) => [
      handle, o, args.u64(producer, 'producer'), args.u64(sequence, 'sequence'), p, p.length, outcome, error,
    ]);
    this.#daemons.inFlight++;
    try {
      await call;
    } finally {
      this.#daemons.inFlight--;
    }
    return outcome[0];
  }

  /**
   * Delivers `payloads` (an array of Buffers / Uint8Arrays) from
   * `producer` at sequences `firstSequence`, `firstSequence + 1n`, … to
   * daemon `origin` in order, as one call and — for events processed here —
   * one work item the daemon's loop applies event by event (its process()
   * is called per event, as for deliver()). A batch for a daemon of this
   * Compute that is free is lent to this call instead
   * (net_compute_lend_batch): process() runs synchronously, before
   * deliverBatch() returns, and no thread is involved. Resolves with each event's
   * Delivery, or null when the daemon did not take the batch up within
   * `options.timeoutMs` (omitted: no limit; nothing was delivered);
   * `options.signal` cancels likewise until the batch is taken up. Rejects
   * when an event fails: the error's `delivered` says how many events
   * before it were delivered (their Deliveries in `outcomes`); the events
   * after it were not delivered.
   */
  deliverBatch(origin, producer, firstSequence, payloads, options) {
    return pooled(() => {
      const handle = this.#live();
      const o = args.u64(origin, 'origin');
      const p = args.u64(producer, 'producer');
      const first = args.u64(firstSequence, 'firstSequence');
      if (!Array.isArray(payloads)) throw new TypeError('payloads must be an array of bytes');
      // One pass, no per-element closure or name string (a batch's
      // preparation was a sixth of its time).
      const parts = new Array(payloads.length);
      const lengths = new Uint32Array(payloads.length);
      let total = 0;
      for (let i = 0; i < payloads.length; i++) {
        const x = payloads[i];
        const part = x instanceof Uint8Array ? x : args.bytes(x, `payloads[${i}]`);
        parts[i] = part;
        lengths[i] = part.length;
        total += part.length;
      }
      const opts = options ?? {};
      if (opts.signal === undefined) {
        const done = lentBatch(handle, this.#daemons, o, p, first, parts);
        if (done !== null) return Promise.resolve(done);
      }
      const data = Buffer.concat(parts, total);
      const wait = opts.timeoutMs === undefined ? asyncCalls.FOREVER : timeoutArg(opts.timeoutMs);
      const signal = asyncCalls.signalArg(opts.signal === undefined ? undefined : { signal: opts.signal });
      const attempt = (token, error, timeoutMs) => {
        const outcomes = new Uint32Array(Math.max(parts.length, 1));
        const delivered = new BigUint64Array(1);
        return {
          fn: fns.net_compute_deliver_batch,
          args: [handle, o, p, first, data, data.length, lengths, parts.length, timeoutMs, outcomes, delivered, token, error],
          result: () => Array.from(outcomes.subarray(0, Number(delivered[0]))),
        };
      };
      const daemons = this.#daemons;
      daemons.inFlight++;
      return asyncCalls
        .blocking({ op: 'compute_deliver_batch', attempt, resumable: false, timeoutMs: waitMs(wait), signal })
        .finally(() => {
          daemons.inFlight--;
        })
        .then((r) => {
          if (r.status < 0) {
            const err = errorFor(r.status, r.message);
            err.outcomes = r.value ?? [];
            err.delivered = err.outcomes.length;
            throw err;
          }
          return r.status === STATUS.NET_OK ? r.value : null;
        });
    });
  }

  /**
   * The next output of any daemon here ({ daemon, sequence, payload }), or
   * null after `timeoutMs` (omitted: no limit) or once closed; `{ signal }`
   * cancels the wait (it rejects with the signal's reason).
   */
  nextOutput(timeoutMs, options) {
    return pooled(() => {
      const wait = timeoutArg(timeoutMs);
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      return asyncCalls
        .blocking({ op: 'compute_next_output', attempt: nextOutputAttempt(handle), resumable: true, timeoutMs: waitMs(wait), signal })
        .then((r) => (asyncCalls.check(r) === STATUS.NET_OK ? r.value : null));
    });
  }

  /**
   * Chooses where daemon `origin`, running on this node, may migrate: of
   * the nodes this node's capability index holds that announce
   * 'subprotocol:0x0500' (every node with a Compute stamps it, and its
   * number of daemons as 'compute:load=N', on what it announces with
   * mesh.announce()) and match the daemon's requirements, the least loaded
   * (ties: the lower node id). Throws ComputeNoTargetError when no node
   * qualifies, ComputeNotFoundError when the daemon does not run here.
   * Start the move with startMigration(origin, <this node>, target).
   */
  placeMigration(origin) {
    const out = [0n];
    calls.check(fns.net_compute_place_migration(this.#live(), args.u64(origin, 'origin'), out));
    return BigInt(out[0]);
  }

  /**
   * Starts moving daemon `origin` from node `source` to node `target`,
   * orchestrated by this node. Off the event loop (it waits for the
   * runtime's lock, which a daemon call may hold).
   *
   * `options.transportIdentity` (default true): when this node is the
   * source, the daemon's seed is sealed to the target's static key and
   * travels with it, so the target needs only expectOrigin(); the start
   * rejects with ComputeIdentityTransportError when the target's key is
   * not known here. false: the target must know the seed (expect()).
   */
  startMigration(origin, source, target, options) {
    let json = null;
    if (options != null && options.transportIdentity !== undefined) {
      json = JSON.stringify({ transport_identity: Boolean(options.transportIdentity) });
    }
    return pooled(() =>
      pool
        .getPool()
        .run(
          'computeStartMigration',
          [this.#live(), args.u64(origin, 'origin'), args.u64(source, 'source'), args.u64(target, 'target'), json],
          [this],
        )
        .then(() => undefined),
    );
  }

  /**
   * The migration of `origin` orchestrated here (the last one, once
   * finished): { state: 'running' | 'completed' | 'failed', phase, code,
   * reason }. Rejects with ComputeNoMigrationError if there is none. Off
   * the event loop, as startMigration.
   */
  migrationStatus(origin) {
    return pooled(() =>
      pool
        .getPool()
        .run('computeMigrationStatus', [this.#live(), args.u64(origin, 'origin')], [this])
        .then((raw) => statusOf(Buffer.from(raw))),
    );
  }

  /**
   * Resolves with the migration's final status once it completed or
   * failed, or null after `timeoutMs` (omitted: no limit); `{ signal }`
   * cancels the wait.
   */
  waitMigration(origin, timeoutMs, options) {
    return pooled(() => {
      const o = args.u64(origin, 'origin');
      const wait = timeoutArg(timeoutMs);
      const signal = asyncCalls.signalArg(options);
      const handle = this.#live();
      return asyncCalls
        .blocking({ op: 'compute_wait_migration', attempt: waitMigrationAttempt(handle, o), resumable: true, timeoutMs: waitMs(wait), signal })
        .then((r) => (asyncCalls.check(r) === STATUS.NET_OK ? r.value : null));
    });
  }

  /**
   * Closes the runtime: calls blocked in it return, its daemons stop here.
   * Idempotent. The free waits (up to 5 s) for calls in flight; use
   * closeAsync() to keep the event loop free meanwhile (a delivery waiting
   * for a daemon method needs the event loop).
   */
  close() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    computeFinalizer.unregister(this);
    calls.check(fns.net_compute_free(h));
  }

  /** close() off the event loop; resolves once the work loop has ended. */
  async closeAsync() {
    const h = this.#handle;
    if (h !== null) {
      this.#handle = null;
      computeFinalizer.unregister(this);
      const status = await asyncCalls.runAsync(fns.net_compute_free, [h]);
      if (status < 0) throw errorFor(status, 'net_compute_free failed');
    }
    await this.#loop;
  }

  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }

  [util.inspect.custom]() {
    return `Compute { ${this.closed ? 'closed' : 'open'} }`;
  }
}

/** The daemon objects of one Compute: factories by kind, objects by instance id, the instance running each origin here. */
class Daemons {
  factories = new Map();
  objects = new Map();
  origins = new Map();
  next = 1n;
  /** deliver() and deliverBatch() calls in flight (the work loop looks for their items on the main thread). */
  inFlight = 0;

  keep(daemon) {
    const instance = this.next++;
    this.objects.set(instance, daemon);
    return instance;
  }
}

/**
 * How long (ms) the work loop keeps looking for work on the main thread
 * after its last item while deliveries of this Compute are in flight.
 */
const HOT_MS = 2;

/**
 * Pulls work items until the runtime is freed and answers each on the main
 * thread. While this Compute's own deliver()/deliverBatch() calls are in
 * flight it looks for their items on the main thread between turns of the
 * event loop (net_compute_next without waiting), for up to HOT_MS after
 * the last one: the item is answered as soon as libnet queues it, instead
 * of after a threadpool thread wakes and posts it back (two thread hand-offs
 * of the five a delivery made). Otherwise it waits on the threadpool.
 */
async function serve(handle, daemons) {
  const poll = pollNext(handle);
  let lastItem = -Infinity;
  for (;;) {
    let item = null;
    if (daemons.inFlight > 0 && performance.now() - lastItem < HOT_MS) {
      item = poll();
      if (item === undefined) return; // freed or closed
      if (item === null) {
        await new Promise(setImmediate);
        continue;
      }
    } else {
      try {
        const r = await asyncCalls.blocking({ op: 'compute_next', attempt: nextAttempt(handle), resumable: true });
        if (r.status !== STATUS.NET_OK) return; // NET_END: closed
        item = r.value;
      } catch {
        return; // freed under the call: nothing more to serve
      }
    }
    answer(handle, daemons, item);
    lastItem = performance.now();
  }
}

/**
 * The output slots of one net_compute_next: `args` (id, kind, instance,
 * daemon, producer, sequence, payload, in the call's order) and `item()`,
 * the work item they hold after NET_OK.
 */
function workSlots() {
  const id = [0n];
  const kind = [0];
  const instance = [0n];
  const daemon = [0n];
  const producer = [0n];
  const sequence = [0n];
  const payload = { ptr: null, len: 0 };
  return {
    args: [id, kind, instance, daemon, producer, sequence, payload],
    item: () => ({
      id: BigInt(id[0]),
      kind: kind[0],
      instance: BigInt(instance[0]),
      daemon: BigInt(daemon[0]),
      producer: BigInt(producer[0]),
      sequence: BigInt(sequence[0]),
      payload: takeBytes(payload),
    }),
  };
}

/** net_compute_next without waiting: an item, null (none yet) or undefined (freed or closed). */
function pollNext(handle) {
  const slots = workSlots();
  return () => {
    const status = fns.net_compute_next(handle, 0, ...slots.args, null, null);
    if (status === STATUS.NET_TIMEOUT) return null;
    return status === STATUS.NET_OK ? slots.item() : undefined;
  };
}

function answer(handle, daemons, w) {
  const fail = (err) => {
    const msg = Buffer.from(errorText(err), 'utf8');
    fns.net_compute_fail(handle, w.id, msg, msg.length);
  };
  switch (w.kind) {
    case CONSTANTS.NET_COMPUTE_WORK_DROP:
      daemons.objects.delete(w.instance);
      if (daemons.origins.get(w.daemon) === w.instance) daemons.origins.delete(w.daemon);
      return;
    case CONSTANTS.NET_COMPUTE_WORK_CREATE: {
      const factory = daemons.factories.get(w.payload.toString('utf8'));
      let instance;
      try {
        if (!factory) throw new Error(`no factory for kind ${w.payload.toString('utf8')}`);
        instance = daemons.keep(factory());
      } catch (err) {
        fail(err);
        return;
      }
      if (fns.net_compute_complete_create(handle, w.id, instance) < 0) daemons.objects.delete(instance);
      else daemons.origins.set(w.daemon, instance);
      return;
    }
    default:
      break;
  }
  const daemon = daemons.objects.get(w.instance);
  try {
    if (!daemon) throw new Error(`no daemon object ${w.instance}`);
    if (w.kind === CONSTANTS.NET_COMPUTE_WORK_PROCESS) {
      const outputs = [...(daemon.process({ producer: w.producer, sequence: w.sequence, payload: w.payload, daemon: w.daemon }) ?? [])];
      const slices = outputs.map((o, i) => new Uint8Array(args.bytes(o, `outputs[${i}]`)));
      const list = slices.map((s) => ({ ptr: s, len: s.length }));
      fns.net_compute_complete_process(handle, w.id, list.length ? list : null, list.length);
    } else if (w.kind === CONSTANTS.NET_COMPUTE_WORK_PROCESS_BATCH) {
      processBatch(handle, daemon, w);
    } else if (w.kind === CONSTANTS.NET_COMPUTE_WORK_SNAPSHOT) {
      const state = new Uint8Array(args.bytes(daemon.snapshot() ?? Buffer.alloc(0), 'snapshot'));
      fns.net_compute_complete_snapshot(handle, w.id, state, state.length);
    } else if (w.kind === CONSTANTS.NET_COMPUTE_WORK_RESTORE) {
      daemon.restore(w.payload);
      fns.net_compute_complete_restore(handle, w.id);
    }
  } catch (err) {
    fail(err);
  }
}

const RECORD_HEADER = CONSTANTS.NET_COMPUTE_BATCH_RECORD_HEADER;

/**
 * A ProcessBatch item: the daemon's process() per event, in order, until
 * one throws; one answer with every applied event's outputs (and the
 * failure of the event that threw).
 */
function processBatch(handle, daemon, w) {
  const buf = w.payload;
  // A batch is usually one producer's consecutive sequences: reuse the
  // last record's bigints instead of decoding each (bigint allocations
  // dominate the per-event cost otherwise).
  let producer = 0n;
  let producerLo = -1;
  let producerHi = -1;
  let sequence = 0n;
  let sequenceLo = -1;
  let sequenceHi = -1;
  let at = 0;
  const next = () => {
    if (at >= buf.length) return null;
    const pLo = buf.readUInt32LE(at);
    const pHi = buf.readUInt32LE(at + 4);
    if (pLo !== producerLo || pHi !== producerHi) {
      producer = buf.readBigUInt64LE(at);
      producerLo = pLo;
      producerHi = pHi;
    }
    const sLo = buf.readUInt32LE(at + 8);
    const sHi = buf.readUInt32LE(at + 12);
    sequence = sLo === sequenceLo + 1 && sHi === sequenceHi ? sequence + 1n : buf.readBigUInt64LE(at + 8);
    sequenceLo = sLo;
    sequenceHi = sHi;
    const len = buf.readUInt32LE(at + 16);
    const payload = buf.subarray(at + RECORD_HEADER, at + RECORD_HEADER + len);
    at += RECORD_HEADER + len;
    return { producer, sequence, payload, daemon: w.daemon };
  };
  const a = runBatch(daemon, next);
  fns.net_compute_complete_batch(
    handle, w.id, a.counts.length, a.data, a.data.length, a.lengths, a.lengths.length, a.counts,
    a.failure, a.failure === null ? 0 : a.failure.length,
  );
}

/**
 * `parts` applied here, synchronously, to daemon `origin`'s object if the
 * runtime lends the batch (the daemon is this Compute's, here and free):
 * each event's Delivery, or null when it must take the usual path. The
 * lease is always answered.
 */
function lentBatch(handle, daemons, origin, producer, first, parts) {
  if (parts.length === 0) return null;
  const lease = [0n];
  const instance = [0n];
  const error = errorSlot();
  const status = fns.net_compute_lend_batch(handle, origin, producer, first, parts.length, lease, instance, error);
  if (status < 0) throw errorFor(status, takeError(error));
  const id = BigInt(lease[0]);
  if (id === 0n) return null;
  const daemon = daemons.objects.get(BigInt(instance[0]));
  let i = 0;
  let sequence = first - 1n;
  const next = () => {
    if (i >= parts.length) return null;
    sequence += 1n;
    const part = parts[i++];
    // A Buffer, as the work loop hands out (a view, not a copy).
    const payload = Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    return { producer, sequence, payload, daemon: origin };
  };
  let a;
  try {
    a = runBatch(daemon, next);
  } catch (err) {
    // Not the daemon's failure (runBatch catches those): answer anyway.
    a = { data: new Uint8Array(0), lengths: new Uint32Array(0), counts: new Uint32Array(0), failure: Buffer.from(errorText(err), 'utf8') };
  }
  const delivered = new BigUint64Array(1);
  const finishError = errorSlot();
  const finished = fns.net_compute_finish_batch(
    handle, id, a.counts.length, a.data, a.data.length, a.lengths, a.lengths.length, a.counts,
    a.failure, a.failure === null ? 0 : a.failure.length, delivered, finishError,
  );
  const outcomes = new Array(Number(delivered[0])).fill(Delivery.PROCESSED);
  if (finished < 0) {
    const err = errorFor(finished, takeError(finishError));
    err.outcomes = outcomes;
    err.delivered = outcomes.length;
    throw err;
  }
  return outcomes;
}

/**
 * The daemon's process() on each event `next()` gives (null: no more), in
 * order, until one throws: the answer's packed outputs, their lengths, the
 * outputs per applied event, and the failure's text (null: none).
 */
function runBatch(daemon, next) {
  const outputs = [];
  const perEvent = [];
  let failure = null;
  for (let event = next(); event !== null; event = next()) {
    const before = outputs.length;
    try {
      const out = daemon.process(event);
      if (out != null) {
        for (const x of out) outputs.push(x instanceof Uint8Array ? x : args.bytes(x, 'an output'));
      }
      perEvent.push(outputs.length - before);
    } catch (err) {
      outputs.length = before;
      failure = Buffer.from(errorText(err), 'utf8');
      break;
    }
  }
  return {
    data: new Uint8Array(Buffer.concat(outputs)),
    lengths: new Uint32Array(outputs.map((x) => x.length)),
    counts: new Uint32Array(perEvent),
    failure,
  };
}

function errorText(err) {
  return `${err && err.name ? `${err.name}: ` : ''}${err && err.message !== undefined ? err.message : String(err)}`;
}

/** asyncCalls.blocking's timeoutMs for a libnet timeout (FOREVER: Infinity). */
function waitMs(timeout) {
  return timeout === asyncCalls.FOREVER ? Infinity : timeout;
}

function nextOutputAttempt(handle) {
  return (token, error, timeoutMs) => {
    const origin = [0n];
    const seq = [0n];
    const out = { ptr: null, len: 0 };
    return {
      fn: fns.net_compute_next_output,
      args: [handle, timeoutMs, origin, seq, out, token, error],
      result: (status) =>
        status === STATUS.NET_OK ? { daemon: BigInt(origin[0]), sequence: BigInt(seq[0]), payload: takeBytes(out) } : null,
    };
  };
}

function waitMigrationAttempt(handle, origin) {
  return (token, error, timeoutMs) => {
    const out = { ptr: null, len: 0 };
    return {
      fn: fns.net_compute_wait_migration,
      args: [handle, origin, timeoutMs, out, token, error],
      result: (status) => (status === STATUS.NET_OK ? statusOf(takeBytes(out)) : null),
    };
  };
}

function waitProcessedAttempt(handle, origin, count) {
  return (token, error, timeoutMs) => {
    const out = { ptr: null, len: 0 };
    return {
      fn: fns.net_compute_wait_processed,
      args: [handle, origin, count, timeoutMs, out, token, error],
      result: (status) => (status === STATUS.NET_OK ? statsOf(takeBytes(out)) : null),
    };
  };
}

/** A daemon's stats JSON as the SDK returns it (bigints). */
function statsOf(buf) {
  const j = parseBig(buf);
  return {
    origin: BigInt(j.origin),
    name: j.name,
    eventsProcessed: BigInt(j.events_processed),
    eventsEmitted: BigInt(j.events_emitted),
    errors: BigInt(j.errors),
    headSequence: BigInt(j.head_sequence),
    channels: (j.channels ?? []).map((c) => ({ publisher: BigInt(c.publisher), channel: c.channel })),
  };
}

function nextAttempt(handle) {
  return (token, error) => {
    const slots = workSlots();
    return {
      fn: fns.net_compute_next,
      args: [handle, asyncCalls.FOREVER, ...slots.args, token, error],
      result: (status) => (status === STATUS.NET_OK ? slots.item() : null),
    };
  };
}

/** libnet's JSON with every integer a bigint (origins are u64). */
function parseBig(buf) {
  return parseJsonBigInt(buf.toString('utf8'));
}

/** The pointer behind a Compute (tests), else undefined. */
function rawComputeHandle(value) {
  return value instanceof Compute ? computeHandle(value) : undefined;
}

module.exports = { Compute, Daemon, Delivery, configJson, rawComputeHandle };
