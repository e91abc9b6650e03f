'use strict';
// Drives test/race-worker.js threads from the test's main thread.

const path = require('node:path');
const { once } = require('node:events');
const { Worker } = require('node:worker_threads');

class RaceWorker {
  constructor() {
    this.worker = new Worker(path.join(__dirname, 'race-worker.js'));
    this.pending = [];
    this.readyWaiters = [];
    this.worker.on('message', (m) => {
      if (m.ready) {
        const w = this.readyWaiters.shift();
        if (w) w();
        return;
      }
      this.pending.shift().resolve(m.result);
    });
    this.worker.on('error', (err) => {
      for (const p of this.pending.splice(0)) p.reject(err);
    });
  }

  async start() {
    await once(this.worker, 'online');
    return this;
  }

  /** Sends a command; resolves with its result. `ready` resolves when it waits at the gate. */
  send(cmd, data = {}) {
    const ready = data.gate
      ? new Promise((resolve) => this.readyWaiters.push(resolve))
      : Promise.resolve();
    const done = new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
    this.worker.postMessage({ cmd, ...data });
    return { ready, done };
  }

  terminate() {
    return this.worker.terminate();
  }
}

/** [0]: open flag; [1]: count of hammers that have completed a call. */
function newGate() {
  return new Int32Array(new SharedArrayBuffer(8));
}

/** Blocks until `n` hammers have completed a call (or `timeoutMs` passes). */
function waitRunning(gate, n, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const running = Atomics.load(gate, 1);
    if (running >= n || Date.now() > deadline) return running;
    Atomics.wait(gate, 1, running, 50);
  }
}

function openGate(gate) {
  Atomics.store(gate, 0, 1);
  Atomics.notify(gate, 0);
}

async function startWorkers(n) {
  return Promise.all(Array.from({ length: n }, () => new RaceWorker().start()));
}

module.exports = { RaceWorker, startWorkers, newGate, openGate, waitRunning };
