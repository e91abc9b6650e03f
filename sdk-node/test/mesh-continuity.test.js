'use strict';
// Continuity through the Node SDK: a followed chain checked event by event
// (a second writer breaks it, and the node says so as an event and in its
// status), partition records, the event wait with a timeout and an abort,
// continuity off refused. The partition itself runs on five real nodes in
// the Rust suite (tests/mesh_partitions.rs).

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  InvalidArgumentError,
  Mesh,
  MeshUnknownPeerError,
  causalFrame,
  genesisLink,
  nextCausalLink,
} = require('netmesh');

const crypto = require('node:crypto');

const { FAST, started } = require('./helpers');

const ORIGIN = 0x1234_5678_9abcn;

/** A 32-byte causal link: origin, horizon, sequence, parent hash (LE). */
function causalLink(origin, seq, parent) {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(origin, 0);
  b.writeBigUInt64LE(seq, 16);
  b.writeBigUInt64LE(parent, 24);
  return b;
}

test('continuity: a proof asked of a peer arrives as an event', async (t) => {
  // Both follow the chain from its genesis, which both hold: consistent.
  const a = Mesh.open(FAST);
  const b = Mesh.open(FAST);
  t.after(() => {
    a.close();
    b.close();
  });
  a.start();
  b.start();
  await a.connect(b.localAddr, b.publicKey, b.nodeId);
  assert.throws(() => a.requestContinuityProof(b.nodeId, ORIGIN, 0, 0), InvalidArgumentError);
  a.followChain(ORIGIN);
  b.followChain(ORIGIN);
  assert.throws(() => a.requestContinuityProof(b.nodeId, ORIGIN, 3, 2), InvalidArgumentError);
  a.requestContinuityProof(b.nodeId, ORIGIN, 0, 0);
  let event = null;
  for (let i = 0; i < 100 && event?.type !== 'proof_checked'; i++) {
    event = await a.continuityNext(100);
  }
  assert.equal(event?.type, 'proof_checked');
  assert.equal(event.peer, b.nodeId);
  assert.equal(event.origin, ORIGIN);
  assert.equal(event.verdict, 'consistent');
});

test('continuity: a causal stream is followed and proved by the node', async (t) => {
  // The receiver checks each event as it arrives and proves the chain
  // against the sender by itself; the sender followed what it sent.
  const a = Mesh.open(FAST);
  const b = Mesh.open({ ...FAST, proofIntervalMs: 100 });
  t.after(() => {
    a.close();
    b.close();
  });
  a.start();
  b.start();
  await a.connect(b.localAddr, b.publicKey, b.nodeId);
  a.followChain(ORIGIN);
  b.followChain(ORIGIN);
  assert.throws(() => a.openCausalStream(12345n, 1n, { reliable: true }), MeshUnknownPeerError);
  assert.throws(() => nextCausalLink(Buffer.alloc(31)), InvalidArgumentError);
  assert.throws(() => causalFrame(Buffer.alloc(31)), RangeError);
  let prev = genesisLink(ORIGIN);
  let prevPayload = Buffer.alloc(0);
  assert.deepEqual(prev, causalLink(ORIGIN, 0n, 0n));
  const events = [];
  for (let i = 1n; i <= 10n; i++) {
    const link = nextCausalLink(prev, prevPayload);
    assert.equal(link.readBigUInt64LE(0), ORIGIN);
    assert.equal(link.readBigUInt64LE(16), i);
    const payload = Buffer.from([Number(i)]);
    events.push(causalFrame(link, payload));
    prev = link;
    prevPayload = payload;
  }
  const stream = a.openCausalStream(b.nodeId, 7n, { reliable: true });
  t.after(() => stream.close());
  stream.send(...events);
  const got = [];
  while (got.length < 10) got.push(...(await b.recv(10, 5000)));
  assert.deepEqual(
    got.map((e) => Buffer.from(e.data)),
    events,
  );
  let settled = false;
  for (let i = 0; i < 200 && !settled; i++) {
    const event = await b.continuityNext(100);
    if (event?.type !== 'proof_checked') continue;
    assert.equal(event.verdict, 'consistent');
    assert.equal(event.peer, a.nodeId);
    settled = event.toSeq === 10n;
  }
  assert.ok(settled, 'no proof of the whole chain');
  const [chain] = b.continuityStatus();
  assert.equal(chain.head.seq, 10n);
  assert.equal(chain.source, a.nodeId);
  assert.equal(chain.provedTo, 10n);
  assert.equal(chain.proofConflicted, false);
  assert.equal(a.continuityStatus()[0].head.seq, 10n);
});

