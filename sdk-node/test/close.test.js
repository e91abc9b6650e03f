'use strict';
// Closing: a free that cannot finish (a bus whose shutdown strands events, over
// a fake Redis that never answers XADD) is a BusyError (thrown by close(),
// rejected by closeAsync()) carrying libnet's message, and libnet's warning
// about it reaches process.emitWarning; closeAsync() and `await using`
// (Symbol.asyncDispose) for every handle type; Model.shutdown() and
// Bus.shutdown() before close().

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const {
  Identity,
  Redex,
  Tasks,
  Memories,
  Mesh,
  Bus,
  RedisStreamDedup,
  BusyError,
  CortexHaltedError,
  ShuttingDownError,
  internal,
} = netmesh;
const { letItBlock } = require('./race-helpers');
const { FakeRedis } = require('./helpers');

const S = netmesh.Status;

test('a free that cannot finish is a BusyError with libnet message (close and closeAsync), and libnet warns', async (t) => {
  const timer = setInterval(() => {}, 1000); // the log puller keeps nothing alive: this does
  t.after(() => clearInterval(timer));
  // libnet logs each lossy free (one per round below; its other warnings, from
  // the adapter and the bus, are not counted): wait for both.
  const warned = [];
  let bothWarned;
  const warnings = new Promise((resolve) => (bothWarned = resolve));
  const onWarning = (w) => {
    if (w.name !== 'NetmeshWarning' || !/net_bus_t: the freed bus shut down lossily/.test(w.message)) return;
    warned.push(w);
    if (warned.length === 2) bothWarned();
  };
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  // Each round's close gives what it failed with.
  const rounds = [
    [
      'close',
      (bus) => {
        try {
          bus.close();
        } catch (err) {
          return err;
        }
        return undefined;
      },
    ],
    ['closeAsync', (bus) => bus.closeAsync().then(() => undefined, (err) => err)],
  ];
  for (const [name, close] of rounds) {
    // A bus whose one event is dispatched to a Redis that never answers its
    // XADD: the shutdown of the free gives up after 100 ms, the event
    // stranded, and the free says so with NET_ERR_BUSY.
    const redis = await FakeRedis.start();
    t.after(() => redis.close());
    const bus = Bus.open({
      num_shards: 1,
      adapter: { type: 'redis', url: redis.url, command_timeout_ms: 600000 },
      shutdown_timeout_ms: 100,
    });
    // (Only a failed test leaves it open; its free then strands the event too.)
    t.after(() => bus.closeAsync().catch((err) => assert.ok(err instanceof BusyError, String(err))));
    bus.ingest(Buffer.from('never acknowledged'));
    await redis.waitForXadd();
    const error = await close(bus);
    assert.ok(error instanceof BusyError, `${name}: ${error}`);
    assert.equal(error.status, S.NET_ERR_BUSY, name);
    assert.equal(error.code, 'NET_ERR_BUSY', name);
    assert.match(error.message, /lossily/, name);
    assert.match(error.message, /stranded/, name);
    assert.equal(bus.closed, true, name);
    bus.close(); // closed: nothing more to report
    await bus.closeAsync();
    assert.throws(() => bus.ingest(Buffer.from('late')), ShuttingDownError);
  }
  await warnings;
  for (const w of warned) {
    assert.match(w.message, /^libnet warn: net::ffi: net_bus_t: the freed bus shut down lossily: .*stranded/);
  }
});

test('closeAsync() and `await using` release every handle type; close() after it is a no-op', async () => {
  const redex = Redex.open();
  const file = redex.openFile('close/async');
  file.append('x');
  const objects = [
    Identity.generate(),
    file.tail(0n),
    Tasks.open(redex, 1),
    Memories.open(redex, 1),
    Mesh.open(),
    Bus.open({ num_shards: 1, adapter: { type: 'redex' } }),
  ];
  const tasks = objects[2];
  const watch = tasks.watch();
  const psk = Buffer.alloc(32, 0x5a);
  const [a, b] = [Mesh.open({ psk }), Mesh.open({ psk })];
  await a.connect(b.localAddr, b.publicKey, b.nodeId);
  const stream = a.openStream(b.nodeId, 1n);
  objects.push(watch, stream, a, b, file, redex);
  for (const o of objects) {
    assert.equal(o.closed, false, o.constructor.name);
    await o[Symbol.asyncDispose]();
    assert.equal(o.closed, true, o.constructor.name);
    o.close();
    await o.closeAsync();
    assert.equal(internal.rawHandle(o), null);
  }
  const dedup = new RedisStreamDedup(4);
  await dedup[Symbol.asyncDispose]();
  assert.equal(dedup.closed, true);
  const sync = new RedisStreamDedup(4);
  sync[Symbol.dispose]();
  assert.equal(sync.closed, true);
});

test('Model.shutdown() stops the fold (a pending waitForSeq rejects with CortexHaltedError); queries answer until close()', async () => {
  const redex = Redex.open();
  const tasks = Tasks.open(redex, 1);
  await tasks.waitForSeq(tasks.create(1, 'kept'), 5000);
  assert.equal(tasks.kind, netmesh.ModelKind.TASKS);
  const pending = tasks.waitForSeq(1_000_000n);
  await letItBlock();
  tasks.shutdown();
  await assert.rejects(pending, CortexHaltedError);
  assert.throws(() => tasks.create(2, 'refused'), CortexHaltedError);
  assert.deepEqual(tasks.findMany().map((r) => r.id), [1n]);
  assert.equal(tasks.progress().running, false);
  tasks.shutdown(); // idempotent
  await tasks.shutdownAsync();
  tasks.close();
  assert.throws(() => tasks.shutdown(), ShuttingDownError);
  const mem = Memories.open(redex, 1);
  await mem.shutdownAsync();
  await mem.closeAsync();
  redex.close();
});

test('Bus.shutdown() gives the report; close() after it reports nothing more', async () => {
  const bus = Bus.open({ num_shards: 2, adapter: { type: 'redex' } });
  bus.ingestBatch(Array.from({ length: 100 }, (_, i) => Buffer.from(`e${i}`)));
  const report = await bus.shutdown();
  assert.deepEqual(
    [report.shutdown_was_lossy, report.events_dropped, report.events_stranded],
    [false, 0, 0],
  );
  assert.deepEqual(await bus.shutdown(), report, 'a second shutdown gives the same report');
  assert.throws(() => bus.ingest(Buffer.from('late')), ShuttingDownError);
  await assert.rejects(bus.flush(), ShuttingDownError);
  assert.equal(typeof bus.stats().events_ingested, 'number');
  bus.close();
});

test('Model is the generic base: Tasks and Memories are kinds of it; it cannot be opened itself', () => {
  const redex = Redex.open();
  const tasks = Tasks.open(redex, 1);
  const mem = Memories.open(redex, 1);
  assert.ok(tasks instanceof netmesh.Model && mem instanceof netmesh.Model);
  assert.equal(Tasks.kind, netmesh.Constants.NET_MODEL_TASKS);
  assert.equal(Memories.kind, netmesh.Constants.NET_MODEL_MEMORIES);
  assert.equal(mem.kind, netmesh.ModelKind.MEMORIES);
  assert.throws(() => netmesh.Model.open(redex, 1), TypeError);
  // Deletes are generic.
  assert.equal(typeof tasks.delete(5), 'bigint');
  assert.equal(typeof mem.delete(5), 'bigint');
  tasks.close();
  mem.close();
  redex.close();
});
