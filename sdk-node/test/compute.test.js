'use strict';
// Compute through the Node SDK: a counter daemon written in JavaScript
// migrates from one node to another (encrypted UDP on 127.0.0.1) and back
// while a producer keeps delivering, and applies every event exactly once;
// daemon failures, unanswered work and bad arguments reject with typed
// errors; closing wakes an in-flight delivery. Daemon methods run on the
// main thread while libnet waits for them on the threadpool.

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const {
  Compute,
  Daemon,
  Delivery,
  Mesh,
  ComputeAlreadyRegisteredError,
  ComputeBufferFullError,
  ComputeConfigError,
  ComputeDaemonError,
  ComputeIdentityTransportError,
  ComputeNoMigrationError,
  ComputeNoTargetError,
  ComputeNotFoundError,
  ComputeTransportError,
  ComputeUnknownKindError,
  ShuttingDownError,
  internal,
} = netmesh;

const PSK = Buffer.alloc(32, 0x5a);
const FAST = { psk: PSK, heartbeatIntervalMs: 50, sessionTimeoutMs: 1000, helloTimeoutMs: 500 };
const FAST_COMPUTE = { retryIntervalMs: 50, stepTimeoutMs: 3000, sourceTimeoutMs: 6000, workTimeoutMs: 5000 };
const SEED = Buffer.alloc(32, 7);
const PRODUCER = 0xfeed000000000001n;
const u64le = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

/** Counts events, refusing any that is not its producer's next one. */
class Counter extends Daemon {
  count = 0n;
  last = 0n;

  process(event) {
    if (event.sequence !== this.last + 1n) throw new Error(`sequence ${event.sequence} after ${this.last}`);
    this.last = event.sequence;
    this.count += 1n;
    return [u64le(this.count)];
  }

  snapshot() {
    return Buffer.concat([u64le(this.count), u64le(this.last)]);
  }

  restore(state) {
    this.count = state.readBigUInt64LE(0);
    this.last = state.readBigUInt64LE(8);
  }
}

// Two nodes, the source orchestrating: each Compute keeps one resumable
// wait on libuv's threadpool, and with a third node and a waitMigration the
// waits would outnumber the wait budget (threads - 1) and take turns,
// slowing every delivery. One Compute per process is the usual shape.
async function two(t) {
  const meshes = [Mesh.open(FAST), Mesh.open(FAST)];
  await meshes[0].connect(meshes[1].localAddr, meshes[1].publicKey, meshes[1].nodeId);
  const runtimes = meshes.map((m) => Compute.open(m, FAST_COMPUTE));
  for (const rt of runtimes) rt.register('counter', () => new Counter());
  t.after(async () => {
    for (const rt of runtimes) await rt.closeAsync();
    for (const m of meshes) m.close();
  });
  return [meshes, runtimes];
}

/** One node with a Compute running a Counter (closed after the test). */
function oneCounter(t) {
  const mesh = Mesh.open(FAST);
  t.after(() => mesh.close());
  const rt = Compute.open(mesh, FAST_COMPUTE);
  t.after(() => rt.closeAsync());
  rt.register('counter', () => new Counter());
  return { mesh, rt, origin: rt.spawn('counter', SEED) };
}

const ORDER = ['snapshot', 'transfer', 'restore', 'replay', 'cutover', 'complete'];

