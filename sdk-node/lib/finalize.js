'use strict';
// The safety net behind every handle-owning class: a FinalizationRegistry
// whose callback never blocks the event loop. A libnet free can wait up to
// 5 s for calls in flight, and some drain (a bus) or sync (a file, a model),
// so a finalizer only counts the leak, warns about it (process.emitWarning,
// one 'NetmeshLeakWarning' per class and turn of the event loop, saying how
// many), and hands the free to a koffi async call on libuv's threadpool. A
// free that fails in the background is warned about too. close() stays the
// way to release a handle: promptly, and with its errors thrown.

const { fns } = require('./native');
const { statusName } = require('./errors');
const { runAsync } = require('./async');

/** Leaks noticed this turn, by class name. */
const pending = new Map();
let flushScheduled = false;
/** Totals since the process started (internal.leaks()). */
const totals = { leaked: Object.create(null), freed: 0, failed: 0, inFlight: 0 };

function flush() {
  flushScheduled = false;
  for (const [name, count] of pending) {
    const what = count === 1 ? `1 ${name} object was` : `${count} ${name} objects were`;
    process.emitWarning(
      `${what} garbage-collected without close(); netmesh frees the handle${count === 1 ? '' : 's'} ` +
        'in the background. Call close() (or use `using` / `await using`) to release it promptly and see its errors.',
      { type: 'NetmeshLeakWarning', code: 'NETMESH_LEAK' },
    );
  }
  pending.clear();
}

function noteLeak(name) {
  pending.set(name, (pending.get(name) ?? 0) + 1);
  totals.leaked[name] = (totals.leaked[name] ?? 0) + 1;
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

/** Frees `handle` with C function `freeName` on libuv's threadpool; warns if it fails. */
function freeInBackground(name, freeName, handle) {
  totals.inFlight++;
  runAsync(fns[freeName], [handle]).then(
    (status) => {
      totals.inFlight--;
      if (status < 0) {
        totals.failed++;
        process.emitWarning(
          `netmesh: freeing a garbage-collected ${name} in the background failed with ${statusName(status)} ` +
            '(close() it explicitly to get the error)',
          { type: 'NetmeshLeakWarning', code: 'NETMESH_LEAK_FREE_FAILED' },
        );
      } else {
        totals.freed++;
      }
    },
    (err) => {
      totals.inFlight--;
      totals.failed++;
      process.emitWarning(`netmesh: freeing a garbage-collected ${name} failed: ${err.message}`, {
        type: 'NetmeshLeakWarning',
        code: 'NETMESH_LEAK_FREE_FAILED',
      });
    },
  );
}

/**
 * A FinalizationRegistry for class `name` whose handles are freed with C
 * function `freeName` (say 'net_identity_free'). Register `(object, handle,
 * object)` — or `(object, { handle, name }, object)` to name a subclass in
 * the warning —; unregister on close().
 */
function leakRegistry(name, freeName) {
  if (typeof fns[freeName] !== 'function') throw new Error(`netmesh: no C function ${freeName}`);
  return new FinalizationRegistry((held) => {
    const handle = typeof held === 'object' && held !== null ? held.handle : held;
    const what = typeof held === 'object' && held !== null ? held.name : name;
    noteLeak(what);
    freeInBackground(what, freeName, handle);
  });
}

/** Leak counters (tests, debugging). */
function leaks() {
  return { leaked: { ...totals.leaked }, freed: totals.freed, failed: totals.failed, inFlight: totals.inFlight };
}

module.exports = { leakRegistry, leaks };
