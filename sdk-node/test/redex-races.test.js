'use strict';
// The three handle races for each RedEX handle type (manager, file, tail),
// with real threads (worker_threads calling libnet on the raw pointers):
// (1) an op after close/free gets NET_ERR_SHUTTING_DOWN, (2) concurrent frees
// are idempotent while ops race them, (3) a free waits for an op in flight
// (a blocked tail next is woken and ends; a 48 MiB append completes and is on
// disk, or loses cleanly; a persistent open recovering 48 MiB completes, or
// loses cleanly).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const netmesh = require('netmesh');
const { Redex, ShuttingDownError, RedexClosedError, internal } = netmesh;
const { fns, rawHandle, lastErrorMessage, poolEvents } = internal;
const {
  startWorkers,
  newGate,
  openGate,
  waitRunning,
  letItBlock,
  untilWon,
  interruptedWhileWaiting,
  interruptBlocked,
  wokenByTheFree,
} = require('./race-helpers');

const S = netmesh.Status;
const WAIT_FOREVER = netmesh.Constants.NET_WAIT_FOREVER;
const BIG = 48 << 20;
const DONE = { done: true, value: undefined };
// A free counts as having overlapped an op when it started at least MARGIN
// before the op's thread saw the call return; it must then return no earlier
// than SLACK before that (the op's stamp comes just after its call returns).
const MARGIN = 10_000_000n; // 10 ms
const SLACK = 5_000_000n; // 5 ms

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netmesh-redex-race-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const now = () => process.hrtime.bigint();
const ms = (ns) => Number(ns / 1000n) / 1000;

/** Busy-waits `us` microseconds: lands a free in the middle of a long op (the round checks it did). */
function spin(us) {
  const end = now() + BigInt(us) * 1000n;
  while (now() < end);
}


/** A raw call on a handle of `kind`, on this thread: its status. */
function rawOp(kind, handle) {
  switch (kind) {
    case 'manager': {
      const name = Buffer.from('race/raw');
      const out = [null];
      const s = fns.net_redex_open_file(handle, name, name.length, null, 0, out);
      if (s === 0) fns.net_redex_file_free(out[0]);
      return s;
    }
    case 'file':
      return fns.net_redex_file_append(handle, Buffer.from('x'), 1, [0n]);
    case 'tail': {
      const payload = { ptr: null, len: 0 };
      const s = fns.net_redex_tail_next(handle, 0, [0n], payload, null, null);
      if (payload.ptr) fns.net_bytes_free(payload);
      return s;
    }
  }
  throw new Error(kind);
}

const RAW_FREE = {
  manager: (h) => fns.net_redex_free(h),
  file: (h) => fns.net_redex_file_free(h),
  tail: (h) => fns.net_redex_tail_free(h),
};

test('redex race 1: ops after close throw ShuttingDownError; raw calls on the freed pointers get NET_ERR_SHUTTING_DOWN', async (t) => {
  const [w] = await startWorkers(1);
  t.after(() => w.terminate());
  for (let i = 0; i < 100; i++) {
    const redex = Redex.open();
    const file = redex.openFile('race/after');
    file.append('x');
    const tail = file.tail(0n);
    const handles = { manager: rawHandle(redex), file: rawHandle(file), tail: rawHandle(tail) };
    for (const h of Object.values(handles)) assert.equal(typeof h, 'bigint');
    // Close in an order that varies: every handle is independent.
    const closers = [() => tail.close(), () => file.close(), () => redex.close()];
    for (let k = 0; k < 3; k++) closers[(i + k) % 3]();
    assert.equal(rawHandle(redex), null);
    assert.equal(rawHandle(file), null);
    assert.equal(rawHandle(tail), null);

    // Through the SDK: the JS-side check (a closed tail simply ends).
    assert.throws(() => redex.openFile('race/other'), ShuttingDownError);
    assert.throws(() => file.append('x'), ShuttingDownError);
    assert.throws(() => file.length, ShuttingDownError);
    assert.throws(() => file.tail(0n), ShuttingDownError);
    assert.deepEqual(await tail.next(), DONE);
    if (i % 10 === 0) {
      await assert.rejects(redex.openFileAsync('race/other'), ShuttingDownError);
      await assert.rejects(file.appendAsync(Buffer.alloc(100_000)), ShuttingDownError);
      await assert.rejects(file.syncAsync(), ShuttingDownError);
    }
    // Bypassing it: the C guard answers, on this thread...
    for (const [kind, handle] of Object.entries(handles)) {
      assert.equal(rawOp(kind, handle), S.NET_ERR_SHUTTING_DOWN, `${kind} on this thread`);
      assert.match(lastErrorMessage(), /freed/);
    }
    assert.equal(fns.net_redex_file_len(handles.file, [0n]), S.NET_ERR_SHUTTING_DOWN);
    assert.equal(fns.net_redex_file_tail(handles.file, 0n, [null]), S.NET_ERR_SHUTTING_DOWN);
    assert.equal(fns.net_redex_file_close(handles.file), S.NET_ERR_SHUTTING_DOWN);
    // ...and on another thread.
    if (i % 10 === 0) {
      for (const [kind, handle] of Object.entries(handles)) {
        const r = await w.send('redexCall', { kind, handle }).done;
        assert.equal(r.status, S.NET_ERR_SHUTTING_DOWN, `${kind} on another thread`);
        assert.match(r.message, /freed/);
      }
    }
    // Freeing again is a no-op, and so is closing again.
    for (const [kind, handle] of Object.entries(handles)) RAW_FREE[kind](handle);
    tail.close();
    file.close();
    redex.close();
  }
});

