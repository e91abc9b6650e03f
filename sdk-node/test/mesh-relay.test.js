'use strict';
// Relays and routes through the Node SDK: A, B and C each connected
// directly to a relay R only; B reaches A through R (connectVia), A reaches
// C along the route it learned (connectRouted); the routing table; errors.

const test = require('node:test');
const assert = require('node:assert/strict');
const { MeshNoRouteError, ShuttingDownError } = require('netmesh');

const { FAST, waitFor, started, link, recvOne } = require('./helpers');

const relayOf = (node, peer) => node.peers().find((p) => p.nodeId === peer)?.relay;

test('mesh relay: connectVia, connectRouted and routes', async (t) => {
  const [a, r, b, c] = [started(t), started(t), started(t), started(t)];
  for (const n of [a, b, c]) await link(n, r);

  // A relay must be a direct peer; a routed connect needs a route.
  await assert.rejects(b.connectVia(c.nodeId, a.publicKey, a.nodeId), MeshNoRouteError);
  await assert.rejects(b.connectRouted(a.publicKey, 0x1234n), MeshNoRouteError);

  await b.connectVia(r.nodeId, a.publicKey, a.nodeId);
  assert.equal(relayOf(b, a.nodeId), r.nodeId);
  await waitFor('a sees b relayed by r', () => relayOf(a, b.nodeId) === r.nodeId);
  const ba = b.openStream(a.nodeId, 3n, { reliable: true });
  assert.equal(await ba.sendBlocking(['b to a'], 20000), true);
  let e = await recvOne(a);
  assert.deepEqual([e.peer, e.streamId, e.data.toString()], [b.nodeId, 3n, 'b to a']);
  const ab = a.openStream(b.nodeId, 4n, { reliable: true });
  assert.equal(await ab.sendBlocking(['a to b'], 20000), true);
  e = await recvOne(b);
  assert.deepEqual([e.peer, e.data.toString()], [a.nodeId, 'a to b']);
  await waitFor("b's route to a through r", () => b.routes().routes.some((x) => x.destination === a.nodeId && x.nextHop === r.nodeId));
  const table = r.routes();
  assert.equal(table.nodeId, r.nodeId);
  assert.ok(table.forwarding.forwarded > 0);
  assert.equal(typeof table.pingwaves.sent, 'number');
  assert.equal(relayOf(r, a.nodeId), null);

  // A learns C at two hops from the pingwaves R relays, then connects.
  const routeToC = () => a.routes().routes.find((x) => x.destination === c.nodeId);
  await waitFor('a learns c through r', () => routeToC()?.nextHop === r.nodeId && routeToC()?.hops === 2);
  assert.equal(routeToC().kind, 'learned');
  await a.connectRouted(c.publicKey, c.nodeId);
  assert.equal(relayOf(a, c.nodeId), r.nodeId);
  const ac = a.openStream(c.nodeId, 5n, { reliable: true });
  assert.equal(await ac.sendBlocking(['a to c'], 20000), true);
  e = await recvOne(c);
  assert.deepEqual([e.peer, e.data.toString()], [a.nodeId, 'a to c']);
  for (const s of [ab, ba, ac]) s.close();

  b.close();
  assert.throws(() => b.routes(), ShuttingDownError);
  await assert.rejects(b.connectVia(r.nodeId, a.publicKey, a.nodeId), ShuttingDownError);
  await assert.rejects(b.connectRouted(a.publicKey, a.nodeId), ShuttingDownError);
});

test('mesh relay: an unanswered connectVia ends with its signal', async (t) => {
  const a = started(t, { ...FAST, handshakeTimeoutMs: 600000, handshakeRetries: 1 });
  const r = started(t);
  await link(a, r);
  const controller = new AbortController();
  // A valid key for a node id nobody has (32 zero bytes are refused at once).
  const pending = a.connectVia(r.nodeId, r.publicKey, 0x5eedn, { signal: controller.signal });
  controller.abort(new Error('gave up'));
  await assert.rejects(pending, /gave up/);
});
