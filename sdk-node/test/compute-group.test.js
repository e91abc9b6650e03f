'use strict';
// Compute groups through the Node SDK: a replica group of three JavaScript
// counters over three nodes (routing, scaling, a failed node's member
// replaced), a standby group promoted with every event applied once, a fork
// group's lineage, and Compute.waitProcessed. Members are Daemons built on
// the main thread while the group's calls wait on the threadpool.

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  Compute,
  ComputeGroup,
  Daemon,
  Delivery,
  Mesh,
  ComputeConfigError,
  ComputeGroupPlacementError,
  ComputeGroupWrongKindError,
  InvalidArgumentError,
  ShuttingDownError,
} = require('netmesh');

const PSK = Buffer.alloc(32, 0x5a);
const FAST = { psk: PSK, heartbeatIntervalMs: 50, sessionTimeoutMs: 1000, helloTimeoutMs: 500 };
const SEED = Buffer.alloc(32, 9);
const PRODUCER = 0xfeed000000000004n;

/** Counts events, refusing one whose sequence it has passed (an event applied twice fails). */
class Counter extends Daemon {
  count = 0n;
  last = 0n;

  process(event) {
    if (event.sequence <= this.last) throw new Error(`sequence ${event.sequence} after ${this.last}`);
    this.last = event.sequence;
    this.count += 1n;
    return [];
  }

  snapshot() {
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(this.count, 0);
    b.writeBigUInt64LE(this.last, 8);
    return b;
  }

  restore(state) {
    this.count = state.readBigUInt64LE(0);
    this.last = state.readBigUInt64LE(8);
  }
}

async function withNodes(n, body, { connected = false } = {}) {
  const meshes = Array.from({ length: n }, () => Mesh.open(FAST));
  const nodes = meshes.map((m) => Compute.open(m, { workTimeoutMs: 5000 }));
  for (const c of nodes) c.register('counter', () => new Counter());
  try {
    if (connected) {
      // A migration goes node to node.
      for (let i = 0; i < n; i++) {
        for (const b of meshes.slice(i + 1)) await meshes[i].connect(b.localAddr, b.publicKey, b.nodeId);
      }
    }
    await body(nodes, meshes.map((m) => m.nodeId), meshes);
  } finally {
    for (const c of nodes) await c.closeAsync();
    for (const m of meshes) m.close();
  }
}

test("a watching group replaces a dead node's member by itself", () =>
  withNodes(4, async (nodes, ids, meshes) => {
    // watchFailures: nobody calls nodeFailed; the member of a node that
    // dies is re-created once the observer's failure detector says so.
    for (const m of meshes) m.start();
    for (const m of meshes.slice(1)) await meshes[0].connect(m.localAddr, m.publicKey, m.nodeId);
    const group = await ComputeGroup.replica(nodes, 'counter', SEED, 2);
    try {
      await assert.rejects(group.watchFailures(nodes[0], 0), InvalidArgumentError);
      await assert.rejects(group.watchFailures({}, 20), TypeError);
      await group.watchFailures(nodes[0], 20);
      await group.watchFailures(nodes[0], 20); // replaces the watch
      const members = (await group.status()).members;
      const index = members.findIndex((m) => m.node !== ids[0]);
      const victim = members[index].node;
      const dead = ids.indexOf(victim);
      await nodes[dead].closeAsync();
      meshes[dead].close();
      const deadline = Date.now() + 20000;
      while ((await group.status()).members[index].node === victim) {
        assert.ok(Date.now() < deadline, "the dead node's member was not replaced");
        await new Promise((r) => setTimeout(r, 10));
      }
      const st = await group.status();
      assert.equal(st.health, 'healthy');
      assert.equal(st.members[index].generation, 1);
      for (let seq = 1n; seq <= 4n; seq++) assert.notEqual((await group.route(PRODUCER, seq)).node, victim);
      await group.unwatchFailures();
      await group.unwatchFailures();
      await group.watchFailures(nodes[0], 20); // still watching when the group closes
    } finally {
      await group.closeAsync();
    }
  }));

test('a member returns to service with its node', () =>
  withNodes(3, async (nodes) => {
    // A node reported failed with no free node to take its member: the
    // member is out of service until the node is reported back.
    const group = await ComputeGroup.replica(nodes, 'counter', SEED, 3, { lb: { strategy: 'round_robin' } });
    try {
      const member = (await group.status()).members[1];
      assert.deepEqual(await group.nodeFailed(member.node), []);
      assert.equal((await group.status()).health, 'degraded');
      for (let seq = 1n; seq <= 6n; seq++) assert.notEqual((await group.route(PRODUCER, seq)).node, member.node);
      assert.deepEqual(await group.nodeRecovered(member.node), [1]);
      const st = await group.status();
      assert.equal(st.health, 'healthy');
      assert.equal(st.members[1].origin, member.origin);
      assert.deepEqual(await group.nodeRecovered(member.node), []);
    } finally {
      await group.closeAsync();
    }
  }));

