'use strict';
// NetDB through the Node SDK: both models through one handle, bundles
// (round trip, a disabled model refused, corrupt bytes), failure-atomic
// open, persistence, and use after close.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  NetDB,
  Redex,
  Tasks,
  Memories,
  CortexInvalidConfigError,
  CortexSnapshotError,
  InvalidArgumentError,
  RedexLockedError,
  RedexNoPersistentDirError,
  ShuttingDownError,
} = require('netmesh');

const BIG = (1n << 63n) + 12345n;
const ORIGIN = 0x123456789abcdef0n;
const BOTH = { withTasks: true, withMemories: true };

function memRedex(t) {
  const r = Redex.open();
  t.after(() => r.close());
  return r;
}

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netmesh-netdb-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const ids = (rows) => rows.map((r) => r.id);

test('netdb: operations through both models', async (t) => {
  const db = NetDB.open(memRedex(t), ORIGIN, BOTH);
  t.after(() => db.close());
  assert.ok(db.tasks instanceof Tasks && db.memories instanceof Memories);
  assert.equal(db.tasks, db.tasks);
  assert.equal(db.tasks.originHash, ORIGIN);
  db.tasks.create(1, 'write the report');
  db.tasks.create(BIG, 'big');
  const done = db.tasks.complete(1);
  db.memories.store(10, 'the sky is blue', ['color', 'sky'], 'eyes');
  const pinned = await db.memories.pinAsync(10);
  assert.equal(await db.tasks.waitForSeq(done, 5000), true);
  assert.equal(await db.memories.waitForSeq(pinned, 5000), true);
  assert.equal(db.tasks.findUnique(1).status, 'completed');
  assert.deepEqual(ids(db.tasks.findMany()), [1n, BIG]);
  const m = db.memories.findUnique(10);
  assert.equal(m.pinned, true);
  assert.deepEqual(m.tags, ['color', 'sky']);
});

test('netdb: a model not enabled, and bad options', (t) => {
  const r = memRedex(t);
  const db = NetDB.open(r, ORIGIN, { withMemories: true });
  assert.throws(() => db.tasks, InvalidArgumentError);
  db.memories.store(1, 'only memories');
  db.close();
  assert.throws(() => NetDB.open(r, ORIGIN, { withTasks: true, policy: 'retry' }), CortexInvalidConfigError);
  assert.throws(() => NetDB.open(r, ORIGIN, { withTask: true }), /withTask/);
  assert.throws(() => NetDB.open(r, ORIGIN, { withTasks: 1 }), CortexInvalidConfigError);
  assert.throws(() => NetDB.open(r, ORIGIN, { withTasks: true, persistent: true }), RedexNoPersistentDirError);
  assert.throws(() => NetDB.open({}, ORIGIN, BOTH), TypeError);
});

test('netdb: a bundle round trip', async (t) => {
  const db = await NetDB.openAsync(memRedex(t), ORIGIN, BOTH);
  db.tasks.create(1, 'one');
  db.tasks.create(BIG, 'big');
  db.memories.store(5, 'remember', ['x']);
  const bundle = db.snapshotBundle();
  assert.ok(Buffer.isBuffer(bundle) && bundle.length > 0);
  assert.deepEqual(await db.snapshotBundleAsync(), bundle);
  db.tasks.create(3, 'after the cut');
  await db.closeAsync();
  const restored = NetDB.openFromBundle(memRedex(t), ORIGIN, bundle, BOTH);
  t.after(() => restored.close());
  assert.deepEqual(ids(restored.tasks.findMany()), [1n, BIG]);
  assert.deepEqual(ids(restored.memories.findMany()), [5n]);
  const seq = restored.tasks.create(9, 'after restore');
  assert.equal(await restored.tasks.waitForSeq(seq, 5000), true);
  assert.equal(restored.tasks.countWhere(), 3n);
});

