'use strict';
// The pool of worker threads behind the *Async calls that libnet gives no
// net_error_t (signing, envelopes, tokens, RedEX opens, appends, reads,
// syncs, model opens and writes, closeAsync). Each worker loads koffi +
// libnet itself and runs one call at a time (see worker.js), so a long call
// never blocks the event loop and the error detail (net_last_error_message,
// thread-local in libnet) is read on the thread that failed. koffi's own
// async calls could not read it: they run on libuv's threads and return to
// the main thread. The blocking calls, which return their error in a
// net_error_t and take a net_cancel_t, are koffi async calls (lib/async.js);
// every call here is bounded, so no pool worker is ever held by a wait.
//
// Inputs larger than COPY_LIMIT are not copied: the worker gets their address
// (koffi.address) and the pool keeps the JS object alive until the call ends.
// Idle workers are unref'd, so the pool never keeps a process alive, and an
// exit waits for calls under way to end (lib/pool-exit.js).

const os = require('node:os');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const { Worker } = require('node:worker_threads');
const { koffi, libraryPath } = require('./native');
const { errorFor } = require('./errors');
const { newLoadFlag } = require('./load-guard');
const { newCallState } = require('./pool-exit');

/** Inputs up to this size are copied to the worker; larger ones are shared by address. */
const COPY_LIMIT = 64 * 1024;

/** Emits 'job' after each pooled call: { op, ok, status, startedAt, finishedAt, threadId }. */
const events = new EventEmitter();

function defaultSize() {
  const fromEnv = Number.parseInt(process.env.NETMESH_THREADS ?? '', 10);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

class Pool {
  #size;
  #slots = [];
  #queue = [];
  #nextId = 1;

  constructor(size) {
    this.#size = size;
  }

  get size() {
    return this.#size;
  }

  /**
   * Runs `op` with `args` on a worker. `keep` holds JS objects whose memory
   * the worker reads by address; they stay referenced until the call ends.
   * `transfer` lists ArrayBuffers handed over to the worker.
   */
  run(op, args, keep = null, transfer = []) {
    return new Promise((resolve, reject) => {
      this.#queue.push({ op, args, keep, transfer, resolve, reject, id: 0 });
      this.#pump();
    });
  }

  #pump() {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.job === null);
      if (!slot) {
        if (this.#slots.length >= this.#size) return;
        slot = this.#spawn();
      }
      const job = this.#queue.shift();
      job.id = this.#nextId++;
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, op: job.op, args: job.args }, job.transfer);
      job.args = null;
      job.transfer = null;
    }
  }

  #spawn() {
    const loadFlag = newLoadFlag();
    const callState = newCallState();
    const worker = new Worker(path.join(__dirname, 'worker.js'), {
      workerData: { netmeshLibraryPath: libraryPath, netmeshLoadFlag: loadFlag.sab, netmeshCallState: callState.sab },
    });
    const slot = { worker, job: null, dead: false };
    worker.on('message', (reply) => this.#onReply(slot, reply));
    worker.on('error', (err) => this.#onDeath(slot, err));
    worker.on('exit', (code) => {
      loadFlag.release();
      callState.release();
      this.#onDeath(slot, new Error(`netmesh: pool worker exited with code ${code}`));
    });
    worker.unref();
    this.#slots.push(slot);
    return slot;
  }

  #onReply(slot, reply) {
    const job = slot.job;
    slot.job = null;
    slot.worker.unref();
    if (job && job.id === reply.id) {
      events.emit('job', {
        op: job.op,
        ok: reply.ok,
        status: reply.ok ? 0 : reply.status,
        startedAt: reply.startedAt,
        finishedAt: reply.finishedAt,
        threadId: reply.threadId,
      });
      if (reply.ok) {
        const v = reply.value;
        job.resolve(v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);
      } else if (reply.status == null) {
        job.reject(new Error(reply.message));
      } else {
        job.reject(errorFor(reply.status, reply.message));
      }
      job.keep = null;
    }
    this.#pump();
  }

  #onDeath(slot, err) {
    if (slot.dead) return;
    slot.dead = true;
    this.#slots = this.#slots.filter((s) => s !== slot);
    const job = slot.job;
    slot.job = null;
    if (job) job.reject(err);
    this.#pump();
  }
}

let pool = null;

/** The process-wide pool, created on first use. */
function getPool() {
  if (pool === null) pool = new Pool(defaultSize());
  return pool;
}

/**
 * Prepares a byte input for a pooled call: small inputs are copied (and the
 * copy's buffer transferred), large ones passed as `{ addr, len }` while
 * `keep` holds the original.
 */
function input(bytes, keep, transfer) {
  if (bytes.byteLength <= COPY_LIMIT) {
    const copy = new Uint8Array(bytes);
    if (copy.byteLength > 0) transfer.push(copy.buffer);
    return copy;
  }
  keep.push(bytes);
  return { addr: koffi.address(bytes), len: bytes.byteLength };
}

module.exports = { getPool, input, events, COPY_LIMIT };
