'use strict';
// The *Async calls run on worker threads: the event loop keeps turning, and
// the error detail is read on the thread that made the failing call.

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const { Identity, Token, Scope, internal } = netmesh;
const { own } = require('./helpers');

const BIG = 64 * 1024 * 1024;

test('a 64 MiB signAsync does not block the event loop', async (t) => {
  const id = own(t, Identity.fromSeed(Buffer.alloc(32, 1)));
  const message = Buffer.alloc(BIG, 0x77);
  await id.signAsync('warm up the pool');

  // Reference: the synchronous call blocks for its whole duration.
  let t0 = process.hrtime.bigint();
  const syncSig = id.sign(message);
  const syncMs = Number(process.hrtime.bigint() - t0) / 1e6;

  let ticks = 0;
  let last = process.hrtime.bigint();
  let maxGapMs = 0;
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    maxGapMs = Math.max(maxGapMs, Number(now - last) / 1e6);
    last = now;
    ticks++;
  }, 2);
  t0 = process.hrtime.bigint();
  let sig;
  try {
    sig = await id.signAsync(message);
  } finally {
    clearInterval(timer);
  }
  const asyncMs = Number(process.hrtime.bigint() - t0) / 1e6;
  t.diagnostic(`sync sign ${syncMs.toFixed(0)} ms; async sign ${asyncMs.toFixed(0)} ms, ${ticks} timer ticks, max gap ${maxGapMs.toFixed(1)} ms`);
  assert.deepEqual(sig, syncSig);
  assert.ok(ticks >= 10, `only ${ticks} timer ticks during a ${asyncMs} ms async sign`);
  assert.ok(maxGapMs < Math.max(50, asyncMs / 2), `the event loop stalled ${maxGapMs} ms`);
  assert.equal(await id.verifyAsync(message, sig), true);
});

test('async errors carry the detail read on the worker thread', async (t) => {
  // Leave a known message on the main thread.
  assert.throws(() => netmesh.validateChannel('a b'), netmesh.ChannelNameError);
  const mainMessage = internal.lastErrorMessage();
  assert.match(mainMessage, /' '/);

  const ro = own(t, Identity.fromPublicKey(Identity.fromSeed(Buffer.alloc(32, 2)).publicKey));
  const err = await ro.signAsync('x').then(
    () => assert.fail('signed with a read-only identity'),
    (e) => e,
  );
  assert.ok(err instanceof netmesh.ReadOnlyError);
  assert.match(err.message, /read-only/);
  // The worker's failure did not touch the main thread's message.
  assert.equal(internal.lastErrorMessage(), mainMessage);
});

test('many concurrent async calls, failing and succeeding, each get their own outcome', async (t) => {
  const a = own(t, Identity.fromSeed(Buffer.alloc(32, 3)));
  const b = own(t, Identity.fromSeed(Buffer.alloc(32, 4)));
  const ro = own(t, Identity.fromPublicKey(a.publicKey));
  const msg = Buffer.alloc(200_000, 9); // above the copy limit: shared by address
  const goodSig = a.sign(msg);
  const expectations = [];
  for (let i = 0; i < 60; i++) {
    switch (i % 6) {
      case 0:
        expectations.push([a.signAsync(msg), (v) => assert.deepEqual(v, goodSig)]);
        break;
      case 1:
        expectations.push([ro.signAsync(msg), netmesh.ReadOnlyError, /read-only/]);
        break;
      case 2:
        expectations.push([
          Token.issueAsync(a, b, { scope: Scope.PUBLISH, ttlSecs: 0n }),
          netmesh.TokenZeroTtlError,
          /ttl|TTL|time-to-live|zero/i,
        ]);
        break;
      case 3:
        expectations.push([a.verifyAsync(msg, goodSig), (v) => assert.equal(v, true)]);
        break;
      case 4:
        expectations.push([
          netmesh.openEnvelopeAsync(Buffer.alloc(209), Buffer.alloc(32), Buffer.alloc(32)),
          netmesh.EnvelopeUnknownVersionError,
          /version/i,
        ]);
        break;
      case 5:
        expectations.push([b.verifyAsync(msg, goodSig), (v) => assert.equal(v, false)]);
        break;
    }
  }
  await Promise.all(
    expectations.map(async ([promise, check, pattern]) => {
      if (check.prototype instanceof Error) {
        const err = await promise.then(
          () => assert.fail(`expected ${check.name}`),
          (e) => e,
        );
        assert.ok(err instanceof check, `${err.name}: ${err.message} is not a ${check.name}`);
        assert.match(err.message, pattern);
      } else {
        check(await promise);
      }
    }),
  );
});

