'use strict';
// Worker threads that load koffi (the worker pool, the log puller) and the
// process exiting. Node terminates worker threads on exit, and koffi's addon
// aborts the whole process ("FATAL ERROR: Error::ThrowAsJavaScriptException")
// when its thread is terminated while it initialises. So each such worker
// loads koffi only after claiming a shared flag, and the main thread, on
// 'exit', either takes the flag first (the worker then never loads koffi) or
// waits (at most LOAD_WAIT_MS) for a load under way to finish.
//
// Flag values: 0 not started, 1 loading, 2 loaded, 3 the process is exiting.

const LOAD_WAIT_MS = 5000;
const states = new Set();

/** In the parent: a flag for a new worker (pass `sab` in its workerData); call `release` when it exits. */
function newLoadFlag() {
  const sab = new SharedArrayBuffer(4);
  const state = new Int32Array(sab);
  states.add(state);
  return { sab, release: () => states.delete(state) };
}

process.on('exit', () => {
  for (const state of states) {
    if (Atomics.compareExchange(state, 0, 0, 3) === 1) Atomics.wait(state, 0, 1, LOAD_WAIT_MS);
  }
});

/** In the worker, before loading koffi: false when the process is exiting (do not load then). */
function beginLoad(sab) {
  if (!(sab instanceof SharedArrayBuffer)) return true;
  return Atomics.compareExchange(new Int32Array(sab), 0, 0, 1) === 0;
}

/** In the worker, once koffi is loaded. */
function endLoad(sab) {
  if (!(sab instanceof SharedArrayBuffer)) return;
  const state = new Int32Array(sab);
  Atomics.store(state, 0, 2);
  Atomics.notify(state, 0);
}

module.exports = { newLoadFlag, beginLoad, endLoad };