/** Takes `mesh`'s continuity events until every type in `want` came. */
async function waitContinuity(mesh, ...want) {
  const seen = new Set();
  const deadline = Date.now() + 15000;
  while (!want.every((w) => seen.has(w))) {
    assert.ok(Date.now() < deadline, `waited for ${want}, saw ${[...seen]}`);
    const event = await mesh.continuityNext(100);
    if (event) seen.add(event.type);
  }
}

test('continuity: a peer that fails and returns heals the partition', async (t) => {
  // b goes away: a detects the split; b comes back (same keys) and the
  // split heals, both sides naming the same partition key — b learns of
  // the split from a's greeting.
  const quick = { ...FAST, heartbeatIntervalMs: 20, sessionTimeoutMs: 100 };
  const keys = { identitySeed: crypto.randomBytes(32), staticSecret: crypto.randomBytes(32) };
  const a = started(t, quick);
  const b = Mesh.open({ ...quick, ...keys });
  b.start();
  const bId = b.nodeId;
  await a.connect(b.localAddr, b.publicKey, bId);
  b.close();
  await waitContinuity(a, 'detected');
  const [record] = a.partitions();
  assert.deepEqual(record.otherSide, [bId]);
  assert.equal(record.partitionKey, null);
  const b2 = started(t, { ...quick, ...keys });
  assert.equal(b2.nodeId, bId);
  // Its identity proves it: a's old session to b is replaced.
  await b2.connect(a.localAddr, a.publicKey, a.nodeId);
  await waitContinuity(a, 'healed', 'agreed');
  await waitContinuity(b2, 'healed', 'agreed');
  const [healed] = a.partitions();
  const [adopted] = b2.partitions();
  assert.equal(healed.phase, 'healed');
  assert.equal(adopted.phase, 'healed');
  assert.deepEqual(adopted.otherSide, [a.nodeId]);
  assert.notEqual(healed.partitionKey, null);
  assert.equal(healed.partitionKey, adopted.partitionKey);
});

test('continuity: a chain followed and broken', async (t) => {
  const m = Mesh.open(FAST);
  t.after(() => m.close());
  assert.deepEqual(m.partitions(), []);
  assert.deepEqual(m.continuityStatus(), []);
  assert.throws(() => m.observeChainEvent(causalLink(ORIGIN, 1n, 0n), Buffer.from('x')), InvalidArgumentError);
  m.followChain(ORIGIN);
  m.followChain(ORIGIN); // idempotent
  let [chain] = m.continuityStatus();
  assert.equal(chain.origin, ORIGIN);
  assert.equal(chain.head.seq, 0n);
  assert.equal(chain.held, 1n);
  assert.equal(chain.broken, null);
  assert.equal(await m.continuityNext(10), null);
  assert.throws(() => m.observeChainEvent(causalLink(ORIGIN, 1n, 0n).subarray(0, 31)), InvalidArgumentError);
  assert.equal(m.observeChainEvent(causalLink(ORIGIN, 1n, 0xdeadn), Buffer.from('x')), 'broke');
  assert.equal(m.observeChainEvent(causalLink(ORIGIN, 2n, 0xbeefn), Buffer.from('y')), 'ignored');
  const event = await m.continuityNext(5000);
  assert.equal(event.type, 'chain_broken');
  assert.equal(event.origin, ORIGIN);
  [chain] = m.continuityStatus();
  assert.equal(chain.broken.reason, 'conflicting_chains'); // its parent is not our genesis
  assert.equal(chain.broken.lastVerifiedSeq, 0n);
});

test('continuity: the wait is aborted, and ends at close', async (t) => {
  const m = Mesh.open(FAST);
  t.after(() => m.close());
  const controller = new AbortController();
  const waiting = m.continuityNext(undefined, { signal: controller.signal });
  controller.abort();
  await assert.rejects(waiting, { name: 'AbortError' });
  const blocked = m.continuityNext();
  m.close();
  assert.equal(await blocked, null);
});

test('continuity: off is refused', (t) => {
  const m = Mesh.open({ ...FAST, continuity: false });
  t.after(() => m.close());
  assert.throws(() => m.followChain(1n), (err) => err instanceof InvalidArgumentError && /continuity is off/.test(err.message));
  assert.deepEqual(m.partitions(), []);
});
