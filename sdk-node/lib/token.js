'use strict';
// Permission tokens: 159-byte signed grants of a scope on a channel.

const { fns, STATUS, CONSTANTS } = require('./native');
const calls = require('./calls');
const { check } = calls;
const args = require('./args');
const pool = require('./pool');
const { liveHandle, publicKeyArg } = require('./identity');
const { channelArg } = require('./channel');

/** Scope bits (NET_SCOPE_*). */
const Scope = Object.freeze({
  NONE: 0,
  PUBLISH: CONSTANTS.NET_SCOPE_PUBLISH,
  SUBSCRIBE: CONSTANTS.NET_SCOPE_SUBSCRIBE,
  ADMIN: CONSTANTS.NET_SCOPE_ADMIN,
  DELEGATE: CONSTANTS.NET_SCOPE_DELEGATE,
  WILDCARD: CONSTANTS.NET_SCOPE_WILDCARD,
  ALL: CONSTANTS.NET_SCOPE_ALL,
});

function issueArgs(issuer, subject, options) {
  if (options == null || typeof options !== 'object') {
    throw new TypeError('options must be an object { scope, ttlSecs, channel?, delegationDepth? }');
  }
  return [
    liveHandle(issuer, 'issuer'),
    publicKeyArg(subject, 'subject'),
    args.uint(options.scope, 32, 'scope'),
    channelArg(options.channel ?? 0),
    args.u64(options.ttlSecs, 'ttlSecs'),
    args.uint(options.delegationDepth ?? 0, 8, 'delegationDepth'),
  ];
}

const kConstruct = Symbol('netmesh.Token.construct');

class Token {
  #bytes;
  #info;

  /** @private Use Token.fromBytes / Token.issue / token.delegate. */
  constructor(token, bytes, info) {
    if (token !== kConstruct) {
      throw new TypeError('Token has no public constructor: use Token.fromBytes() or Token.issue()');
    }
    this.#bytes = bytes;
    this.#info = info;
  }

  /**
   * Parses a 159-byte token (copying it). Does not verify it.
   * @throws {TokenInvalidFormatError}
   */
  static fromBytes(bytes) {
    const copy = Buffer.from(args.bytes(bytes, 'bytes'));
    const info = {};
    check(fns.net_token_parse(copy, copy.byteLength, info));
    return new Token(kConstruct, copy, info);
  }

  /**
   * Issues a token from `issuer` to `subject` (an Identity or 32-byte public
   * key), valid for `ttlSecs` seconds from now, with a random nonce.
   */
  static issue(issuer, subject, options) {
    const a = issueArgs(issuer, subject, options);
    return Token.fromBytes(calls.tokenIssue(...a));
  }

  /** issue() on a worker thread. */
  static async issueAsync(issuer, subject, options) {
    const a = issueArgs(issuer, subject, options);
    const keep = [issuer];
    const transfer = [];
    a[1] = pool.input(a[1], keep, transfer);
    const bytes = await pool.getPool().run('tokenIssue', a, keep, transfer);
    return Token.fromBytes(bytes);
  }

