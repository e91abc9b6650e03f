'use strict';
// Shared helpers of the node:test suite. The suite runs against the installed
// (packed) netmesh: `require('netmesh')` resolves from the test project.

const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const NET_ROOT = process.env.NET_ROOT;
if (!NET_ROOT) throw new Error('NET_ROOT (the repository root) must be set');

function vectors(name) {
  return JSON.parse(fs.readFileSync(path.join(NET_ROOT, 'tests', 'vectors', `${name}.json`), 'utf8'));
}

const hex = (s) => Buffer.from(s.replace(/^0x/, ''), 'hex');
const u64 = (s) => (typeof s === 'number' ? BigInt(s) : BigInt(s));

/** Resolves when `promise` settles, with { ok, value } or { ok: false, error }. */
async function settle(promise) {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Closes `identity` when test `t` ends (Node 20 has no `using` syntax). */
function own(t, identity) {
  t.after(() => identity.close());
  return identity;
}

/** Promise.withResolvers() (Node 22) for Node 20. */
function resolvers() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * The fake Redis server's body, run in a worker thread of its own (stringified:
 * it must not use anything from this module's scope). It answers the
 * connection's CLIENT commands (and anything else) with +OK and PING with
 * +PONG, never answers XADD nor XRANGE, and posts { xadds } to the parent
 * at each XADD it sees. 'close' (from the parent) ends it.
 */
function fakeRedisServer() {
  const net = require('node:net');
  const { parentPort } = require('node:worker_threads');

  /** One RESP command (an array of bulk strings) from the front of `buf`: { args, end }, or null if incomplete. */
  function parseCommand(buf) {
    const line = (from) => {
      const end = buf.indexOf('\r\n', from, 'latin1');
      return end < 0 ? null : { text: buf.toString('latin1', from + 1, end), next: end + 2 };
    };
    if (buf.length === 0) return null;
    if (buf[0] !== 0x2a) throw new Error(`fake redis: not a RESP array: ${JSON.stringify(buf.toString('latin1', 0, 32))}`);
    const head = line(0);
    if (head === null) return null;
    const args = [];
    let pos = head.next;
    for (let i = 0; i < Number(head.text); i++) {
      const size = line(pos);
      if (size === null) return null;
      const length = Number(size.text);
      if (buf.length < size.next + length + 2) return null;
      args.push(buf.toString('latin1', size.next, size.next + length));
      pos = size.next + length + 2;
    }
    return { args, end: pos };
  }

  const sockets = new Set();
  let xadds = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the client going away is not the test's business
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (let command; (command = parseCommand(pending)) !== null; ) {
        pending = pending.subarray(command.end);
        const name = command.args[0].toUpperCase();
        if (name === 'XADD') {
          parentPort.postMessage({ xadds: ++xadds }); // never answered
        } else if (name !== 'XRANGE') {
          socket.write(name === 'PING' ? '+PONG\r\n' : '+OK\r\n');
        }
      }
    });
  });
  parentPort.on('message', (m) => {
    if (m !== 'close') return;
    server.close();
    for (const socket of sockets) socket.destroy();
    parentPort.close(); // nothing left: the thread ends
  });
  server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
}

/**
 * A fake Redis server on 127.0.0.1 (the Python suite's FakeRedis): it answers
 * the connection's CLIENT commands and PING and never answers XADD, so a bus
 * over it (adapter { type: 'redis', url, command_timeout_ms: 600000 }) keeps
 * what it dispatches in flight for ever. It runs on a thread of its own: a
 * synchronous Bus.open() or close() blocks this one.
 */
class FakeRedis {
  /** Starts one; resolves once it listens. */
  static async start() {
    const fake = new FakeRedis(new Worker(`(${fakeRedisServer})()`, { eval: true }));
    await fake.listening;
    return fake;
  }

  constructor(worker) {
    this.worker = worker;
    this.port = 0;
    this.xadds = 0;
    this.exited = new Promise((resolve) => worker.once('exit', resolve));
    const listening = resolvers();
    const sawXadd = resolvers();
    this.listening = listening.promise;
    this.sawXadd = sawXadd.promise;
    this.sawXadd.catch(() => {}); // rejected only with the worker's error, which listening also carries
    worker.on('message', (m) => {
      if (m.port !== undefined) {
        this.port = m.port;
        listening.resolve();
      }
      if (m.xadds !== undefined) {
        this.xadds = m.xadds;
        sawXadd.resolve();
      }
    });
    worker.on('error', (err) => {
      listening.reject(err);
      sawXadd.reject(err);
    });
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Resolves once the server has seen an XADD. */
  waitForXadd() {
    return this.sawXadd;
  }

  /** Stops the server (dropping its connections); resolves once its thread has ended. */
  async close() {
    this.worker.postMessage('close');
    await this.exited;
  }
}

// ---- mesh helpers (mesh-relay and mesh-channels tests) ----------------------

const { setTimeout: sleepMs } = require('node:timers/promises');
const assert = require('node:assert/strict');

/** Fast heartbeats and a shared PSK for mesh tests on 127.0.0.1. */
const FAST = { psk: Buffer.alloc(32, 0x5a), heartbeatIntervalMs: 50, sessionTimeoutMs: 1000, helloTimeoutMs: 500 };

/** Polls `cond` every 5 ms until it holds; fails after 20 s. */
async function waitFor(what, cond) {
  const deadline = Date.now() + 20000;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleepMs(5);
  }
}

/** A started node closed when test `t` ends. */
function started(t, options = FAST) {
  const m = require('netmesh').Mesh.open(options);
  t.after(() => m.close());
  m.start();
  return m;
}

/** `node` connects directly to `relay`; resolves once `relay` lists it. */
async function link(node, relay) {
  await node.connect(relay.localAddr, relay.publicKey, relay.nodeId);
  await waitFor('the link up on the relay', () => relay.peers().some((p) => p.nodeId === node.nodeId));
}

/** The next event of `node` (waits up to 20 s). */
async function recvOne(node) {
  const got = await node.recv(1, 20000);
  assert.equal(got.length, 1);
  return got[0];
}

module.exports = { NET_ROOT, vectors, hex, u64, settle, own, FakeRedis, FAST, waitFor, started, link, recvOne };
