'use strict';
// Pool workers and the process exiting. Node terminates worker threads right
// after the 'exit' listeners, and koffi crashes (SIGSEGV) when that
// termination lands while a worker converts a returning call. So each pool
// worker starts a call only by moving its shared state from IDLE to BUSY,
// and on exit the main thread moves every IDLE state to EXITING (the worker
// then starts no call) and waits, at most EXIT_WAIT_MS, for BUSY ones to end.
//
// The main thread's side only: lib/worker.js does the worker's. Kept apart
// from lib/pool.js so that a worker loads no more than it needs.

const CALL_IDLE = 0;
const CALL_BUSY = 1;
const CALL_EXITING = 2;
const EXIT_WAIT_MS = 5000;

const states = new Set();

/** In the parent: a call state for a new worker (pass `sab` in its workerData); `release` when it exits. */
function newCallState() {
  const sab = new SharedArrayBuffer(4);
  const state = new Int32Array(sab);
  states.add(state);
  return { sab, release: () => states.delete(state) };
}

if (require('node:worker_threads').isMainThread) {
  process.on('exit', () => {
    const deadline = Date.now() + EXIT_WAIT_MS;
    for (const state of states) {
      while (Atomics.compareExchange(state, 0, CALL_IDLE, CALL_EXITING) === CALL_BUSY) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        Atomics.wait(state, 0, CALL_BUSY, left);
      }
    }
  });
}

module.exports = { newCallState, CALL_IDLE, CALL_BUSY };
