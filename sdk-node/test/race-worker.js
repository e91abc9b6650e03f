'use strict';
// A worker thread for the race tests: it calls libnet directly on a raw
// identity handle (a bigint pointer shared by the main thread), bypassing the
// SDK's JS-side checks, so only libnet's HandleGuard stands between it and a
// freed handle.

const { parentPort } = require('node:worker_threads');
const { internal } = require('netmesh');
const { fns, lastErrorMessage } = internal;

const SHUTTING_DOWN = -2;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(sleeper, 0, 0, ms);

function waitGate(gate) {
  parentPort.postMessage({ ready: true });
  while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0, 1000);
}

const commands = {
  // Calls origin_hash until the handle is freed, then `after` more times.
  hammer({ handle, expected, gate, after, maxMs }) {
    const out = [0n];
    const r = { ok: 0, shutting: 0, mismatches: 0, other: 0, violations: 0, message: '' };
    waitGate(gate);
    const deadline = Date.now() + maxMs;
    for (;;) {
      const s = fns.net_identity_origin_hash(handle, out);
      if (s === 0) {
        if (r.ok === 0) {
          Atomics.add(gate, 1, 1); // tell the main thread this hammer is running
          Atomics.notify(gate, 1);
        }
        r.ok++;
        if (BigInt(out[0]) !== expected) r.mismatches++;
      } else if (s === SHUTTING_DOWN) {
        r.shutting++;
        r.message = lastErrorMessage();
        break;
      } else {
        r.other = s;
        break;
      }
      if ((r.ok & 1023) === 0 && Date.now() > deadline) break;
    }
    if (r.shutting) {
      for (let i = 0; i < after; i++) {
        if (fns.net_identity_origin_hash(handle, out) !== SHUTTING_DOWN) r.violations++;
        if (fns.net_identity_sign(handle, Buffer.from('m'), 1, {}) !== SHUTTING_DOWN) r.violations++;
      }
    }
    return r;
  },
  // Frees the handle as soon as the gate opens.
  free({ handle, gate }) {
    waitGate(gate);
    const t0 = process.hrtime.bigint();
    fns.net_identity_free(handle);
    return { t0, t1: process.hrtime.bigint() };
  },
  // Frees the handle `delayMs` after the command arrives.
  freeAfter({ handle, delayMs }) {
    sleep(delayMs);
    const t0 = process.hrtime.bigint();
    fns.net_identity_free(handle);
    return { t0, t1: process.hrtime.bigint() };
  },
  // One raw call on the handle: its status and this thread's error message.
  call({ handle }) {
    const status = fns.net_identity_origin_hash(handle, [0n]);
    return { status, message: status < 0 ? lastErrorMessage() : '' };
  },
};

parentPort.on('message', (msg) => {
  parentPort.postMessage({ result: commands[msg.cmd](msg) });
});
