'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const netmesh = require('netmesh');
const { Identity, Token, Scope } = netmesh;
const { vectors, hex, own } = require('./helpers');

const tv = vectors('token');
const det = tv.deterministic;
const SEED_A = hex(det.issuer_seed);
const SEED_B = Buffer.alloc(32, 0x42);
const SEED_C = Buffer.alloc(32, 0xff);

const errorWith = (Class, code) => (e) => {
  assert.ok(e instanceof Class, `${e && e.name}: ${e && e.message} is not a ${Class.name}`);
  assert.equal(e.code, code);
  assert.equal(e.status, netmesh.Status[code]);
  assert.ok(e.message.length > 0);
  return true;
};

test('deterministic token: fields', () => {
  const token = Token.fromBytes(hex(det.token_159));
  assert.equal(token.bytes.length, netmesh.TOKEN_SIZE);
  assert.equal(token.bytes.toString('hex'), det.token_159);
  assert.equal(token.issuer.toString('hex'), det.issuer_pub);
  assert.equal(token.subject.toString('hex'), det.subject_pub);
  assert.equal(token.scope, det.scope_bits);
  assert.equal(token.channelHash, Number(det.channel_hash));
  assert.equal(token.channelHash, netmesh.channelHash(det.channel));
  assert.equal(token.delegationDepth, det.delegation_depth);
  assert.equal(typeof token.notBefore, 'bigint');
  assert.equal(token.notBefore, 1700000000n);
  assert.equal(token.notAfter, 4102444800n);
  assert.equal(token.nonce, 0x0123456789abcdefn);
});

test('deterministic token verifies; valid at 1700000000; expired at 4102444800', () => {
  const token = Token.fromBytes(hex(det.token_159));
  assert.equal(token.verify(), true);
  assert.equal(token.isValid(1700000000n), true);
  token.assertValid(1700000000n);
  token.assertValid(1700000000); // a safe-integer number is accepted too
  assert.equal(token.isValid(), true);
  assert.equal(token.isExpired(), false);
  assert.equal(token.isValid(4102444800n), false);
  assert.throws(
    () => token.assertValid(4102444800n),
    errorWith(netmesh.TokenExpiredError, 'NET_ERR_TOKEN_EXPIRED'),
  );
  assert.throws(
    () => token.assertValid(1699999999n),
    errorWith(netmesh.TokenNotYetValidError, 'NET_ERR_TOKEN_NOT_YET_VALID'),
  );
  assert.throws(() => token.assertValid(-1n), RangeError);
  assert.throws(() => token.assertValid(1n << 64n), RangeError);
  assert.throws(() => token.assertValid(1.5), TypeError);
});

test('tampered token: invalid signature', () => {
  const token = Token.fromBytes(hex(tv.tampered_scope_byte64_xor_0x04.token_159));
  assert.equal(token.verify(), false);
  assert.equal(token.isValid(1700000000n), false);
  assert.throws(
    () => token.assertValid(1700000000n),
    errorWith(netmesh.TokenInvalidSignatureError, 'NET_ERR_TOKEN_INVALID_SIGNATURE'),
  );
  // And flipping any byte of the signature too.
  const bytes = hex(det.token_159);
  bytes[150] ^= 0x80;
  assert.equal(Token.fromBytes(bytes).verify(), false);
});

test('expired token', () => {
  const token = Token.fromBytes(hex(tv.expired.token_159));
  assert.equal(token.verify(), true);
  assert.equal(token.isExpired(), true);
  assert.equal(token.isValid(), false);
  assert.equal(token.nonce, 7n);
  assert.equal(token.notAfter, BigInt(tv.expired.not_after));
  assert.throws(() => token.assertValid(), netmesh.TokenExpiredError);
});

test('wrong size: invalid format', () => {
  const bytes = hex(det.token_159);
  assert.throws(
    () => Token.fromBytes(bytes.subarray(0, 158)),
    errorWith(netmesh.TokenInvalidFormatError, 'NET_ERR_TOKEN_INVALID_FORMAT'),
  );
  assert.throws(() => Token.fromBytes(Buffer.concat([bytes, Buffer.alloc(1)])), netmesh.TokenInvalidFormatError);
});

