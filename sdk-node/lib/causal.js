'use strict';

// Causal links and frames (STORAGE.md §14) for causal streams
// (Mesh.openCausalStream): a link is 32 bytes — origin, horizon, sequence,
// parent hash, each u64 LE — and an event of a causal stream is one or
// more frames u32 LE (32 + payload length) ‖ link ‖ payload.

const { fns, takeBytes } = require('./native');
const { check } = require('./calls');
const args = require('./args');

/** The first link of chain `origin` (its event has no payload). */
function genesisLink(origin) {
  const out = Buffer.alloc(32);
  out.writeBigUInt64LE(args.u64(origin, 'origin'), 0);
  return out;
}

/**
 * The link that follows `prev` (32 bytes) whose event carried
 * `prevPayload`: the same origin, `horizon`, the next sequence and the
 * parent hash xxh3_64(prev ‖ prevPayload).
 */
function nextCausalLink(prev, prevPayload = Buffer.alloc(0), horizon = 0n) {
  const link = args.bytes(prev, 'prev');
  const payload = args.bytes(prevPayload, 'prevPayload');
  const out = {};
  check(fns.net_causal_next_link(link, link.byteLength, payload, payload.byteLength, args.u64(horizon, 'horizon'), out));
  return takeBytes(out);
}

/** One event of a causal stream: `link` (32 bytes) and `payload` framed. */
function causalFrame(link, payload = Buffer.alloc(0)) {
  const l = args.bytes(link, 'link');
  const p = args.bytes(payload, 'payload');
  if (l.byteLength !== 32) throw new RangeError(`a causal link is 32 bytes, got ${l.byteLength}`);
  const out = Buffer.alloc(36 + p.byteLength);
  out.writeUInt32LE(32 + p.byteLength, 0);
  out.set(l, 4);
  out.set(p, 36);
  return out;
}

module.exports = { genesisLink, nextCausalLink, causalFrame };
