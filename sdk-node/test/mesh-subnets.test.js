'use strict';
// Subnets through the Node SDK: the subnet and subnetPolicy options, a
// SubnetLocal channel admitting a subscriber of the publisher's subnet (from
// the policy over its tags) and refusing one of another subnet, the subnets
// in peers() and channels(), bad options refused.

const test = require('node:test');
const assert = require('node:assert/strict');
const { ChannelConfigError, ChannelUnauthorizedError, MeshConfigError, Mesh } = require('netmesh');

const { FAST, waitFor, started, link, recvOne } = require('./helpers');

const POLICY = [
  { prefix: 'zone:', level: 0, values: { a: 3 } },
  { prefix: 'site:', level: 1, values: { x: 7, y: 8 } },
];

const subnetOf = (n, peer) => n.peers().find((p) => p.nodeId === peer)?.subnet ?? null;

test('mesh subnets: a SubnetLocal channel across two subnets', async (t) => {
  const pub = started(t, { ...FAST, subnet: '3.7', subnetPolicy: POLICY });
  const mate = started(t, { ...FAST, subnetPolicy: POLICY });
  const other = started(t, { ...FAST, subnet: '3.8', subnetPolicy: POLICY });
  pub.announce({});
  mate.announce({ tags: ['zone:a', 'site:x'] });
  other.announce({});
  await link(mate, pub);
  await link(other, pub);
  await waitFor('the subnets learned', () => subnetOf(pub, mate.nodeId) === '3.7' && subnetOf(pub, other.nodeId) === '3.8');
  assert.equal(mate.channels().subnet, '3.7');
  pub.registerChannel('local', { visibility: 'subnet_local' });
  await mate.subscribe(pub.nodeId, 'local');
  await assert.rejects(other.subscribe(pub.nodeId, 'local'), ChannelUnauthorizedError);
  assert.equal(pub.publish('local', ['inside'], { reliable: true }).delivered, 1);
  const event = await recvOne(mate);
  assert.equal(Buffer.from(event.data).toString(), 'inside');
  assert.equal(event.channel, 'local');

  // An exported channel reaches its export target only.
  pub.registerChannel('out', { visibility: 'exported', exportTo: ['3.8'] });
  await other.subscribe(pub.nodeId, 'out');
  await assert.rejects(mate.subscribe(pub.nodeId, 'out'), ChannelUnauthorizedError);
  pub.publish('out', ['exported'], { reliable: true });
  const out = await recvOne(other);
  assert.deepEqual([Buffer.from(out.data).toString(), out.channel], ['exported', 'out']);
  assert.throws(() => pub.registerChannel('bad', { exportTo: ['9.9.9.9.9'] }), (e) => e instanceof ChannelConfigError && /export_to/.test(e.message));
});

test('mesh subnets: bad options are refused', () => {
  for (const options of [{ subnet: '1.2.3.4.5' }, { subnet: 7 }, { subnetPolicy: [{ prefix: 'x:', level: 4, values: { a: 1 } }] }]) {
    assert.throws(() => Mesh.open(options), (e) => e instanceof MeshConfigError && /subnet/.test(e.message));
  }
});