test('authorizes truth table', () => {
  const token = Token.fromBytes(hex(det.token_159));
  const ch = Number(det.channel_hash);
  assert.equal(token.authorizes(Scope.SUBSCRIBE, ch), det.authorizes_subscribe_on_channel);
  assert.equal(token.authorizes(Scope.SUBSCRIBE, det.channel), true);
  assert.equal(token.authorizes(Scope.ADMIN, ch), det.authorizes_admin_on_channel);
  assert.equal(token.authorizes(Scope.SUBSCRIBE, 0x0000), det.authorizes_subscribe_on_other_channel_0x0000);
  assert.equal(token.authorizes(Scope.NONE, ch), det.authorizes_NONE);
  assert.equal(token.authorizes(Scope.PUBLISH, ch), true); // scope 11 = PUBLISH|SUBSCRIBE|DELEGATE
  assert.equal(token.authorizes(Scope.DELEGATE, ch), true);
  assert.equal(token.authorizes(Scope.PUBLISH | Scope.SUBSCRIBE, ch), true);
  assert.equal(token.authorizes(Scope.PUBLISH | Scope.ADMIN, ch), false);

  const wildcard = Token.fromBytes(hex(tv.wildcard.token_159));
  assert.equal(wildcard.verify(), true);
  assert.equal(wildcard.scope, tv.wildcard.scope_bits);
  assert.equal(wildcard.authorizes(Scope.SUBSCRIBE, 0x1234), tv.wildcard.authorizes_subscribe_on_0x1234);
  assert.equal(wildcard.authorizes(Scope.PUBLISH, 0x1234), tv.wildcard.authorizes_publish_on_0x1234);
  assert.throws(() => token.authorizes(Scope.SUBSCRIBE, 0x10000), TypeError);
  assert.throws(() => token.authorizes(Scope.SUBSCRIBE, 'bad name'), netmesh.ChannelNameError);
});

test('reference-issued token verifies', () => {
  const ri = tv.reference_issued;
  const token = Token.fromBytes(hex(ri.token_159));
  assert.equal(token.verify(), true);
  assert.equal(token.scope, ri.scope_bits);
  assert.equal(token.nonce, BigInt(ri.nonce));
  assert.equal(token.notBefore, BigInt(ri.not_before));
  assert.equal(token.notAfter - token.notBefore, 3600n);
});

test('the reference delegated child verifies and parses', () => {
  const d = tv.delegated_child_from_deterministic;
  const child = Token.fromBytes(hex(d.token_159));
  assert.equal(child.verify(), true);
  assert.equal(child.issuer.toString('hex'), d.issuer_pub);
  assert.equal(child.subject.toString('hex'), d.subject_pub);
  assert.equal(child.scope, d.scope_bits);
  assert.equal(child.delegationDepth, d.delegation_depth);
  assert.equal(child.nonce, BigInt(d.nonce));
});

test('delegation from the deterministic token (signer B, new subject C)', async (t) => {
  const d = tv.delegated_child_from_deterministic;
  const parent = Token.fromBytes(hex(det.token_159));
  const a = own(t, Identity.fromSeed(SEED_A));
  const b = own(t, Identity.fromSeed(SEED_B));
  const c = own(t, Identity.fromSeed(SEED_C));
  const requested = Scope.SUBSCRIBE | Scope.DELEGATE | Scope.ADMIN;

  for (const child of [
    parent.delegate(b, c, requested),
    await parent.delegateAsync(b, c.publicKey, requested),
  ]) {
    assert.equal(child.verify(), true);
    assert.equal(child.isValid(), true);
    assert.equal(child.issuer.toString('hex'), d.issuer_pub);
    assert.equal(child.subject.toString('hex'), d.subject_pub);
    assert.equal(child.scope, d.scope_bits); // ADMIN is not in the parent's scope
    assert.equal(child.channelHash, Number(d.channel_hash));
    assert.equal(child.delegationDepth, d.delegation_depth);
    assert.equal(child.notAfter, BigInt(d.not_after));
  }

  // Wrong signer: A is the parent's issuer, not its subject.
  assert.throws(
    () => parent.delegate(a, c, Scope.SUBSCRIBE),
    errorWith(netmesh.TokenNotAuthorizedError, 'NET_ERR_TOKEN_NOT_AUTHORIZED'),
  );
  await assert.rejects(parent.delegateAsync(a, c, Scope.SUBSCRIBE), netmesh.TokenNotAuthorizedError);

  // Grandchild has depth 0: delegating it again is exhausted.
  const child = parent.delegate(b, c, requested);
  const e = own(t, Identity.generate());
  const grandchild = child.delegate(c, e, Scope.SUBSCRIBE | Scope.DELEGATE);
  assert.equal(grandchild.delegationDepth, 0);
  assert.equal(grandchild.verify(), true);
  const f = own(t, Identity.generate());
  assert.throws(
    () => grandchild.delegate(e, f, Scope.SUBSCRIBE),
    errorWith(netmesh.TokenDelegationExhaustedError, 'NET_ERR_TOKEN_DELEGATION_EXHAUSTED'),
  );
  await assert.rejects(grandchild.delegateAsync(e, f, Scope.SUBSCRIBE), netmesh.TokenDelegationExhaustedError);
});