test('netdb: a bundle naming a disabled model is refused', (t) => {
  const db = NetDB.open(memRedex(t), ORIGIN, BOTH);
  db.memories.store(1, 'm');
  const bundle = db.snapshotBundle();
  db.close();
  const r = memRedex(t);
  assert.throws(() => NetDB.openFromBundle(r, ORIGIN, bundle, { withTasks: true }), (e) => e instanceof CortexSnapshotError && /memories/.test(e.message));
  assert.throws(() => NetDB.openFromBundle(r, ORIGIN, Buffer.from([1, 9, 1]), BOTH), CortexSnapshotError);
  // Nothing was left open: the models open on the same Redex.
  const again = NetDB.open(r, ORIGIN, BOTH);
  again.tasks.create(1, 'fine');
  again.close();
});

test('netdb: a failed open leaves nothing open', (t) => {
  const dir = tempDir(t);
  const r = Redex.open(dir);
  const holder = Redex.open(dir);
  t.after(() => {
    r.close();
    holder.close();
  });
  // The memories log is held by another manager on the directory: the tasks
  // model the NetDB opened first must be closed again.
  const held = Memories.open(holder, 1n, { persistent: true });
  const config = { withTasks: true, withMemories: true, persistent: true };
  assert.throws(() => NetDB.open(r, ORIGIN, config), RedexLockedError);
  held.close();
  Tasks.open(holder, 1n, { persistent: true }).close();
  NetDB.open(r, ORIGIN, config).close();
});

test('netdb: persistent models reopen; shutdown keeps queries', async (t) => {
  const dir = tempDir(t);
  const config = { withTasks: true, withMemories: true, persistent: true };
  {
    const r = Redex.open(dir);
    const db = NetDB.open(r, ORIGIN, config);
    assert.equal(await db.tasks.waitForSeq(db.tasks.create(4, 'kept'), 5000), true);
    db.shutdown();
    db.shutdown(); // idempotent
    assert.throws(() => db.tasks.create(5, 'refused'));
    assert.equal(db.tasks.findUnique(4).title, 'kept');
    db.close();
    r.close();
  }
  const r = Redex.open(dir);
  const db = NetDB.open(r, ORIGIN, config);
  assert.equal(db.tasks.findUnique(4).title, 'kept');
  db.close();
  r.close();
});

test('netdb: use after close fails cleanly', async (t) => {
  const db = NetDB.open(memRedex(t), ORIGIN, BOTH);
  const { tasks, memories } = db;
  tasks.create(1, 'x');
  // Closing a lent model only lets go of it: the NetDB still serves.
  memories.close();
  await memories.closeAsync();
  assert.throws(() => memories.countWhere(), ShuttingDownError);
  db.snapshotBundle();
  // A wait on a lent model wakes when the NetDB is freed.
  const waiting = tasks.waitForSeq(1_000_000n);
  db.close();
  db.close();
  await assert.rejects(waiting, ShuttingDownError);
  assert.equal(db.closed, true);
  assert.throws(() => db.snapshotBundle(), ShuttingDownError);
  assert.throws(() => db.shutdown(), ShuttingDownError);
  await assert.rejects(db.snapshotBundleAsync(), ShuttingDownError);
  assert.throws(() => tasks.create(2, 'y'), ShuttingDownError);
  await db.closeAsync();
  const scoped = NetDB.open(memRedex(t), ORIGIN, { withTasks: true });
  scoped.tasks.create(1, 'disposed');
  await scoped[Symbol.asyncDispose]();
  assert.equal(scoped.closed, true);
  scoped[Symbol.dispose]();
});

test('netdb: close races calls on the worker pool', async (t) => {
  for (let round = 0; round < 20; round++) {
    const db = NetDB.open(memRedex(t), ORIGIN, BOTH);
    const { tasks, memories } = db;
    const pending = [];
    for (let i = 0; i < 16; i++) {
      pending.push(tasks.createAsync(i, 't'), memories.storeAsync(i, 'm', ['x']), db.snapshotBundleAsync());
    }
    db.close();
    for (const r of await Promise.allSettled(pending)) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof ShuttingDownError, String(r.reason));
    }
    assert.throws(() => tasks.create(99, 'late'), ShuttingDownError);
  }
});
