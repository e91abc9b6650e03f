'use strict';
// libnet's log records in Node. libnet never calls into JS: once a level is
// set (net_log_set_level), its records queue inside libnet and are pulled
// with net_log_next. The SDK sets NET_LOG_WARN when it loads (NETMESH_LOG_LEVEL
// changes that: off, error, warn, info, debug, trace) and runs the pull loop
// on a worker thread that never keeps the process alive (it is unref'd, and
// its blocked pull is cancelled when the process exits). Each record goes to
// the log hook on the main thread: by default process.emitWarning (type
// 'NetmeshWarning') for warnings and errors; setLogHook() replaces it.
//
// The queue is process-wide, so one puller serves every thread: it starts in
// the main thread; a worker thread that loads netmesh starts one only if
// asked (setLogLevel).

const path = require('node:path');
const { Worker, isMainThread } = require('node:worker_threads');
const { fns, libraryPath, CONSTANTS, STATUS, lastErrorMessage } = require('./native');
const { errorFor } = require('./errors');
const { newLoadFlag } = require('./load-guard');

/** At exit, how long to wait for a cancelled puller to leave koffi. */
const EXIT_WAIT_MS = 5000;

const LEVELS = Object.freeze(['off', 'error', 'warn', 'info', 'debug', 'trace']);
const NUMBERS = Object.freeze({
  off: CONSTANTS.NET_LOG_OFF,
  error: CONSTANTS.NET_LOG_ERROR,
  warn: CONSTANTS.NET_LOG_WARN,
  info: CONSTANTS.NET_LOG_INFO,
  debug: CONSTANTS.NET_LOG_DEBUG,
  trace: CONSTANTS.NET_LOG_TRACE,
});

/** A record as the hook gets it: the level's name and number, the target and the message. */
function recordOf(level, text) {
  const colon = text.indexOf(': ');
  return {
    level: LEVELS[level] ?? String(level),
    levelNumber: level,
    target: colon > 0 ? text.slice(0, colon) : '',
    message: colon > 0 ? text.slice(colon + 2) : text,
    text,
  };
}

/** The default hook: warnings and errors become process warnings; the rest is dropped. */
function defaultLogHook(record) {
  if (record.levelNumber > CONSTANTS.NET_LOG_WARN || record.levelNumber === CONSTANTS.NET_LOG_OFF) return;
  process.emitWarning(`libnet ${record.level}: ${record.text}`, {
    type: 'NetmeshWarning',
    code: record.levelNumber === CONSTANTS.NET_LOG_ERROR ? 'NETMESH_LOG_ERROR' : 'NETMESH_LOG_WARN',
  });
}

let hook = defaultLogHook;
let level = CONSTANTS.NET_LOG_OFF;
let puller = null; // { worker, token, stopped, pulling }
// Every puller thread not yet exited (a stopped one may still be returning
// from its pull): { token, done, loadState }. See the 'exit' listener below.
const live = new Set();

function deliver(record) {
  try {
    hook(record);
  } catch (err) {
    // A hook that throws must not kill the puller: report it once per record.
    process.emitWarning(`netmesh: the log hook threw: ${err && err.message}`, { type: 'NetmeshWarning', code: 'NETMESH_LOG_HOOK' });
  }
}

function startPuller() {
  if (puller !== null) return;
  const out = [null];
  const status = fns.net_cancel_new(out);
  if (status < 0) throw errorFor(status, lastErrorMessage());
  const token = out[0];
  const loadFlag = newLoadFlag();
  const done = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(path.join(__dirname, 'log-worker.js'), {
    workerData: { netmeshLibraryPath: libraryPath, netmeshLogToken: token, netmeshLoadFlag: loadFlag.sab, netmeshLogDone: done.buffer },
  });
  const thread = { token, done, loadState: new Int32Array(loadFlag.sab) };
  live.add(thread);
  let stopped;
  let pulling;
  const current = {
    worker,
    token,
    stopped: new Promise((resolve) => (stopped = resolve)),
    pulling: new Promise((resolve) => (pulling = resolve)),
  };
  worker.on('message', (m) => {
    if (m.pulling) {
      pulling(true);
      return;
    }
    if (m.stopped !== undefined) {
      stopped({ status: m.stopped, message: m.message });
      if (m.stopped !== STATUS.NET_ERR_CANCELLED) {
        process.emitWarning(`netmesh: the log puller stopped: ${m.message}`, { type: 'NetmeshWarning', code: 'NETMESH_LOG_PULLER' });
      }
      return;
    }
    deliver(recordOf(m.level, m.text));
  });
  worker.on('error', (err) => {
    process.emitWarning(`netmesh: the log puller failed: ${err.message}`, { type: 'NetmeshWarning', code: 'NETMESH_LOG_PULLER' });
  });
  worker.on('exit', (code) => {
    live.delete(thread);
    loadFlag.release();
    stopped({ status: null, message: `the puller thread exited (${code})` });
    pulling(false);
    fns.net_cancel_free(token);
    if (puller === current) puller = null;
  });
  // unref after the listeners: adding a 'message' listener refs the worker again.
  worker.unref();
  puller = current;
}

