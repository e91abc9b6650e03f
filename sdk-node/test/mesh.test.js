'use strict';
// The mesh through the Node SDK: two nodes in one process exchange events
// both ways over UDP on 127.0.0.1; credit and backpressure; errors; and the
// three handle races for Mesh and MeshStream (raw pointers through libnet's
// guard; frees that wake blocked calls). Close and abort waking the SDK's
// blocked calls (recv, accept, sendBlocking): test/wakeups.test.js.

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const {
  Mesh,
  MeshConfigError,
  MeshBackpressureError,
  MeshTooLargeError,
  MeshUnknownPeerError,
  MeshHandshakeTimeoutError,
  MeshStreamClosedError,
  ShuttingDownError,
  internal,
} = netmesh;
const { fns, rawHandle } = internal;
const { startWorkers, letItBlock, untilWon, interruptBlocked, wokenByTheFree } = require('./race-helpers');
const { waitFor } = require('./helpers');

const S = netmesh.Status;
const PSK = Buffer.alloc(32, 0x5a);
const FAST = { psk: PSK, heartbeatIntervalMs: 50, sessionTimeoutMs: 1000, helloTimeoutMs: 500 };

async function pair(t, extra = {}) {
  const a = Mesh.open({ ...FAST, ...extra });
  const b = Mesh.open({ ...FAST, ...extra });
  t.after(() => {
    a.close();
    b.close();
  });
  a.start();
  b.start();
  await a.connect(b.localAddr, b.publicKey, b.nodeId);
  return [a, b];
}

async function recvN(node, n) {
  const got = [];
  const deadline = Date.now() + 20000;
  while (got.length < n) {
    assert.ok(Date.now() < deadline, `got ${got.length} of ${n}`);
    const events = await node.recv(n - got.length, 200);
    assert.ok(events !== null, 'node shut down');
    got.push(...events);
  }
  return got;
}

test('two nodes exchange events both ways', async (t) => {
  const [a, b] = await pair(t);
  const s = a.openStream(b.nodeId, 7n, { reliable: true });
  s.send('hello', Buffer.from('from a'));
  const got = await recvN(b, 2);
  assert.deepEqual(got.map((e) => [e.peer, e.streamId, e.data.toString()]), [
    [a.nodeId, 7n, 'hello'],
    [a.nodeId, 7n, 'from a'],
  ]);
  const back = b.openStream(a.nodeId, 9);
  back.send(['back']);
  const [e] = await recvN(a, 1);
  assert.deepEqual([e.peer, e.streamId, e.data.toString()], [b.nodeId, 9n, 'back']);
  assert.deepEqual(await a.recv(1, 20), []);
  const [peer] = a.peers();
  assert.equal(peer.nodeId, b.nodeId);
  assert.equal(peer.identity, 'net');
  assert.equal(peer.entity, b.entityId.toString('hex'));
  assert.ok(b.stats().events_received >= 2);
  s.close();
  back.close();
});

test('a reliable stream delivers many events in order', async (t) => {
  const [a, b] = await pair(t);
  const s = a.openStream(b.nodeId, 3, { reliable: true, window: 0 });
  const n = 5000;
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < i + 500; j++) {
      const buf = Buffer.alloc(4);
      buf.writeUInt32LE(j);
      batch.push(buf);
    }
    s.send(batch);
  }
  const got = await recvN(b, n);
  assert.deepEqual(got.map((e) => e.data.readUInt32LE(0)), [...Array(n).keys()]);
  s.close();
});

// A sender that does not wait for credit (window 0) overflows a reader that
// does not read: every dropped event reaches the application, as
// droppedBefore on the stream's next event and at once in the peer's
// droppedUnreported.
test('drops from a sender that does not wait reach the application', async (t) => {
  const a = Mesh.open(FAST);
  const b = Mesh.open({ ...FAST, shardCapacity: 100 });
  t.after(() => {
    a.close();
    b.close();
  });
  await a.connect(b.localAddr, b.publicKey, b.nodeId);
  const s = a.openStream(b.nodeId, 12, { window: 0 });
  const n = 2000;
  const event = (i) => {
    const buf = Buffer.alloc(64); // the burst exceeds the 64 KiB receive window
    buf.writeUInt32LE(i);
    return buf;
  };
  for (let i = 0; i < n; i++) s.send(event(i));
  const deadline = Date.now() + 20000;
  let stats = b.stats();
  while (stats.inbound_dropped + stats.inbound_queued !== n) {
    assert.ok(Date.now() < deadline, JSON.stringify(stats, (_, v) => (typeof v === 'bigint' ? String(v) : v)));
    await new Promise((resolve) => setTimeout(resolve, 5));
    stats = b.stats();
  }
  const dropped = stats.inbound_dropped;
  assert.ok(dropped > 0 && dropped < n);
  let expected = 0;
  for (const e of await recvN(b, n - dropped)) {
    const number = e.data.readUInt32LE(0);
    assert.equal(e.droppedBefore, BigInt(number - expected), `event ${number}`);
    expected = number + 1;
  }
  const unreported = BigInt(n - expected);
  assert.equal(b.peers()[0].droppedUnreported, unreported);
  s.send(event(n));
  const [last] = await recvN(b, 1);
  assert.equal(last.droppedBefore, unreported);
  s.close();
});

test('backpressure, too-large batches and blocking sends', async (t) => {
  const [a, b] = await pair(t);
  const s = a.openStream(b.nodeId, 4, { window: 1000 });
  const big = Buffer.alloc(900);
  s.send(big);
  assert.throws(() => s.send(big, big), MeshTooLargeError);
  try {
    s.send(big);
  } catch (err) {
    assert.ok(err instanceof MeshBackpressureError);
  }
  // Credit comes back as the reader takes events: read meanwhile.
  const reading = recvN(b, 4);
  assert.equal(await s.sendBlocking([big, big, big], 5000), true);
  assert.equal((await reading).length, 4);
  s.close();
});

