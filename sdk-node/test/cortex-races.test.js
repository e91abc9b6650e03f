'use strict';
// The three handle races for each CortEX handle type (models of each kind,
// and their watches), with real threads (worker_threads calling libnet on
// the raw pointers): (1) an op after close/free gets NET_ERR_SHUTTING_DOWN,
// (2) concurrent frees are idempotent while ops race them, (3) a free waits
// for an op in flight (a watch next or a wait_for_seq blocked forever is
// woken, and the free returns after it left; a 32 MiB write completes or
// fails cleanly).

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const { Redex, Tasks, Memories, ShuttingDownError, CortexHaltedError, RedexClosedError, internal } = netmesh;
const { fns, rawHandle, lastErrorMessage } = internal;
const {
  startWorkers,
  newGate,
  openGate,
  waitRunning,
  untilWon,
  interruptedWhileWaiting,
  interruptBlocked,
  wokenByTheFree,
} = require('./race-helpers');

const S = netmesh.Status;
const WAIT_FOREVER = netmesh.Constants.NET_WAIT_FOREVER;
const now = () => process.hrtime.bigint();
const KINDS = ['tasks', 'memories', 'tasksWatch', 'memoriesWatch'];

function spin(us) {
  const end = now() + BigInt(us) * 1000n;
  while (now() < end);
}


/** A fresh subject of `kind` with its SDK object and model. */
function make(redex, kind) {
  const model = kind.startsWith('tasks') ? Tasks.open(redex, 1) : Memories.open(redex, 1);
  const sdk = kind.endsWith('Watch') ? model.watch() : model;
  return { model, sdk, handle: rawHandle(sdk) };
}

function rawOp(kind, handle) {
  switch (kind) {
    case 'tasks':
    case 'memories':
      return fns.net_model_count_where(handle, null, 0, [0n]);
    default: {
      const rows = { ptr: null, len: 0 };
      const s = fns.net_model_watch_next(handle, 0, rows, [0n], null, null);
      if (rows.ptr) fns.net_bytes_free(rows);
      return s;
    }
  }
}

const RAW_FREE = {
  tasks: (h) => fns.net_model_free(h),
  memories: (h) => fns.net_model_free(h),
  tasksWatch: (h) => fns.net_model_watch_free(h),
  memoriesWatch: (h) => fns.net_model_watch_free(h),
};

test('cortex race 1: ops after close throw ShuttingDownError; raw calls get NET_ERR_SHUTTING_DOWN on any thread', async (t) => {
  const [w] = await startWorkers(1);
  t.after(() => w.terminate());
  const redex = Redex.open();
  t.after(() => redex.close());
  for (let i = 0; i < 20; i++) {
    for (const kind of KINDS) {
      const { model, sdk, handle } = make(redex, kind);
      sdk.close();
      if (sdk !== model) model.close();
      assert.equal(rawHandle(sdk), null);
      if (kind.endsWith('Watch')) assert.deepEqual(await sdk.next(0), { done: true, value: undefined });
      else assert.throws(() => sdk.countWhere(), ShuttingDownError);
      assert.equal(rawOp(kind, handle), S.NET_ERR_SHUTTING_DOWN, `${kind} on this thread`);
      assert.match(lastErrorMessage(), /freed/);
      if (i % 5 === 0) {
        const r = await w.send('cortexCall', { kind, handle }).done;
        assert.equal(r.status, S.NET_ERR_SHUTTING_DOWN, `${kind} on another thread`);
      }
      RAW_FREE[kind](handle); // idempotent
      sdk.close();
    }
  }
});

test('cortex race 2: concurrent frees from several threads and the SDK close, with ops racing them', async (t) => {
  const freers = await startWorkers(2);
  const [hammer] = await startWorkers(1);
  t.after(() => Promise.all([...freers, hammer].map((w) => w.terminate())));
  const redex = Redex.open();
  t.after(() => redex.close());
  const ROUNDS = 20;
  const overlapped = Object.fromEntries(KINDS.map((k) => [k, 0]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of KINDS) {
      const { model, sdk, handle } = make(redex, kind);
      const gate = newGate();
      // Odd rounds: the frees wait until the hammer is mid-stream; even
      // rounds: they race its first call.
      const afterHammer = i % 2 === 1;
      const frees = freers.map((w) => w.send('cortexFree', { kind, handle, gate, afterHammer }));
      const hammering = hammer.send('cortexHammer', { kind, handle, gate, after: 10, maxMs: 5000 });
      await Promise.all([...frees.map((f) => f.ready), hammering.ready]);
      openGate(gate);
      if (afterHammer) waitRunning(gate, 1, 2000);
      sdk.close();
      const done = await Promise.all(frees.map((f) => f.done));
      for (const d of done) assert.ok(d.t1 >= d.t0);
      const h = await hammering.done;
      assert.equal(h.other, 0, `${kind}: unexpected status ${h.other}: ${h.message}`);
      assert.equal(h.shutting, 1, `${kind}: the hammer never saw the handle freed`);
      assert.equal(h.violations, 0, `${kind}: a call succeeded after the free`);
      if (h.ok > 0) overlapped[kind]++;
      assert.equal(rawOp(kind, handle), S.NET_ERR_SHUTTING_DOWN);
      sdk.close();
      if (sdk !== model) model.close();
    }
  }
  t.diagnostic(`hammers that completed ops before the free: ${JSON.stringify(overlapped)} of ${ROUNDS} each`);
  for (const [kind, n] of Object.entries(overlapped)) {
    assert.ok(n >= ROUNDS / 2, `${kind}: only ${n} hammers overlapped the frees`);
  }
});

