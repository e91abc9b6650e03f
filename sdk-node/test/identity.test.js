'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const util = require('node:util');
const netmesh = require('netmesh');
const { Identity, ReadOnlyError, InvalidArgumentError, InvalidPublicKeyError, ShuttingDownError } = netmesh;
const { vectors, hex, own } = require('./helpers');

const identityVectors = vectors('identity').vectors;

test('identity vectors: public key, originHash, nodeId, signature', () => {
  assert.equal(identityVectors.length, 3);
  for (const v of identityVectors) {
    const id = Identity.fromSeed(hex(v.seed));
    try {
      assert.equal(id.publicKey.toString('hex'), v.ed25519_public_key, v.label);
      assert.equal(id.entityId.toString('hex'), v.ed25519_public_key, v.label);
      assert.equal(typeof id.originHash, 'bigint');
      assert.equal(typeof id.nodeId, 'bigint');
      assert.equal(id.originHash, BigInt(v.origin_hash_u64), v.label);
      assert.equal(id.nodeId, BigInt(v.node_id_u64), v.label);
      const sig = id.sign(v.sign_message_ascii);
      assert.ok(Buffer.isBuffer(sig));
      assert.equal(sig.toString('hex'), v.ed25519_signature, v.label);
      assert.equal(id.sign(Buffer.from(v.sign_message_ascii)).toString('hex'), v.ed25519_signature);
      assert.equal(id.verify(v.sign_message_ascii, hex(v.ed25519_signature)), true);
      assert.equal(id.verify('another message', hex(v.ed25519_signature)), false);
      assert.equal(id.seed().toString('hex'), v.seed);
      assert.equal(id.isReadOnly, false);
    } finally {
      id.close();
    }
  }
});

test('identity vectors: async sign and verify give the same answers', async (t) => {
  for (const v of identityVectors) {
    const id = own(t, Identity.fromSeed(hex(v.seed)));
    const sig = await id.signAsync(v.sign_message_ascii);
    assert.equal(sig.toString('hex'), v.ed25519_signature);
    assert.equal(await id.verifyAsync(v.sign_message_ascii, sig), true);
    const bad = Buffer.from(sig);
    bad[0] ^= 1;
    assert.equal(await id.verifyAsync(v.sign_message_ascii, bad), false);
  }
});

test('large values of originHash/nodeId keep all 64 bits', (t) => {
  // Vector C's origin hash is above 2**63 and both A's exceed Number.MAX_SAFE_INTEGER.
  const a = identityVectors.find((v) => v.label === 'A');
  const id = own(t, Identity.fromSeed(hex(a.seed)));
  assert.ok(id.originHash > BigInt(Number.MAX_SAFE_INTEGER));
  assert.equal(id.originHash.toString(16), a.origin_hash_u64.slice(2));
});

test('generate gives distinct identities that sign and verify', (t) => {
  const a = own(t, Identity.generate());
  const b = own(t, Identity.generate());
  assert.notDeepEqual(a.publicKey, b.publicKey);
  const sig = a.sign('hello');
  assert.equal(sig.length, netmesh.SIGNATURE_LEN);
  assert.equal(a.verify('hello', sig), true);
  assert.equal(b.verify('hello', sig), false);
  const again = own(t, Identity.fromSeed(a.seed()));
  assert.deepEqual(again.publicKey, a.publicKey);
  assert.equal(again.originHash, a.originHash);
});

test('read-only identity verifies but cannot sign or reveal a seed', async (t) => {
  const v = identityVectors[0];
  const ro = own(t, Identity.fromPublicKey(hex(v.ed25519_public_key)));
  assert.equal(ro.isReadOnly, true);
  assert.equal(ro.publicKey.toString('hex'), v.ed25519_public_key);
  assert.equal(ro.originHash, BigInt(v.origin_hash_u64));
  assert.equal(ro.verify(v.sign_message_ascii, hex(v.ed25519_signature)), true);
  assert.throws(() => ro.sign('x'), (e) => {
    assert.ok(e instanceof ReadOnlyError);
    assert.ok(e instanceof netmesh.NetError);
    assert.equal(e.status, -10);
    assert.equal(e.code, 'NET_ERR_READ_ONLY');
    assert.ok(e.message.length > 0);
    return true;
  });
  assert.throws(() => ro.seed(), ReadOnlyError);
  await assert.rejects(ro.signAsync('x'), ReadOnlyError);
});

