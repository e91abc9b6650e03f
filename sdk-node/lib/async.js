'use strict';
// Blocking libnet calls off the event loop. The calls of include/net.h that
// take a `net_cancel_t` and a `net_error_t` (tail and watch nexts, model
// waits, receives, accepts, connects, blocking sends, flushes, polls) run as
// koffi async calls on libuv's threadpool. Each call gets its own
// cancellation token, cancelled when the caller's AbortSignal fires, and its
// error comes back in its own net_error_t (the call ran on a pool thread,
// whose thread-local message the main thread cannot read). Nothing polls: a
// call blocks in libnet until its outcome, its timeout, a cancel, or the
// free of its handle.
//
// libuv's threadpool is the process's (fs, dns, zlib, crypto share it) and
// small (UV_THREADPOOL_SIZE, 4 by default), while a wait can last for ever.
// So at most `waitBudget()` *resumable* waits (tail and watch nexts, model
// waits, receives, flushes: calls that consume nothing when cancelled) hold
// a thread at once: one less than the threadpool by default, so one thread
// always stays free for everything else. When more are pending, the waits
// take turns: every ROTATE_MS the ones that have held a thread that long are
// cancelled and queued again behind the others. Within the budget no wait is
// ever interrupted. Calls that cannot be re-issued after a cancel (connect,
// accept, blocking sends) and bounded ones (polls) are never queued.
//
// When the process exits (process.exit(), an uncaught exception, the end of
// the event loop) every call still in flight is cancelled: Node joins
// libuv's threads on exit, and a call blocked for ever would hang it.

const { performance } = require('node:perf_hooks');
const { EventEmitter } = require('node:events');
const { fns, STATUS, CONSTANTS, errorSlot, takeError, lastErrorMessage } = require('./native');
const { errorFor } = require('./errors');

const FOREVER = CONSTANTS.NET_WAIT_FOREVER;
/** The longest finite timeout a call can take (one less than NET_WAIT_FOREVER). */
const MAX_TIMEOUT_MS = FOREVER - 1;
/** How long a resumable wait keeps a thread while others queue for one (ms). */
const ROTATE_MS = 25;
/** koffi refuses async calls beyond its max_async_calls (256): queue the rest here. */
const MAX_IN_FLIGHT = 128;

/**
 * Emits 'call' after each attempt of a blocking call:
 * `{ op, status, message, preempted, startedAt, finishedAt }` (performance.now() ms).
 */
const events = new EventEmitter();

// ---- koffi async calls -----------------------------------------------------

let inFlight = 0;
const backlog = [];

function pump() {
  while (inFlight < MAX_IN_FLIGHT && backlog.length > 0) backlog.shift()();
}

/**
 * Runs koffi function `fn` with `args` on libuv's threadpool; resolves with
 * what it returned. The arguments (and the JS objects koffi writes outputs
 * back to) stay referenced by the pending call.
 */
function runAsync(fn, args) {
  return new Promise((resolve, reject) => {
    const start = () => {
      inFlight++;
      try {
        fn.async(...args, (err, value) => {
          inFlight--;
          pump();
          if (err) reject(err);
          else resolve(value);
        });
      } catch (err) {
        inFlight--;
        pump();
        reject(err);
      }
    };
    if (inFlight < MAX_IN_FLIGHT) start();
    else backlog.push(start);
  });
}

// ---- cancellation tokens ---------------------------------------------------

function newToken() {
  const out = [null];
  const status = fns.net_cancel_new(out);
  if (status < 0) throw errorFor(status, lastErrorMessage());
  return out[0];
}

// ---- the wait budget ---------------------------------------------------------

function defaultBudget() {
  const own = Number.parseInt(process.env.NETMESH_MAX_WAITING ?? '', 10);
  if (Number.isInteger(own) && own > 0) return own;
  const uv = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  const threads = Number.isInteger(uv) && uv > 0 ? Math.min(uv, 1024) : 4;
  return Math.max(1, threads - 1);
}

let budget = defaultBudget();
/** Jobs whose call is in flight (they hold a cancellation token). */
const live = new Set();
/** Jobs of resumable waits holding a thread. */
const holding = new Set();
/** Jobs of resumable waits queued for a thread, in order. */
const queued = [];
let rotor = null;

function admit() {
  while (holding.size < budget && queued.length > 0) queued.shift().start();
  if (queued.length > 0 && rotor === null) {
    rotor = setInterval(rotate, ROTATE_MS);
    rotor.unref();
  } else if (queued.length === 0 && rotor !== null) {
    clearInterval(rotor);
    rotor = null;
  }
}

/** Cancels the waits that have held a thread for ROTATE_MS, as many as are queued. */
function rotate() {
  const now = performance.now();
  let wanted = queued.length;
  const turns = [...holding].filter((j) => !j.preempted && now - j.startedAt >= ROTATE_MS);
  turns.sort((a, b) => a.startedAt - b.startedAt);
  for (const job of turns) {
    if (wanted-- <= 0) break;
    job.preempt();
  }
  admit();
}

/** The most resumable waits that hold threadpool threads at once. */
function waitBudget() {
  return budget;
}

/** Sets the budget (tests, or a process that raised UV_THREADPOOL_SIZE late); returns the old one. */
function setWaitBudget(n) {
  if (!Number.isInteger(n) || n < 1) throw new RangeError('the wait budget must be a positive integer');
  const old = budget;
  budget = n;
  admit();
  return old;
}

// ---- blocking calls ------------------------------------------------------------

