'use strict';
// RedEX through the SDK: files, batches, ranges, persistence, tails (backfill,
// live, lagged, end), configuration and lock errors, and tails that wait on
// the async pool without blocking the event loop or starving other calls.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const netmesh = require('netmesh');
const {
  Redex,
  RedexFile,
  RedexTail,
  Identity,
  ShuttingDownError,
  RedexError,
  RedexLockedError,
  RedexClosedError,
  RedexInvalidConfigError,
  RedexInlineLengthError,
  RedexNoPersistentDirError,
  RedexCorruptError,
  ChannelNameError,
  internal,
} = netmesh;
const { rawHandle } = internal;
const { startWorkers } = require('./race-helpers');

/** A temporary base directory, removed when test `t` ends. */
function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netmesh-redex-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Closes `x` when test `t` ends. */
function own(t, x) {
  t.after(() => x.close());
  return x;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a rejection after `ms`. */
function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test('append, appendInline, appendBatch, read, readRange, nextSeq, length', async (t) => {
  const redex = own(t, Redex.open());
  assert.equal(redex.baseDir, null);
  const file = own(t, redex.openFile('sdk/basic'));
  assert.ok(file instanceof RedexFile);
  assert.equal(file.name, 'sdk/basic');
  assert.equal(file.nextSeq, 0n);
  assert.equal(file.length, 0n);

  assert.equal(file.append(Buffer.from('zero')), 0n);
  assert.equal(file.appendInline(Buffer.from('8 bytes!')), 1n);
  assert.throws(() => file.appendInline(Buffer.from('seven!!')), (e) => {
    assert.ok(e instanceof RedexInlineLengthError);
    assert.ok(e instanceof RedexError);
    assert.equal(e.code, 'NET_ERR_REDEX_INLINE_LENGTH');
    assert.match(e.message, /8 bytes/);
    return true;
  });
  assert.equal(file.appendBatch([Buffer.from('a'), new Uint8Array(0), 'ccc']), 2n);
  // An empty batch appends nothing: an explicit null, never a made-up seq.
  assert.equal(file.appendBatch([]), null);
  assert.equal(await file.appendBatchAsync([]), null);
  assert.equal(file.nextSeq, 5n);
  assert.equal(file.length, 5n);

  assert.deepEqual(file.read(4n), Buffer.from('ccc'));
  assert.deepEqual(file.read(1), Buffer.from('8 bytes!'));
  assert.deepEqual(file.read(3n), Buffer.alloc(0));
  assert.equal(file.read(77n), null);
  assert.deepEqual(file.readRange(1n, 4n), [
    { seq: 1n, payload: Buffer.from('8 bytes!') },
    { seq: 2n, payload: Buffer.from('a') },
    { seq: 3n, payload: Buffer.alloc(0) },
  ]);
  assert.deepEqual(file.readRange(4n, 4n), []);
  assert.deepEqual(file.readRange(9n, 100n), []);

  // The async twins, with inputs above the pool's copy limit (shared by address).
  const big = Buffer.alloc(300_000, 0xab);
  assert.equal(await file.appendAsync(big), 5n);
  assert.equal(await file.appendBatchAsync([big, 'x', Buffer.alloc(70_000, 1)]), 6n);
  assert.deepEqual(await file.readAsync(5n), big);
  assert.equal(await file.readAsync(1000n), null);
  const range = await file.readRangeAsync(5n, 100n);
  assert.deepEqual(range.map((e) => [e.seq, e.payload.length]), [[5n, 300_000], [6n, 300_000], [7n, 1], [8n, 70_000]]);
  assert.ok(range.every((e) => Buffer.isBuffer(e.payload)));
  assert.deepEqual(range[1].payload, big);
  assert.deepEqual(range[3].payload, Buffer.alloc(70_000, 1));
  await file.syncAsync(); // a no-op for a memory file
  file.sync();
  assert.equal(file.length, 9n);

  // JS types are checked before libnet.
  assert.throws(() => file.append(42), TypeError);
  assert.throws(() => file.read(-1n), RangeError);
  assert.throws(() => file.appendBatch('abc'), TypeError);
  assert.throws(() => file.tail(-1), RangeError);
});

test('a persistent file survives close and reopen (also from a new manager)', async (t) => {
  const base = tempDir(t);
  const payloads = Array.from({ length: 50 }, (_, i) => Buffer.alloc(i * 37, i));
  {
    const redex = own(t, new Redex(base));
    assert.equal(redex.baseDir, base);
    const file = redex.openFile('orders/eu', { persistent: true, fsync: { everyN: 10 } });
    assert.equal(file.appendBatch(payloads.slice(0, 20)), 0n);
    for (const p of payloads.slice(20, 49)) file.append(p);
    assert.equal(await file.appendAsync(payloads[49]), 49n);
    file.appendInline(Buffer.from('inline!!'));
    file.sync();
    file.close();
    file.close(); // idempotent
    assert.equal(file.closed, true);
    assert.throws(() => file.length, ShuttingDownError);
  }
  {
    const redex = own(t, new Redex(base));
    const file = own(t, await redex.openFileAsync('orders/eu', { persistent: true }));
    assert.equal(file.length, 51n);
    assert.equal(file.nextSeq, 51n);
    const all = file.readRange(0n, 1000n);
    assert.equal(all.length, 51);
    for (let i = 0; i < 50; i++) assert.deepEqual(all[i], { seq: BigInt(i), payload: payloads[i] });
    assert.deepEqual(all[50].payload, Buffer.from('inline!!'));
    assert.equal(file.append('after reopen'), 51n);
  }
  assert.ok(fs.readdirSync(path.join(base, 'orders', 'eu')).length > 0, 'the channel has its own directory');
});

test('a tail backfills, then follows appends made concurrently on another thread: no gap, no duplicate', async (t) => {
  const redex = own(t, Redex.open());
  const file = own(t, redex.openFile('sdk/tail'));
  const BACKFILL = 300;
  const LIVE = 2000;
  file.appendBatch(Array.from({ length: BACKFILL }, (_, i) => `pre:${i}`));
  const [writer] = await startWorkers(1);
  t.after(() => writer.terminate());

  const tail = file.tail(0n);
  assert.ok(tail instanceof RedexTail);
  assert.equal(tail.position, 0n);
  // Start the live appends on another thread while the backfill is being read.
  const writing = writer.send('appendMany', { handle: rawHandle(file), count: LIVE, tag: 'live', every: 50 }).done;
  // ...and some from the pool too, interleaved.
  const pooled = [];
  for (let i = 0; i < 20; i++) pooled.push(file.appendAsync(`pool:${i}`));

  const seen = [];
  for await (const item of tail) {
    assert.equal(item.lagged, false);
    seen.push(item);
    if (seen.length === BACKFILL + LIVE + 20) break;
  }
  const w = await writing;
  assert.equal(w.status, 0, w.message);
  const poolSeqs = await Promise.all(pooled);
  assert.equal(tail.closed, true, 'break closed the tail');

  // Every seq exactly once, in order, with the payload that was appended at it.
  assert.deepEqual(seen.map((e) => e.seq), Array.from({ length: seen.length }, (_, i) => BigInt(i)));
  for (let i = 0; i < BACKFILL; i++) assert.equal(seen[i].payload.toString(), `pre:${i}`);
  const bySeq = new Map(seen.map((e) => [e.seq, e.payload.toString()]));
  w.seqs.forEach((seq, i) => assert.equal(bySeq.get(seq), `live:${i}`));
  poolSeqs.forEach((seq, i) => assert.equal(bySeq.get(seq), `pool:${i}`));
  assert.equal(tail.position, BigInt(seen.length));
  t.diagnostic(`${seen.length} entries, ${LIVE} appended from another thread while tailing`);
});

test('lagged: retention removed entries before the reader got to them; iteration goes on', async (t) => {
  const redex = own(t, Redex.open());
  const file = own(t, redex.openFile('sdk/lag', { retention: { maxEvents: 2 } }));
  const tail = own(t, file.tail(0n));
  for (let i = 0; i < 5; i++) file.append(Buffer.from([i]));
  assert.equal(file.sweepRetention(), 3n);
  assert.equal(file.length, 2n);
  assert.equal(file.read(0n), null);

  const r1 = await tail.next();
  assert.deepEqual(r1, { done: false, value: { lagged: true, missedFrom: 0n, resumeAt: 3n } });
  assert.equal(tail.position, 3n);
  const r2 = await tail.next();
  assert.deepEqual(r2, { done: false, value: { lagged: false, seq: 3n, payload: Buffer.from([3]) } });

  // (A poll also fetches what else is ready: 4 was read along with 3.)
  assert.deepEqual((await tail.next(0)).value, { lagged: false, seq: 4n, payload: Buffer.from([4]) });
  assert.equal(await tail.next(0), null);
  assert.equal(tail.position, 5n);

  // A second lag in the middle of a for-await loop: reported as an item, and
  // the loop keeps going.
  for (let i = 5; i < 10; i++) file.append(Buffer.from([i]));
  assert.equal(await file.sweepRetentionAsync(), 5n); // 3..7 removed, 8 and 9 stay
  const items = [];
  for await (const item of tail) {
    items.push(item);
    if (!item.lagged && item.seq === 9n) break;
  }
  assert.deepEqual(items, [
    { lagged: true, missedFrom: 5n, resumeAt: 8n },
    { lagged: false, seq: 8n, payload: Buffer.from([8]) },
    { lagged: false, seq: 9n, payload: Buffer.from([9]) },
  ]);
  // A tail started below what retention kept reports the lag first.
  const late = own(t, file.tail(1n));
  assert.deepEqual((await late.next(0)).value, { lagged: true, missedFrom: 1n, resumeAt: 8n });
});

test('a second writer of a persistent channel is refused with RedexLockedError until the first closes', async (t) => {
  const base = tempDir(t);
  const first = own(t, new Redex(base));
  const second = own(t, new Redex(base));
  const file = first.openFile('locked/chan', { persistent: true });
  assert.throws(
    () => second.openFile('locked/chan', { persistent: true }),
    (e) => e instanceof RedexLockedError && e.status === netmesh.Status.NET_ERR_REDEX_LOCKED && /locked/.test(e.message),
  );
  await assert.rejects(second.openFileAsync('locked/chan', { persistent: true }), RedexLockedError);
  file.close();
  const again = own(t, second.openFile('locked/chan', { persistent: true }));
  assert.equal(again.length, 0n);
});

test('configuration errors are RedexInvalidConfigError naming the key', (t) => {
  const base = tempDir(t);
  const redex = own(t, new Redex(base));
  const cases = [
    [{ persistant: true }, /persistant/],
    [{ fsync: 'always' }, /fsync.*always/],
    [{ fsync: { evryN: 1 } }, /fsync.*evryN/],
    [{ fsync: { everyN: -1 } }, /fsync\.everyN/],
    [{ fsync: { everyN: 1.5 } }, /fsync\.everyN/],
    [{ fsync: { everyN: 1, intervalMs: 5 } }, /fsync.*exactly one/],
    [{ retention: { maxEvent: 2 } }, /retention.*maxEvent/],
    [{ retention: 5 }, /retention/],
    [{ persistent: 'yes' }, /persistent/],
    [{ fsync: { everyN: 2 } }, /persistent/], // libnet: a policy other than never needs persistent
    ['{"persistant": true}', /persistant/], // a JSON string goes to libnet as is
    ['not json', /config JSON/],
  ];
  for (const [options, pattern] of cases) {
    assert.throws(
      () => redex.openFile('cfg/x', options),
      (e) => {
        assert.ok(e instanceof RedexInvalidConfigError, `${JSON.stringify(options)}: ${e.name}: ${e.message}`);
        assert.equal(e.code, 'NET_ERR_REDEX_INVALID_CONFIG');
        assert.match(e.message, pattern);
        return true;
      },
    );
  }
  assert.throws(() => redex.openFile('cfg/x', 42), TypeError);
  // The options marshalled to libnet's JSON (camelCase to snake_case, bigints exact).
  assert.equal(
    internal.redexConfigJson({
      persistent: true,
      fsync: { intervalMs: 10, maxBytes: 1n << 40n },
      retention: { maxEvents: 5, maxBytes: undefined, maxAgeMs: 1000n },
    }),
    '{"persistent":true,"fsync":{"interval_ms":10,"max_bytes":1099511627776},"retention":{"max_events":5,"max_age_ms":1000}}',
  );
  assert.equal(internal.redexConfigJson({}), null);
  assert.equal(internal.redexConfigJson({ fsync: 'never' }), '{"fsync":"never"}');
  // Every accepted form opens.
  for (const fsync of ['never', { everyN: 3 }, { intervalMs: 5 }, { intervalMs: 5, maxBytes: 4096 }]) {
    const f = redex.openFile(`cfg/ok${JSON.stringify(fsync).replace(/\W/g, '')}`, { persistent: true, fsync });
    f.append('x');
    f.close();
  }
  // Other open errors.
  assert.throws(() => redex.openFile('bad//name'), ChannelNameError);
  const memory = own(t, new Redex());
  assert.throws(() => memory.openFile('p', { persistent: true }), RedexNoPersistentDirError);
  assert.throws(() => new Redex(''), TypeError);
});

test('closing the file ends its tails (pending and later next), and other handles get RedexClosedError', async (t) => {
  const redex = own(t, Redex.open());
  const file = redex.openFile('sdk/end');
  const twin = own(t, redex.openFile('sdk/end')); // the same channel: a second handle to the same file
  file.append('one');
  const tail = file.tail(0n);
  const items = [];
  const loop = (async () => {
    for await (const item of tail) items.push(item.seq);
    return 'ended';
  })();
  const pending = own(t, twin.tail(5n)).next(); // waiting for an entry that will never come
  await sleep(150);
  assert.deepEqual(items, [0n]);
  file.close();
  assert.equal(await within(2000, loop, 'the for-await loop'), 'ended');
  assert.deepEqual(await within(2000, pending, 'a pending next()'), { done: true, value: undefined });
  assert.equal(tail.closed, true);
  assert.deepEqual(await tail.next(), { done: true, value: undefined });
  assert.throws(() => twin.append('x'), RedexClosedError);
  // A tail of a closed file ends at once.
  assert.deepEqual(await within(1000, twin.tail(0n).next(), 'a tail of a closed file'), { done: true, value: undefined });
});

test('tail.next(timeoutMs): null on timeout, 0 returns only what is ready, close ends it', async (t) => {
  const redex = own(t, Redex.open());
  const file = own(t, redex.openFile('sdk/timeout'));
  const tail = own(t, file.tail(0n));
  const t0 = performance.now();
  assert.equal(await tail.next(120), null);
  const waited = performance.now() - t0;
  assert.ok(waited >= 110 && waited < 1000, `next(120) took ${waited} ms`);
  assert.equal(await tail.next(0), null);
  file.append('ready');
  assert.deepEqual((await tail.next(0)).value.payload, Buffer.from('ready'));
  // Calls are served in order, each with its own item.
  const a = tail.next();
  const b = tail.next(5000);
  file.appendBatch(['x', 'y']);
  assert.deepEqual([(await a).value.seq, (await b).value.seq], [1n, 2n]);
  // A live append wakes a waiting next at once, not at the end of its poll
  // slice (which would take ~30 ms here: append 20 ms into a 50 ms slice).
  const latencies = [];
  for (let i = 0; i < 5; i++) {
    const waiting = tail.next();
    await sleep(20);
    const appendedAt = performance.now();
    file.append('wake');
    const woke = await waiting;
    latencies.push(performance.now() - appendedAt);
    assert.equal(woke.value.seq, 3n + BigInt(i));
  }
  latencies.sort((x, y) => x - y);
  t.diagnostic(`live delivery latencies (ms): ${latencies.map((l) => l.toFixed(1)).join(', ')}`);
  assert.ok(latencies[2] < 15, `median delivery took ${latencies[2].toFixed(1)} ms`);
  // close() resolves a pending next with done, promptly.
  const pending = tail.next();
  await sleep(30);
  tail.close();
  assert.deepEqual(await within(1000, pending, 'next after close'), { done: true, value: undefined });
  tail.close(); // idempotent
  await assert.rejects(tail.next(-1), TypeError);
});

test('blocked tails keep the event loop running and do not starve other async calls', async (t) => {
  const redex = own(t, Redex.open());
  const file = own(t, redex.openFile('sdk/starve'));
  const id = own(t, Identity.fromSeed(Buffer.alloc(32, 7)));
  // More blocked tails than pool workers.
  const TAILS = internal.poolSize() + 2;
  const tails = Array.from({ length: TAILS }, () => own(t, file.tail(0n)));
  const firsts = tails.map((tail) => tail.next());
  await sleep(100); // every tail is now polling

  let ticks = 0;
  let maxGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 5);
  const t0 = performance.now();
  try {
    const work = [];
    for (let i = 0; i < 10; i++) work.push(id.signAsync(`message ${i}`), file.readAsync(1000n));
    const results = await within(3000, Promise.all(work), 'async calls behind blocked tails');
    assert.equal(results.length, 20);
    assert.ok(results.filter((r) => Buffer.isBuffer(r)).every((sig) => sig.length === 64));
  } finally {
    clearInterval(timer);
  }
  const elapsed = performance.now() - t0;
  t.diagnostic(`${TAILS} blocked tails on ${internal.poolSize()} workers: 20 async calls took ${elapsed.toFixed(0)} ms, ${ticks} ticks, max gap ${maxGap.toFixed(1)} ms`);
  assert.ok(maxGap < 100, `the event loop stalled ${maxGap} ms`);

  // One append reaches every blocked tail.
  file.append('to all');
  const got = await within(2000, Promise.all(firsts), 'delivery to every tail');
  for (const r of got) assert.deepEqual(r.value, { lagged: false, seq: 0n, payload: Buffer.from('to all') });
});

