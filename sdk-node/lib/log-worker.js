'use strict';
// The log puller (see lib/log.js): a worker thread blocked in net_log_next
// for ever, posting each record to the main thread. It stops when the main
// thread cancels its token (setLogLevel('off'), or the process exits).

const { parentPort, workerData } = require('node:worker_threads');
const { beginLoad, endLoad } = require('./load-guard');

// Never load koffi while the process exits (see lib/load-guard.js).
if (!beginLoad(workerData.netmeshLoadFlag)) return;
const { fns, STATUS, CONSTANTS, errorSlot, takeError, takeBytes } = require('./native');
endLoad(workerData.netmeshLoadFlag);

const token = workerData.netmeshLogToken;

// Set (and notified) once this thread has made its last koffi call: the main
// thread waits for it on exit (see lib/log.js).
const done = new Int32Array(workerData.netmeshLogDone);

// The first pull takes only what is queued (and warms the call path up); the
// main thread is told once the puller is about to block (tests wait for it).
try {
  for (let first = true; ; first = false) {
    const level = [0];
    const text = { ptr: null, len: 0 };
    const error = errorSlot();
    const status = fns.net_log_next(first ? 0 : CONSTANTS.NET_WAIT_FOREVER, level, text, token, error);
    if (status === STATUS.NET_OK) {
      parentPort.postMessage({ level: level[0], text: takeBytes(text).toString('utf8') });
    } else if (status !== STATUS.NET_TIMEOUT) {
      // Cancelled (stopped), or a failure: say which, and end.
      parentPort.postMessage({ stopped: status, message: takeError(error) });
      break;
    }
    if (first) parentPort.postMessage({ pulling: true });
  }
} finally {
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
}