test('redex race 2: concurrent frees from several threads and the SDK close, with ops racing them, for every handle type', async (t) => {
  const freers = await startWorkers(3);
  const [hammer] = await startWorkers(1);
  t.after(() => Promise.all([...freers, hammer].map((w) => w.terminate())));
  const ROUNDS = 40;
  const overlapped = { manager: 0, file: 0, tail: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of ['manager', 'file', 'tail']) {
      const redex = Redex.open();
      const file = redex.openFile(`race/free${i % 3}`);
      const tail = file.tail(0n);
      const sdk = { manager: redex, file, tail }[kind];
      const handle = rawHandle(sdk);
      // An SDK call in flight on the pool too, racing the frees.
      const inflight = {
        manager: () => redex.openFileAsync('race/pooled'),
        file: () => file.appendAsync('pooled'),
        tail: () => tail.next(500),
      }[kind]().then(
        (v) => ({ v }),
        (e) => ({ e }),
      );
      const gate = newGate();
      // Odd rounds: the frees wait until the hammer is mid-stream. Even rounds:
      // they race its first call.
      const afterHammer = i % 2 === 1;
      const frees = freers.map((w) => w.send('redexFree', { kind, handle, gate, afterHammer }));
      const hammering = hammer.send('redexHammer', { kind, handle, gate, after: 20, maxMs: 5000, closedIsOk: true });
      await Promise.all([...frees.map((f) => f.ready), hammering.ready]);
      openGate(gate);
      if (afterHammer) waitRunning(gate, 1, 2000);
      sdk.close(); // the SDK close on the main thread, racing the raw frees
      const done = await Promise.all(frees.map((f) => f.done));
      for (const d of done) assert.ok(d.t1 >= d.t0);
      const h = await hammering.done;
      assert.equal(h.other, 0, `${kind}: unexpected status ${h.other}: ${h.message}`);
      assert.equal(h.shutting, 1, `${kind}: the hammer never saw the handle freed`);
      assert.equal(h.violations, 0, `${kind}: a call succeeded after the free`);
      assert.match(h.message, /freed/);
      if (h.ok > 0) overlapped[kind]++;
      const r = await inflight;
      if (r.e) assert.ok(r.e instanceof ShuttingDownError || r.e instanceof RedexClosedError, `${kind}: ${r.e}`);
      if (kind === 'manager' && r.v) r.v.close();
      if (kind === 'tail' && r.v) assert.deepEqual(r.v, DONE);
      assert.equal(rawOp(kind, handle), S.NET_ERR_SHUTTING_DOWN);
      sdk.close(); // still idempotent
      tail.close();
      file.close();
      redex.close();
    }
  }
  t.diagnostic(`hammers that completed ops before the free: ${JSON.stringify(overlapped)} of ${ROUNDS} each`);
  for (const [kind, n] of Object.entries(overlapped)) {
    assert.ok(n >= ROUNDS / 2, `${kind}: only ${n} hammers overlapped the frees`);
  }
});

test('redex race 3 (tail): a next blocked forever on another thread is woken by the free, which returns after it left', async (t) => {
  const [reader] = await startWorkers(1);
  t.after(() => reader.terminate());
  const redex = Redex.open();
  t.after(() => redex.close());
  const file = redex.openFile('race/tail');
  t.after(() => file.close());
  await untilWon(200, 5, async (i) => {
    const tail = file.tail(file.nextSeq); // nothing will come
    const handle = rawHandle(tail);
    const outcome = await interruptBlocked(reader, 'tailNextForever', { handle }, () => {
      if (i % 2) tail.close(); // the SDK close (net_redex_tail_free) on this thread...
      else fns.net_redex_tail_free(handle); // ...or the raw free
    });
    tail.close();
    assert.equal(rawOp('tail', handle), S.NET_ERR_SHUTTING_DOWN);
    return wokenByTheFree(outcome, 'next');
  });
});