test('delegation needs the DELEGATE scope; a read-only signer cannot sign', (t) => {
  const a = own(t, Identity.fromSeed(SEED_A));
  const b = own(t, Identity.fromSeed(SEED_B));
  const c = own(t, Identity.fromSeed(SEED_C));
  const noDelegate = Token.issue(a, b, { scope: Scope.SUBSCRIBE, channel: 'x', ttlSecs: 60n, delegationDepth: 3 });
  assert.throws(
    () => noDelegate.delegate(b, c, Scope.SUBSCRIBE),
    errorWith(netmesh.TokenDelegationNotAllowedError, 'NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED'),
  );
  const parent = Token.fromBytes(hex(det.token_159));
  const bReadOnly = own(t, Identity.fromPublicKey(b.publicKey));
  assert.throws(() => parent.delegate(bReadOnly, c, Scope.SUBSCRIBE), netmesh.ReadOnlyError);
});

test('issue: fields, sync and async; zero TTL; read-only issuer', async (t) => {
  const a = own(t, Identity.fromSeed(SEED_A));
  const b = own(t, Identity.fromSeed(SEED_B));
  const before = BigInt(Math.floor(Date.now() / 1000));
  for (const token of [
    Token.issue(a, b, { scope: Scope.PUBLISH, channel: 'sensors/lidar', ttlSecs: 3600n }),
    await Token.issueAsync(a, b.publicKey, { scope: Scope.PUBLISH, channel: 0xe5d8, ttlSecs: 3600 }),
  ]) {
    assert.equal(token.verify(), true);
    assert.equal(token.isValid(), true);
    assert.deepEqual(token.issuer, a.publicKey);
    assert.deepEqual(token.subject, b.publicKey);
    assert.equal(token.scope, Scope.PUBLISH);
    assert.equal(token.channelHash, 0xe5d8);
    assert.equal(token.delegationDepth, 0);
    assert.equal(token.notAfter - token.notBefore, 3600n);
    assert.ok(token.notBefore >= before - 1n && token.notBefore <= before + 5n);
    assert.equal(typeof token.nonce, 'bigint');
    assert.equal(token.authorizes(Scope.PUBLISH, 'sensors/lidar'), true);
    assert.equal(Token.fromBytes(token.toBuffer()).equals(token), true);
  }
  const two = [1, 2].map(() => Token.issue(a, b, { scope: Scope.ALL, ttlSecs: 10n }));
  assert.notEqual(two[0].nonce, two[1].nonce);

  assert.throws(
    () => Token.issue(a, b, { scope: Scope.PUBLISH, ttlSecs: 0n }),
    errorWith(netmesh.TokenZeroTtlError, 'NET_ERR_TOKEN_ZERO_TTL'),
  );
  await assert.rejects(Token.issueAsync(a, b, { scope: Scope.PUBLISH, ttlSecs: 0 }), netmesh.TokenZeroTtlError);
  const ro = own(t, Identity.fromPublicKey(a.publicKey));
  assert.throws(() => Token.issue(ro, b, { scope: Scope.PUBLISH, ttlSecs: 1n }), netmesh.ReadOnlyError);
  await assert.rejects(Token.issueAsync(ro, b, { scope: Scope.PUBLISH, ttlSecs: 1n }), netmesh.ReadOnlyError);
  assert.throws(() => Token.issue(a, Buffer.alloc(31), { scope: 1, ttlSecs: 1n }), netmesh.InvalidArgumentError);
  assert.throws(() => Token.issue(a, b, { scope: 1, ttlSecs: -1n }), RangeError);
  assert.throws(() => Token.issue(a, b, { scope: 1, ttlSecs: 1n, delegationDepth: 256 }), TypeError);
});

test('Token has no public constructor', () => {
  assert.throws(() => new Token(), TypeError);
});

test('isExpired at a given time', () => {
  const issuer = netmesh.Identity.fromSeed(Buffer.alloc(32, 7));
  const token = netmesh.Token.issue(issuer, Buffer.alloc(32, 0x21), { scope: netmesh.Scope.PUBLISH, ttlSecs: 60, channel: 1 });
  assert.equal(token.isExpired(token.notAfter - 1n), false);
  assert.equal(token.isExpired(token.notAfter), true);
  issuer.close();
});