function runChild(code, env = {}) {
  return spawnSync(process.execPath, ['-e', code], {
    cwd: process.cwd(),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

test('with a single pool worker, a tail waiting forever still lets other async calls through', () => {
  const r = runChild(
    `
    const { Redex, Identity, internal } = require('netmesh');
    (async () => {
      const file = new Redex().openFile('one/worker');
      const tail = file.tail(0n);
      const got = tail.next(); // waits forever, polling the only worker
      await new Promise((r) => setTimeout(r, 100));
      const id = Identity.generate();
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await id.signAsync('x');
      const signMs = performance.now() - t0;
      file.append('hello');
      const { value } = await got;
      console.log('pool', internal.poolSize(), 'signs', signMs < 2000 ? 'ok' : 'slow ' + signMs, 'got', value.payload.toString());
      tail.close(); file.close(); id.close();
    })();
    `,
    { NETMESH_THREADS: '1' },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /pool 1 signs ok got hello/);
});

test('a pending tail keeps the process alive; closing it lets the process exit', () => {
  const t0 = Date.now();
  const r = runChild(`
    const { Redex } = require('netmesh');
    const file = new Redex().openFile('alive/tail');
    const tail = file.tail(0n);
    (async () => {
      for await (const item of tail) console.log('got', item.payload.toString());
      console.log('ended');
    })();
    // Nothing else keeps the process up but the pending tail.
    setTimeout(() => file.append('late'), 300).unref();
    setTimeout(() => tail.close(), 600).unref();
  `);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /got late\nended/);
  assert.ok(Date.now() - t0 < 20_000);
});

// ---- recovery ---------------------------------------------------------------

/** Creates persistent channel `name` under `base` with `n` entries and closes it. */
function writeChannel(base, name, n) {
  const redex = new Redex(base);
  const f = redex.openFile(name, { persistent: true });
  for (let i = 0; i < n; i++) f.append(`entry-${i}`);
  f.close();
  redex.close();
}

/** Every file under `dir` with its contents (hex). */
function snapshot(dir) {
  const out = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const p = path.join(entry.parentPath ?? entry.path, entry.name);
    out[p] = fs.readFileSync(p).toString('hex');
  }
  return out;
}

test('a lost dat is RedexCorruptError naming it (files untouched) until opened with repair', (t) => {
  const base = tempDir(t);
  writeChannel(base, 'orders/eu', 3);
  const dat = path.join(base, 'orders', 'eu', 'v0000000001', 'dat');
  fs.rmSync(dat);
  const before = snapshot(base);
  const redex = own(t, new Redex(base));
  assert.throws(
    () => redex.openFile('orders/eu', { persistent: true }),
    (e) => {
      assert.ok(e instanceof RedexCorruptError, `${e.name}: ${e.message}`);
      assert.ok(e instanceof RedexError);
      assert.equal(e.code, 'NET_ERR_REDEX_CORRUPT');
      assert.equal(e.status, -110);
      assert.ok(e.message.includes(dat), e.message);
      return true;
    },
  );
  assert.deepEqual(snapshot(base), before, 'a refused open changed the files');

  const f = own(t, redex.openFile('orders/eu', { persistent: true, repair: true }));
  const report = f.recoveryReport();
  assert.equal(report.repaired, true);
  assert.equal(report.clean, false);
  assert.equal(report.entries, 0n);
  assert.deepEqual(
    report.dropped.map((d) => [d.position, d.storedSeq, d.reason]),
    [
      [0n, 0n, 'payload_out_of_range'],
      [1n, 1n, 'payload_out_of_range'],
      [2n, 2n, 'payload_out_of_range'],
    ],
  );
  assert.equal(f.read(0n), null);
});

test('recoveryReport: a checksum mismatch is listed; a fresh channel is clean; a memory file has none', (t) => {
  const base = tempDir(t);
  writeChannel(base, 'orders/eu', 3);
  const dat = path.join(base, 'orders', 'eu', 'v0000000001', 'dat');
  const bytes = fs.readFileSync(dat);
  bytes[0] ^= 0xff;
  fs.writeFileSync(dat, bytes);

  const redex = own(t, new Redex(base));
  const f = own(t, redex.openFile('orders/eu', { persistent: true }));
  const report = f.recoveryReport();
  assert.equal(report.clean, false);
  assert.equal(report.repaired, false);
  assert.equal(report.entries, 2n);
  assert.equal(typeof report.generation, 'number');
  assert.deepEqual(report.dropped, [{ position: 0n, seq: 0n, storedSeq: 0n, reason: 'checksum_mismatch' }]);
  assert.equal(f.read(0n), null);
  assert.equal(f.read(1n).toString(), 'entry-1');

  const fresh = own(t, redex.openFile('orders/fresh', { persistent: true })).recoveryReport();
  assert.equal(fresh.clean, true);
  assert.equal(fresh.generation, 1);
  assert.deepEqual(fresh.dropped, []);
  assert.deepEqual(fresh.notes, []);
  assert.equal(typeof fresh.records, 'bigint');

  const memory = own(t, new Redex());
  const m = memory.openFile('orders/mem');
  assert.equal(m.recoveryReport(), null);
  m.close();
  assert.throws(() => m.recoveryReport(), ShuttingDownError);
});

test('repair on a memory file is RedexInvalidConfigError', (t) => {
  const redex = own(t, new Redex(tempDir(t)));
  assert.throws(() => redex.openFile('cfg/repair', { repair: true }), (e) => {
    assert.ok(e instanceof RedexInvalidConfigError, `${e.name}: ${e.message}`);
    assert.match(e.message, /repair/);
    return true;
  });
  assert.throws(() => redex.openFile('cfg/repair', { persistent: true, repair: 'yes' }), RedexInvalidConfigError);
  assert.equal(internal.redexConfigJson({ persistent: true, repair: true }), '{"persistent":true,"repair":true}');
});