test('redex race 3 (tail): a cancel from this thread wakes a next blocked forever on another thread; the tail reads on', async (t) => {
  const [reader] = await startWorkers(1);
  t.after(() => reader.terminate());
  const redex = Redex.open();
  t.after(() => redex.close());
  const file = redex.openFile('race/tail-cancel');
  t.after(() => file.close());
  const tail = file.tail(0n);
  t.after(() => tail.close());
  const handle = rawHandle(tail);
  await untilWon(200, 5, async () => {
    const out = [null];
    assert.equal(fns.net_cancel_new(out), S.NET_OK);
    const cancel = out[0];
    const { r } = await interruptBlocked(reader, 'tailNextForever', { handle, cancel }, () =>
      assert.equal(fns.net_cancel_cancel(cancel), S.NET_OK),
    );
    assert.equal(fns.net_cancel_free(cancel), S.NET_OK);
    assert.equal(r.status, S.NET_ERR_CANCELLED);
    return interruptedWhileWaiting(r.message);
  });
  // A cancelled next consumed nothing.
  file.append('after');
  const r = await tail.next(5000);
  assert.equal(r.value.seq, 0n);
});

test('redex race 3 (tail, SDK): a for-await loop blocked in libnet ends when the tail is closed', async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const file = redex.openFile('race/tail-loop');
  t.after(() => file.close());
  const tail = file.tail(file.nextSeq);
  let n = 0;
  const loop = (async () => {
    for await (const _ of tail) n++;
  })();
  await letItBlock();
  tail.close();
  await loop;
  assert.equal(n, 0);
});

test('redex race 3 (file): a free during a 48 MiB append on another thread waits for it (then it is on disk) or the append loses cleanly', async (t) => {
  const base = tempDir(t);
  const [writer] = await startWorkers(1);
  t.after(() => writer.terminate());
  const redex = new Redex(base);
  t.after(() => redex.close());
  let waited = 0;
  let lost = 0;
  for (let i = 0; i < 16 && waited < 3; i++) {
    const name = `race/big${i}`;
    const file = redex.openFile(name, { persistent: true });
    const handle = rawHandle(file);
    const gate = newGate();
    const fill = 0x40 + i;
    const appending = writer.send('appendBig', { handle, size: BIG, fill, signal: gate }).done;
    waitRunning(gate, 1);
    spin(5000);
    const t0 = now();
    if (i % 2) file.close(); // SDK: net_redex_file_close, then net_redex_file_free
    else fns.net_redex_file_free(handle); // raw: the HandleGuard's wait alone
    const t1 = now();
    const r = await appending;
    if (r.status === 0) {
      assert.equal(r.seq, 0n);
      if (t0 + MARGIN <= r.t1) {
        assert.ok(t1 + SLACK >= r.t1, `the free returned ${ms(r.t1 - t1)} ms before the append finished`);
        waited++;
      }
      // It completed before the close, so it is on disk.
      const again = redex.openFile(name, { persistent: true });
      assert.equal(again.length, 1n);
      const payload = await again.readAsync(0n);
      assert.equal(payload.length, BIG);
      assert.ok(payload.equals(Buffer.alloc(BIG, fill)), 'the appended payload reads back intact');
      again.close();
    } else {
      assert.ok(
        r.status === S.NET_ERR_SHUTTING_DOWN || r.status === S.NET_ERR_REDEX_CLOSED,
        `append failed with ${netmesh.statusName(r.status)}: ${r.message}`,
      );
      lost++;
    }
    file.close();
    assert.equal(rawOp('file', handle), S.NET_ERR_SHUTTING_DOWN);
  }
  t.diagnostic(`the free waited for the append ${waited}x; the append lost the race ${lost}x`);
  assert.equal(waited, 3, 'the free never overlapped an in-flight append');

  // Through the pool: appendAsync, freed from another thread while it runs.
  const [freer] = await startWorkers(1);
  t.after(() => freer.terminate());
  const jobs = [];
  const onJob = (j) => jobs.push(j);
  poolEvents.on('job', onJob);
  t.after(() => poolEvents.off('job', onJob));
  const big = Buffer.alloc(BIG, 0x7e);
  let completed = 0;
  for (let i = 0; i < 6 && completed < 2; i++) {
    const name = `race/pooled${i}`;
    const file = redex.openFile(name, { persistent: true });
    jobs.length = 0;
    const appending = file.appendAsync(big).then(
      (seq) => ({ seq }),
      (error) => ({ error }),
    );
    const free = await freer.send('redexFreeAfter', { kind: 'file', handle: rawHandle(file), delayMs: 10 }).done;
    const outcome = await appending;
    if (outcome.error) {
      assert.ok(outcome.error instanceof ShuttingDownError, String(outcome.error));
    } else {
      assert.equal(outcome.seq, 0n);
      const job = jobs.find((j) => j.op === 'redexFileAppend');
      if (free.t0 + MARGIN <= job.finishedAt) {
        assert.ok(free.t1 + SLACK >= job.finishedAt, 'the free returned before the pooled append finished');
      }
      const again = redex.openFile(name, { persistent: true });
      assert.equal(again.length, 1n);
      assert.deepEqual(again.read(0n).subarray(0, 16), big.subarray(0, 16));
      again.close();
      completed++;
    }
    file.close();
  }
  assert.equal(completed, 2, 'the pooled append never got in before the free');
});