function timeoutFor(deadline) {
  if (deadline === Infinity) return FOREVER;
  const left = Math.ceil(deadline - performance.now());
  return Math.min(MAX_TIMEOUT_MS, Math.max(0, left));
}

class Job {
  constructor(spec, resolve, reject) {
    this.spec = spec;
    this.resolve = resolve;
    this.reject = reject;
    this.deadline = spec.timeoutMs === undefined ? undefined : performance.now() + spec.timeoutMs;
    this.token = null;
    this.aborted = false;
    this.preempted = false;
    this.settled = false;
    this.startedAt = 0;
    this.onAbort = null;
  }

  submit() {
    const { signal } = this.spec;
    if (signal) {
      if (signal.aborted) {
        this.reject(signal.reason);
        return;
      }
      this.onAbort = () => this.abort();
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    if (this.spec.resumable) {
      queued.push(this);
      admit();
    } else {
      this.start();
    }
  }

  start() {
    if (this.settled) return;
    let attempt;
    try {
      this.token = newToken();
      this.error = errorSlot();
      const timeout = this.deadline === undefined ? undefined : timeoutFor(this.deadline);
      attempt = this.spec.attempt(this.token, this.error, timeout);
    } catch (err) {
      this.releaseToken();
      this.settle();
      this.reject(err);
      admit();
      return;
    }
    if (this.spec.resumable) holding.add(this);
    live.add(this);
    this.startedAt = performance.now();
    runAsync(attempt.fn, attempt.args).then(
      (status) => this.finish(status, attempt),
      (err) => {
        holding.delete(this);
        this.releaseToken();
        this.settle();
        this.reject(err);
        admit();
      },
    );
  }

  releaseToken() {
    live.delete(this);
    const token = this.token;
    this.token = null;
    if (token !== null) fns.net_cancel_free(token);
  }

  finish(status, attempt) {
    holding.delete(this);
    const preempted = this.preempted;
    this.preempted = false;
    this.releaseToken();
    const message = status < 0 ? takeError(this.error) : '';
    this.error = null;
    const finishedAt = performance.now();
    events.emit('call', { op: this.spec.op, status, message, preempted, startedAt: this.startedAt, finishedAt });
    if (status === STATUS.NET_ERR_CANCELLED && !this.aborted && preempted && !this.settled) {
      queued.push(this); // its turn is over: behind the others
      admit();
      return;
    }
    this.settle();
    admit();
    if (status === STATUS.NET_ERR_CANCELLED && this.aborted) {
      this.reject(this.spec.signal.reason);
      return;
    }
    let value;
    try {
      value = attempt.result(status);
    } catch (err) {
      this.reject(err);
      return;
    }
    this.resolve({ status, message, value });
  }

  /** Ends this attempt early to give its thread to a queued wait. */
  preempt() {
    if (this.token === null) return;
    this.preempted = true;
    fns.net_cancel_cancel(this.token);
  }

  abort() {
    if (this.settled) return;
    this.aborted = true;
    if (this.token !== null) {
      fns.net_cancel_cancel(this.token); // finish() rejects once the call has returned
      return;
    }
    const i = queued.indexOf(this);
    if (i >= 0) queued.splice(i, 1);
    this.settle();
    this.reject(this.spec.signal.reason);
    admit();
  }

  settle() {
    this.settled = true;
    if (this.onAbort) {
      this.spec.signal.removeEventListener('abort', this.onAbort);
      this.onAbort = null;
    }
  }
}

process.on('exit', () => {
  for (const job of live) if (job.token !== null) fns.net_cancel_cancel(job.token);
});

/**
 * Runs one blocking libnet call off the event loop. `spec`:
 * - `op`: its name (events, messages);
 * - `attempt(token, error, timeoutMs)`: `{ fn, args, result(status) }` for one
 *   try, with fresh output objects: `fn` the koffi function, `args` its
 *   arguments (`token` and `error` among them, `timeoutMs` where the call
 *   takes one), `result` what to resolve with once it returned `status`;
 * - `resumable`: a cancel leaves no trace, so the call may wait in the budget
 *   and be cancelled and re-issued to share threads;
 * - `timeoutMs`: the call's own timeout (Infinity: none), for calls that take one;
 * - `signal`: an AbortSignal.
 * Resolves `{ status, message, value }` whatever the status (the caller
 * decides what is an error); rejects with `signal.reason` once aborted (a
 * call that completed anyway resolves).
 */
function blocking(spec) {
  return new Promise((resolve, reject) => {
    new Job(spec, resolve, reject).submit();
  });
}

/** Throws the NetError of a failed blocking call (status < 0). */
function check({ status, message }) {
  if (status < 0) throw errorFor(status, message);
  return status;
}

/** Validates an `options.signal`. */
function signalArg(options) {
  if (options == null) return undefined;
  if (typeof options !== 'object') throw new TypeError('options must be an object { signal? }');
  const { signal } = options;
  if (signal == null) return undefined;
  if (typeof signal !== 'object' || typeof signal.addEventListener !== 'function' || !('aborted' in signal)) {
    throw new TypeError('options.signal must be an AbortSignal');
  }
  return signal;
}

/** Resolves on the next turn of the event loop (after I/O). */
function yieldToLoop() {
  return new Promise((resolve) => setImmediate(resolve));
}

module.exports = {
  runAsync,
  blocking,
  check,
  signalArg,
  yieldToLoop,
  waitBudget,
  setWaitBudget,
  events,
  FOREVER,
  MAX_TIMEOUT_MS,
  ROTATE_MS,
  stats: () => ({ live: live.size, holding: holding.size, queued: queued.length, inFlight, backlog: backlog.length, budget }),
};
