'use strict';
// CortEX through the Node SDK: the tasks and memories models, queries,
// watches (async iteration, lag), snapshots, persistence, the halted fold,
// and errors naming the bad key.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const netmesh = require('netmesh');
const {
  Redex,
  Tasks,
  Memories,
  CortexHaltedError,
  CortexInvalidQueryError,
  CortexInvalidConfigError,
  CortexSnapshotError,
  ShuttingDownError,
} = netmesh;

const BIG = (1n << 63n) + 12345n; // above 2^53: must round-trip exactly
const ORIGIN = 0x123456789abcdef0n;

function memRedex(t) {
  const r = Redex.open();
  t.after(() => r.close());
  return r;
}

const ids = (rows) => rows.map((r) => r.id);

test('tasks: writes, reads and progress', async (t) => {
  const tasks = Tasks.open(memRedex(t), ORIGIN);
  t.after(() => tasks.close());
  assert.equal(tasks.create(1, 'write spec'), 0n);
  tasks.create(BIG, 'big id');
  tasks.rename(1n, 'write the spec');
  const last = await tasks.completeAsync(1);
  assert.equal(last, 3n);
  assert.equal(await tasks.waitForSeq(last, 5000), true);
  const one = tasks.findUnique(1);
  assert.equal(one.title, 'write the spec');
  assert.equal(one.status, 'completed');
  assert.ok(one.updatedNs >= one.createdNs && one.createdNs > 0n);
  assert.equal(tasks.findUnique(BIG).id, BIG);
  assert.equal(tasks.findUnique(2), null);
  await tasks.waitForSeq(await tasks.deleteAsync(1), 5000);
  assert.equal(tasks.findUnique(1), null);
  assert.equal(tasks.countWhere(), 1n);
  const p = tasks.progress();
  assert.deepEqual(
    [p.appliedThroughSeq, p.running, p.errors, p.appSeq, p.lastError],
    [4n, true, 0n, 5n, null],
  );
  await tasks.waitForSeq(await tasks.renameAsync(BIG, 'big id, renamed'), 5000);
  assert.equal(tasks.findUnique(BIG).title, 'big id, renamed');
});

test('tasks: filters, order, paging, count and exists', async (t) => {
  const tasks = Tasks.open(memRedex(t), ORIGIN);
  t.after(() => tasks.close());
  for (let i = 1; i <= 10; i++) tasks.create(i, `task ${String(i).padStart(2, '0')}${i % 3 === 0 ? ' urgent' : ''}`);
  let last;
  for (const i of [2, 4, 6]) last = tasks.complete(i);
  await tasks.waitForSeq(last, 5000);
  assert.deepEqual(ids(tasks.findMany({ status: 'pending' })), [1n, 3n, 5n, 7n, 8n, 9n, 10n]);
  assert.deepEqual(ids(tasks.findMany({ orderBy: 'id_desc', offset: 2, limit: 3n })), [8n, 7n, 6n]);
  assert.equal(tasks.countWhere({ titleContains: 'urgent' }), 3n);
  assert.equal(tasks.existsWhere({ ids: [6], status: 'completed' }), true);
  assert.equal(tasks.existsWhere({ ids: [1n], status: 'completed' }), false);
  assert.equal(tasks.findMany({ orderBy: 'title_desc', limit: 1 })[0].id, 10n);
  const now = process.hrtime.bigint() + BigInt(Date.now()) * 1_000_000n; // far future
  assert.equal(tasks.countWhere({ createdAfter: now }), 0n);
});

test('memories: writes and queries', async (t) => {
  const mem = Memories.open(memRedex(t), ORIGIN);
  t.after(() => mem.close());
  mem.store(1, 'the sky is blue', ['fact', 'color'], 'alice');
  await mem.storeAsync(2, 'meet at noon', ['todo'], 'bob');
  mem.store(BIG, 'big');
  mem.pin(1);
  await mem.retagAsync(2, ['todo', 'urgent']);
  mem.unpin(1);
  await mem.waitForSeq(mem.pin(2), 5000);
  const one = mem.findUnique(1);
  assert.deepEqual([one.tags, one.pinned, one.source], [['fact', 'color'], false, 'alice']);
  assert.equal(mem.findUnique(BIG).id, BIG);
  assert.deepEqual(ids(mem.findMany({ tagsAll: ['todo', 'urgent'] })), [2n]);
  assert.deepEqual(ids(mem.findMany({ tagsAny: ['fact', 'urgent'] })), [1n, 2n]);
  assert.equal(mem.countWhere({ pinned: true }), 1n);
  assert.equal(mem.existsWhere({ source: 'bob', contentContains: 'noon' }), true);
  assert.deepEqual(ids(mem.findMany({ orderBy: 'id_desc', limit: 2 })), [BIG, 2n]);
  await mem.waitForSeq(mem.delete(2), 5000);
  assert.equal(mem.countWhere(), 2n);
  // The other forms of each write.
  mem.retag(1, ['fact']);
  await mem.pinAsync(1);
  await mem.waitForSeq(await mem.unpinAsync(BIG), 5000);
  const again = mem.findUnique(1);
  assert.deepEqual([again.tags, again.pinned], [['fact'], true]);
});

