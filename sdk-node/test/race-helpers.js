'use strict';
// Drives test/race-worker.js threads from the test's main thread.

const assert = require('node:assert/strict');
const path = require('node:path');
const { once } = require('node:events');
const { Worker } = require('node:worker_threads');
const netmesh = require('netmesh');

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

/** sched_yield(2), through the koffi netmesh uses (null where there is no libc.so.6). */
const schedYield = (() => {
  try {
    return netmesh.internal.koffi.load('libc.so.6').func('int sched_yield(void)');
  } catch {
    return null;
  }
})();

/**
 * Lets a call just started (on libuv's threadpool or another thread) reach
 * its wait, without a clock (as let_it_block in tests/ffi_common): yields the
 * processor a number of times, with a turn of the event loop after each
 * batch. Whether the call got there is not assumed; `untilWon` checks it
 * from the call's outcome.
 */
async function letItBlock(turns = 3) {
  for (let i = 0; i < turns; i++) {
    if (schedYield) for (let k = 0; k < 700; k++) schedYield();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Runs `attempt(round)` until `wanted` rounds have shown the race was really
 * won (the blocked call was interrupted *while it waited*, which `attempt`
 * reports by resolving true), at most `rounds` times; fails if fewer were.
 * A round where the interruption came before the call waited proves
 * nothing, so it does not count.
 */
async function untilWon(rounds, wanted, attempt) {
  let won = 0;
  for (let round = 0; round < rounds; round++) {
    if (await attempt(round)) {
      won += 1;
      if (won === wanted) return round + 1;
    }
  }
  throw new Error(`the call was interrupted while waiting in only ${won} of ${rounds} rounds`);
}

/** Whether a call's error says it was interrupted while it waited (by a cancel or a free). */
function interruptedWhileWaiting(message) {
  return /while the call waited|while it waited/.test(message);
}

/**
 * Starts `cmd` on `worker` (a call that blocks forever; the worker stamps
 * when it made the call, `t0`, and when the call returned, `t1`) and, once
 * the call had the chance to reach its wait, runs `interrupt()` (a free, a
 * close or a cancel) on this thread. Resolves with the call's result `r`
 * and when the interrupt began (`t0`) and returned (`t1`).
 */
async function interruptBlocked(worker, cmd, data, interrupt) {
  const gate = newGate();
  const blocked = worker.send(cmd, { ...data, signal: gate }).done;
  waitRunning(gate, 1); // the worker is about to call
  await letItBlock();
  const t0 = process.hrtime.bigint();
  interrupt();
  const t1 = process.hrtime.bigint();
  return { r: await blocked, t0, t1 };
}

/** How much earlier than the free's return a woken call may stamp its own (it stamps t1 just after its call returns). */
const FREE_SLACK = 5_000_000n; // 5 ms

/**
 * Whether the free of an `interruptBlocked` round woke the call (`what`) in
 * its wait: NET_END (true), or NET_ERR_SHUTTING_DOWN when the free came
 * first, which proves nothing (false); anything else fails. A woken call
 * must have been in flight when the free began, and the free must have
 * returned only after the call left libnet.
 */
function wokenByTheFree({ r, t0, t1 }, what) {
  const S = netmesh.Status;
  assert.ok(r.status === S.NET_END || r.status === S.NET_ERR_SHUTTING_DOWN, netmesh.statusName(r.status));
  if (r.status !== S.NET_END) return false;
  assert.ok(r.t0 < t0, `the ${what} was in flight when the free began`);
  assert.ok(r.t1 <= t1 + FREE_SLACK, `the free returned ${(r.t1 - t1) / 1000n} us before the ${what} left libnet`);
  return true;
}

module.exports = {
  RaceWorker,
  startWorkers,
  newGate,
  openGate,
  waitRunning,
  letItBlock,
  untilWon,
  interruptedWhileWaiting,
  interruptBlocked,
  wokenByTheFree,
};
