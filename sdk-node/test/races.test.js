'use strict';
// Real threads (worker_threads) racing close/free against calls on the same
// libnet handle. The SDK takes no JS-side lock: libnet's HandleGuard is what
// makes these races safe, and these tests exercise it through raw pointers.

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const { Identity, ShuttingDownError, internal } = netmesh;
const { fns, rawHandle, lastErrorMessage, poolEvents } = internal;
const { startWorkers, newGate, openGate, waitRunning } = require('./race-helpers');

const SHUTTING_DOWN = netmesh.Status.NET_ERR_SHUTTING_DOWN;
const SEED = Buffer.alloc(32, 0x42);
const BIG = 64 * 1024 * 1024;

function spin(us) {
  const end = process.hrtime.bigint() + BigInt(us) * 1000n;
  while (process.hrtime.bigint() < end);
}

test('op after close throws ShuttingDownError; raw calls on the freed pointer get NET_ERR_SHUTTING_DOWN', async (t) => {
  const [w] = await startWorkers(1);
  t.after(() => w.terminate());
  const ROUNDS = 500;
  for (let i = 0; i < ROUNDS; i++) {
    const id = i % 2 ? Identity.generate() : Identity.fromSeed(SEED);
    const handle = rawHandle(id);
    assert.equal(typeof handle, 'bigint');
    id.close();
    assert.equal(rawHandle(id), null);
    // Through the SDK: the JS-side check.
    assert.throws(() => id.sign('m'), ShuttingDownError);
    assert.throws(() => id.originHash, ShuttingDownError);
    // Bypassing it: the C guard answers, on this thread...
    const out = {};
    assert.equal(fns.net_identity_sign(handle, Buffer.from('m'), 1, out), SHUTTING_DOWN);
    assert.match(lastErrorMessage(), /freed/);
    assert.equal(fns.net_identity_origin_hash(handle, [0n]), SHUTTING_DOWN);
    assert.equal(fns.net_identity_public_key(handle, {}), SHUTTING_DOWN);
    assert.equal(fns.net_envelope_seal(handle, Buffer.alloc(32), 32, Buffer.alloc(32), 32, {}), SHUTTING_DOWN);
    // ...and on another thread (every 10th round: a round trip costs more).
    if (i % 10 === 0) {
      const r = await w.send('call', { handle }).done;
      assert.equal(r.status, SHUTTING_DOWN);
      assert.match(r.message, /freed/);
    }
    // Freeing again is a no-op.
    fns.net_identity_free(handle);
  }
  // The async path: a job queued after close is refused before it runs.
  const id = Identity.fromSeed(SEED);
  id.close();
  await assert.rejects(id.signAsync(Buffer.alloc(10)), ShuttingDownError);
});

test('close races calls running on other threads: each call either completes correctly or gets SHUTTING_DOWN, never after', async (t) => {
  const workers = await startWorkers(2);
  t.after(() => Promise.all(workers.map((w) => w.terminate())));
  const ROUNDS = 200;
  let overlapped = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const id = Identity.fromSeed(SEED);
    const expected = id.originHash;
    const handle = rawHandle(id);
    const gate = newGate();
    const runs = workers.map((w) => w.send('hammer', { handle, expected, gate, after: 50, maxMs: 5000 }));
    await Promise.all(runs.map((r) => r.ready));
    openGate(gate);
    // Odd rounds: close while both hammers are mid-stream. Even rounds: close
    // at once, racing the hammers' first calls.
    if (i % 2) {
      assert.equal(waitRunning(gate, workers.length), workers.length, 'hammers did not start');
      spin(Math.floor(Math.random() * 200));
    }
    id.close(); // SDK close on the main thread, racing the raw calls
    const results = await Promise.all(runs.map((r) => r.done));
    for (const r of results) {
      assert.equal(r.other, 0, `unexpected status ${r.other}`);
      assert.equal(r.mismatches, 0, 'a call that completed returned a wrong value');
      assert.equal(r.shutting, 1, 'the hammer never saw the handle freed');
      assert.equal(r.violations, 0, 'a call succeeded after the handle was freed');
      assert.match(r.message, /freed/);
      if (r.ok > 0) overlapped++;
    }
    assert.throws(() => id.nodeId, ShuttingDownError);
  }
  t.diagnostic(`${overlapped} of ${2 * ROUNDS} hammers completed calls before seeing the close`);
  // The race must actually have happened: calls were in flight when close ran.
  assert.ok(overlapped >= ROUNDS, `only ${overlapped} of ${2 * ROUNDS} hammers overlapped the close`);
});

test('concurrent close from several threads (and the main thread) does not crash', async (t) => {
  const freers = await startWorkers(3);
  const [hammer] = await startWorkers(1);
  t.after(() => Promise.all([...freers, hammer].map((w) => w.terminate())));
  const ROUNDS = 200;
  for (let i = 0; i < ROUNDS; i++) {
    const id = Identity.generate();
    const expected = id.originHash;
    const handle = rawHandle(id);
    const gate = newGate();
    const frees = freers.map((w) => w.send('free', { handle, gate }));
    const hammering = hammer.send('hammer', { handle, expected, gate, after: 20, maxMs: 5000 });
    await Promise.all([...frees.map((f) => f.ready), hammering.ready]);
    openGate(gate);
    id.close();
    const done = await Promise.all(frees.map((f) => f.done));
    for (const d of done) assert.ok(d.t1 >= d.t0);
    const h = await hammering.done;
    assert.equal(h.violations, 0);
    assert.equal(h.mismatches, 0);
    assert.equal(h.other, 0);
    assert.equal(fns.net_identity_origin_hash(handle, [0n]), SHUTTING_DOWN);
    id.close(); // still idempotent
  }
});