test('the pool runs calls on worker threads, not the main thread', async (t) => {
  const { threadId } = require('node:worker_threads');
  const id = own(t, Identity.generate());
  const seen = [];
  const onJob = (j) => seen.push(j);
  internal.poolEvents.on('job', onJob);
  t.after(() => internal.poolEvents.off('job', onJob));
  await Promise.all([id.signAsync('1'), id.signAsync('2'), id.signAsync('3')]);
  assert.equal(seen.length, 3);
  for (const j of seen) {
    assert.notEqual(j.threadId, threadId);
    assert.ok(j.finishedAt >= j.startedAt);
  }
  assert.ok(internal.poolSize() >= 1);
});

test('an input buffer shared by address stays valid while the call runs', async (t) => {
  const id = own(t, Identity.fromSeed(Buffer.alloc(32, 5)));
  const expected = id.sign(Buffer.alloc(1 << 20, 1));
  // No reference to the message is kept here: the pool must keep it alive.
  const pending = id.signAsync(Buffer.alloc(1 << 20, 1));
  if (global.gc) global.gc();
  assert.deepEqual(await pending, expected);
});

test('more blocked waits than libuv threads: they take turns, each gets its entry, fs keeps working', async (t) => {
  const fs = require('node:fs');
  const { Redex } = netmesh;
  const { letItBlock } = require('./race-helpers');
  const budget = internal.waitBudget();
  const N = budget + 7;
  const redex = Redex.open();
  t.after(() => redex.close());
  const files = Array.from({ length: N }, (_, i) => redex.openFile(`budget/${i}`));
  t.after(() => files.forEach((f) => f.close()));
  const tails = files.map((f) => f.tail(0n));
  t.after(() => tails.forEach((tail) => tail.close()));
  const preempted = [];
  const onCall = (e) => {
    if (e.preempted) preempted.push(e);
  };
  internal.callEvents.on('call', onCall);
  t.after(() => internal.callEvents.off('call', onCall));

  const pending = tails.map((tail) => tail.next());
  await letItBlock();
  const w = internal.waits();
  assert.equal(w.holding, budget, 'no more waits than the budget hold a thread');
  assert.equal(w.queued, N - budget, 'the others queue for one');
  // libuv's pool (UV_THREADPOOL_SIZE, default 4) still has a thread for fs.
  assert.ok((await fs.promises.readFile(__filename, 'utf8')).includes('take turns'));
  // Every wait gets its turn while they outnumber the threads: wait until a
  // holder was preempted for a queued one.
  const turnsBy = Date.now() + 30000;
  while (preempted.length === 0 && Date.now() < turnsBy) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(preempted.length > 0, 'the waits took turns');
  files.forEach((f, i) => f.append(`entry ${i}`));
  const got = await Promise.all(pending);
  assert.deepEqual(
    got.map((r) => r.value.payload.toString()),
    files.map((_, i) => `entry ${i}`),
  );
  await letItBlock();
  const after = internal.waits();
  assert.equal(after.live + after.queued + after.holding, 0, JSON.stringify(after));

  // A wait aborted while it queues rejects at once (a started one would come
  // back from libnet as NET_ERR_CANCELLED, not preempted).
  const cancelled = [];
  const onCancelled = (e) => {
    if (e.status === netmesh.Status.NET_ERR_CANCELLED && !e.preempted) cancelled.push(e);
  };
  internal.callEvents.on('call', onCancelled);
  t.after(() => internal.callEvents.off('call', onCancelled));
  const ac = new AbortController();
  const blockers = tails.slice(0, budget).map((tail) => tail.next());
  await letItBlock();
  const queuedCall = tails[budget].next(undefined, { signal: ac.signal });
  await letItBlock();
  const queuedBefore = internal.waits().queued;
  ac.abort();
  await assert.rejects(queuedCall, { name: 'AbortError' });
  if (queuedBefore === 1) assert.equal(cancelled.length, 0, 'the queued wait reached libnet');
  files.slice(0, budget).forEach((f) => f.append('unblock'));
  await Promise.all(blockers);
});
