'use strict';
// NAT status through the Node SDK: a node with two Net peers on other
// addresses of the loopback interface classifies itself (Open: both saw its
// own address; loopback is never advertised), the reflex override and its
// errors, a round on demand, the NAT options.

const test = require('node:test');
const assert = require('node:assert/strict');
const { InvalidArgumentError, MeshConfigError, Mesh } = require('netmesh');

const { FAST, waitFor, started } = require('./helpers');

const bound = (n, peer) => n.peers().some((p) => p.nodeId === peer && p.identity === 'net');

test('mesh nat: classification, override, reclassify', async (t) => {
  const a = started(t, { ...FAST, bind: '127.0.0.1:0' });
  const b = started(t, { ...FAST, bind: '127.0.0.2:0' });
  const c = started(t, { ...FAST, bind: '127.0.0.3:0' });
  const before = a.nat();
  assert.deepEqual([before.class, before.reflex, before.rounds, before.classify], ['unknown', null, 0, true]);
  for (const peer of [b, c]) {
    await a.connect(peer.localAddr, peer.publicKey, peer.nodeId);
    await waitFor('a bound session', () => bound(a, peer.nodeId) && bound(peer, a.nodeId));
  }
  await waitFor('a classification round', () => a.nat().rounds >= 1);
  const status = a.nat();
  assert.deepEqual([status.class, status.reflex, status.mapping], ['open', null, 'None']);
  assert.ok(a.stats().reflex_probes >= 2);

  a.setReflexOverride('203.0.113.7:4242');
  const o = a.nat();
  assert.deepEqual([o.class, o.reflex, o.override], ['open', '203.0.113.7:4242', '203.0.113.7:4242']);
  for (const bad of ['10.0.0.1:80', '0.0.0.0:80', 'not an address']) {
    assert.throws(() => a.setReflexOverride(bad), InvalidArgumentError);
  }
  assert.throws(() => a.setReflexOverride(42), TypeError);
  a.setReflexOverride(null);
  assert.equal(a.nat().override, null);

  const rounds = a.nat().rounds;
  a.reclassifyNat();
  await waitFor('a second round', () => a.nat().rounds > rounds);
});

test('mesh nat: options', (t) => {
  const a = Mesh.open({ ...FAST, natClassify: false, reflexOverride: '198.51.100.9:7000', classifyPeriodMs: 30000 });
  t.after(() => a.close());
  assert.deepEqual([a.nat().classify, a.nat().reflex], [false, '198.51.100.9:7000']);
  assert.throws(() => Mesh.open({ ...FAST, reflexOverride: '192.168.1.1:7000' }), MeshConfigError);
  assert.throws(() => Mesh.open({ ...FAST, portMapping: true, portMappingGateway: 'not an address' }), MeshConfigError);
});

test('mesh nat: connectDirect moves a relayed session to a direct path', async (t) => {
  const { MeshNoRouteError } = require('netmesh');
  const [a, r, b] = [started(t), started(t), started(t)];
  for (const n of [a, b]) {
    await n.connect(r.localAddr, r.publicKey, r.nodeId);
    await waitFor('bound to r', () => bound(n, r.nodeId) && bound(r, n.nodeId));
  }
  await a.connectVia(r.nodeId, b.publicKey, b.nodeId);
  await waitFor('a relayed session', () => bound(a, b.nodeId) && bound(b, a.nodeId));
  const relayOf = (n, peer) => n.peers().find((p) => p.nodeId === peer)?.relay;
  assert.equal(relayOf(a, b.nodeId), r.nodeId);
  await assert.rejects(a.connectDirect(b.nodeId, b.publicKey, 0x1234n), MeshNoRouteError);
  assert.equal(await a.connectDirect(b.nodeId, b.publicKey, r.nodeId), 'direct');
  assert.equal(relayOf(a, b.nodeId), null);
  await waitFor('b moved too', () => relayOf(b, a.nodeId) === null);
  const status = a.nat();
  assert.deepEqual([status.punchesAttempted, status.punchesSucceeded], [1, 1]);
});