test('watch: the current rows first, then each change; for await; close ends it', async (t) => {
  const tasks = Tasks.open(memRedex(t), ORIGIN);
  t.after(() => tasks.close());
  await tasks.waitForSeq(tasks.create(1, 'a'), 5000);
  const watch = tasks.watch({ status: 'pending' });
  let r = await watch.next(5000);
  assert.deepEqual(ids(r.value.rows), [1n]);
  tasks.create(2, 'b');
  r = await watch.next(5000);
  assert.deepEqual(ids(r.value.rows), [1n, 2n]);
  tasks.complete(1);
  r = await watch.next(5000);
  assert.deepEqual(ids(r.value.rows), [2n]);
  assert.equal(await watch.next(30), null);
  // for await, ended by a close from elsewhere.
  const seen = [];
  const consumer = (async () => {
    for await (const update of watch) seen.push(update);
  })();
  tasks.create(3, 'c');
  // Until the loop has the change (no clock: turns of the event loop).
  while (!seen.some((u) => ids(u.rows).includes(3n))) await new Promise((resolve) => setImmediate(resolve));
  watch.close();
  await consumer;
  assert.ok(seen.length >= 1 && ids(seen[seen.length - 1].rows).includes(3n));
  assert.deepEqual(await watch.next(0), { done: true, value: undefined });
});

test('watch: a slow reader is told it lagged, then gets everything', async (t) => {
  const tasks = Tasks.open(memRedex(t), ORIGIN, { changesCapacity: 2 });
  t.after(() => tasks.close());
  const watch = tasks.watch();
  t.after(() => watch.close());
  assert.deepEqual((await watch.next(5000)).value.rows, []);
  let last;
  for (let i = 0; i < 50; i++) last = tasks.create(i, 'x');
  await tasks.waitForSeq(last, 5000);
  let lagged = false;
  for (let i = 0; i < 60; i++) {
    const r = await watch.next(1000);
    if (r.value.lagged) {
      assert.ok(r.value.missed > 0n);
      lagged = true;
    } else if (r.value.rows.length === 50) break;
  }
  assert.ok(lagged);
});

test('snapshotAndWatch: current rows now, only later changes on the watch', async (t) => {
  const tasks = Tasks.open(memRedex(t), ORIGIN);
  t.after(() => tasks.close());
  await tasks.waitForSeq(tasks.create(1, 'a'), 5000);
  const { rows, watch } = tasks.snapshotAndWatch();
  t.after(() => watch.close());
  assert.deepEqual(ids(rows), [1n]);
  assert.equal(await watch.next(30), null);
  tasks.create(2, 'b');
  assert.deepEqual(ids((await watch.next(5000)).value.rows), [1n, 2n]);
});

test('snapshot → restore gives the same state; garbage snapshots are refused', async (t) => {
  const tasks = Tasks.open(memRedex(t), ORIGIN);
  for (let i = 0; i < 5; i++) tasks.create(i, `t${i}`);
  await tasks.waitForSeq(tasks.complete(3), 5000);
  const snap = tasks.snapshot();
  const before = tasks.findMany();
  const appSeq = tasks.progress().appSeq;
  await tasks.closeAsync();
  assert.equal(snap.lastSeq, 5n);
  const restored = Tasks.restore(memRedex(t), ORIGIN, snap);
  t.after(() => restored.close());
  assert.deepEqual(restored.findMany(), before);
  assert.equal(restored.progress().appSeq, appSeq);
  assert.throws(() => Tasks.restore(memRedex(t), ORIGIN, { data: Buffer.from([0xff, 0xff, 0xff]), lastSeq: 0n }), CortexSnapshotError);
});

