'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const { Identity, sealEnvelope, sealEnvelopeAsync, openEnvelope, openEnvelopeAsync, x25519PublicKey } = netmesh;
const { vectors, hex, own } = require('./helpers');

const ev = vectors('envelope');
const inputs = ev.inputs;
const chainLink = hex(inputs.chain_link.bytes_32);
const targetSecret = hex(inputs.target_x25519_secret);
const targetPublic = hex(inputs.target_x25519_pub);
const sourceSeed = hex(inputs.source_seed);

test('x25519PublicKey of the target secret', () => {
  assert.equal(x25519PublicKey(targetSecret).toString('hex'), inputs.target_x25519_pub);
  assert.throws(() => x25519PublicKey(Buffer.alloc(31)), netmesh.InvalidArgumentError);
});

test('reference_sealed opens with the target secret and chain link', async (t) => {
  const envelope = hex(ev.reference_sealed.envelope_209);
  assert.equal(envelope.length, netmesh.ENVELOPE_SIZE);
  for (const opened of [
    own(t, openEnvelope(envelope, targetSecret, chainLink)),
    own(t, openEnvelope(envelope, targetSecret, chainLink, hex(inputs.source_ed25519_pub))),
    own(t, await openEnvelopeAsync(envelope, targetSecret, chainLink, hex(inputs.source_ed25519_pub))),
  ]) {
    assert.ok(opened instanceof Identity);
    assert.equal(opened.seed().toString('hex'), ev.reference_sealed.opened_seed);
    assert.equal(opened.publicKey.toString('hex'), inputs.source_ed25519_pub);
    assert.equal(opened.originHash, BigInt(inputs.chain_link.origin_hash));
    assert.equal(opened.isReadOnly, false);
  }
});

test('the deterministic envelope opens too', (t) => {
  const opened = own(t, openEnvelope(hex(ev.deterministic.envelope_209), targetSecret, chainLink));
  assert.deepEqual(opened.seed(), sourceSeed);
});

test('seal/open round trip, sync and async', async (t) => {
  const source = own(t, Identity.fromSeed(sourceSeed));
  const recipientSecret = Buffer.alloc(32, 0x5a);
  const recipientPublic = x25519PublicKey(recipientSecret);
  const link = Buffer.alloc(32, 0x11);
  const sealed = [sealEnvelope(source, recipientPublic, link), await sealEnvelopeAsync(source, recipientPublic, link)];
  assert.notDeepEqual(sealed[0], sealed[1]); // fresh ephemeral key each time
  for (const envelope of sealed) {
    assert.equal(envelope.length, netmesh.ENVELOPE_SIZE);
    assert.equal(envelope[0], 1);
    const opened = own(t, openEnvelope(envelope, recipientSecret, link, source));
    assert.deepEqual(opened.seed(), sourceSeed);
    assert.deepEqual(opened.publicKey, source.publicKey);
    assert.equal(opened.nodeId, source.nodeId);
    const openedAsync = own(t, await openEnvelopeAsync(envelope, recipientSecret, link));
    assert.deepEqual(openedAsync.publicKey, source.publicKey);
  }
});

test('envelope failures', async (t) => {
  const envelope = hex(ev.reference_sealed.envelope_209);

  const v0 = Buffer.from(envelope);
  v0[0] = 0;
  assert.throws(() => openEnvelope(v0, targetSecret, chainLink), (e) => {
    assert.ok(e instanceof netmesh.EnvelopeUnknownVersionError);
    assert.ok(e instanceof netmesh.EnvelopeError);
    assert.equal(e.code, 'NET_ERR_ENVELOPE_UNKNOWN_VERSION');
    return true;
  });
  await assert.rejects(openEnvelopeAsync(v0, targetSecret, chainLink), netmesh.EnvelopeUnknownVersionError);

  assert.throws(
    () => openEnvelope(envelope, Buffer.alloc(32, 0x09), chainLink),
    (e) => e instanceof netmesh.EnvelopeSealOpenFailedError && e.code === 'NET_ERR_ENVELOPE_SEAL_OPEN_FAILED',
  );
  await assert.rejects(
    openEnvelopeAsync(envelope, Buffer.alloc(32, 0x09), chainLink),
    netmesh.EnvelopeSealOpenFailedError,
  );

  const flipped = hex(ev.deterministic.envelope_209);
  flipped[80] ^= 1;
  assert.throws(() => openEnvelope(flipped, targetSecret, chainLink), netmesh.EnvelopeSealOpenFailedError);

  const seq6 = Buffer.from(chainLink);
  seq6[16] = 6; // the chain link's sequence (LE u64 at offset 16) 5 -> 6
  assert.throws(
    () => openEnvelope(hex(ev.deterministic.envelope_209), targetSecret, seq6),
    netmesh.EnvelopeInvalidAttestationError,
  );

  assert.throws(
    () => openEnvelope(envelope.subarray(0, 208), targetSecret, chainLink),
    netmesh.EnvelopeInvalidLengthError,
  );

  const other = own(t, Identity.generate());
  assert.throws(
    () => openEnvelope(envelope, targetSecret, chainLink, other),
    netmesh.EnvelopeInvalidSignerKeyError,
  );

  assert.throws(() => openEnvelope(envelope, targetSecret, chainLink.subarray(0, 31)), netmesh.InvalidArgumentError);
});

test('a read-only identity cannot be sealed', async (t) => {
  const ro = own(t, Identity.fromPublicKey(hex(inputs.source_ed25519_pub)));
  assert.throws(() => sealEnvelope(ro, targetPublic, chainLink), netmesh.ReadOnlyError);
  await assert.rejects(sealEnvelopeAsync(ro, targetPublic, chainLink), netmesh.ReadOnlyError);
});
