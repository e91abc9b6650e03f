'use strict';
// Identity envelopes: an identity's seed sealed to a recipient's X25519 key,
// bound to a 32-byte chain link, and attested by the sealer.

const { fns, takeBytes } = require('./native');
const calls = require('./calls');
const { check } = calls;
const args = require('./args');
const pool = require('./pool');
const { Identity, liveHandle, publicKeyArg } = require('./identity');

function sealArgs(source, targetPublicKey, chainLink) {
  return [
    liveHandle(source, 'source'),
    args.bytes(targetPublicKey, 'targetPublicKey'),
    args.bytes(chainLink, 'chainLink'),
  ];
}

function openArgs(envelope, targetSecretKey, chainLink, expectedSigner) {
  return [
    args.bytes(envelope, 'envelope'),
    args.bytes(targetSecretKey, 'targetSecretKey'),
    args.bytes(chainLink, 'chainLink'),
    expectedSigner == null ? null : publicKeyArg(expectedSigner, 'expectedSigner'),
  ];
}

function pooled(a, keep) {
  const transfer = [];
  const mapped = a.map((x) => (x instanceof Uint8Array ? pool.input(x, keep, transfer) : x));
  return [mapped, transfer];
}

/**
 * Seals `source`'s seed to `targetPublicKey` (X25519, 32 bytes), bound to the
 * 32-byte `chainLink`. Returns the 209-byte envelope.
 * @throws {ReadOnlyError} when `source` has no secret key
 */
function sealEnvelope(source, targetPublicKey, chainLink) {
  return calls.envelopeSeal(...sealArgs(source, targetPublicKey, chainLink));
}

/** sealEnvelope() on a worker thread. */
async function sealEnvelopeAsync(source, targetPublicKey, chainLink) {
  const keep = [source];
  const [a, transfer] = pooled(sealArgs(source, targetPublicKey, chainLink), keep);
  return pool.getPool().run('envelopeSeal', a, keep, transfer);
}

/**
 * Opens an envelope with the recipient's X25519 secret and the same chain
 * link; returns the sealed identity. With `expectedSigner` (an Identity or
 * 32-byte public key) the envelope must come from it.
 */
function openEnvelope(envelope, targetSecretKey, chainLink, expectedSigner) {
  const handle = calls.envelopeOpen(...openArgs(envelope, targetSecretKey, chainLink, expectedSigner));
  return Identity._fromHandle(handle);
}

/** openEnvelope() on a worker thread. */
async function openEnvelopeAsync(envelope, targetSecretKey, chainLink, expectedSigner) {
  const keep = [];
  const [a, transfer] = pooled(openArgs(envelope, targetSecretKey, chainLink, expectedSigner), keep);
  const handle = await pool.getPool().run('envelopeOpen', a, keep, transfer);
  return Identity._fromHandle(handle);
}

/** The X25519 public key (32 bytes) of a 32-byte X25519 secret. */
function x25519PublicKey(secretKey) {
  const secret = args.bytes(secretKey, 'secretKey');
  const out = {};
  check(fns.net_x25519_public_key(secret, secret.byteLength, out));
  return takeBytes(out);
}

module.exports = {
  sealEnvelope,
  sealEnvelopeAsync,
  openEnvelope,
  openEnvelopeAsync,
  x25519PublicKey,
};