test('errors name what went wrong', async (t) => {
  assert.throws(() => Mesh.open({ colour: 'blue' }), MeshConfigError);
  assert.throws(() => Mesh.open({ bind: 'nowhere' }), MeshConfigError);
  const a = Mesh.open({ ...FAST, handshakeTimeoutMs: 100, handshakeRetries: 1 });
  const stranger = Mesh.open();
  t.after(() => {
    a.close();
    stranger.close();
  });
  await assert.rejects(a.connect(stranger.localAddr, stranger.publicKey, stranger.nodeId), MeshHandshakeTimeoutError);
  assert.throws(() => a.openStream(12345n, 1), MeshUnknownPeerError);
  assert.equal(await a.accept(999, 50), null);
  assert.equal(a.tryRecv(), null);
});

test('direct form with accept', async (t) => {
  const a = Mesh.open({ ...FAST, connectForm: 'direct' });
  const b = Mesh.open(FAST);
  t.after(() => {
    a.close();
    b.close();
  });
  b.start();
  const accepted = b.accept(a.nodeId, 10000);
  await letItBlock(); // (a handshake that came before the accept is retried)
  await a.connect(b.localAddr, b.publicKey, b.nodeId);
  assert.equal(await accepted, a.localAddr);
});

test('mesh race 1: ops after close are refused, raw calls get NET_ERR_SHUTTING_DOWN', async (t) => {
  const [a, b] = await pair(t);
  const s = a.openStream(b.nodeId, 1);
  const rawNode = rawHandle(a);
  const rawStream = rawHandle(s);
  s.close();
  a.close();
  assert.throws(() => s.send('x'), ShuttingDownError);
  assert.throws(() => a.nodeId, ShuttingDownError);
  assert.equal(await a.recv(1, 0), null);
  await assert.rejects(a.accept(1n, 0), ShuttingDownError);
  await assert.rejects(a.connect(b.localAddr, b.publicKey, b.nodeId), ShuttingDownError);
  await assert.rejects(s.sendBlocking(['x']), ShuttingDownError);
  assert.equal(fns.net_mesh_node_id(rawNode, [0n]), S.NET_ERR_SHUTTING_DOWN);
  assert.equal(fns.net_mesh_recv_next(rawNode, 0, [0n], [0n], {}, null, null, null, null), S.NET_ERR_SHUTTING_DOWN);
  assert.equal(fns.net_mesh_stream_send(rawStream, null, 0), S.NET_ERR_SHUTTING_DOWN);
  fns.net_mesh_free(rawNode); // idempotent
  fns.net_mesh_stream_free(rawStream);
});

test('mesh race 2: concurrent frees from threads and the SDK close, with calls racing', async (t) => {
  const workers = await startWorkers(2);
  t.after(() => Promise.all(workers.map((w) => w.terminate())));
  for (let round = 0; round < 10; round++) {
    const a = Mesh.open(FAST);
    const b = Mesh.open(FAST);
    await a.connect(b.localAddr, b.publicKey, b.nodeId);
    const s = a.openStream(b.nodeId, 1);
    const sh = rawHandle(s);
    const ah = rawHandle(a);
    const racing = [a.recv(10, 100), s.sendBlocking(['x'], 100).catch((e) => e)];
    const frees = workers.map((w, i) =>
      w.send('meshFree', { kind: i === 0 ? 'stream' : 'mesh', handle: i === 0 ? sh : ah }).done,
    );
    s.close();
    a.close();
    await Promise.all(frees);
    for (const r of await Promise.all(racing)) {
      assert.ok(r === null || Array.isArray(r) || r === true || r instanceof ShuttingDownError || r instanceof MeshStreamClosedError, String(r));
    }
    assert.equal(fns.net_mesh_node_id(ah, [0n]), S.NET_ERR_SHUTTING_DOWN);
    b.close();
  }
});

test('mesh race 3: a free wakes a recv blocked forever on another thread, and returns after it left', async (t) => {
  const [reader] = await startWorkers(1);
  t.after(() => reader.terminate());
  await untilWon(200, 3, async (round) => {
    const a = Mesh.open(FAST);
    const handle = rawHandle(a);
    const outcome = await interruptBlocked(reader, 'meshRecvForever', { handle }, () => {
      if (round % 2) a.close(); // the SDK close on this thread
      else fns.net_mesh_free(handle); // or the raw free
    });
    a.close();
    return wokenByTheFree(outcome, 'recv');
  });
});

test('window growth and large datagrams are options', async (t) => {
  // Two nodes with large datagrams reach 65 000-byte datagrams on
  // loopback; a node without them keeps its peer at v0.11's 8192 and is
  // never probed.
  for (const [large, want] of [[true, 65000], [false, 8192]]) {
    const a = Mesh.open({ ...FAST, maxWindow: 1n << 20n, windowBudget: 8 << 20, pathProbeIntervalMs: 200 });
    const b = Mesh.open({ ...FAST, largeDatagrams: large });
    t.after(() => {
      a.close();
      b.close();
    });
    await a.connect(b.localAddr, b.publicKey, b.nodeId);
    await waitFor(`max_datagram ${want}`, () => {
      const peers = a.peers();
      const enlarged = Number(a.stats().paths_enlarged ?? 0);
      return peers.length === 1 && peers[0].identity === 'net' && peers[0].maxDatagram === want && (want === 8192 || enlarged >= 1);
    });
    if (!large) assert.equal(Number(a.stats().path_probes_sent), 0);
  }
  assert.throws(() => Mesh.open({ ...FAST, pathProbeIntervalMs: 10 }), MeshConfigError);
});
