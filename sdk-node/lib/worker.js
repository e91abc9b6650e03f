'use strict';
// A worker of the async pool: runs one libnet call at a time with koffi's
// synchronous binding, so the call and the read of net_last_error_message()
// happen on this same thread, then posts the outcome back.

const { parentPort, threadId } = require('node:worker_threads');
const calls = require('./calls');
const { NetError } = require('./errors');

const OPS = {
  sign: calls.sign,
  verify: calls.verify,
  tokenIssue: calls.tokenIssue,
  tokenDelegate: calls.tokenDelegate,
  envelopeSeal: calls.envelopeSeal,
  envelopeOpen: calls.envelopeOpen,
  identityFree: calls.identityFree,
};

parentPort.on('message', (job) => {
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
  const v = reply.value;
  const transfer =
    v instanceof Uint8Array && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.byteLength > 0
      ? [v.buffer]
      : [];
  parentPort.postMessage(reply, transfer);
});