function stopPuller() {
  const p = puller;
  if (p === null) return;
  puller = null;
  fns.net_cancel_cancel(p.token); // its pull returns; the worker ends (and frees the token)
}

// The puller's pull blocks for ever: Node joins worker threads on exit, so
// cancel it first (the 'exit' listeners run before that join). Then wait
// (bounded) until the puller is past its last koffi call: Node terminates the
// worker's JS right after these listeners, and koffi crashes (SIGSEGV in
// napi_typeof) when that termination lands while it converts the returning
// pull's out-parameters. A puller that never loaded koffi (load-guard's
// listener, which runs first, saw to that) has nothing to wait for.
process.on('exit', () => {
  for (const thread of live) fns.net_cancel_cancel(thread.token);
  for (const thread of live) {
    if (Atomics.load(thread.loadState, 0) !== 3) Atomics.wait(thread.done, 0, 0, EXIT_WAIT_MS);
  }
});

function levelArg(value) {
  if (typeof value === 'string' && Object.hasOwn(NUMBERS, value.toLowerCase())) return NUMBERS[value.toLowerCase()];
  if (Number.isInteger(value) && value >= 0 && value < LEVELS.length) return value;
  throw new TypeError(`log level must be one of ${LEVELS.join(', ')} (or 0..${LEVELS.length - 1})`);
}

/**
 * Sets the level from which libnet's records are forwarded to the log hook
 * ('off', 'error', 'warn' — the default —, 'info', 'debug', 'trace', or
 * their numbers NET_LOG_*); 'off' stops the puller. Returns the old level's name.
 */
function setLogLevel(value) {
  const next = levelArg(value);
  const old = LEVELS[level];
  // Off: stop the puller first (its pull is cancelled; nothing more is queued).
  if (next === CONSTANTS.NET_LOG_OFF) stopPuller();
  const status = fns.net_log_set_level(next);
  if (status < 0) throw errorFor(status, lastErrorMessage());
  level = next;
  if (next !== CONSTANTS.NET_LOG_OFF) startPuller();
  return old;
}

/** The current level's name. */
function getLogLevel() {
  return LEVELS[level];
}

/**
 * Replaces the log hook: `fn(record)` gets `{ level, levelNumber, target,
 * message, text }` on the main thread for each record. `null` restores the
 * default (process.emitWarning for warnings and errors). Returns the old hook.
 */
function setLogHook(fn) {
  if (fn !== null && typeof fn !== 'function') throw new TypeError('the log hook must be a function or null');
  const old = hook;
  hook = fn ?? defaultLogHook;
  return old;
}

/** Applies NETMESH_LOG_LEVEL (default 'warn') when the SDK loads, in the main thread. */
function init() {
  const env = process.env.NETMESH_LOG_LEVEL;
  let initial = CONSTANTS.NET_LOG_WARN;
  if (env !== undefined && env !== '') {
    try {
      initial = levelArg(/^\d+$/.test(env) ? Number(env) : env);
    } catch {
      process.emitWarning(`netmesh: NETMESH_LOG_LEVEL=${env} is not a level (${LEVELS.join(', ')}); using warn`, {
        type: 'NetmeshWarning',
        code: 'NETMESH_LOG_LEVEL',
      });
    }
  }
  if (isMainThread && initial !== CONSTANTS.NET_LOG_OFF) setLogLevel(initial);
}

module.exports = {
  setLogLevel,
  getLogLevel,
  setLogHook,
  defaultLogHook,
  init,
  LOG_LEVELS: LEVELS,
  pullerRunning: () => puller !== null,
  /** Resolves `{ status, message }` when the running puller ends (how its pull returned). */
  pullerStopped: () => (puller === null ? Promise.resolve(null) : puller.stopped),
  /** Resolves true once the running puller is about to make its first pull. */
  pullerPulling: () => (puller === null ? Promise.resolve(false) : puller.pulling),
};