  /** A copy of the 159 bytes. */
  get bytes() {
    return Buffer.from(this.#bytes);
  }

  /** A copy of the 159 bytes. */
  toBuffer() {
    return Buffer.from(this.#bytes);
  }

  /** Public key of the signer (32 bytes). */
  get issuer() {
    return Buffer.from(this.#info.issuer);
  }

  /** Public key of the authorised entity (32 bytes). */
  get subject() {
    return Buffer.from(this.#info.subject);
  }

  /** Scope bits (Scope.*). */
  get scope() {
    return this.#info.scope;
  }

  /** Channel hash the token is for (ignored with Scope.WILDCARD). */
  get channelHash() {
    return this.#info.channel_hash;
  }

  /** Remaining delegation depth. */
  get delegationDepth() {
    return this.#info.delegation_depth;
  }

  /** First live second (UNIX). */
  get notBefore() {
    return BigInt(this.#info.not_before);
  }

  /** First expired second (UNIX). */
  get notAfter() {
    return BigInt(this.#info.not_after);
  }

  /** Random nonce. */
  get nonce() {
    return BigInt(this.#info.nonce);
  }

  /** Whether the signature verifies under the issuer (no time check). */
  verify() {
    const status = fns.net_token_verify(this.#bytes, this.#bytes.byteLength);
    if (status === STATUS.NET_ERR_TOKEN_INVALID_SIGNATURE) return false;
    check(status);
    return true;
  }

  /**
   * Verifies the signature, then `notBefore <= now < notAfter` (now: current
   * time, or `now` UNIX seconds). Returns nothing when valid.
   * @throws {TokenInvalidSignatureError | TokenNotYetValidError | TokenExpiredError}
   */
  assertValid(now) {
    if (now === undefined) {
      check(fns.net_token_is_valid(this.#bytes, this.#bytes.byteLength));
    } else {
      check(fns.net_token_is_valid_at(this.#bytes, this.#bytes.byteLength, args.u64(now, 'now')));
    }
  }

  /** assertValid() as a boolean (false for an invalid signature, not yet valid, or expired). */
  isValid(now) {
    try {
      this.assertValid(now);
      return true;
    } catch (err) {
      if (
        err.status === STATUS.NET_ERR_TOKEN_INVALID_SIGNATURE ||
        err.status === STATUS.NET_ERR_TOKEN_NOT_YET_VALID ||
        err.status === STATUS.NET_ERR_TOKEN_EXPIRED
      ) {
        return false;
      }
      throw err;
    }
  }

  /**
   * Whether the token has expired (`now >= notAfter`; no signature check),
   * at `now` (UNIX seconds) or the current time.
   */
  isExpired(now) {
    const out = [false];
    if (now === undefined) {
      check(fns.net_token_is_expired(this.#bytes, this.#bytes.byteLength, out));
    } else {
      check(
        fns.net_token_is_expired_at(this.#bytes, this.#bytes.byteLength, args.u64(now, 'now'), out),
      );
    }
    return Boolean(out[0]);
  }

  /**
   * Whether the scope covers `action` (Scope bits) on `channel` (a hash or a
   * name). Validity is checked separately.
   */
  authorizes(action, channel) {
    const out = [false];
    check(
      fns.net_token_authorizes(
        this.#bytes,
        this.#bytes.byteLength,
        args.uint(action, 32, 'action'),
        channelArg(channel),
        out,
      ),
    );
    return Boolean(out[0]);
  }

  /**
   * Delegates this token to `newSubject` (Identity or public key) with
   * `scope` narrowed by this token's scope, signed by `signer`, who must be
   * this token's subject.
   */
  delegate(signer, newSubject, scope) {
    const handle = liveHandle(signer, 'signer');
    const subject = publicKeyArg(newSubject, 'newSubject');
    return Token.fromBytes(
      calls.tokenDelegate(handle, this.#bytes, subject, args.uint(scope, 32, 'scope')),
    );
  }

  /** delegate() on a worker thread. */
  async delegateAsync(signer, newSubject, scope) {
    const handle = liveHandle(signer, 'signer');
    const subject = publicKeyArg(newSubject, 'newSubject');
    const keep = [signer];
    const transfer = [];
    const a = [
      handle,
      pool.input(this.#bytes, keep, transfer),
      pool.input(subject, keep, transfer),
      args.uint(scope, 32, 'scope'),
    ];
    const bytes = await pool.getPool().run('tokenDelegate', a, keep, transfer);
    return Token.fromBytes(bytes);
  }

  /** Whether two tokens have the same bytes. */
  equals(other) {
    return other instanceof Token && this.#bytes.equals(other.#bytes);
  }
}

module.exports = { Token, Scope };