test('bad inputs: seed length, public key, signature length, JS types', (t) => {
  assert.throws(() => Identity.fromSeed(Buffer.alloc(31)), (e) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.equal(e.code, 'NET_ERR_INVALID_ARGUMENT');
    assert.match(e.message, /seed/);
    return true;
  });
  assert.throws(() => Identity.fromPublicKey(Buffer.alloc(33)), InvalidArgumentError);
  // y = 2 is not the encoding of a curve point.
  const notAPoint = Buffer.alloc(32);
  notAPoint[0] = 2;
  assert.throws(() => Identity.fromPublicKey(notAPoint), InvalidPublicKeyError);
  const id = own(t, Identity.generate());
  assert.throws(() => id.verify('m', Buffer.alloc(63)), InvalidArgumentError);
  assert.throws(() => Identity.fromSeed('not bytes'), TypeError);
  assert.throws(() => new Identity(), TypeError);
});

test('empty message signs and verifies', async (t) => {
  const id = own(t, Identity.generate());
  const sig = id.sign(Buffer.alloc(0));
  assert.equal(id.verify('', sig), true);
  assert.equal(await id.verifyAsync(new Uint8Array(0), await id.signAsync('')), true);
});

test('close is idempotent; every operation then throws ShuttingDownError', async () => {
  const id = Identity.generate();
  const pk = id.publicKey;
  assert.equal(id.closed, false);
  id.close();
  id.close();
  assert.equal(id.closed, true);
  for (const op of [
    () => id.publicKey,
    () => id.entityId,
    () => id.seed(),
    () => id.isReadOnly,
    () => id.originHash,
    () => id.nodeId,
    () => id.sign('x'),
    () => id.verify('x', Buffer.alloc(64)),
    () => netmesh.Token.issue(id, pk, { scope: 1, ttlSecs: 1n }),
    () => netmesh.sealEnvelope(id, Buffer.alloc(32), Buffer.alloc(32)),
  ]) {
    assert.throws(op, (e) => e instanceof ShuttingDownError && e.code === 'NET_ERR_SHUTTING_DOWN' && e.status === -2);
  }
  await assert.rejects(id.signAsync('x'), ShuttingDownError);
  await assert.rejects(id.verifyAsync('x', Buffer.alloc(64)), ShuttingDownError);
  await id.closeAsync();
});

test('Symbol.dispose and Symbol.asyncDispose close', async () => {
  const a = Identity.generate();
  a[Symbol.dispose]();
  assert.equal(a.closed, true);
  const b = Identity.generate();
  await b[Symbol.asyncDispose]();
  assert.equal(b.closed, true);
});

test('inspect shows the entity id, never the seed', () => {
  const seed = Buffer.alloc(32, 7);
  const id = Identity.fromSeed(seed);
  const shown = util.inspect(id);
  assert.match(shown, new RegExp(id.entityId.toString('hex')));
  assert.doesNotMatch(shown, new RegExp(seed.toString('hex')));
  id.close();
  assert.equal(util.inspect(id), 'Identity <closed>');
});

test('clone is an independent handle', () => {
  const original = Identity.fromSeed(Buffer.alloc(32, 9));
  const expected = original.originHash;
  const copy = original.clone();
  original.close();
  assert.throws(() => original.originHash, ShuttingDownError);
  assert.equal(copy.originHash, expected);
  assert.equal(copy.sign(Buffer.from('still works')).length, 64);
  copy.close();
});
