'use strict';
// The event bus through the Node SDK: raw, packed and in-place batch
// ingest, polls with cursors and exact-integer filters, persistence over
// the embedded adapter, typed errors, RedisStreamDedup, and the three
// handle races (op after close, concurrent frees with ops racing from
// other threads, a free waits for a poll in flight). The release libnet has
// no memory adapter: the tests use the embedded RedEX adapter with memory
// files. Close and abort waking a blocked flush: test/wakeups.test.js.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const netmesh = require('netmesh');
const {
  Bus,
  RedisStreamDedup,
  BusConfigError,
  BusBackpressureError,
  BusInvalidRequestError,
  ShuttingDownError,
  internal,
} = netmesh;
const { fns, rawHandle } = internal;
const { startWorkers, newGate, waitRunning } = require('./race-helpers');

function spin(us) {
  const end = process.hrtime.bigint() + BigInt(us) * 1000n;
  while (process.hrtime.bigint() < end);
}

const S = netmesh.Status;
const MEMORY = { num_shards: 3, adapter: { type: 'redex' }, batch: { min_size: 16, max_size: 256, max_delay_ms: 1 } };

function u32(i) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(i);
  return b;
}

async function pollAll(bus) {
  const all = [];
  let cursor;
  for (;;) {
    const page = await bus.poll({ cursor, limit: 500 });
    assert.ok(page.nextCursor.length > 0);
    all.push(...page.events);
    cursor = page.nextCursor;
    if (page.events.length === 0 && !page.hasMore) return all;
  }
}

test('raw, packed and in-place batches poll back once each', async (t) => {
  const bus = Bus.open(MEMORY);
  t.after(() => bus.close());
  assert.equal(bus.numShards, 3);
  for (let i = 0; i < 1000; i++) bus.ingest(u32(i));
  const packed = [];
  for (let i = 1000; i < 4000; i++) packed.push(u32(i));
  assert.deepEqual(bus.ingestBatch(packed), { queued: 3000, sampled: 0, taken: 3000 });
  const inPlace = [];
  for (let i = 4000; i < 5000; i++) inPlace.push(u32(i));
  assert.equal(bus.ingestBatchInPlace(inPlace).taken, 1000);
  assert.equal(bus.ingestBatch([]).taken, 0);
  await bus.flush();
  const events = await pollAll(bus);
  const seen = new Set(events.map((e) => e.payload.readUInt32LE(0)));
  assert.equal(events.length, 5000);
  assert.equal(seen.size, 5000);
  for (const e of events) {
    assert.ok(e.shard < 3 && e.timestampNs > 0n && e.id.length > 0);
    assert.equal(e.dedupId, null); // only JetStream and Redis keep dedup ids
  }
  const stats = bus.stats();
  assert.equal(stats.events_dispatched, 5000);
  assert.equal(stats.adapter, 'redex');
  const report = await bus.shutdown();
  assert.equal(report.shutdown_was_lossy, false);
  assert.equal(report.events_dropped, 0);
  assert.throws(() => bus.ingest(Buffer.from('late')), ShuttingDownError);
});

test('filters compare big integers exactly', async (t) => {
  const bus = Bus.open(MEMORY);
  t.after(() => bus.close());
  const big = 2n ** 63n + 1n;
  bus.ingestBatch([Buffer.from(`{"n":${big}}`), Buffer.from(`{"n":${big - 1n}}`), Buffer.from('{"n":1}')]);
  await bus.flush();
  const page = await bus.poll({ filter: { field: 'n', op: 'eq', value: big } });
  assert.deepEqual(page.events.map((e) => e.payload.toString()), [`{"n":${big}}`]);
});

test('the embedded adapter persists, and so does the producer state', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netmesh-bus-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = { num_shards: 2, adapter: { type: 'redex', dir: path.join(dir, 'redex') }, producer_state_dir: path.join(dir, 'producer') };
  const first = Bus.open(config);
  const nonce = first.stats().producer_nonce;
  const batch = [];
  for (let i = 0; i < 3000; i++) batch.push(u32(i));
  first.ingestBatch(batch);
  first.close();
  const again = Bus.open(config);
  t.after(() => again.close());
  assert.equal(again.stats().producer_nonce, nonce);
  const events = await pollAll(again);
  assert.equal(events.length, 3000);
  assert.ok(events.every((e) => e.dedupId === null));
});

