'use strict';
// Raw libnet operations shared by the synchronous API (main thread) and the
// async pool's workers: each does the C call and, on failure, reads
// net_last_error_message() on the same thread before anything else runs.
//
// A byte input is a Uint8Array, or `{ addr, len }` (a bigint address plus a
// length) for large buffers the async pool passes without copying.

const { fns, lastErrorMessage, takeBytes, STATUS } = require('./native');
const { errorFor } = require('./errors');

/** Throws the NetError for a negative status; returns the status otherwise. */
function check(status) {
  if (status < 0) {
    throw errorFor(status, lastErrorMessage());
  }
  return status;
}

function ptr(input) {
  if (input == null) return null;
  return input instanceof Uint8Array ? input : input.addr;
}

function len(input) {
  if (input == null) return 0;
  return input instanceof Uint8Array ? input.byteLength : input.len;
}

function identityFromSeed(seed) {
  const out = [null];
  check(fns.net_identity_from_seed(seed, seed.byteLength, out));
  return out[0];
}

function identityClone(handle) {
  const out = [null];
  check(fns.net_identity_clone(handle, out));
  return out[0];
}

function identityFromPublicKey(publicKey) {
  const out = [null];
  check(fns.net_identity_from_public_key(publicKey, publicKey.byteLength, out));
  return out[0];
}

function identityGenerate() {
  const out = [null];
  check(fns.net_identity_generate(out));
  return out[0];
}

function identityBytes(fn, handle) {
  const out = {};
  check(fn(handle, out));
  return takeBytes(out);
}

function identityU64(fn, handle) {
  const out = [0n];
  check(fn(handle, out));
  return BigInt(out[0]);
}

function identityIsReadOnly(handle) {
  const out = [false];
  check(fns.net_identity_is_read_only(handle, out));
  return Boolean(out[0]);
}

function identityFree(handle) {
  fns.net_identity_free(handle);
}

function sign(handle, message) {
  const out = {};
  check(fns.net_identity_sign(handle, ptr(message), len(message), out));
  return takeBytes(out);
}

/** true when the signature verifies, false on NET_ERR_INVALID_SIGNATURE. */
function verify(handle, message, signature) {
  const status = fns.net_identity_verify(
    handle,
    ptr(message),
    len(message),
    ptr(signature),
    len(signature),
  );
  if (status === STATUS.NET_ERR_INVALID_SIGNATURE) return false;
  check(status);
  return true;
}

function tokenIssue(handle, subject, scope, channelHash, ttlSecs, delegationDepth) {
  const out = {};
  check(
    fns.net_token_issue(
      handle,
      ptr(subject),
      len(subject),
      scope,
      channelHash,
      ttlSecs,
      delegationDepth,
      out,
    ),
  );
  return takeBytes(out);
}

function tokenDelegate(handle, parent, newSubject, requestedScope) {
  const out = {};
  check(
    fns.net_token_delegate(
      handle,
      ptr(parent),
      len(parent),
      ptr(newSubject),
      len(newSubject),
      requestedScope,
      out,
    ),
  );
  return takeBytes(out);
}

function envelopeSeal(handle, targetPublicKey, chainLink) {
  const out = {};
  check(
    fns.net_envelope_seal(
      handle,
      ptr(targetPublicKey),
      len(targetPublicKey),
      ptr(chainLink),
      len(chainLink),
      out,
    ),
  );
  return takeBytes(out);
}

/** Returns the new identity handle (a bigint pointer). */
function envelopeOpen(envelope, targetSecretKey, chainLink, expectedSigner) {
  const out = [null];
  check(
    fns.net_envelope_open(
      ptr(envelope),
      len(envelope),
      ptr(targetSecretKey),
      len(targetSecretKey),
      ptr(chainLink),
      len(chainLink),
      ptr(expectedSigner),
      len(expectedSigner),
      out,
    ),
  );
  return out[0];
}

module.exports = {
  check,
  identityFromSeed,
  identityFromPublicKey,
  identityClone,
  identityGenerate,
  identityBytes,
  identityU64,
  identityIsReadOnly,
  identityFree,
  sign,
  verify,
  tokenIssue,
  tokenDelegate,
  envelopeSeal,
  envelopeOpen,
};