test('redex race 3 (manager): a free during an open recovering 48 MiB waits for it, or the open loses cleanly', async (t) => {
  const base = tempDir(t);
  const ENTRIES = 196_608; // 48 MiB of 256-byte entries: recovery checksums each one
  {
    const redex = new Redex(base);
    const file = redex.openFile('slow/open', { persistent: true });
    const batch = Array(4096).fill(Buffer.alloc(256, 7));
    for (let i = 0; i < ENTRIES; i += batch.length) file.appendBatch(batch);
    file.close();
    redex.close();
  }
  const [opener] = await startWorkers(1);
  t.after(() => opener.terminate());
  let waited = 0;
  let lost = 0;
  for (let i = 0; i < 20 && waited < 3; i++) {
    const redex = new Redex(base);
    const handle = rawHandle(redex);
    const gate = newGate();
    const opening = opener.send('openFile', { handle, name: 'slow/open', config: '{"persistent": true}', signal: gate }).done;
    waitRunning(gate, 1);
    spin(3000);
    const t0 = now();
    if (i % 2) redex.close(); // SDK
    else fns.net_redex_free(handle); // raw
    const t1 = now();
    const r = await opening;
    if (r.status === 0) {
      if (t0 + MARGIN <= r.t1) {
        assert.ok(t1 + SLACK >= r.t1, `the free returned ${ms(r.t1 - t1)} ms before the open finished`);
        waited++;
      }
      const len = [0n];
      assert.equal(fns.net_redex_file_len(r.file, len), S.NET_OK);
      assert.equal(BigInt(len[0]), BigInt(ENTRIES));
      fns.net_redex_file_free(r.file);
    } else {
      assert.equal(r.status, S.NET_ERR_SHUTTING_DOWN, r.message);
      lost++;
    }
    redex.close();
    assert.equal(rawOp('manager', handle), S.NET_ERR_SHUTTING_DOWN);
  }
  t.diagnostic(`the free waited for the open ${waited}x; the open lost the race ${lost}x`);
  assert.equal(waited, 3, 'the free never overlapped an in-flight open');

  // Through the pool: openFileAsync, and the SDK close on the main thread meanwhile.
  let opened = 0;
  for (let i = 0; i < 6 && opened < 2; i++) {
    const redex = new Redex(base);
    const opening = redex.openFileAsync('slow/open', { persistent: true }).then(
      (file) => ({ file }),
      (error) => ({ error }),
    );
    await new Promise((r) => setTimeout(r, 5));
    redex.close(); // blocks until the pooled open has left the handle
    const outcome = await opening;
    if (outcome.error) {
      assert.ok(outcome.error instanceof ShuttingDownError, String(outcome.error));
      continue;
    }
    assert.equal(outcome.file.length, BigInt(ENTRIES));
    outcome.file.close();
    opened++;
  }
  assert.equal(opened, 2, 'the pooled open never got in before the close');
});

test('two handles of one channel: closing one ends the other with RedexClosedError, not a crash', async (t) => {
  const [w] = await startWorkers(1);
  t.after(() => w.terminate());
  for (let i = 0; i < 50; i++) {
    const redex = Redex.open();
    const a = redex.openFile('race/shared');
    const b = redex.openFile('race/shared');
    const gate = newGate();
    const hammering = w.send('redexHammer', { kind: 'file', handle: rawHandle(b), gate, after: 0, maxMs: 2000 });
    await hammering.ready;
    openGate(gate);
    waitRunning(gate, 1, 1000);
    a.close();
    const h = await hammering.done;
    assert.equal(h.other, S.NET_ERR_REDEX_CLOSED, `${netmesh.statusName(h.other)}: ${h.message}`);
    assert.throws(() => b.append('x'), RedexClosedError);
    b.close();
    redex.close();
  }
});