test('a replica group of three routes, scales and replaces a failed node', () =>
  withNodes(3, async (nodes, ids) => {
    const group = await ComputeGroup.replica(nodes, 'counter', SEED, 3, { lb: { strategy: 'round_robin' } });
    try {
      const st = await group.status();
      assert.equal(st.kind, 'replica');
      assert.equal(st.health, 'healthy');
      assert.equal(new Set(st.members.map((m) => m.node)).size, 3);
      const taken = new Map();
      for (let seq = 1n; seq <= 30n; seq++) {
        const r = await group.route(PRODUCER, seq);
        assert.equal(r.outcome, Delivery.PROCESSED);
        const key = `${r.node}/${r.origin}`;
        taken.set(key, (taken.get(key) ?? 0) + 1);
      }
      assert.deepEqual([...taken.values()], [10, 10, 10]);
      for (const key of taken.keys()) {
        const [node, origin] = key.split('/').map(BigInt);
        const compute = nodes[ids.indexOf(node)];
        const stats = await compute.waitProcessed(origin, 10n, 5000);
        assert.equal(stats.eventsProcessed, 10n);
        assert.equal(compute.daemon(origin).count, 10n);
      }

      await group.scale(2);
      assert.equal((await group.status()).total, 2);
      for (let seq = 31n; seq <= 34n; seq++) assert.ok((await group.route(PRODUCER, seq)).index < 2);
      await assert.rejects(group.scale(4), ComputeGroupPlacementError);
      await assert.rejects(group.scale(0), ComputeConfigError);
      await assert.rejects(group.promote(), ComputeGroupWrongKindError);

      // Member 1's node is reported failed: re-created on the free node
      // under a new identity.
      const before = (await group.status()).members[1];
      assert.deepEqual(await group.nodeFailed(before.node), [1]);
      const after = (await group.status()).members[1];
      assert.notEqual(after.node, before.node);
      assert.notEqual(after.origin, before.origin);
      assert.equal(after.generation, 1);
      assert.equal((await group.route(PRODUCER, 100n)).outcome, Delivery.PROCESSED);
    } finally {
      await group.closeAsync();
    }
    assert.ok(group.closed);
    await assert.rejects(group.status(), ShuttingDownError);
  }));

test('a standby is promoted with nothing applied twice', () =>
  withNodes(3, async (nodes, ids) => {
    const group = await ComputeGroup.standby(nodes, 'counter', SEED, 2);
    try {
      const origin = (await group.status()).origin;
      for (let seq = 1n; seq <= 10n; seq++) assert.equal((await group.route(PRODUCER, seq)).index, 0);
      const report = await group.sync();
      assert.deepEqual(report.synced, [1]);
      assert.deepEqual(report.failed, []);
      for (let seq = 11n; seq <= 15n; seq++) await group.route(PRODUCER, seq);
      assert.equal((await group.status()).logged, 5);
      assert.equal(await group.promote(), 1);
      const st = await group.status();
      assert.equal(st.active, 1);
      const counter = nodes[ids.indexOf(st.members[1].node)].daemon(origin);
      assert.deepEqual([counter.count, counter.last], [15n, 15n]);
      assert.equal((await group.route(PRODUCER, 16n)).index, 1);
      assert.deepEqual([counter.count, counter.last], [16n, 16n]);
      await assert.rejects(group.scale(3), ComputeGroupWrongKindError);
    } finally {
      await group.closeAsync();
    }
  }));

test("a standby group's active migrates to a free node", () =>
  withNodes(
    3,
    async (nodes, ids) => {
      const group = await ComputeGroup.standby(nodes, 'counter', SEED, 2);
      try {
        const st = await group.status();
        const origin = st.origin;
        for (let seq = 1n; seq <= 5n; seq++) await group.route(PRODUCER, seq);
        const used = st.members.map((m) => m.node);
        const free = ids.find((id) => !used.includes(id));
        await assert.rejects(group.migrate(0, st.members[1].node), ComputeGroupPlacementError);
        await assert.rejects(group.migrate(1, free), InvalidArgumentError);
        await group.migrate(0, free);
        assert.equal((await group.status()).members[0].node, free);
        const moved = nodes[ids.indexOf(free)].daemon(origin);
        assert.deepEqual([moved.count, moved.last], [5n, 5n]);
        assert.equal((await group.route(PRODUCER, 6n)).node, free);
        assert.deepEqual([moved.count, moved.last], [6n, 6n]);
      } finally {
        await group.closeAsync();
      }
    },
    { connected: true },
  ));

test('a fork group starts from its parent', () =>
  withNodes(3, async (nodes, ids) => {
    const parent = nodes[0].spawn('counter', Buffer.alloc(32, 3));
    for (let seq = 1n; seq <= 5n; seq++) await nodes[0].deliver(parent, PRODUCER, seq);
    const group = await ComputeGroup.fork(nodes, 'counter', ids[0], parent, 2);
    try {
      const st = await group.status();
      assert.equal(st.kind, 'fork');
      assert.equal(st.parentOrigin, parent);
      assert.equal(st.lineageVerified, true);
      assert.equal(st.records.length, 2);
      const r = await group.route(PRODUCER, 6n);
      const fork = nodes[ids.indexOf(r.node)].daemon(r.origin);
      assert.deepEqual([fork.count, fork.last], [6n, 6n]);
    } finally {
      await group.closeAsync();
    }
  }));

test('waitProcessed times out, is cancelled, and returns the stats', () =>
  withNodes(1, async ([compute]) => {
    const origin = compute.spawn('counter', Buffer.alloc(32, 4));
    assert.equal(await compute.waitProcessed(origin, 1n, 20), null);
    const aborted = new AbortController();
    aborted.abort(new Error('stop'));
    await assert.rejects(compute.waitProcessed(origin, 1n, undefined, { signal: aborted.signal }), /stop/);
    await compute.deliver(origin, PRODUCER, 1n);
    const stats = await compute.waitProcessed(origin, 1n);
    assert.equal(stats.eventsProcessed, 1n);
    assert.equal(stats.origin, origin);
  }));
