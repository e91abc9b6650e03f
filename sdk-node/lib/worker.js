'use strict';
// A worker of the async pool: runs one libnet call at a time with koffi's
// synchronous binding, so the call and the read of net_last_error_message()
// happen on this same thread, then posts the outcome back. Only calls without
// a net_error_t come here (signing, appends, opens, syncs, closes and frees);
// the blocking calls run as koffi async calls (lib/async.js).

const { parentPort, threadId, workerData } = require('node:worker_threads');
const { beginLoad, endLoad } = require('./load-guard');
const { CALL_IDLE, CALL_BUSY } = require('./pool-exit');

// Never load koffi while the process exits (see lib/load-guard.js).
if (!beginLoad(workerData.netmeshLoadFlag)) return;
const calls = require('./calls');
const { NetError } = require('./errors');
endLoad(workerData.netmeshLoadFlag);

const OPS = {
  sign: calls.sign,
  verify: calls.verify,
  tokenIssue: calls.tokenIssue,
  tokenDelegate: calls.tokenDelegate,
  envelopeSeal: calls.envelopeSeal,
  envelopeOpen: calls.envelopeOpen,
  free: calls.free,
  redexOpenFile: calls.redexOpenFile,
  redexFileAppend: calls.redexFileAppend,
  redexFileAppendBatch: calls.redexFileAppendBatch,
  redexFileRead: calls.redexFileRead,
  redexFileReadRange: calls.redexFileReadRange,
  redexFileSync: calls.redexFileSync,
  redexFileSweepRetention: calls.redexFileSweepRetention,
  redexFileCloseFree: calls.redexFileCloseFree,
  busClose: calls.busClose,
  modelOpen: calls.modelOpen,
  modelClose: calls.modelClose,
  modelWrite: calls.modelWrite,
  modelSnapshot: calls.modelSnapshot,
  netdbOpen: calls.netdbOpen,
  netdbSnapshot: calls.netdbSnapshot,
  computeStats: calls.computeStats,
  computeGroupReplica: calls.computeGroupReplica,
  computeGroupFork: calls.computeGroupFork,
  computeGroupStandby: calls.computeGroupStandby,
  computeGroupScale: calls.computeGroupScale,
  computeGroupMigrate: calls.computeGroupMigrate,
  computeGroupWatchFailures: calls.computeGroupWatchFailures,
  computeGroupUnwatchFailures: calls.computeGroupUnwatchFailures,
  computeGroupPromote: calls.computeGroupPromote,
  computeGroupJson: calls.computeGroupJson,
  computeMigrationStatus: calls.computeMigrationStatus,
  computeStartMigration: calls.computeStartMigration,
  computeStop: calls.computeStop,
};

/** An owned Uint8Array's buffer can be handed over instead of copied. */
function owned(v) {
  return v instanceof Uint8Array && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.byteLength > 0;
}

/** The buffers of a result to transfer: the value itself, or the payloads of a tail poll. */
function transferables(v) {
  if (owned(v)) return [v.buffer];
  if (v && Array.isArray(v.records)) {
    return [...new Set(v.records.filter((r) => owned(r.data)).map((r) => r.data.buffer))];
  }
  if (v && Array.isArray(v.items)) {
    return [...new Set(v.items.filter((i) => owned(i.payload)).map((i) => i.payload.buffer))];
  }
  return [];
}

// This thread's call state, shared with the main thread (see lib/pool.js):
// a call starts only by moving IDLE to BUSY, which fails once the process
// exits; the main thread's exit listener waits for BUSY to end.
const callState = new Int32Array(workerData.netmeshCallState);

parentPort.on('message', (job) => {
  if (Atomics.compareExchange(callState, 0, CALL_IDLE, CALL_BUSY) !== CALL_IDLE) return; // exiting
  try {
    answer(job);
  } finally {
    Atomics.store(callState, 0, CALL_IDLE);
    Atomics.notify(callState, 0);
  }
});

function answer(job) {
  const { id, op, args } = job;
  const startedAt = process.hrtime.bigint();
  let reply;
  try {
    const fn = OPS[op];
    if (!fn) throw new Error(`netmesh worker: unknown operation ${op}`);
    const value = fn(...args);
    reply = { id, ok: true, value };
  } catch (err) {
    if (err instanceof NetError) {
      reply = { id, ok: false, status: err.status, message: err.message };
    } else {
      reply = { id, ok: false, status: null, message: String((err && err.stack) || err) };
    }
  }
  reply.startedAt = startedAt;
  reply.finishedAt = process.hrtime.bigint();
  reply.threadId = threadId;
  // Hand over the result's memory instead of copying it, when it owns it.
  parentPort.postMessage(reply, transferables(reply.value));
}