test('a persistent model recovers its state and app seq after reopening', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netmesh-cortex-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  let before;
  let appSeq;
  {
    const redex = Redex.open(dir);
    const mem = await Memories.openAsync(redex, ORIGIN, { persistent: true, fsync: { everyN: 1 } });
    mem.store(1, 'remember me', ['x'], 's');
    await mem.waitForSeq(mem.pin(1), 5000);
    before = mem.findMany();
    appSeq = mem.progress().appSeq;
    mem.close();
    redex.close();
  }
  assert.ok(fs.statSync(path.join(dir, 'cortex', 'memories')).isDirectory());
  const redex = Redex.open(dir);
  t.after(() => redex.close());
  const mem = Memories.open(redex, ORIGIN, { persistent: true });
  t.after(() => mem.close());
  await mem.waitForSeq(1, 5000);
  assert.deepEqual(mem.findMany(), before);
  assert.equal(mem.progress().appSeq, appSeq);
});

test('a halted fold fails waits promptly and refuses writes', async (t) => {
  const redex = memRedex(t);
  const tasks = Tasks.open(redex, ORIGIN, { policy: 'stop' });
  t.after(() => tasks.close());
  await tasks.waitForSeq(tasks.create(1, 'ok'), 5000);
  // The log handle shares the model's file (closing it would close the
  // model's file too): it stays open until the test ends.
  const log = redex.openFile('cortex/tasks');
  t.after(() => log.close());
  const bad = log.append(Buffer.from('\x00garbage, not an EventMeta record'));
  const started = Date.now();
  await assert.rejects(tasks.waitForSeq(bad + 1n, 10_000), CortexHaltedError);
  assert.ok(Date.now() - started < 5000);
  const deadline = Date.now() + 5000;
  while (tasks.progress().running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const p = tasks.progress();
  assert.deepEqual([p.running, p.errors], [false, 1n]);
  assert.ok(p.lastError);
  assert.throws(() => tasks.create(2, 'refused'), CortexHaltedError);
});

test('invalid queries and configurations name the key', (t) => {
  const redex = memRedex(t);
  const tasks = Tasks.open(redex, ORIGIN);
  t.after(() => tasks.close());
  assert.throws(() => tasks.findMany({ orderBy: 'nope' }), (e) => e instanceof CortexInvalidQueryError && /nope/.test(e.message));
  assert.throws(() => tasks.findMany({ tagsAny: ['a'] }), (e) => e instanceof CortexInvalidQueryError && /tagsAny/.test(e.message));
  assert.throws(() => tasks.countWhere({ limit: -1 }), (e) => e instanceof CortexInvalidQueryError && /limit/.test(e.message));
  assert.throws(() => Tasks.open(redex, ORIGIN, { policy: 'sometimes' }), (e) => e instanceof CortexInvalidConfigError && /policy/.test(e.message));
  assert.throws(() => Tasks.open(redex, ORIGIN, { start: 'middle' }), (e) => e instanceof CortexInvalidConfigError && /start/.test(e.message));
  assert.throws(() => Tasks.open(redex, ORIGIN, { colour: 1 }), (e) => e instanceof CortexInvalidConfigError && /colour/.test(e.message));
  assert.throws(() => Tasks.open(redex, -1), RangeError);
  assert.equal(
    netmesh.internal.cortexConfigJson({ persistent: true, policy: 'log_and_continue', start: 18446744073709551615n, changesCapacity: 8 }),
    '{"persistent":true,"policy":"log_and_continue","start":{"from_seq":18446744073709551615},"changes_capacity":8}',
  );
  assert.equal(
    netmesh.internal.cortexConfigJson({ persistent: true, repair: true, policy: 'stop' }),
    '{"persistent":true,"repair":true,"policy":"stop"}',
  );
});

test('start: live skips the history', async (t) => {
  const redex = memRedex(t);
  const first = Tasks.open(redex, ORIGIN);
  await first.waitForSeq(first.create(1, 'old'), 5000);
  first.close();
  const live = Tasks.open(redex, ORIGIN, { start: 'live' });
  t.after(() => live.close());
  await live.waitForSeq(live.create(2, 'new'), 5000);
  assert.deepEqual(ids(live.findMany()), [2n]);
});

test('a closed model throws ShuttingDownError and its watches end', async (t) => {
  const tasks = Tasks.open(memRedex(t), ORIGIN);
  const watch = tasks.watch();
  assert.deepEqual((await watch.next(5000)).value.rows, []);
  tasks.close();
  tasks.close();
  assert.throws(() => tasks.create(1, 'x'), ShuttingDownError);
  assert.throws(() => tasks.findMany(), ShuttingDownError);
  await assert.rejects(tasks.waitForSeq(0), ShuttingDownError);
  assert.deepEqual(await watch.next(5000), { done: true, value: undefined });
});