test('a JavaScript counter migrates under load, every event applied exactly once', async (t) => {
  const [meshes, [a, b]] = await two(t);
  const origin = a.spawn('counter', SEED);
  assert.equal(b.expect('counter', SEED), origin);
  assert.deepEqual(a.daemons(), [{ origin, name: 'counter' }]);
  assert.ok(a.daemon(origin) instanceof Counter);
  assert.equal(b.daemon(origin), null);

  let stop = false;
  let sent = 0n;
  const outcomes = new Map();
  const producer = (async () => {
    for (let seq = 1n; !stop || seq <= 200n; seq++) {
      let outcome;
      for (;;) {
        try {
          outcome = await a.deliver(origin, PRODUCER, seq, u64le(seq));
          break;
        } catch (e) {
          // Pushed back: the old node holds as many forwarded events as it
          // may until B acknowledges some. Retry after other work ran.
          if (!(e instanceof ComputeBufferFullError)) throw e;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      assert.notEqual(outcome, Delivery.DUPLICATE);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      sent = seq;
    }
  })();
  assert.ok(await a.waitProcessed(origin, 50n, 20000), 'events before the move');
  await a.startMigration(origin, meshes[0].nodeId, meshes[1].nodeId);
  // The phases as the orchestrator passes them (each look is a call on the
  // worker pool, so this loop yields to the event loop).
  const phases = [];
  for (;;) {
    const status = await a.migrationStatus(origin);
    if (phases.at(-1) !== status.phase) phases.push(status.phase);
    if (status.state !== 'running') break;
  }
  const done = await a.waitMigration(origin, 20000);
  stop = true;
  await producer;
  assert.deepEqual(done, { state: 'completed', phase: 'complete', code: null, reason: null });
  const positions = phases.map((p) => ORDER.indexOf(p));
  assert.deepEqual(positions, [...positions].sort((x, y) => x - y));
  assert.ok(!positions.includes(-1), String(phases));
  assert.ok((outcomes.get(Delivery.FORWARDED) ?? 0) > 0, 'no event was forwarded after the cut-over');

  const total = sent;
  // B applies what A did not: the events buffered during the move and
  // those forwarded after it.
  const processedAtA = BigInt(outcomes.get(Delivery.PROCESSED) ?? 0);
  assert.ok(await b.waitProcessed(origin, total - processedAtA, 20000), 'every event applied on the target');
  assert.equal(b.daemon(origin).count, total);
  const stats = await b.stats(origin);
  assert.equal(stats.errors, 0n);
  assert.equal(stats.name, 'counter');
  await assert.rejects(a.stats(origin), ComputeNotFoundError);
  let last = null;
  for (;;) {
    const out = await b.nextOutput(0);
    if (out === null) break;
    assert.equal(out.daemon, origin);
    last = out;
  }
  assert.equal(last.payload.readBigUInt64LE(0), total);

  // And back, orchestrated by the node it leaves.
  assert.equal(a.expect('counter', SEED), origin);
  await b.startMigration(origin, meshes[1].nodeId, meshes[0].nodeId);
  const back = await b.waitMigration(origin, 20000);
  assert.equal(back.state, 'completed');
  assert.equal(await a.deliver(origin, PRODUCER, total + 1n), Delivery.PROCESSED);
  assert.equal(a.daemon(origin).count, total + 1n);
});

test("a daemon's identity travels to a node that does not know its seed", async (t) => {
  const [meshes, [a, b]] = await two(t);
  const origin = a.spawn('counter', SEED);
  for (let seq = 1n; seq <= 3n; seq++) assert.equal(await a.deliver(origin, PRODUCER, seq), Delivery.PROCESSED);
  b.expectOrigin('counter', origin);
  assert.throws(() => b.expectOrigin('counter', origin), ComputeAlreadyRegisteredError);
  const [idA, idB] = [meshes[0].nodeId, meshes[1].nodeId];
  // A node whose static key is not known here cannot be sealed to.
  await assert.rejects(a.startMigration(origin, idA, 0x1234n), ComputeIdentityTransportError);
  // Without its identity B cannot run the daemon: the move fails, the
  // daemon stays on A.
  await a.startMigration(origin, idA, idB, { transportIdentity: false });
  const failed = await a.waitMigration(origin, 20000);
  assert.equal(failed.state, 'failed');
  assert.match(failed.reason, /^identity-transport-failed/);
  assert.equal(await a.deliver(origin, PRODUCER, 4n), Delivery.PROCESSED);
  // Sealed, it moves with its state.
  await a.startMigration(origin, idA, idB, { transportIdentity: true });
  assert.equal((await a.waitMigration(origin, 20000)).state, 'completed');
  assert.equal(b.daemon(origin).count, 4n);
  assert.equal(await b.deliver(origin, PRODUCER, 5n), Delivery.PROCESSED);
});

test('a migration is placed on a node that announced it takes them', async (t) => {
  const { waitFor } = require('./helpers');
  const [meshes, [a, b]] = await two(t);
  const origin = a.spawn('counter', SEED);
  assert.throws(() => a.placeMigration(origin), ComputeNoTargetError);
  assert.throws(() => a.placeMigration(0x77n), ComputeNotFoundError);
  meshes[1].announce({ tags: ['zone:eu'] });
  const placed = () => {
    try {
      return a.placeMigration(origin) === meshes[1].nodeId;
    } catch (e) {
      if (e instanceof ComputeNoTargetError) return false;
      throw e;
    }
  };
  await waitFor('b placed', placed);
  b.expectOrigin('counter', origin);
  await a.startMigration(origin, meshes[0].nodeId, a.placeMigration(origin));
  assert.equal((await a.waitMigration(origin, 20000)).state, 'completed');
  assert.ok(b.daemon(origin));
});

test('daemon failures and bad arguments reject with typed errors', async (t) => {
  const mesh = Mesh.open(FAST);
  t.after(() => mesh.close());
  assert.throws(() => Compute.open(mesh, { nope: 1 }), ComputeConfigError);
  assert.throws(() => Compute.open(mesh, { transferRate: -1 }), ComputeConfigError);
  assert.throws(() => Compute.open({}, {}), TypeError);
  const rt = Compute.open(mesh, { workTimeoutMs: 200 });
  t.after(() => rt.closeAsync());
  assert.throws(() => Compute.open(mesh), ComputeTransportError);
  class Picky extends Counter {
    process(event) {
      if (event.payload.toString() === 'boom') throw new Error('boom');
      if (event.payload.toString() === 'block') {
        // Hold the main thread's answer back past the work timeout.
        const end = Date.now() + 400;
        while (Date.now() < end);
      }
      return super.process(event);
    }
  }
  rt.register('picky', () => new Picky());
  assert.throws(() => rt.register('picky', () => new Picky()), ComputeAlreadyRegisteredError);
  assert.throws(() => rt.spawn('nope', SEED), ComputeUnknownKindError);
  assert.throws(() => rt.spawn('picky', Buffer.alloc(3)), RangeError);
  const origin = rt.spawn('picky', SEED);
  assert.throws(() => rt.spawn('picky', SEED), ComputeAlreadyRegisteredError);
  assert.equal(await rt.deliver(origin, PRODUCER, 1n, Buffer.from('ok')), Delivery.PROCESSED);
  await assert.rejects(rt.deliver(origin, PRODUCER, 2n, Buffer.from('boom')), (e) => e instanceof ComputeDaemonError && /boom/.test(e.message));
  await assert.rejects(rt.deliver(origin, PRODUCER, 2n, Buffer.from('block')), (e) => e instanceof ComputeDaemonError && /did not answer/.test(e.message));
  assert.equal((await rt.stats(origin)).errors, 2n);
  await assert.rejects(rt.deliver(12345n, PRODUCER, 1n, null), ComputeNotFoundError);
  await assert.rejects(rt.migrationStatus(origin), ComputeNoMigrationError);
  await assert.rejects(rt.waitMigration(origin, 0), ComputeNoMigrationError);
  await assert.rejects(rt.startMigration(origin, 12345n, mesh.nodeId), ComputeTransportError);
  const out = await rt.nextOutput(0);
  assert.equal(out.sequence, 1n);
  // An AbortSignal ends a wait without limit.
  const controller = new AbortController();
  const waiting = rt.nextOutput(undefined, { signal: controller.signal });
  controller.abort(new Error('enough'));
  await assert.rejects(waiting, /enough/);
  await rt.stop(origin);
  await assert.rejects(rt.stop(origin), ComputeNotFoundError);
  assert.equal(rt.daemon(origin), null);
  assert.equal(typeof internal.rawHandle(rt), 'bigint');
});

/** A counter that refuses an event whose payload is 'boom'. */
class Failing extends Counter {
  process(event) {
    if (event.payload.toString() === 'boom') throw new Error('boom at ' + event.sequence);
    return super.process(event);
  }
}

/** A Compute with one Failing counter, and a helper making payloads. */
function oneFailing(t) {
  const mesh = Mesh.open(FAST);
  t.after(() => mesh.close());
  const rt = Compute.open(mesh, FAST_COMPUTE);
  t.after(() => rt.closeAsync());
  rt.register('counter', () => new Failing());
  const batch = (from, n) => Array.from({ length: n }, (_, i) => u64le(from + i));
  return { rt, origin: rt.spawn('counter', SEED), batch };
}

test('deliverBatch: one work item applied in order, a failure partway, a timeout before it is taken', async (t) => {
  const { rt, origin, batch } = oneFailing(t);
  const outcomes = await rt.deliverBatch(origin, PRODUCER, 1n, batch(1, 64));
  assert.deepEqual(outcomes, Array(64).fill(Delivery.PROCESSED));
  for (let i = 1n; i <= 64n; i++) {
    const out = await rt.nextOutput(5000);
    assert.equal(out.sequence, i);
    assert.equal(out.payload.readBigUInt64LE(0), i);
  }
  const failing = batch(65, 8);
  failing[4] = Buffer.from('boom');
  await assert.rejects(rt.deliverBatch(origin, PRODUCER, 65n, failing), (e) =>
    e instanceof ComputeDaemonError && /boom at 69/.test(e.message) && e.delivered === 4 && e.outcomes.length === 4);
  let stats = await rt.stats(origin);
  assert.equal(stats.eventsProcessed, 68n);
  assert.equal(stats.errors, 1n);
  assert.deepEqual(await rt.deliverBatch(origin, PRODUCER, 69n, batch(69, 4), { timeoutMs: 5000 }), Array(4).fill(Delivery.PROCESSED));
  assert.equal((await rt.stats(origin)).eventsProcessed, 72n);
  assert.deepEqual(await rt.deliverBatch(origin, PRODUCER, 73n, []), []);
  await assert.rejects(rt.deliverBatch(origin, PRODUCER, 73n, 'nope'), TypeError);
  await assert.rejects(rt.deliverBatch(12345n, PRODUCER, 1n, batch(1, 1)), ComputeNotFoundError);
});

// While its own deliveries are in flight a Compute looks for their work
// items on the main thread (no threadpool hop); the threadpool pull only
// takes the first one and what comes after a pause of HOT_MS (2 ms). On a
// quiet machine ~30 of the 450 items go that way; on one busy with other
// builds up to ~300 did (an item waits more than 2 ms for a CPU). Without
// the main-thread look all 450 would: the bound is the mechanism's, not a
// speed.
test("a Compute's own deliveries are answered on the main thread, not through the threadpool pull", async (t) => {
  const { rt, origin } = oneCounter(t);
  let pulled = 0;
  const onCall = (e) => {
    if (e.op === 'compute_next' && e.status === 0) pulled++;
  };
  internal.callEvents.on('call', onCall);
  t.after(() => internal.callEvents.off('call', onCall));
  const N = 400n;
  for (let seq = 1n; seq <= N; seq++) {
    assert.equal(await rt.deliver(origin, PRODUCER, seq, u64le(seq)), Delivery.PROCESSED);
  }
  // With a signal a batch is not lent: it goes through the work loop.
  const { signal } = new AbortController();
  for (let first = N + 1n; first <= 2n * N; first += 8n) {
    const batch = Array.from({ length: 8 }, (_, i) => u64le(first + BigInt(i)));
    assert.deepEqual(await rt.deliverBatch(origin, PRODUCER, first, batch, { signal }), Array(8).fill(Delivery.PROCESSED));
  }
  assert.equal((await rt.stats(origin)).eventsProcessed, 2n * N);
  const items = Number(N) + Number(N) / 8;
  assert.ok(pulled <= items * 0.9, `${pulled} of ${items} work items came through the threadpool pull`);
});

test('deliverBatch with an aborted signal gives up with nothing applied; a zero timeout does not hold back a lent batch', async (t) => {
  const { rt, origin } = oneCounter(t);
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  await assert.rejects(rt.deliverBatch(origin, PRODUCER, 1n, [u64le(1)], { signal: controller.signal }), /stop/);
  assert.equal((await rt.stats(origin)).eventsProcessed, 0n);
  // A free daemon's batch is lent to the call: a zero timeout (which
  // gives up before a pull loop can take a batch up) does not matter to it.
  assert.deepEqual(await rt.deliverBatch(origin, PRODUCER, 1n, [u64le(1)], { timeoutMs: 0 }), [Delivery.PROCESSED]);
  assert.equal((await rt.stats(origin)).eventsProcessed, 1n);
});

test('a free daemon\'s batch is lent to deliverBatch: process() runs before it returns', async (t) => {
  const { rt, origin, batch } = oneFailing(t);
  const daemon = rt.daemon(origin);
  const pending = rt.deliverBatch(origin, PRODUCER, 1n, batch(1, 16));
  assert.equal(daemon.count, 16n, 'applied synchronously');
  assert.deepEqual(await pending, Array(16).fill(Delivery.PROCESSED));
  for (let i = 1n; i <= 16n; i++) {
    const out = await rt.nextOutput(5000);
    assert.equal(out.sequence, i);
  }
  // With a signal the batch takes the work loop (applied after the call returns).
  const withSignal = rt.deliverBatch(origin, PRODUCER, 17n, batch(17, 2), { signal: new AbortController().signal });
  assert.equal(daemon.count, 16n);
  assert.deepEqual(await withSignal, Array(2).fill(Delivery.PROCESSED));
  assert.equal(daemon.count, 18n);
  // A lent batch that fails partway rejects with what was delivered.
  const failing = batch(19, 4);
  failing[2] = Buffer.from('boom');
  await assert.rejects(rt.deliverBatch(origin, PRODUCER, 19n, failing), (e) =>
    e instanceof ComputeDaemonError && /boom at 21/.test(e.message) && e.delivered === 2 && e.outcomes.length === 2);
  assert.equal((await rt.stats(origin)).eventsProcessed, 20n);
});

test('close racing a delivery in flight: it completes or is refused, never hangs; later calls are refused', async () => {
  const mesh = Mesh.open(FAST);
  try {
    const rt = Compute.open(mesh);
    rt.register('counter', () => new Counter());
    const origin = rt.spawn('counter', SEED);
    // The delivery waits on the threadpool for the main thread to run the
    // daemon; the main thread closes the runtime instead.
    const pending = rt.deliver(origin, PRODUCER, 1n, null);
    const closing = rt.closeAsync();
    const outcome = await pending.then(
      (delivery) => delivery,
      (e) => e,
    );
    assert.ok(outcome === Delivery.PROCESSED || outcome instanceof ShuttingDownError, String(outcome));
    await closing;
    await rt.closeAsync();
    rt.close();
    assert.ok(rt.closed);
    await assert.rejects(() => rt.deliver(origin, PRODUCER, 1n, null), ShuttingDownError);
    await assert.rejects(() => rt.deliverBatch(origin, PRODUCER, 1n, [Buffer.alloc(0)]), ShuttingDownError);
  } finally {
    mesh.close();
  }
});

test('stats and migrationStatus while a daemon call waits for the main thread do not block the event loop', async (t) => {
  const mesh = Mesh.open(FAST);
  const rt = Compute.open(mesh, { workTimeoutMs: 2000 });
  t.after(async () => {
    await rt.closeAsync();
    mesh.close();
  });
  rt.register('counter', () => new Counter());
  const origin = rt.spawn('counter', SEED);
  // The delivery holds the daemon's lock until the main thread runs
  // process(); stats() must wait off the loop, or process() never runs.
  const delivered = rt.deliver(origin, PRODUCER, 1n, null);
  const stats = await rt.stats(origin);
  assert.equal(await delivered, Delivery.PROCESSED);
  assert.equal(stats.errors, 0n);
  await assert.rejects(rt.migrationStatus(origin), ComputeNoMigrationError);
});

test('a Compute dropped without close is finalized, its pull loop ends and the process exits', () => {
  const { spawnSync } = require('node:child_process');
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '-e',
      `
      const netmesh = require('netmesh');
      process.on('warning', () => {});
      const mesh = netmesh.Mesh.open();
      (function () {
        const rt = netmesh.Compute.open(mesh);
        rt.register('k', () => new netmesh.Daemon());
      })();
      (async () => {
        for (let i = 0; i < 400; i++) {
          global.gc();
          await new Promise((r) => setTimeout(r, 5));
          const l = netmesh.internal.leaks();
          if (l.leaked.Compute === 1 && l.inFlight === 0) {
            console.log('finalized, freed', l.freed, 'failed', l.failed);
            mesh.close();
            return; // the process must now exit: nothing waits on the threadpool
          }
        }
        console.log('not finalized', JSON.stringify(netmesh.internal.leaks()));
        process.exit(1);
      })();
      `,
    ],
    { cwd: process.cwd(), env: process.env, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /finalized, freed 1 failed 0/);
});

test("a daemon's channel subscription follows it; the node's ends with its last holder", async (t) => {
  const { link, recvOne, waitFor } = require('./helpers');
  const pub = Mesh.open(FAST);
  const [meshes, [a, b]] = await two(t);
  t.after(() => pub.close());
  for (const m of [pub, ...meshes]) m.start();
  await link(meshes[0], pub);
  await link(meshes[1], pub);
  pub.registerChannel('ticks');
  const subscribers = () => Number(pub.channels().channels.find((c) => c.name === 'ticks')?.subscribers ?? 0);
  const origin = a.spawn('counter', SEED);

  await a.subscribeChannel(origin, pub.nodeId, 'ticks');
  await assert.rejects(a.subscribeChannel(0x42n, pub.nodeId, 'ticks'), ComputeNotFoundError);
  await assert.rejects(a.subscribeChannel(origin, pub.nodeId, 'nope'), netmesh.ChannelUnknownError);
  assert.deepEqual((await a.stats(origin)).channels, [{ publisher: pub.nodeId, channel: 'ticks' }]);
  assert.equal(subscribers(), 1);

  // It migrates: the target subscribed before the migration completed.
  b.expectOrigin('counter', origin);
  await a.startMigration(origin, meshes[0].nodeId, meshes[1].nodeId);
  assert.equal((await a.waitMigration(origin, 20000)).state, 'completed');
  assert.deepEqual((await b.stats(origin)).channels, [{ publisher: pub.nodeId, channel: 'ticks' }]);
  pub.publish('ticks', ['t1'], { reliable: true });
  const event = await recvOne(meshes[1]);
  assert.deepEqual([Buffer.from(event.data).toString(), event.channel], ['t1', 'ticks']);
  await waitFor('the source lets go of the channel', () => subscribers() === 1);

  await b.unsubscribeChannel(origin, pub.nodeId, 'ticks');
  assert.equal(subscribers(), 0);
  assert.deepEqual((await b.stats(origin)).channels, []);
});