test('cortex race 3 (watch): a next blocked forever on another thread is woken by the free, which returns after it left', async (t) => {
  const [reader] = await startWorkers(1);
  t.after(() => reader.terminate());
  const redex = Redex.open();
  t.after(() => redex.close());
  await untilWon(200, 6, async (i) => {
    const kind = i % 2 ? 'tasksWatch' : 'memoriesWatch';
    const { model, sdk, handle } = make(redex, kind);
    assert.ok((await sdk.next(5000)).value); // the current rows: the next call blocks
    const outcome = await interruptBlocked(reader, 'watchNextForever', { handle }, () => {
      if (i % 4 < 2) sdk.close();
      else RAW_FREE[kind](handle);
    });
    sdk.close();
    model.close();
    return wokenByTheFree(outcome, 'next');
  });
});

test('cortex race 3 (model): a wait_for_seq blocked forever on another thread is woken by the model free (or a cancel)', async (t) => {
  const [waiter] = await startWorkers(1);
  t.after(() => waiter.terminate());
  const redex = Redex.open();
  t.after(() => redex.close());
  await untilWon(200, 4, async (i) => {
    const kind = i % 2 ? 'tasks' : 'memories';
    const { sdk, handle } = make(redex, kind);
    const { r, t0, t1 } = await interruptBlocked(waiter, 'waitForSeqForever', { handle, seq: 1_000_000n }, () => {
      if (i % 4 < 2) sdk.close();
      else RAW_FREE[kind](handle);
    });
    sdk.close();
    assert.equal(r.status, S.NET_ERR_SHUTTING_DOWN, r.message);
    if (!interruptedWhileWaiting(r.message)) return false; // freed before it began
    assert.ok(r.t1 <= t1 + 5_000_000n && r.t0 < t0, 'the free returned before the wait left libnet');
    return true;
  });
  const tasks = Tasks.open(redex, 1);
  t.after(() => tasks.close());
  const handle = rawHandle(tasks);
  await untilWon(200, 3, async () => {
    const out = [null];
    fns.net_cancel_new(out);
    const { r } = await interruptBlocked(waiter, 'waitForSeqForever', { handle, seq: 1_000_000n, cancel: out[0] }, () =>
      fns.net_cancel_cancel(out[0]),
    );
    fns.net_cancel_free(out[0]);
    assert.equal(r.status, S.NET_ERR_CANCELLED, r.message);
    return interruptedWhileWaiting(r.message);
  });
});

test('cortex race 3 (model): a 32 MiB write in flight when the model is freed completes or fails cleanly', async (t) => {
  const [writer] = await startWorkers(1);
  t.after(() => writer.terminate());
  const redex = Redex.open();
  t.after(() => redex.close());
  for (const kind of ['tasks', 'memories']) {
    for (let i = 0; i < 3; i++) {
      const { sdk, handle } = make(redex, kind);
      const gate = newGate();
      const writing = writer.send('cortexWriteBig', { kind, handle, size: 32 << 20, signal: gate }).done;
      waitRunning(gate, 1);
      spin(2_000); // lands the free in the middle of the write (either outcome is checked)
      if (i % 2) sdk.close();
      else RAW_FREE[kind](handle);
      const r = await writing;
      assert.ok(
        [S.NET_OK, S.NET_ERR_SHUTTING_DOWN, S.NET_ERR_CORTEX_HALTED, S.NET_ERR_REDEX_CLOSED].includes(r.status),
        `${kind}: write racing the free returned ${r.status} ${r.message}`,
      );
      sdk.close();
    }
    // Through the SDK: an async write in flight on the pool while close() runs.
    const model = kind === 'tasks' ? Tasks.open(redex, 1) : Memories.open(redex, 1);
    const big = 'x'.repeat(32 << 20);
    const p = (kind === 'tasks' ? model.createAsync(1, big) : model.storeAsync(1, big)).then(
      (v) => ({ v }),
      (e) => ({ e }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1));
    model.close();
    const r = await p;
    if (r.e) {
      assert.ok(
        r.e instanceof ShuttingDownError || r.e instanceof CortexHaltedError || r.e instanceof RedexClosedError,
        `${kind}: ${r.e}`,
      );
    } else assert.equal(typeof r.v, 'bigint');
  }
  void WAIT_FOREVER;
});