test('errors are typed and name the problem', async (t) => {
  assert.throws(() => Bus.open({ num_shards: 0 }), (e) => e instanceof BusConfigError && /num_shards/.test(e.message));
  assert.throws(() => Bus.open({ shards: 2 }), (e) => e instanceof BusConfigError && /shards/.test(e.message));
  assert.throws(() => Bus.open({ adapter: { type: 'kafka' } }), BusConfigError);
  assert.throws(() => Bus.open({ x: 1n }), BusConfigError);
  const bus = Bus.open(MEMORY);
  t.after(() => bus.close());
  await assert.rejects(bus.poll({ limit: 0 }), BusInvalidRequestError);
  await assert.rejects(bus.poll({ cursor: 'not a cursor' }), BusInvalidRequestError);
  assert.throws(() => bus.ingest('text'), TypeError);
  assert.throws(() => bus.ingestBatch(['text']), TypeError);
  const full = Bus.open({
    num_shards: 1,
    shard_capacity: 8,
    backpressure: { mode: 'fail_producer' },
    adapter: { type: 'redex' },
    batch: { min_size: 8, max_size: 8, max_delay_ms: 1000 },
  });
  t.after(() => full.close());
  const report = full.ingestBatch(Array.from({ length: 100 }, () => Buffer.from('x')));
  assert.ok(report.taken < 100 && report.queued === report.taken);
  assert.throws(() => {
    for (let i = 0; i < 1000; i++) full.ingest(Buffer.from('y'));
  }, BusBackpressureError);
});

test('RedisStreamDedup is FIFO and clamped', () => {
  const d = new RedisStreamDedup(2);
  assert.deepEqual(['a', 'b', 'a', 'c', 'a'].map((x) => d.isDuplicate(x)), [false, false, true, false, false]);
  assert.deepEqual(d.checkBatch(['x', 'y', 'x']), [false, false, true]);
  assert.deepEqual([d.size, d.capacity, d.duplicates], [2, 2, 2]);
  d.clear();
  assert.equal(d.size, 0);
  d.close();
  d.close();
  assert.throws(() => d.isDuplicate('a'), ShuttingDownError);
  const big = new RedisStreamDedup(2 ** 40);
  assert.equal(big.capacity, 1 << 24);
  big.close();
  assert.throws(() => new RedisStreamDedup(-1), RangeError);
});

test('bus race 1: ops after close throw; raw calls on the freed pointers get NET_ERR_SHUTTING_DOWN', async () => {
  const bus = Bus.open(MEMORY);
  const d = new RedisStreamDedup(8);
  const [hb, hd] = [rawHandle(bus), rawHandle(d)];
  bus.close();
  d.close();
  assert.throws(() => bus.ingest(Buffer.from('x')), ShuttingDownError);
  await assert.rejects(bus.poll(), ShuttingDownError);
  assert.equal(fns.net_bus_ingest_raw(hb, Buffer.from('x'), 1), S.NET_ERR_SHUTTING_DOWN);
  assert.equal(fns.net_bus_flush(hb, null, null), S.NET_ERR_SHUTTING_DOWN);
  const error = { status: 0, message: { ptr: null, len: 0 } };
  assert.equal(fns.net_bus_poll(hb, null, 0, {}, {}, null, error), S.NET_ERR_SHUTTING_DOWN);
  assert.equal(error.status, S.NET_ERR_SHUTTING_DOWN, 'the error comes back with the call too');
  fns.net_error_clear(error);
  await assert.rejects(bus.flush(), ShuttingDownError);
  await assert.rejects(bus.closeAsync().then(() => bus.poll()), ShuttingDownError);
  assert.equal(fns.net_redis_dedup_is_duplicate(hd, Buffer.from('x'), 1, [false]), S.NET_ERR_SHUTTING_DOWN);
  fns.net_bus_free(hb); // idempotent
  fns.net_redis_dedup_free(hd);
});