test('close waits for an in-flight 64 MiB signAsync (or the sign loses the race cleanly)', async (t) => {
  const [closer] = await startWorkers(1);
  t.after(() => closer.terminate());
  const message = Buffer.alloc(BIG, 0x5c);
  const twin = Identity.fromSeed(SEED); // verifies with a second handle on the same key
  t.after(() => twin.close());

  // Warm the pool so the sign starts at once.
  {
    const warm = Identity.fromSeed(SEED);
    await warm.signAsync('warm');
    warm.close();
  }

  const jobs = [];
  const onJob = (j) => jobs.push(j);
  poolEvents.on('job', onJob);
  t.after(() => poolEvents.off('job', onJob));

  const WANT = 3;
  let waited = 0;
  let lost = 0;
  let missed = 0;
  for (let attempt = 0; attempt < 20 && waited < WANT; attempt++) {
    const id = Identity.fromSeed(SEED);
    const handle = rawHandle(id);
    jobs.length = 0;
    const signing = id.signAsync(message).then(
      (sig) => ({ sig }),
      (error) => ({ error }),
    );
    const closing = closer.send('freeAfter', { handle, delayMs: 50 }).done;
    const [outcome, close] = await Promise.all([signing, closing]);
    const job = jobs.find((j) => j.op === 'sign');
    assert.ok(job, 'the pool reported the sign job');
    if (outcome.error) {
      // Lost the race: the free began before the sign entered the handle.
      assert.ok(outcome.error instanceof ShuttingDownError, String(outcome.error));
      lost++;
    } else {
      assert.equal(outcome.sig.length, 64);
      assert.equal(twin.verify(message, outcome.sig), true, 'the signature made during close verifies');
      // The worker stamps finishedAt just after the C call returns; a stall of
      // that thread could delay the stamp, hence the slack. A close that did
      // not wait would return ~immediately, >= MARGIN before finishedAt.
      const MARGIN = 50_000_000n; // 50 ms
      const SLACK = 20_000_000n; // 20 ms
      if (close.t0 + MARGIN > job.finishedAt) {
        missed++; // the close started (too near) after the sign finished: inconclusive, retry
      } else {
        assert.ok(
          close.t1 + SLACK >= job.finishedAt,
          `close returned ${(job.finishedAt - close.t1) / 1000n} us before the in-flight sign finished`,
        );
        t.diagnostic(
          `close started ${(close.t0 - job.startedAt) / 1_000_000n} ms into the sign, ` +
            `waited ${(close.t1 - close.t0) / 1_000_000n} ms, returned ${(close.t1 - job.finishedAt) / 1000n} us after it finished`,
        );
        waited++;
      }
    }
    // The handle is gone for everyone now.
    assert.equal(fns.net_identity_origin_hash(handle, [0n]), SHUTTING_DOWN);
    id.close(); // idempotent after the raw free
  }
  t.diagnostic(`close waited for the sign ${waited}x, sign lost the race ${lost}x, no overlap ${missed}x`);
  assert.equal(waited, WANT, `only ${waited} rounds where close waited for an in-flight sign`);
});

test('SDK close() on the main thread while a 64 MiB signAsync runs on the pool', async (t) => {
  const message = Buffer.alloc(BIG, 0x3d);
  const twin = Identity.fromSeed(SEED);
  t.after(() => twin.close());
  const jobs = [];
  const onJob = (j) => jobs.push(j);
  poolEvents.on('job', onJob);
  t.after(() => poolEvents.off('job', onJob));
  let completed = 0;
  for (let attempt = 0; attempt < 10 && completed < 2; attempt++) {
    const id = Identity.fromSeed(SEED);
    jobs.length = 0;
    const signing = id.signAsync(message).then(
      (sig) => ({ sig }),
      (error) => ({ error }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const t0 = process.hrtime.bigint();
    id.close(); // blocks until the in-flight sign has left the handle
    const t1 = process.hrtime.bigint();
    const outcome = await signing;
    assert.ok(t1 - t0 < 5_000_000_000n, 'close took longer than the 5 s drain deadline');
    if (outcome.error) {
      assert.ok(outcome.error instanceof ShuttingDownError, String(outcome.error));
      continue;
    }
    assert.equal(twin.verify(message, outcome.sig), true);
    const job = jobs.find((j) => j.op === 'sign');
    if (t0 + 50_000_000n <= job.finishedAt) {
      assert.ok(t1 + 20_000_000n >= job.finishedAt, 'close() returned before the in-flight sign finished');
      completed++;
    }
  }
  assert.equal(completed, 2, 'close() never overlapped an in-flight sign');
});