test('bus race 2: concurrent frees from two threads and the SDK, with raw ops racing on a third', async (t) => {
  const workers = await startWorkers(3);
  t.after(() => Promise.all(workers.map((w) => w.terminate())));
  for (let round = 0; round < 5; round++) {
    const bus = Bus.open(MEMORY);
    const d = new RedisStreamDedup(64);
    const handle = rawHandle(bus);
    const dedup = rawHandle(d);
    const hammer = workers[0].send('busIngestUntilFreed', { handle, dedup, maxMs: 5000 }).done;
    const frees = [1, 2].map((i) => workers[i].send('busFreeAfter', { handle, dedup, delayMs: 2 }).done);
    bus.close();
    d.close();
    const [r] = await Promise.all([hammer, ...frees]);
    assert.equal(r.other, 0, `round ${round}: ${netmesh.statusName(r.other)}`);
    assert.ok(r.shutting > 0, `round ${round}: the ops never saw the free`);
  }
});

test('bus race 3: a free waits for a poll in flight on another thread (or the poll loses cleanly)', async (t) => {
  const [poller] = await startWorkers(1);
  t.after(() => poller.terminate());
  const batch = Array.from({ length: 12_500 }, (_, i) => u32(i));
  const MARGIN = 2_000_000n; // the free started this long before the poll returned
  const SLACK = 2_000_000n; // the poll's stamp comes just after its call returns
  let overlapped = 0;
  let lost = 0;
  for (let i = 0; i < 12 && overlapped < 2; i++) {
    // 16 shards of 12 500 events: a 100 000-event poll takes a while.
    const bus = Bus.open({ num_shards: 16, adapter: { type: 'redex' }, shard_capacity: 1 << 14 });
    for (let s = 0; s < 16; s++) assert.equal(bus.ingestBatch(batch).taken, 12_500);
    await bus.flush();
    const gate = newGate();
    const polling = poller.send('busPoll', { handle: rawHandle(bus), request: '{"limit": 100000}', signal: gate }).done;
    waitRunning(gate, 1);
    spin(3000); // lands the free in the middle of the poll (the round checks it did)
    const t0 = process.hrtime.bigint();
    if (i % 2) bus.close(); // the SDK close on this thread
    else fns.net_bus_free(rawHandle(bus)); // or the raw free
    const t1 = process.hrtime.bigint();
    const r = await polling;
    if (r.status === S.NET_OK) {
      assert.equal(r.count, 100_000);
      if (t0 + MARGIN <= r.t1) {
        assert.ok(t1 + SLACK >= r.t1, 'the free returned before the poll in flight finished');
        overlapped++;
      }
    } else {
      assert.equal(r.status, S.NET_ERR_SHUTTING_DOWN, r.message);
      lost++;
    }
    bus.close();
  }
  t.diagnostic(`the free overlapped a poll ${overlapped}x; the poll lost the race ${lost}x`);
  assert.ok(overlapped > 0, 'the free never overlapped a poll in flight');
});

test('poll records decode dedup ids', () => {
  // What net_bus_poll returns for a server adapter's events (the embedded
  // adapter stores no dedup id): shard, timestamp, id, dedup id, payload.
  const { decodeEvents } = require('netmesh/lib/bus');
  const record = (shard, ts, id, dedup, payload) => {
    const head = Buffer.alloc(12);
    head.writeUInt16LE(shard, 0);
    head.writeBigUInt64LE(ts, 2);
    head.writeUInt16LE(id.length, 10);
    const d = Buffer.alloc(2);
    d.writeUInt16LE(dedup.length, 0);
    const n = Buffer.alloc(4);
    n.writeUInt32LE(payload.length, 0);
    return Buffer.concat([head, Buffer.from(id), d, Buffer.from(dedup), n, payload]);
  };
  const raw = Buffer.concat([
    record(2, 7n, '1-0', '00000000000000ab:2:5:0', Buffer.from('x')),
    record(0, 8n, '9', '', Buffer.alloc(0)),
  ]);
  const events = decodeEvents(raw);
  assert.equal(events.length, 2);
  assert.deepEqual(
    events.map((e) => [e.shard, e.timestampNs, e.id, e.dedupId, e.payload.toString()]),
    [
      [2, 7n, '1-0', '00000000000000ab:2:5:0', 'x'],
      [0, 8n, '9', null, ''],
    ],
  );
});

test('the release library refuses the test-only adapters', () => {
  for (const type of ['memory', 'discard']) {
    assert.throws(
      () => Bus.open({ adapter: { type } }),
      (e) => e instanceof BusConfigError && /test-only/.test(e.message),
    );
  }
});
